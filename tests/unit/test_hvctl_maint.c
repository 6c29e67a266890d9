/*
 * Unit tests of hvctl node drain|resume|impact (node/hvctl_maint.c) against a fake
 * hvnoded: call() answers node.drain, node.impact and node.resume, and vm.list from a
 * script of replies, one per poll; sleeping advances a fake clock.
 */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../node/hvctl.h"
#include "capture.h"
#include "hvctl_fakes.h"

/* --- the fake daemon ------------------------------------------------------------------- */

static const char impact_reply[] =
	"{\"node\": \"n1\", \"state\": \"online\", \"maintenance\": true, \"vms\": ["
	"{\"name\": \"a\", \"owner\": \"ann\", \"contact\": \"ann@example.org, desk 4\","
	" \"app\": \"shop\", \"tier\": \"web\", \"priority\": \"high\", \"classification\":"
	" \"public\", \"ha\": true, \"action\": \"live\", \"to\": \"n2\", \"why\": \"least loaded\","
	" \"fallback\": false, \"state\": \"started\"},"
	"{\"name\": \"b\", \"owner\": \"\", \"contact\": \"\", \"app\": \"\", \"tier\": \"\","
	" \"priority\": \"low\", \"classification\": \"public\", \"ha\": true, \"action\": \"quick\","
	" \"to\": \"n3\", \"why\": \"\", \"fallback\": false, \"state\": \"started\"},"
	"{\"name\": \"c\", \"owner\": \"cy\", \"contact\": \"\", \"app\": \"\", \"tier\": \"\","
	" \"priority\": \"medium\", \"classification\": \"public\", \"ha\": true, \"action\":"
	" \"stays\", \"to\": null, \"why\": \"cannot be placed: n2, n3: not among its possible"
	" nodes\", \"fallback\": false, \"state\": \"started\"}]}";

#define VM(name, node, st, extra)                                                              \
	"{\"name\": \"" name "\", \"node\": \"" node "\", \"assigned_node\": \"" node "\","    \
	" \"ha_state\": \"" st "\", \"state\": \"running\", \"ha_reason\": \"\"" extra "}"
#define LAST_OLD ", \"last_migration\": {\"id\": 5, \"result\": \"completed\"}"
#define HELD ", \"held\": \"cannot be placed: n2, n3: not among its possible nodes\""

/* vm.list, poll after poll (the last one repeats) */
static const char *const polls_partial[] = {
	"[" VM("a", "n1", "started", LAST_OLD) "," VM("b", "n1", "started", "") ","
	VM("c", "n1", "started", "") "]",
	"[" VM("a", "n1", "started", LAST_OLD ", \"migration\": {\"id\": 10, \"mode\": \"live\","
	" \"to\": \"n2\", \"from\": \"n1\", \"phase\": \"running\"}") ","
	VM("b", "n1", "started", ", \"migration\": {\"id\": 11, \"mode\": \"quick\", \"to\": \"n3\","
	" \"from\": \"n1\", \"phase\": \"queued\"}") "," VM("c", "n1", "started", HELD) "]",
	"[" VM("a", "n2", "started", ", \"last_migration\": {\"id\": 10, \"mode\": \"live\","
	" \"result\": \"completed\", \"from\": \"n1\", \"to\": \"n2\", \"total_ms\": 800,"
	" \"downtime_ms\": 12, \"raw_bytes\": 1000, \"wire_bytes\": 500}") ","
	VM("b", "n1", "started", ", \"migration\": {\"id\": 11, \"mode\": \"quick\", \"to\": \"n3\","
	" \"from\": \"n1\", \"phase\": \"handoff\"}") "," VM("c", "n1", "started", HELD) "]",
	"[" VM("a", "n2", "started", "") "," VM("b", "n3", "started", ", \"last_migration\":"
	" {\"id\": 11, \"mode\": \"quick\", \"result\": \"completed\", \"from\": \"n1\", \"to\":"
	" \"n3\", \"total_ms\": 300, \"downtime_ms\": 90}") "," VM("c", "n1", "started", HELD) "]",
	NULL,
};

/* a and b move; c (stopped by --force) leaves the node */
static const char *const polls_empty[] = {
	"[" VM("a", "n1", "started", "") "," VM("b", "n1", "started", "") ","
	VM("c", "n1", "started", "") "]",
	"[" VM("a", "n2", "started", ", \"last_migration\": {\"id\": 10, \"mode\": \"live\","
	" \"result\": \"completed\", \"from\": \"n1\", \"to\": \"n2\"}") ","
	VM("b", "n3", "started", ", \"last_migration\": {\"id\": 11, \"mode\": \"quick\","
	" \"result\": \"completed\", \"from\": \"n1\", \"to\": \"n3\"}") ","
	"{\"name\": \"c\", \"node\": null, \"assigned_node\": null, \"ha_state\": \"stopped\","
	" \"state\": \"stopped\", \"ha_reason\": \"stopped by the drain of node n1\"}]",
	NULL,
};

/* a's migration never ends */
static const char *const polls_stuck[] = {
	"[" VM("a", "n1", "started", ", \"migration\": {\"id\": 10, \"mode\": \"live\","
	" \"to\": \"n2\", \"from\": \"n1\", \"phase\": \"running\", \"progress\":"
	" {\"elapsed_ms\": 4000, \"raw_bytes\": 1048576, \"iteration\": 3}}") "]",
	NULL,
};

static const char resume_list[] =
	"[" VM("a", "n2", "started", ", \"home\": \"n1\", \"failback\": \"immediate\"") ","
	VM("b", "n3", "started", ", \"home\": \"n1\", \"failback\": \"22:00-23:30\"") ","
	VM("c", "n1", "started", ", \"failback\": \"none\"") "]";

static const char *const *polls;
static size_t npoll;
static char calls[512]; /* the commands asked, space separated */
static json_t *drain_args;

int call(const struct ctl *ctl, const char *cmd, json_t *args, json_t **res)
{
	char buf[8192];
	const char *reply;

	*res = NULL;
	snprintf(calls + strlen(calls), sizeof(calls) - strlen(calls), "%s%s", calls[0] ? " " : "",
		 cmd);
	if (!strcmp(cmd, "node.drain")) {
		json_decref(drain_args);
		drain_args = json_deep_copy(args);
		reply = "{}";
	} else if (!strcmp(cmd, "node.resume")) {
		reply = "{}";
	} else if (!strcmp(cmd, "node.impact")) {
		reply = impact_reply;
	} else if (!strcmp(cmd, "vm.list") && polls) {
		snprintf(buf, sizeof(buf), "{\"vms\": %s}", polls[npoll]);
		if (polls[npoll + 1])
			npoll++;
		reply = buf;
	} else if (!strcmp(cmd, "vm.list")) {
		snprintf(buf, sizeof(buf), "{\"vms\": %s}", resume_list);
		reply = buf;
	} else {
		fail_msg("unexpected command %s", cmd);
		return 1;
	}
	*res = json_loads(reply, 0, NULL);
	assert_non_null(*res);
	return 0;
}

int parse_common(struct ctl *ctl, int argc, char **argv, const char *help)
{
	optind = 1;
	return -1;
}

static int setup(void **state)
{
	calls[0] = '\0';
	polls = NULL;
	npoll = 0;
	fake_ms = 1000000;
	return 0;
}

static int teardown(void **state)
{
	capture_cleanup();
	json_decref(drain_args);
	drain_args = NULL;
	return 0;
}

/* hvctl node ARGS...: its exit code, its stdout in *@printed. */
static int run(struct ctl *ctl, char **printed, ...)
{
	static char node[] = "node";
	char *argv[16] = { node };
	int argc = 1, rc;
	va_list ap;

	va_start(ap, printed);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	capture();
	rc = hvctl_node(ctl, argc, argv);
	*printed = captured();
	return rc;
}

/* --- drain -------------------------------------------------------------------------------- */

static void test_drain_wait_reports_each_vm(void **state)
{
	struct ctl ctl = { 0 };
	char *out;

	polls = polls_partial;
	/* c stays: exit 1, and the output says which VM and why */
	assert_int_equal(run(&ctl, &out, "drain", "n1", "--wait", NULL), EXIT_DAEMON_ERROR);
	assert_true(json_is_false(json_object_get(drain_args, "force")));
	assert_string_equal(json_string_value(json_object_get(drain_args, "node")), "n1");
	assert_non_null(strstr(out, "moving 3 VM(s) off it"));
	assert_non_null(strstr(out, "vm a: live migration to n2\n"));
	assert_non_null(strstr(out, "vm a: migrated n1 -> n2 (live) in 0.80 s, downtime 12 ms"));
	assert_non_null(strstr(out, "] vm b: migrated n1 -> n3 (quick)"));
	assert_non_null(strstr(out, "vm c: stays on n1: cannot be placed: n2, n3"));
	assert_non_null(strstr(out, "drain incomplete after"));
	assert_non_null(strstr(out, "2 moved, 0 stopped, 1 still there"));
	/* the migration from before the drain (id 5) is not news */
	assert_null(strstr(out, "migration 5"));
	free(out);
}

static void test_drain_wait_json_and_force(void **state)
{
	struct ctl ctl = { 0 };
	json_t *j, *vms;
	char *out;

	polls = polls_empty;
	assert_int_equal(run(&ctl, &out, "drain", "--force", "n1", "--wait", "--json", NULL), 0);
	assert_true(json_is_true(json_object_get(drain_args, "force")));
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "empty")));
	vms = json_object_get(j, "vms");
	assert_int_equal(json_array_size(vms), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(vms, 0), "result")),
			    "moved");
	assert_string_equal(json_string_value(json_object_get(json_array_get(vms, 2), "result")),
			    "stopped");
	json_decref(j);
	free(out);
}

static void test_drain_wait_times_out(void **state)
{
	struct ctl ctl = { 0 };
	char *out;

	polls = polls_stuck;
	assert_int_equal(run(&ctl, &out, "drain", "n1", "--wait", "--timeout", "5", NULL),
			 EXIT_TIMEOUT);
	assert_non_null(strstr(out, "drain still under way after"));
	assert_non_null(strstr(out, "  a: moving"));
	/* a long migration says how far it is (every 5 s) */
	assert_non_null(strstr(out, "vm a: elapsed 4.0 s, sent 1.0 MiB"));
	free(out);
	ctl.json = false;
	assert_int_equal(run(&ctl, &out, "drain", "n1", "--wait", "--timeout", "5", "--json", NULL),
			 EXIT_TIMEOUT);
	assert_non_null(strstr(out, "\"timed_out\":true"));
	free(out);
}

static void test_drain_without_wait_prints_the_plan(void **state)
{
	struct ctl ctl = { 0 };
	char *out;

	assert_int_equal(run(&ctl, &out, "drain", "n1", NULL), 0);
	assert_string_equal(calls, "node.drain node.impact");
	assert_non_null(strstr(out, "live -> n2"));
	assert_non_null(strstr(out, "quick -> n3"));
	assert_non_null(strstr(out, "stays"));
	free(out);
}

static void test_usage_errors(void **state)
{
	struct ctl ctl = { 0 };
	char *out;

	assert_int_equal(run(&ctl, &out, "drain", NULL), EXIT_USAGE);
	free(out);
	assert_int_equal(run(&ctl, &out, "drain", "n1", "n2", NULL), EXIT_USAGE);
	free(out);
	assert_int_equal(run(&ctl, &out, "drain", "n1", "--csv", NULL), EXIT_USAGE);
	free(out);
	assert_int_equal(run(&ctl, &out, "drain", "n1", "--wait", "--timeout", "0", NULL),
			 EXIT_USAGE);
	free(out);
	assert_int_equal(run(&ctl, &out, "drain", "n1", "--wait", "--timeout", NULL), EXIT_USAGE);
	free(out);
	assert_int_equal(run(&ctl, &out, "resume", "n1", "--force", NULL), EXIT_USAGE);
	free(out);
	assert_int_equal(run(&ctl, &out, "impact", "n1", "--csv", "--json", NULL), EXIT_USAGE);
	free(out);
	/* nothing was asked of the daemon */
	assert_string_equal(calls, "");
}

/* --- impact, resume ----------------------------------------------------------------------- */

static void test_impact_csv(void **state)
{
	struct ctl ctl = { 0 };
	char *out;

	assert_int_equal(run(&ctl, &out, "impact", "n1", "--csv", NULL), 0);
	assert_string_equal(calls, "node.impact");
	/* the --csv convention: columns named as the JSON keys, values as in JSON */
	assert_non_null(strstr(out, "name,owner,contact,app,tier,priority,classification,action,to,"
				    "why\r\n"));
	/* a comma in a field is quoted; an empty field is empty, not "-" */
	assert_non_null(strstr(out, "a,ann,\"ann@example.org, desk 4\",shop,web,high,public,"
				    "live,n2,least loaded\r\n"));
	assert_non_null(strstr(out, "b,,,,,low,public,quick,n3,\r\n"));
	assert_non_null(strstr(out, "c,cy,,,,medium,public,stays,,\"cannot be placed: n2, n3: "));
	free(out);
}

static void test_resume_lists_failback(void **state)
{
	struct ctl ctl = { 0 };
	char *out;

	assert_int_equal(run(&ctl, &out, "resume", "n1", NULL), 0);
	assert_string_equal(calls, "node.resume vm.list");
	assert_non_null(strstr(out, "vm a (on n2): fails back to n1 now, live"));
	assert_non_null(strstr(out, "vm b (on n3): fails back to n1 live in its window 22:00-23:30"));
	assert_null(strstr(out, "vm c"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_drain_wait_reports_each_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_wait_json_and_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_wait_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_without_wait_prints_the_plan, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_impact_csv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_lists_failback, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
