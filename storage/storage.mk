# storage/storage.mk: iSCSI LUNs, persistent reservations and the nbdkit disk-server
# plugin, included by the top-level Makefile. Paths are relative to the repository top,
# where make runs. The library objects build with the top-level generic %.o rule
# (CFLAGS, SANITIZE, the flags stamp).
#
#   STORAGE_OBJS        the library, for hvnoded
#   STORAGE_LIBS        what it links with
#   STORAGE_PLUGIN      storage/nbdkit-hviscsi-plugin.so, loaded by nbdkit: built from its own
#                       -fPIC objects (storage/*.pic.o), never with sanitizers (nbdkit is not)
#   STORAGE_TEST_TOOLS  tests/it/lun-tool, for test_storage.sh
#   STORAGE_UNIT_TESTS  tests/unit/test_storage (cmocka; no target needed)

# Included before or after the top-level default target, this file must not become the default.
STORAGE_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

# Pure: URLs, keys, ISIDs, sense, PR data, the acquire decision.
STORAGE_PURE_OBJS += storage/lun_url.o
STORAGE_PURE_OBJS += storage/ident.o
STORAGE_PURE_OBJS += storage/scsi.o
STORAGE_PURE_OBJS += storage/pr.o

STORAGE_OBJS += $(STORAGE_PURE_OBJS)
STORAGE_OBJS += storage/lun.o
STORAGE_OBJS += storage/lun_pr.o

STORAGE_LIBS = -liscsi -lpthread

STORAGE_PLUGIN = storage/nbdkit-hviscsi-plugin.so
STORAGE_PLUGIN_OBJS = storage/nbdkit-hviscsi-plugin.pic.o $(STORAGE_OBJS:.o=.pic.o)

STORAGE_TEST_TOOLS = tests/it/lun-tool
STORAGE_UNIT_TESTS = tests/unit/test_storage

# The plugin's objects: position independent, without -fsanitize (a sanitized .so cannot
# be loaded into an nbdkit that was not started with the ASan runtime), and with
# nbdkit's own flags for nbdkit-plugin.h.
STORAGE_PIC_CFLAGS = $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) -fPIC \
	$(shell pkg-config --cflags nbdkit 2>/dev/null)

storage/%.pic.o: storage/%.c $(FLAGS_STAMP)
	$(CC) $(STORAGE_PIC_CFLAGS) -c -o $@ $<

$(STORAGE_PLUGIN): $(STORAGE_PLUGIN_OBJS)
	$(CC) -shared -fPIC -o $@ $^ $(STORAGE_LIBS)

tests/it/lun-tool: tests/it/lun-tool.o $(STORAGE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(STORAGE_LIBS)

tests/unit/test_storage: tests/unit/test_storage.o $(STORAGE_PURE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

storage-clean:
	rm -f $(STORAGE_PLUGIN) storage/*.pic.o storage/*.pic.d
.PHONY: storage-clean

.DEFAULT_GOAL := $(STORAGE_SAVED_DEFAULT_GOAL)
