# hypervisor/hypervisor.mk: the QEMU driver, included by the top-level Makefile.
# Paths are relative to the repository top, where make runs. Objects build with the
# top-level generic %.o rule (CFLAGS, SANITIZE, the flags stamp).
#
#   HYPERVISOR_OBJS        the driver, for hvnoded
#   HYPERVISOR_LIBS        what it links with
#   HYPERVISOR_TEST_TOOLS  tests/it/hv-run, the driver under a script, for test_hypervisor.sh
#   HYPERVISOR_UNIT_TESTS  tests/unit/test_hypervisor (cmocka)

# Included before or after the top-level default target, this file must not become the default.
HYPERVISOR_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

HYPERVISOR_OBJS += hypervisor/argv.o
HYPERVISOR_OBJS += hypervisor/qmp.o
HYPERVISOR_OBJS += hypervisor/spawn.o
HYPERVISOR_OBJS += hypervisor/qemu.o

HYPERVISOR_LIBS = -lqb -ljansson

HYPERVISOR_TEST_TOOLS = tests/it/hv-run
HYPERVISOR_UNIT_TESTS = tests/unit/test_hypervisor

tests/it/hv-run: tests/it/hv-run.o $(HYPERVISOR_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(HYPERVISOR_LIBS)

tests/unit/test_hypervisor: tests/unit/test_hypervisor.o $(HYPERVISOR_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(HYPERVISOR_LIBS)

.DEFAULT_GOAL := $(HYPERVISOR_SAVED_DEFAULT_GOAL)
