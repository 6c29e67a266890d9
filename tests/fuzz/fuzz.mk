# tests/fuzz/fuzz.mk: libFuzzer harnesses, one per decoder of outside input, included
# by the top-level Makefile. Paths are relative to the repository top, where make runs.
#
# The harnesses and the project objects they link build with clang, apart from the
# gcc build: objects in tests/fuzz/obj/ (same tree as the sources), instrumented for
# coverage (-fsanitize=fuzzer-no-link) and with ASan + UBSan; a UBSan report aborts
# the run, so libFuzzer sees it as a crash.
#
#   FUZZERS       the harness binaries, tests/fuzz/fuzz_<name>
#   make fuzz     run each for FUZZ_SECONDS (60), on a copy of its seed corpus
#   make fuzz-smoke  run each for 10 s (what make check runs)
#   make fuzz-clean
#
# Logs: tests/results/fuzz-<name>.log. A crash, leak, timeout or UBSan report fails the
# target and prints the reproducer (tests/results/fuzz-artifacts/<name>-crash-...);
# rerun it with: tests/fuzz/fuzz_<name> THAT_FILE.

# Included before or after the top-level default target, this file must not become the default.
FUZZ_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_OBJDIR	= tests/fuzz/obj
FUZZ_SAN	= address,undefined
FUZZ_CFLAGS	= -g -O1 -std=gnu11 -D_GNU_SOURCE -MMD -MP $(WARNINGS) -fno-omit-frame-pointer \
		  -fno-sanitize-recover=undefined
FUZZ_OBJ_CFLAGS	= $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN)
FUZZ_LD_CFLAGS	= $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN)

FUZZERS		+= tests/fuzz/fuzz_repl
FUZZERS		+= tests/fuzz/fuzz_replsync
FUZZERS		+= tests/fuzz/fuzz_state
FUZZERS		+= tests/fuzz/fuzz_statefile
FUZZERS		+= tests/fuzz/fuzz_vmdef
FUZZERS		+= tests/fuzz/fuzz_lunurl
FUZZERS		+= tests/fuzz/fuzz_fencemeta
FUZZERS		+= tests/fuzz/fuzz_config
FUZZERS		+= tests/fuzz/fuzz_qmp
FUZZERS		+= tests/fuzz/fuzz_migframe
FUZZERS		+= tests/fuzz/fuzz_ipc

# The project sources each harness links, built into $(FUZZ_OBJDIR).
FUZZ_VM_SRCS	+= cluster/vm.c
FUZZ_VM_SRCS	+= cluster/jsonv.c

FUZZ_STATE_SRCS	+= $(FUZZ_VM_SRCS)
FUZZ_STATE_SRCS	+= cluster/state.c
FUZZ_STATE_SRCS	+= cluster/migstate.c
FUZZ_STATE_SRCS	+= cluster/fenceconf.c
FUZZ_STATE_SRCS	+= cluster/acl.c

FUZZ_REPL_SRCS	+= $(FUZZ_STATE_SRCS)
FUZZ_REPL_SRCS	+= cluster/ops.c
FUZZ_REPL_SRCS	+= cluster/ops_mig.c
FUZZ_REPL_SRCS	+= cluster/ops_drain.c
FUZZ_REPL_SRCS	+= cluster/plan.c
FUZZ_REPL_SRCS	+= cluster/placement.c
FUZZ_REPL_SRCS	+= cluster/repl.c
FUZZ_REPL_SRCS	+= cluster/members.c

fuzz_obj	= $(patsubst %.c,$(FUZZ_OBJDIR)/%.o,$(1))

tests/fuzz/fuzz_repl: $(call fuzz_obj,$(FUZZ_REPL_SRCS))
tests/fuzz/fuzz_repl: FUZZ_LIBS = -ljansson
tests/fuzz/fuzz_replsync: $(call fuzz_obj,$(FUZZ_REPL_SRCS))
tests/fuzz/fuzz_replsync: FUZZ_LIBS = -ljansson
tests/fuzz/fuzz_state: $(call fuzz_obj,$(FUZZ_STATE_SRCS))
tests/fuzz/fuzz_state: FUZZ_LIBS = -ljansson
tests/fuzz/fuzz_statefile: $(call fuzz_obj,$(FUZZ_STATE_SRCS) node/statefile.c)
tests/fuzz/fuzz_statefile: FUZZ_LIBS = -ljansson
tests/fuzz/fuzz_vmdef: $(call fuzz_obj,$(FUZZ_VM_SRCS))
tests/fuzz/fuzz_vmdef: FUZZ_LIBS = -ljansson
tests/fuzz/fuzz_lunurl: $(call fuzz_obj,storage/lun_url.c)
tests/fuzz/fuzz_fencemeta: $(call fuzz_obj,fencing/agent_meta.c fencing/agent.c fencing/agent_proc.c)
tests/fuzz/fuzz_fencemeta: FUZZ_LIBS = -lpthread
tests/fuzz/fuzz_config: $(call fuzz_obj,node/config.c)
tests/fuzz/fuzz_qmp: $(call fuzz_obj,hypervisor/qmp.c)
tests/fuzz/fuzz_qmp: FUZZ_LIBS = -lqb -ljansson
tests/fuzz/fuzz_migframe: $(call fuzz_obj,migrate/frame.c migrate/proto.c)
tests/fuzz/fuzz_migframe: FUZZ_LIBS = -llz4 -lxxhash -lzmq
tests/fuzz/fuzz_ipc: $(call fuzz_obj,node/ipcproto.c)
tests/fuzz/fuzz_ipc: FUZZ_LIBS = -ljansson

$(FUZZERS): tests/fuzz/%: tests/fuzz/%.c
	$(FUZZ_CC) $(FUZZ_LD_CFLAGS) -o $@ $(filter %.c %.o,$^) $(FUZZ_LIBS)

$(FUZZ_OBJDIR)/node/config.o: FUZZ_EXTRA = -DHV_PLUGIN_DIR='"/usr/local/lib/hvcluster"'

$(FUZZ_OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_OBJ_CFLAGS) $(FUZZ_EXTRA) -c -o $@ $<

fuzz: $(FUZZERS)
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZERS)

fuzz-smoke: $(FUZZERS)
	@tests/fuzz/run.sh 10 $(FUZZERS)

fuzz-clean:
	rm -rf $(FUZZ_OBJDIR) $(FUZZERS)
.PHONY: fuzz fuzz-smoke fuzz-clean

.DEFAULT_GOAL := $(FUZZ_SAVED_DEFAULT_GOAL)
