# tests/guest/guest.mk: the test guest and its host tool, included by the top-level Makefile.
# Paths are relative to the repository top, where make runs.
#
#   tests/guest/hvguest.elf  freestanding i386 multiboot kernel (qemu-system-x86_64 -kernel)
#   tests/guest/hvgrec       host tool that checks the guest's disk records
#
# Everything is prefixed GUEST_/HVGREC_ so the top-level CFLAGS and friends (64-bit, maybe
# sanitizers) never reach the guest, which must build -m32 -ffreestanding whatever they say.

# Included before or after the top-level default target, this file must not become the default.
GUEST_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

GUEST_DIR := tests/guest

GUEST_BIN := $(GUEST_DIR)/hvguest.elf
GUEST_TOOLS := $(GUEST_DIR)/hvgrec

GUEST_CC ?= $(CC)
GUEST_WERROR := $(if $(filter 0,$(WERROR)),,-Werror)
GUEST_WARNINGS := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
	-Wwrite-strings $(GUEST_WERROR)

# No SSE/x87 state is set up in the guest, hence -mgeneral-regs-only. GCC may turn the loops
# in freestanding.c into calls to themselves unless loop-to-memset is off.
GUEST_CFLAGS := -std=c11 -m32 -march=i686 -ffreestanding -nostdlib -fno-pic -fno-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -mgeneral-regs-only \
	-fno-tree-loop-distribute-patterns -O2 -g $(GUEST_WARNINGS)
GUEST_LDFLAGS := -m32 -nostdlib -static -no-pie -Wl,-T,$(GUEST_DIR)/hvguest.ld \
	-Wl,--no-undefined -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack -Wl,--build-id=none

GUEST_OBJS := \
	$(GUEST_DIR)/boot.g.o \
	$(GUEST_DIR)/hvguest.g.o \
	$(GUEST_DIR)/hw.g.o \
	$(GUEST_DIR)/console.g.o \
	$(GUEST_DIR)/ata.g.o \
	$(GUEST_DIR)/record.g.o \
	$(GUEST_DIR)/freestanding.g.o

HVGREC_CFLAGS := -std=c11 -O2 -g $(GUEST_WARNINGS)
HVGREC_OBJS := \
	$(GUEST_DIR)/hvgrec.o \
	$(GUEST_DIR)/record.o

GUEST_DEPS := $(GUEST_OBJS:.o=.d) $(HVGREC_OBJS:.o=.d)

# Guest objects are *.g.o so record.c can be built for both sides in one folder.
$(GUEST_DIR)/%.g.o: $(GUEST_DIR)/%.c
	$(GUEST_CC) $(GUEST_CFLAGS) -MMD -MP -c -o $@ $<

$(GUEST_DIR)/%.g.o: $(GUEST_DIR)/%.S
	$(GUEST_CC) $(GUEST_CFLAGS) -MMD -MP -c -o $@ $<

$(GUEST_BIN): $(GUEST_OBJS) $(GUEST_DIR)/hvguest.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

# A static pattern rule wins over any generic %.o rule of the top-level Makefile.
$(HVGREC_OBJS): $(GUEST_DIR)/%.o: $(GUEST_DIR)/%.c
	$(CC) $(HVGREC_CFLAGS) -MMD -MP -c -o $@ $<

$(GUEST_TOOLS): $(HVGREC_OBJS)
	$(CC) -o $@ $(HVGREC_OBJS)

.PHONY: guest guest-clean
guest: $(GUEST_BIN) $(GUEST_TOOLS)

guest-clean:
	rm -f $(GUEST_BIN) $(GUEST_TOOLS) $(GUEST_OBJS) $(HVGREC_OBJS) $(GUEST_DEPS)

-include $(GUEST_DEPS)

.DEFAULT_GOAL := $(GUEST_SAVED_DEFAULT_GOAL)
