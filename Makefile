# hvcluster - a plain Makefile in kvmtool's style.
#
#   make              build hvnoded, hvctl, the test guest and its tools
#   make check        install missing packages, build, run unit + integration tests
#   make check SANITIZE=1   the same with ASan + UBSan
#   make deps         install the Debian packages the project needs (as root)
#   make install      PREFIX=/usr/local DESTDIR=
#   make man          check the man pages (doc/*.8): groff warnings are errors
#   make lab-up N=3 / make lab-down

CC		?= gcc
PREFIX		?= /usr/local
DESTDIR		?=
BINDIR		= $(PREFIX)/sbin
CTLBINDIR	= $(PREFIX)/bin
PLUGINDIR	= $(PREFIX)/lib/hvcluster
SYSCONFDIR	?= /etc
UNITDIR		?= /lib/systemd/system
MANDIR		?= $(PREFIX)/share/man
WERROR		?= 1
SANITIZE	?= 0

WARNINGS	+= -Wall
WARNINGS	+= -Wextra
WARNINGS	+= -Wshadow
WARNINGS	+= -Wmissing-prototypes
WARNINGS	+= -Wstrict-prototypes
WARNINGS	+= -Wformat=2
WARNINGS	+= -Wwrite-strings
WARNINGS	+= -Wno-unused-parameter
WARNINGS	+= -Wno-format-nonliteral

CFLAGS		?= -O2 -g
CFLAGS		+= -std=gnu11 -D_GNU_SOURCE -MMD -MP $(WARNINGS)
ifeq ($(WERROR),1)
CFLAGS		+= -Werror
endif
ifeq ($(SANITIZE),1)
CFLAGS		+= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS		+= -fsanitize=address,undefined
endif

# Objects depend on the flags they were built with: switching SANITIZE=1 on
# or off rebuilds everything instead of mixing instrumented and plain objects.
FLAGS_STAMP	:= .build-flags
FLAGS_NOW	:= $(CC) $(CFLAGS) $(LDFLAGS)
ifneq ($(FLAGS_NOW),$(shell cat $(FLAGS_STAMP) 2>/dev/null))
$(shell echo '$(FLAGS_NOW)' > $(FLAGS_STAMP))
endif
# make lists a directory before the $(shell) above writes the stamp: in a fresh tree it
# would then find no way to make it, and a pattern rule needing it (storage/%.pic.o)
# would not apply. This rule is that way (it writes the same line again).
$(FLAGS_STAMP):
	@echo '$(FLAGS_NOW)' > $@

LIBS_QB		= -lqb
LIBS_COROSYNC	= -lcpg -lvotequorum -lcmap
LIBS_JSON	= -ljansson

# Debian packages the project needs: build, tests, lab.
DEBS		+= corosync
DEBS		+= libcorosync-common-dev
DEBS		+= libcpg-dev
DEBS		+= libquorum-dev
DEBS		+= libvotequorum-dev
DEBS		+= libcmap-dev
DEBS		+= libcfg-dev
DEBS		+= libqb-dev
DEBS		+= libiscsi-dev
DEBS		+= libiscsi-bin
DEBS		+= libzmq3-dev
DEBS		+= liblz4-dev
DEBS		+= libcmocka-dev
DEBS		+= libjansson-dev
DEBS		+= tgt
DEBS		+= qemu-system-x86
DEBS		+= qemu-utils
DEBS		+= nbdkit
DEBS		+= nbdkit-plugin-dev
DEBS		+= iproute2
DEBS		+= gcc
DEBS		+= gcc-multilib
DEBS		+= make
DEBS		+= pkg-config
DEBS		+= util-linux
DEBS		+= procps
DEBS		+= psmisc
DEBS		+= python3
DEBS		+= busybox-static
DEBS		+= e2fsprogs
DEBS		+= fence-agents
DEBS		+= clang
DEBS		+= libclang-rt-dev
DEBS		+= groff-base

# --- objects -----------------------------------------------------------------

CLUSTER_OBJS	+= cluster/members.o
CLUSTER_OBJS	+= cluster/membership.o
CLUSTER_OBJS	+= cluster/state.o
CLUSTER_OBJS	+= cluster/vm.o
CLUSTER_OBJS	+= cluster/jsonv.o
CLUSTER_OBJS	+= cluster/fenceconf.o
CLUSTER_OBJS	+= cluster/acl.o
CLUSTER_OBJS	+= cluster/ops.o
CLUSTER_OBJS	+= cluster/ops_mig.o
CLUSTER_OBJS	+= cluster/ops_drain.o
CLUSTER_OBJS	+= cluster/migstate.o
CLUSTER_OBJS	+= cluster/repl.o
CLUSTER_OBJS	+= cluster/manager.o
CLUSTER_OBJS	+= cluster/plan.o
CLUSTER_OBJS	+= cluster/placement.o
CLUSTER_OBJS	+= cluster/rulecheck.o
CLUSTER_OBJS	+= cluster/secreport.o
CLUSTER_OBJS	+= cluster/drain.o

FENCING_OBJS	+= fencing/agent.o
FENCING_OBJS	+= fencing/agent_meta.o
FENCING_OBJS	+= fencing/agent_proc.o
FENCING_OBJS	+= fencing/fence.o
FENCING_OBJS	+= fencing/power.o

NODE_OBJS	+= node/config.o
NODE_OBJS	+= node/log.o
NODE_OBJS	+= node/ipc.o
NODE_OBJS	+= node/ipcproto.o
NODE_OBJS	+= node/commands.o
NODE_OBJS	+= node/statefile.o
NODE_OBJS	+= node/vmcmd.o
NODE_OBJS	+= node/vmrun.o
NODE_OBJS	+= node/vmmig.o
NODE_OBJS	+= node/vmsave.o
NODE_OBJS	+= node/work.o
NODE_OBJS	+= node/tap.o
NODE_OBJS	+= node/cluster.o
NODE_OBJS	+= node/rulecmd.o
NODE_OBJS	+= node/fencecmd.o
NODE_OBJS	+= node/authz.o
NODE_OBJS	+= node/auditlog.o
NODE_OBJS	+= node/watchdog.o
NODE_OBJS	+= node/seccmd.o
NODE_OBJS	+= node/maintcmd.o

HVNODED_OBJS	+= node/main.o
HVNODED_OBJS	+= $(NODE_OBJS)
HVNODED_OBJS	+= $(CLUSTER_OBJS)
HVNODED_OBJS	+= $(FENCING_OBJS)
HVNODED_OBJS	+= $(HYPERVISOR_OBJS)
HVNODED_OBJS	+= $(STORAGE_OBJS)
HVNODED_OBJS	+= $(MIGRATE_OBJS)

HVCTL_OBJS	+= node/hvctl.o
HVCTL_OBJS	+= node/hvctl_vm.o
HVCTL_OBJS	+= node/hvctl_rule.o
HVCTL_OBJS	+= node/hvctl_maint.o
HVCTL_OBJS	+= node/hvctl_fence.o
HVCTL_OBJS	+= node/hvctl_util.o
HVCTL_OBJS	+= node/hvctl_acl.o
HVCTL_OBJS	+= node/hvctl_migrate.o
HVCTL_OBJS	+= node/hvctl_security.o
HVCTL_OBJS	+= node/hvctl_inventory.o

PROGS		= hvnoded hvctl

MANPAGES	+= doc/hvctl.8
MANPAGES	+= doc/hvnoded.8

# Helpers the integration tests run.
TEST_TOOLS	+= tests/it/ipc-garbage
TEST_TOOLS	+= tests/it/cpg-rogue

# Unit tests: one per module, each linked with the module objects it tests.
UNIT_TESTS	+= tests/unit/test_node
UNIT_TESTS	+= tests/unit/test_cluster
UNIT_TESTS	+= tests/unit/test_acl

include tests/guest/guest.mk
include hypervisor/hypervisor.mk
include storage/storage.mk
include migrate/migrate.mk
include tests/fuzz/fuzz.mk

UNIT_TESTS	+= $(HYPERVISOR_UNIT_TESTS)
UNIT_TESTS	+= $(STORAGE_UNIT_TESTS)
UNIT_TESTS	+= $(MIGRATE_UNIT_TESTS)
UNIT_TESTS	+= tests/unit/test_placement
UNIT_TESTS	+= tests/unit/test_fencing
UNIT_TESTS	+= tests/unit/test_hvctl_migrate
UNIT_TESTS	+= tests/unit/test_hvctl_inventory
UNIT_TESTS	+= tests/unit/test_hvctl_maint
UNIT_TESTS	+= tests/unit/test_secreport

BENCHES		+= tests/bench/bench_placement
BENCHES		+= tests/bench/bench_migpipe

# The manager's scenario simulator: the pure cluster code and nothing else.
SIM_OBJS	+= tests/sim/hvsim.o
SIM_OBJS	+= tests/sim/simmaint.o
SIM_OBJS	+= cluster/state.o
SIM_OBJS	+= cluster/ops.o
SIM_OBJS	+= cluster/ops_mig.o
SIM_OBJS	+= cluster/ops_drain.o
SIM_OBJS	+= cluster/drain.o
SIM_OBJS	+= cluster/migstate.o
SIM_OBJS	+= cluster/manager.o
SIM_OBJS	+= cluster/plan.o
SIM_OBJS	+= cluster/placement.o
SIM_OBJS	+= cluster/vm.o
SIM_OBJS	+= cluster/jsonv.o
SIM_OBJS	+= cluster/fenceconf.o
SIM_OBJS	+= cluster/acl.o
SIM_OBJS	+= cluster/members.o
SIM_OBJS	+= fencing/fence.o
SIM_OBJS	+= tests/sim/fake_fence.o

all: $(PROGS) $(STORAGE_PLUGIN) $(TEST_TOOLS) $(HYPERVISOR_TEST_TOOLS) $(STORAGE_TEST_TOOLS) \
	$(MIGRATE_TEST_TOOLS) \
	$(GUEST_BIN) $(GUEST_TOOLS)
.PHONY: all

hvnoded: $(HVNODED_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_COROSYNC) $(LIBS_QB) $(LIBS_JSON) $(STORAGE_LIBS) \
		$(MIGRATE_LIBS)

hvctl: $(HVCTL_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_QB) $(LIBS_JSON)

# Where hvnoded looks for the nbdkit plugin unless its config says otherwise.
node/config.o: CFLAGS += -DHV_PLUGIN_DIR='"$(PLUGINDIR)"'

%.o: %.c $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -c -o $@ $<

tests/it/ipc-garbage: tests/it/ipc-garbage.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_QB)

# test_out_of_memory fails the engine's calloc() calls one by one.
tests/unit/test_placement: tests/unit/test_placement.o cluster/placement.o
	$(CC) $(LDFLAGS) -Wl,--wrap=calloc -o $@ $^ -lcmocka

tests/bench/bench_placement: tests/bench/bench_placement.o cluster/placement.o
	$(CC) $(LDFLAGS) -o $@ $^

tests/bench/bench_migpipe: tests/bench/bench_migpipe.o $(MIGRATE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(MIGRATE_LIBS) $(LIBS_QB)

# Runs from the repository top (tests/run does), or with HV_TOP=: it runs tests/lab/fence_lab.
tests/unit/test_fencing: tests/unit/test_fencing.o fencing/agent.o fencing/agent_meta.o \
		fencing/agent_proc.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -lpthread

# hvctl's migrate commands against a fake hvnoded (the test defines call()); sleeping
# advances a fake clock, and stdout is never a terminal.
tests/unit/test_hvctl_migrate: tests/unit/test_hvctl_migrate.o tests/unit/capture.o tests/unit/hvctl_fakes.o \
		node/hvctl_migrate.o node/hvctl_vm.o node/hvctl_rule.o node/hvctl_util.o
	$(CC) $(LDFLAGS) -Wl,--wrap=nanosleep -Wl,--wrap=clock_gettime -Wl,--wrap=isatty \
		-o $@ $^ -lcmocka $(LIBS_JSON)

# Tables as CSV, inventory and vm list's filters against a fake hvnoded (the test defines call()).
tests/unit/test_hvctl_inventory: tests/unit/test_hvctl_inventory.o tests/unit/capture.o tests/unit/hvctl_fakes.o \
		node/hvctl_inventory.o node/hvctl_util.o node/hvctl_vm.o node/hvctl_rule.o \
		node/hvctl_migrate.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS_JSON)

# node drain|resume|impact against a fake hvnoded (the test defines call()); sleeping
# advances a fake clock.
tests/unit/test_hvctl_maint: tests/unit/test_hvctl_maint.o tests/unit/capture.o tests/unit/hvctl_fakes.o \
		node/hvctl_maint.o node/hvctl_fence.o node/hvctl_util.o node/hvctl_vm.o \
		node/hvctl_rule.o node/hvctl_migrate.o
	$(CC) $(LDFLAGS) -Wl,--wrap=nanosleep -Wl,--wrap=clock_gettime -o $@ $^ -lcmocka \
		$(LIBS_JSON)

tests/sim/hvsim: $(SIM_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_JSON)

tests/it/cpg-rogue: tests/it/cpg-rogue.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcpg

tests/unit/test_secreport: tests/unit/test_secreport.o cluster/secreport.o cluster/rulecheck.o \
		cluster/state.o cluster/ops.o cluster/ops_mig.o cluster/ops_drain.o cluster/migstate.o cluster/vm.o \
		cluster/jsonv.o cluster/fenceconf.o cluster/acl.o cluster/plan.o cluster/placement.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS_JSON)

tests/unit/test_node: tests/unit/test_node.o node/config.o node/ipcproto.o node/statefile.o node/auditlog.o \
		cluster/state.o cluster/vm.o cluster/jsonv.o cluster/ops.o cluster/ops_mig.o cluster/ops_drain.o \
		cluster/migstate.o cluster/plan.o cluster/placement.o cluster/members.o \
		cluster/fenceconf.o cluster/acl.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS_JSON)

tests/unit/test_acl: tests/unit/test_acl.o cluster/acl.o cluster/vm.o cluster/jsonv.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS_JSON)

tests/unit/test_cluster: tests/unit/test_cluster.o cluster/members.o cluster/vm.o cluster/state.o cluster/jsonv.o \
		cluster/ops.o cluster/ops_mig.o cluster/ops_drain.o cluster/migstate.o cluster/plan.o cluster/placement.o \
		cluster/repl.o cluster/fenceconf.o cluster/acl.o cluster/manager.o cluster/drain.o
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS_JSON)

# --- tests -------------------------------------------------------------------

# The Linux test guest's kernel comes from Debian's linux-image package,
# unpacked into a cache (no install hooks run on this machine).
deps:
	@tests/deps.sh $(DEBS)
	@tests/guest/linux/get-kernel.sh
.PHONY: deps

unit: $(UNIT_TESTS)
.PHONY: unit

check: deps
	@$(MAKE) --no-print-directory all unit tests/sim/hvsim $(BENCHES) $(FUZZERS)
	@FUZZERS="$(FUZZERS)" tests/run $(UNIT_TESTS)

# The main job, on a fresh machine: deps, build, the lab demo, teardown.
demo: deps
	@$(MAKE) --no-print-directory all
	@tests/lab/demo
.PHONY: demo

sim: tests/sim/hvsim
	@tests/sim/run.sh
.PHONY: sim

# Benchmarks print tables; timings never decide a test.
bench: $(BENCHES) all
	tests/bench/bench_placement
	tests/bench/bench_migpipe
	tests/bench/bench_failover.sh
	tests/bench/bench_migrate.sh
	tests/bench/bench_drain.sh
.PHONY: bench
.PHONY: check

# Any warning of groff's fails: a page that renders oddly is a page nobody reads.
# tests/unit/test_manpages.sh also checks that they describe every command, option and key.
man: $(MANPAGES)
	@for m in $(MANPAGES); do \
		out=$$(LC_ALL=C groff -man -t -ww -z $$m 2>&1) || { echo "$$out"; exit 1; }; \
		if [ -n "$$out" ]; then echo "$$out"; echo "man: $$m: groff warnings" >&2; exit 1; fi; \
	done
	@echo "man: $(MANPAGES): no warnings"
.PHONY: man

lab-up: all
	tests/lab/lab up $(or $(N),3)
lab-down:
	tests/lab/lab down
.PHONY: lab-up lab-down

# --- install -----------------------------------------------------------------

install: hvnoded hvctl $(STORAGE_PLUGIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CTLBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PLUGINDIR)
	install -d $(DESTDIR)$(SYSCONFDIR)/hvcluster $(DESTDIR)$(MANDIR)/man8
	install -m 0755 hvnoded $(DESTDIR)$(BINDIR)/hvnoded
	install -m 0755 hvctl $(DESTDIR)$(CTLBINDIR)/hvctl
	install -m 0755 $(STORAGE_PLUGIN) $(DESTDIR)$(PLUGINDIR)/
	install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man8/
	sed 's|@BINDIR@|$(BINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' node/hvnoded.service.in \
		> $(DESTDIR)$(UNITDIR)/hvnoded.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hvnoded.service
	test -e $(DESTDIR)$(SYSCONFDIR)/hvcluster/hvnoded.conf || \
		install -m 0644 node/hvnoded.conf.example $(DESTDIR)$(SYSCONFDIR)/hvcluster/hvnoded.conf
.PHONY: install

clean: guest-clean storage-clean fuzz-clean
	rm -f $(PROGS) $(TEST_TOOLS) $(UNIT_TESTS) $(HYPERVISOR_TEST_TOOLS) $(STORAGE_TEST_TOOLS) \
		$(BENCHES) tests/sim/hvsim
	find . -name '*.o' -delete -o -name '*.d' -delete
	rm -rf tests/results $(FLAGS_STAMP)
.PHONY: clean

-include $(shell find . -name '*.d' 2>/dev/null)
