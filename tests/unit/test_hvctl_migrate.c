/*
 * Unit tests of node/hvctl_migrate.c: the lines hvctl prints about a migration,
 * and vm migrate --wait/--watch against a fake hvnoded.
 *
 * call() is the fake daemon: it answers from a script of replies. nanosleep,
 * clock_gettime and isatty are wrapped (-Wl,--wrap): sleeping advances a fake
 * clock, and stdout is never a terminal, whatever runs the test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../node/hvctl.h"
#include "capture.h"
#include "hvctl_fakes.h"

/* --- the fake daemon and clock ------------------------------------------------------------ */

#define SCRIPT_MAX 64

static struct {
	const char *cmd;   /* the request expected */
	const char *reply; /* its JSON answer */
	int rc;		   /* 0, or an exit code call() returns (the error is "printed") */
} script[SCRIPT_MAX];
static size_t nscript, next;
static json_t *last_args; /* of the last request */
static int fake_tty;

static void expect_call(const char *cmd, const char *reply, int rc)
{
	assert_true(nscript < SCRIPT_MAX);
	script[nscript].cmd = cmd;
	script[nscript].reply = reply;
	script[nscript].rc = rc;
	nscript++;
}

int call(const struct ctl *ctl, const char *cmd, json_t *args, json_t **res)
{
	json_error_t jerr;

	*res = NULL;
	assert_true(next < nscript);
	assert_string_equal(cmd, script[next].cmd);
	json_decref(last_args);
	last_args = args ? json_deep_copy(args) : NULL;
	if (script[next].rc)
		return script[next++].rc;
	*res = json_loads(script[next++].reply, 0, &jerr);
	if (!*res)
		fail_msg("bad scripted reply: %s", jerr.text);
	return 0;
}

/* Enough of the real one for "migrate-cancel NAME [--json]". */
int parse_common(struct ctl *ctl, int argc, char **argv, const char *help)
{
	for (optind = 1; optind < argc && !strcmp(argv[optind], "--json"); optind++)
		ctl->json = true;
	return -1;
}

int __wrap_isatty(int fd);
int __wrap_isatty(int fd)
{
	return fake_tty;
}

static int setup(void **state)
{
	nscript = next = 0;
	fake_ms = 1000000;
	fake_json_flags = JSON_SORT_KEYS;
	fake_tty = 0;
	return 0;
}

static int teardown(void **state)
{
	capture_cleanup();
	json_decref(last_args);
	last_args = NULL;
	return 0;
}

static int count_lines(const char *s, const char *prefix)
{
	int n = 0;

	for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		n += !strncmp(p, prefix, strlen(prefix));
	return n;
}

static int run(struct ctl *ctl, int (*fn)(struct ctl *, int, char **), ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;

	va_start(ap, fn);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	return fn(ctl, argc, argv);
}

/* --- the lines ---------------------------------------------------------------------------- */

static void test_size(void **state)
{
	char b[32];

	assert_string_equal(ctl_size(0, b, sizeof(b)), "0 B");
	assert_string_equal(ctl_size(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(ctl_size(1024, b, sizeof(b)), "1.0 KiB");
	assert_string_equal(ctl_size(1048575, b, sizeof(b)), "1.0 MiB");
	assert_string_equal(ctl_size(512ull << 20, b, sizeof(b)), "512.0 MiB");
	assert_string_equal(ctl_size(43201331, b, sizeof(b)), "41.2 MiB");
	assert_string_equal(ctl_size(3ull << 29, b, sizeof(b)), "1.5 GiB");
	assert_string_equal(ctl_size(UINT64_MAX, b, sizeof(b)), "16.0 EiB");
}

static const char full_mig[] =
	"{\"id\": 7, \"mode\": \"live\", \"from\": \"node1\", \"to\": \"node2\","
	" \"phase\": \"running\", \"progress\": {\"elapsed_ms\": 12345, \"raw_bytes\": 1288490189,"
	" \"wire_bytes\": 325478809,"
	" \"rate_bps\": 89443942, \"remaining_bytes\": 125829120, \"dirty_rate_pps\": 1520,"
	" \"iteration\": 3, \"qemu_status\": \"active\"}}";

static void test_progress(void **state)
{
	json_t *m = json_loads(full_mig, 0, NULL);
	char b[512];

	assert_string_equal(ctl_mig_progress(m, b, sizeof(b)),
			    "elapsed 12.3 s, sent 1.2 GiB, wire 310.4 MiB, rate 85.3 MiB/s, "
			    "remaining 120.0 MiB, dirty 1520 pages/s, iteration 3");
	json_object_set_new(json_object_get(m, "progress"), "qemu_status",
			    json_string("pre-switchover"));
	assert_non_null(strstr(ctl_mig_progress(m, b, sizeof(b)), ", QEMU pre-switchover"));
	json_decref(m);

	/* early: no progress; and garbage of every kind prints as "-" */
	m = json_loads("{\"id\": 7, \"phase\": \"queued\"}", 0, NULL);
	assert_string_equal(ctl_mig_progress(m, b, sizeof(b)),
			    "elapsed -, sent -, wire -, rate -, remaining -, dirty -, iteration -");
	json_decref(m);
	m = json_loads("{\"progress\": {\"elapsed_ms\": \"12\", \"raw_bytes\": -5, \"wire_bytes\":"
		       " null, \"rate_bps\": [1], \"iteration\": 2.0, \"qemu_status\": 5}}",
		       0, NULL);
	assert_string_equal(ctl_mig_progress(m, b, sizeof(b)),
			    "elapsed -, sent -, wire -, rate -, remaining -, dirty -, iteration 2");
	json_decref(m);
	m = json_loads("{\"progress\": [1, 2]}", 0, NULL);
	assert_non_null(ctl_mig_progress(m, b, sizeof(b)));
	json_decref(m);
	assert_non_null(ctl_mig_progress(NULL, b, sizeof(b)));
	/* a small buffer cuts, never overflows */
	m = json_loads(full_mig, 0, NULL);
	assert_string_equal(ctl_mig_progress(m, b, 9), "elapsed ");
	json_decref(m);
}

static void test_result(void **state)
{
	json_t *vm = json_loads("{\"name\": \"web1\", \"state\": \"running\", \"node\": \"node1\"}",
				0, NULL);
	json_t *last = json_loads("{\"id\": 7, \"mode\": \"live\", \"from\": \"node1\", \"to\": "
				  "\"node2\", \"result\": \"completed\", \"total_ms\": 2410, "
				  "\"downtime_ms\": 35, \"raw_bytes\": 536870912, \"wire_bytes\": "
				  "43201331}",
				  0, NULL);
	char b[512];

	assert_string_equal(ctl_mig_result("web1", vm, last, b, sizeof(b)),
			    "vm web1: migrated node1 -> node2 (live) in 2.41 s, downtime 35 ms, "
			    "512.0 MiB sent as 41.2 MiB on the wire");
	json_object_del(last, "downtime_ms");
	json_object_set_new(last, "raw_bytes", json_string("lots"));
	assert_string_equal(ctl_mig_result("web1", vm, last, b, sizeof(b)),
			    "vm web1: migrated node1 -> node2 (live) in 2.41 s, downtime -, "
			    "- sent as 41.2 MiB on the wire");

	json_object_set_new(last, "result", json_string("failed"));
	json_object_set_new(last, "reason", json_string("target refused: no free slot"));
	assert_string_equal(ctl_mig_result("web1", vm, last, b, sizeof(b)),
			    "vm web1: migration 7 failed: target refused: no free slot "
			    "(still running on node1)");
	json_object_set_new(last, "result", json_string("cancelled"));
	json_object_del(last, "reason");
	json_object_set_new(vm, "state", json_string("paused"));
	assert_string_equal(ctl_mig_result("web1", vm, last, b, sizeof(b)),
			    "vm web1: migration 7 cancelled (now paused on node1)");
	json_decref(vm);
	json_decref(last);

	/* nothing at all: dashes, no crash */
	assert_string_equal(ctl_mig_result("web1", NULL, NULL, b, sizeof(b)),
			    "vm web1: migration - - (now - on -)");
}

static void test_state(void **state)
{
	json_t *vm = json_loads("{\"state\": \"running\"}", 0, NULL);
	char b[64];

	assert_string_equal(ctl_mig_state(vm, b, sizeof(b)), "running");
	json_object_set_new(vm, "migration", json_loads(full_mig, 0, NULL));
	assert_string_equal(ctl_mig_state(vm, b, sizeof(b)), "migrating->node2");
	json_object_del(json_object_get(vm, "migration"), "to");
	assert_string_equal(ctl_mig_state(vm, b, sizeof(b)), "migrating");
	json_object_set_new(vm, "migration", json_string("node2"));
	assert_string_equal(ctl_mig_state(vm, b, sizeof(b)), "running");
	json_decref(vm);
}

static void test_show(void **state)
{
	json_t *vm = json_pack("{s:o,s:{s:i,s:s,s:s,s:s,s:s,s:i}}", "migration",
			       json_loads(full_mig, 0, NULL), "last_migration", "id", 6, "mode",
			       "quick", "from", "node2", "to", "node1", "result", "completed",
			       "total_ms", 800);
	char *s;

	capture();
	ctl_mig_show(vm);
	s = captured();
	assert_string_equal(s, "Migration:      7 (live) node1 -> node2: running\n"
			       "Progress:       elapsed 12.3 s, sent 1.2 GiB, wire 310.4 MiB, rate "
			       "85.3 MiB/s, remaining 120.0 MiB, dirty 1520 pages/s, iteration 3\n"
			       "Last migration: 6 (quick) node2 -> node1: completed in 0.80 s, "
			       "downtime -, - sent as - on the wire\n");
	free(s);
	json_decref(vm);

	capture();
	ctl_mig_show(NULL);
	s = captured();
	assert_string_equal(s, "");
	free(s);
}

/* --- vm migrate against the fake daemon --------------------------------------------------- */

#define VM_RUNNING(mig) "{\"name\": \"web1\", \"state\": \"running\", \"node\": \"node1\"" mig "}"
#define MIG(phase) ", \"migration\": {\"id\": 7, \"mode\": \"live\", \"from\": \"node1\", " \
		   "\"to\": \"node2\", \"phase\": \"" phase "\"}"
#define LAST(id, result) ", \"last_migration\": {\"id\": " id ", \"mode\": \"live\", " \
			 "\"from\": \"node1\", \"to\": \"node2\", \"result\": \"" result "\"}"

static void test_migrate_queued(void **state)
{
	struct ctl ctl = { 0 };
	char *s;

	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--to", "node2", NULL), 0);
	s = captured();
	assert_string_equal(s, "vm web1: live migration 7 queued: node1 -> node2\n");
	free(s);
	assert_string_equal(json_string_value(json_object_get(last_args, "name")), "web1");
	assert_string_equal(json_string_value(json_object_get(last_args, "to")), "node2");
	assert_string_equal(json_string_value(json_object_get(last_args, "mode")), "live");
	assert_int_equal(next, nscript);
}

static void test_migrate_args(void **state)
{
	struct ctl ctl = { 0 };
	char *s;

	/* no --to: no "to" at all, placement chooses */
	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "--mode", "quick", "web1", NULL),
			 0);
	free(captured());
	assert_null(json_object_get(last_args, "to"));
	assert_string_equal(json_string_value(json_object_get(last_args, "mode")), "quick");

	/* --json: the reply as it is */
	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--json", NULL), 0);
	s = captured();
	assert_non_null(strstr(s, "\"migration\": {\"from\": \"node1\", \"id\": 7"));
	free(s);

	/* usage errors, no request */
	ctl.json = false;
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", NULL), EXIT_USAGE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "b", NULL), EXIT_USAGE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "--mode", "fast", NULL),
			 EXIT_USAGE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "--timeout", "5", NULL),
			 EXIT_USAGE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "--wait", "--timeout", "0",
			     NULL),
			 EXIT_USAGE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "--wait", "--timeout",
			     "99999999999999999999", NULL),
			 EXIT_USAGE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "--to", NULL), EXIT_USAGE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "--bogus", NULL), EXIT_USAGE);
	assert_int_equal(next, nscript);

	/* the daemon refuses: its exit code */
	expect_call("vm.migrate", NULL, EXIT_DAEMON_ERROR);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "a", "--wait", NULL),
			 EXIT_DAEMON_ERROR);
}

static void test_wait_completed(void **state)
{
	struct ctl ctl = { 0 };
	int64_t start = fake_ms;
	char *s;

	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	expect_call("vm.show", VM_RUNNING(MIG("running")), 0);
	expect_call("vm.show", VM_RUNNING(MIG("handoff") LAST("6", "failed")), 0);
	expect_call("vm.show",
		    "{\"name\": \"web1\", \"state\": \"running\", \"node\": \"node2\", "
		    "\"last_migration\": {\"id\": 7, \"mode\": \"live\", \"from\": \"node1\", "
		    "\"to\": \"node2\", \"result\": \"completed\", \"total_ms\": 2410, "
		    "\"downtime_ms\": 35, \"raw_bytes\": 536870912, \"wire_bytes\": 43201331}}",
		    0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--wait", NULL), 0);
	s = captured();
	assert_string_equal(s, "vm web1: migrated node1 -> node2 (live) in 2.41 s, downtime 35 ms, "
			       "512.0 MiB sent as 41.2 MiB on the wire\n");
	free(s);
	assert_int_equal(next, nscript);
	assert_int_equal(fake_ms - start, 3 * 500);
	assert_string_equal(json_string_value(json_object_get(last_args, "name")), "web1");
}

static void test_wait_failed(void **state)
{
	struct ctl ctl = { 0 };
	char *s;

	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	expect_call("vm.show", VM_RUNNING(LAST("7", "failed")), 0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--wait", NULL),
			 EXIT_DAEMON_ERROR);
	s = captured();
	assert_string_equal(s, "vm web1: migration 7 failed (still running on node1)\n");
	free(s);

	/* --json: the last_migration object, exit 1 all the same */
	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	expect_call("vm.show", VM_RUNNING(LAST("7", "cancelled")), 0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--watch", "--json", NULL),
			 EXIT_DAEMON_ERROR);
	s = captured();
	assert_string_equal(s, "{\"from\": \"node1\", \"id\": 7, \"mode\": \"live\", \"result\": "
			       "\"cancelled\", \"to\": \"node2\"}\n");
	free(s);
}

static void test_wait_lost_and_errors(void **state)
{
	struct ctl ctl = { 0 };

	/* neither in flight nor the last one: another migration ended meanwhile */
	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	expect_call("vm.show", VM_RUNNING(LAST("8", "completed")), 0);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--wait", NULL),
			 EXIT_DAEMON_ERROR);

	/* the daemon goes away while we wait */
	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	expect_call("vm.show", NULL, EXIT_UNREACHABLE);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--wait", NULL),
			 EXIT_UNREACHABLE);

	/* a reply without an id: nothing to wait for */
	expect_call("vm.migrate", VM_RUNNING(", \"migration\": {\"id\": \"7\"}"), 0);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--wait", NULL),
			 EXIT_DAEMON_ERROR);
	assert_int_equal(next, nscript);
}

static void test_wait_timeout(void **state)
{
	struct ctl ctl = { 0 };
	int64_t start = fake_ms;

	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	for (int i = 0; i < 4; i++)
		expect_call("vm.show", VM_RUNNING(MIG("running")), 0);
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--wait", "--timeout", "2",
			     NULL),
			 EXIT_TIMEOUT);
	assert_int_equal(next, nscript);
	assert_int_equal(fake_ms - start, 2000);
}

/* Not a terminal: a progress line a second at most (every other poll), then the result. */
static void test_watch_lines(void **state)
{
	struct ctl ctl = { 0 };
	char *s;

	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	for (int i = 0; i < 5; i++)
		expect_call("vm.show", VM_RUNNING(MIG("running")), 0);
	expect_call("vm.show", VM_RUNNING(LAST("7", "failed")), 0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--watch", NULL),
			 EXIT_DAEMON_ERROR);
	s = captured();
	assert_int_equal(count_lines(s, "queued: elapsed -, sent -"), 1);
	assert_int_equal(count_lines(s, "running: "), 2);
	assert_int_equal(count_lines(s, "vm web1: migration 7 failed"), 1);
	assert_null(strchr(s, '\r'));
	free(s);
}

/*
 * A terminal (a file here: not a window, so 80 columns): each poll rewrites the
 * line in place; the full line takes two rows, broken between fields.
 */
static void test_watch_tty(void **state)
{
	static const char row1[] = "running: elapsed 12.3 s, sent 1.2 GiB, wire 310.4 MiB, rate "
				   "85.3 MiB/s,";
	static const char row2[] = "remaining 120.0 MiB, dirty 1520 pages/s, iteration 3";
	char mig[1024], expect[1024], *s;
	struct ctl ctl = { 0 };

	snprintf(mig, sizeof(mig), "{\"name\": \"web1\", \"migration\": %s}", full_mig);
	fake_tty = 1;
	expect_call("vm.migrate", VM_RUNNING(MIG("queued")), 0);
	expect_call("vm.show", mig, 0);
	expect_call("vm.show", mig, 0);
	expect_call("vm.show", VM_RUNNING(LAST("7", "cancelled")), 0);
	capture();
	assert_int_equal(run(&ctl, hvctl_vm_migrate, "migrate", "web1", "--watch", NULL),
			 EXIT_DAEMON_ERROR);
	s = captured();
	snprintf(expect, sizeof(expect),
		 /* one row */
		 "\rqueued: elapsed -, sent -, wire -, rate -, remaining -, dirty -, iteration -"
		 "\033[K"
		 /* two rows over it */
		 "\r%s\033[K\n\r%s\033[K"
		 /* up to the first, rewrite both */
		 "\033[1A\r%s\033[K\n\r%s\033[K"
		 /* the result on a row of its own */
		 "\nvm web1: migration 7 cancelled (still running on node1)\n",
		 row1, row2, row1, row2);
	assert_string_equal(s, expect);
	free(s);
}

/* --- vm migrate-cancel -------------------------------------------------------------------- */

static void test_cancel(void **state)
{
	struct ctl ctl = { 0 };
	char *s;

	expect_call("vm.migrate-cancel", VM_RUNNING(LAST("7", "cancelled")), 0);
	expect_call("vm.migrate-cancel", VM_RUNNING(LAST("7", "completed")), 0);
	expect_call("vm.migrate-cancel", VM_RUNNING(MIG("handoff")), 0);
	expect_call("vm.migrate-cancel", "{\"message\": \"nothing to cancel\"}", 0);
	capture();
	for (int i = 0; i < 4; i++)
		assert_int_equal(run(&ctl, hvctl_vm_migrate_cancel, "migrate-cancel", "web1", NULL),
				 0);
	s = captured();
	assert_string_equal(s, "vm web1: migration 7 cancelled\n"
			       "vm web1: migration 7 had already completed\n"
			       "vm web1: migration 7 is being cancelled (phase handoff)\n"
			       "vm web1: nothing to cancel\n");
	free(s);
	assert_string_equal(json_string_value(json_object_get(last_args, "name")), "web1");

	assert_int_equal(run(&ctl, hvctl_vm_migrate_cancel, "migrate-cancel", NULL), EXIT_USAGE);
	expect_call("vm.migrate-cancel", NULL, EXIT_DAEMON_ERROR);
	assert_int_equal(run(&ctl, hvctl_vm_migrate_cancel, "migrate-cancel", "web1", NULL),
			 EXIT_DAEMON_ERROR);
	assert_int_equal(next, nscript);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_result),
		cmocka_unit_test(test_state),
		cmocka_unit_test_setup_teardown(test_show, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_completed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_failed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_lost_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_tty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
