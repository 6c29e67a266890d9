/*
 * Unit tests of hvctl's owner view: tables as CSV (node/hvctl_util.c), hvctl inventory
 * (node/hvctl_inventory.c) and vm list's filters (node/hvctl_vm.c), against a fake
 * hvnoded: call() answers vm.list and node.list from canned replies.
 */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../node/hvctl.h"
#include "capture.h"
#include "hvctl_fakes.h"

/* --- the fake daemon ------------------------------------------------------------------- */

static const char vm_list_reply[] =
	"{\"vms\": ["
	"{\"name\": \"crm1\", \"node\": \"n1\", \"state\": \"running\", \"owner\": \"bob\","
	" \"contact\": \"Bob \\\"B\\\" Smith, +1 555\", \"app\": \"crm\", \"tier\": \"db\","
	" \"classification\": \"confidential\", \"priority\": \"high\", \"vcpus\": 1,"
	" \"memory\": 32, \"disks\": []},"
	"{\"name\": \"shop1\", \"node\": null, \"state\": \"stopped\", \"owner\": \"alice\","
	" \"contact\": \"\", \"app\": \"shop\", \"tier\": \"\", \"classification\": \"public\","
	" \"priority\": \"medium\", \"vcpus\": 1, \"memory\": 32, \"disks\": []}]}";

static const char node_list_reply[] =
	"{\"nodes\": ["
	"{\"id\": 1, \"name\": \"n1\", \"state\": \"online\", \"clearance\": \"secret\","
	" \"effective_classification\": \"confidential\", \"vms\": 1, \"vcpus\": 4},"
	"{\"id\": 2, \"name\": \"n2\", \"state\": \"fence-pending\", \"clearance\": \"internal\","
	" \"effective_classification\": null, \"vms\": 0, \"vcpus\": 4}]}";

static char calls[256];	  /* the commands asked, space separated */
static json_t *last_args; /* of the last vm.list */
static int fail_rc;	  /* nonzero: every call "prints" an error and returns it */

int call(const struct ctl *ctl, const char *cmd, json_t *args, json_t **res)
{
	const char *reply = NULL;

	*res = NULL;
	snprintf(calls + strlen(calls), sizeof(calls) - strlen(calls), "%s%s", calls[0] ? " " : "",
		 cmd);
	if (!strcmp(cmd, "vm.list")) {
		json_decref(last_args);
		last_args = args ? json_deep_copy(args) : NULL;
		reply = vm_list_reply;
	} else if (!strcmp(cmd, "node.list")) {
		reply = node_list_reply;
	}
	if (fail_rc)
		return fail_rc;
	assert_non_null(reply);
	*res = json_loads(reply, 0, NULL);
	assert_non_null(*res);
	return 0;
}

/* hvctl_vm.c's other subcommands need one; vm list and inventory parse their own options. */
int parse_common(struct ctl *ctl, int argc, char **argv, const char *help)
{
	optind = 1;
	return -1;
}

static int setup(void **state)
{
	calls[0] = '\0';
	fail_rc = 0;
	return 0;
}

static int teardown(void **state)
{
	capture_cleanup();
	json_decref(last_args);
	last_args = NULL;
	return 0;
}

/* Run @fn with the NULL-terminated arguments; its exit code, and its stdout in *@printed. */
static int run(struct ctl *ctl, int (*fn)(struct ctl *, int, char **), char **printed, ...)
{
	char *argv[16];
	int argc = 0, rc;
	va_list ap;

	va_start(ap, printed);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	capture();
	rc = fn(ctl, argc, argv);
	*printed = captured();
	return rc;
}

/* --- CSV --------------------------------------------------------------------------------- */

static void test_csv_quoting(void **state)
{
	struct ctl_table t;
	char *s;

	ctl_table_init(&t, 3);
	ctl_table_row(&t, "name", "contact", "note");
	ctl_table_row(&t, "plain", "a, b", "say \"hi\"");
	ctl_table_row(&t, "line\nbreak", "cr\rhere", "\"");
	ctl_table_row(&t, NULL, "", " spaces kept ");
	ctl_table_row(&t, "-", "x,\"y\"\n", "'=1+1");
	capture();
	ctl_table_print_csv(&t);
	s = captured();
	assert_string_equal(s, "name,contact,note\r\n"
			       "plain,\"a, b\",\"say \"\"hi\"\"\"\r\n"
			       "\"line\nbreak\",\"cr\rhere\",\"\"\"\"\r\n"
			       ",, spaces kept \r\n"
			       "-,\"x,\"\"y\"\"\n\",'=1+1\r\n");
	assert_null(t.rows);
	free(s);
}

/* Empty cells: "-" in the aligned table, still aligned; empty in CSV (above). */
static void test_table_empty_cells(void **state)
{
	struct ctl_table t;
	char *s;

	ctl_table_init(&t, 3);
	ctl_table_row(&t, "NAME", "NODE", "OWNER");
	ctl_table_row(&t, "web1", NULL, "alice");
	ctl_table_row(&t, "db", "n12", "");
	capture();
	ctl_table_print(&t, "  ");
	s = captured();
	assert_string_equal(s, "  NAME  NODE  OWNER\n"
			       "  web1  -     alice\n"
			       "  db    n12   -\n");
	assert_null(t.rows);
	free(s);
}

static void test_csv_check(void **state)
{
	struct ctl ctl = { .csv = true };

	assert_int_equal(ctl_csv_check(&ctl, "", "x"), -1);
	ctl.json = true;
	assert_int_equal(ctl_csv_check(&ctl, "", "x"), EXIT_USAGE);
	ctl.csv = false;
	assert_int_equal(ctl_csv_check(&ctl, "", "x"), -1);
}

/* --- inventory ------------------------------------------------------------------------------ */

static void test_inventory_json(void **state)
{
	struct ctl ctl = { 0 };
	json_t *j, *vm, *host;
	char *s, *keys;

	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", "--json", NULL), 0);
	assert_string_equal(calls, "vm.list node.list");
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 2);
	assert_int_equal(json_array_size(json_object_get(j, "vms")), 2);
	assert_int_equal(json_array_size(json_object_get(j, "hosts")), 2);

	/* exactly the inventory's keys, in order; nothing else of vm.list or node.list */
	vm = json_array_get(json_object_get(j, "vms"), 1);
	keys = json_dumps(vm, JSON_COMPACT);
	assert_string_equal(keys, "{\"name\":\"shop1\",\"node\":null,\"state\":\"stopped\","
				  "\"owner\":\"alice\",\"contact\":\"\",\"app\":\"shop\","
				  "\"tier\":\"\",\"classification\":\"public\","
				  "\"priority\":\"medium\"}");
	free(keys);
	host = json_array_get(json_object_get(j, "hosts"), 0);
	keys = json_dumps(host, JSON_COMPACT);
	assert_string_equal(keys, "{\"name\":\"n1\",\"state\":\"online\",\"clearance\":\"secret\","
				  "\"effective_classification\":\"confidential\",\"vms\":1}");
	free(keys);
	host = json_array_get(json_object_get(j, "hosts"), 1);
	assert_true(json_is_null(json_object_get(host, "effective_classification")));
	json_decref(j);
	free(s);

	/* --hosts: the hosts only, without asking for the VMs */
	calls[0] = '\0';
	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", "--hosts", "--json", NULL), 0);
	assert_string_equal(calls, "node.list");
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_null(json_object_get(j, "vms"));
	assert_int_equal(json_array_size(json_object_get(j, "hosts")), 2);
	json_decref(j);
	free(s);
}

static void test_inventory_csv(void **state)
{
	struct ctl ctl = { 0 };
	char *s;

	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", "--csv", NULL), 0);
	assert_string_equal(calls, "vm.list");
	assert_string_equal(s, "name,node,state,owner,contact,app,tier,classification,priority\r\n"
			       "crm1,n1,running,bob,\"Bob \"\"B\"\" Smith, +1 555\",crm,db,"
			       "confidential,high\r\n"
			       "shop1,,stopped,alice,,shop,,public,medium\r\n");
	free(s);

	calls[0] = '\0';
	ctl.csv = false;
	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", "--hosts", "--csv", NULL), 0);
	assert_string_equal(calls, "node.list");
	assert_string_equal(s, "name,state,clearance,effective_classification,vms\r\n"
			       "n1,online,secret,confidential,1\r\n"
			       "n2,fence-pending,internal,,0\r\n");
	free(s);

	ctl.csv = false;
	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", "--csv", "--json", NULL),
			 EXIT_USAGE);
	free(s);
}

static void test_inventory_human(void **state)
{
	struct ctl ctl = { 0 };
	char *s;

	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", NULL), 0);
	assert_string_equal(
		s,
		"VMs: 2\n"
		"  NAME   NODE  STATE    OWNER  CONTACT                APP   TIER  CLASS         "
		"PRIORITY\n"
		"  crm1   n1    running  bob    Bob \"B\" Smith, +1 555  crm   db    confidential  "
		"high\n"
		"  shop1  -     stopped  alice  -                      shop  -     public        "
		"medium\n"
		"\n"
		"Hosts: 2\n"
		"  NAME  STATE          CLEARANCE  EFFECTIVE     VMS\n"
		"  n1    online         secret     confidential  1\n"
		"  n2    fence-pending  internal   -             0\n");
	free(s);

	fail_rc = EXIT_UNREACHABLE;
	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", NULL), EXIT_UNREACHABLE);
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(run(&ctl, hvctl_inventory, &s, "inventory", "extra", NULL), EXIT_USAGE);
	free(s);
}

/* --- vm list's filters ---------------------------------------------------------------------- */

static void test_vm_list_filters(void **state)
{
	struct ctl ctl = { 0 };
	char *s, *args;

	assert_int_equal(run(&ctl, hvctl_vm, &s, "vm", "list", NULL), 0);
	assert_non_null(last_args);
	assert_int_equal(json_object_size(last_args), 0);
	assert_non_null(strstr(s, "OWNER  APP\n"));
	free(s);

	assert_int_equal(run(&ctl, hvctl_vm, &s, "vm", "list", "--app", "shop", "--node", "n1",
			     "--owner", "", "--json", NULL),
			 0);
	args = json_dumps(last_args, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(args, "{\"app\":\"shop\",\"node\":\"n1\",\"owner\":\"\"}");
	free(args);
	free(s);

	assert_int_equal(run(&ctl, hvctl_vm, &s, "vm", "list", "--node", NULL), EXIT_USAGE);
	free(s);
	assert_int_equal(run(&ctl, hvctl_vm, &s, "vm", "list", "--tier", "x", NULL), EXIT_USAGE);
	free(s);
	/* an unknown node: the daemon's error (it names the node) and its exit code */
	fail_rc = EXIT_DAEMON_ERROR;
	assert_int_equal(run(&ctl, hvctl_vm, &s, "vm", "list", "--node", "nope", NULL),
			 EXIT_DAEMON_ERROR);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_csv_quoting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_empty_cells, setup, teardown),
		cmocka_unit_test(test_csv_check),
		cmocka_unit_test_setup_teardown(test_inventory_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inventory_csv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inventory_human, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_list_filters, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
