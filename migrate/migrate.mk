# migrate/migrate.mk: the migration stream (LZ4 framing, CURVE keys, the ZeroMQ sender and
# server), included by the top-level Makefile. Paths are relative to the repository top,
# where make runs. Objects build with the top-level generic %.o rule (CFLAGS, SANITIZE,
# the flags stamp).
#
#   MIGRATE_OBJS        the library, for hvnoded
#   MIGRATE_LIBS        what it links with (its logging needs $(LIBS_QB) too, as hvnoded has)
#   MIGRATE_TEST_TOOLS  tests/it/mig-rogue: a client with an unknown key, without CURVE, or
#                       plain TCP garbage, against a target's server
#   MIGRATE_UNIT_TESTS  tests/unit/test_migrate (cmocka; an end-to-end run over
#                       tcp://127.0.0.1, no target needed)

# Included before or after the top-level default target, this file must not become the default.
MIGRATE_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

MIGRATE_OBJS += migrate/frame.o
MIGRATE_OBJS += migrate/keys.o
MIGRATE_OBJS += migrate/proto.o
MIGRATE_OBJS += migrate/send.o
MIGRATE_OBJS += migrate/send_net.o
MIGRATE_OBJS += migrate/server.o
MIGRATE_OBJS += migrate/server_conn.o

MIGRATE_LIBS = -lzmq -llz4 -lxxhash -lpthread

MIGRATE_TEST_TOOLS = tests/it/mig-rogue
MIGRATE_UNIT_TESTS = tests/unit/test_migrate

DEBS += libxxhash-dev

tests/it/mig-rogue: tests/it/mig-rogue.o migrate/proto.o migrate/frame.o
	$(CC) $(LDFLAGS) -o $@ $^ $(MIGRATE_LIBS)

tests/unit/test_migrate: tests/unit/test_migrate.o $(MIGRATE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(MIGRATE_LIBS) $(LIBS_QB)

.DEFAULT_GOAL := $(MIGRATE_SAVED_DEFAULT_GOAL)
