/*
 * hvctl inventory: the owner's view. Every VM with where it runs and whom it
 * belongs to, every host with what it may and does hold. Composed from vm.list
 * and node.list (which computes each node's effective classification), so it
 * needs what they need: a viewer may run it.
 */
#include "hvctl.h"

#include <getopt.h>
#include <stdio.h>

const char hvctl_inventory_help[] =
	"Usage: hvctl inventory [--hosts] [--json | --csv]\n"
	"\n"
	"What runs where and whom to notify, as an owner or an auditor asks it:\n"
	"\n"
	"  VMs    every VM: its node (\"-\" when it is on none), state, owner,\n"
	"         contact, app, tier, classification, priority\n"
	"  Hosts  every node: state, clearance (the highest classification it may\n"
	"         run), effective classification (the highest classification of\n"
	"         the VMs on it or assigned to it; \"-\" when it has none, since it\n"
	"         then holds no data) and how many VMs that is\n"
	"\n"
	"A viewer may run it. The two lists come from two requests: a VM that moves\n"
	"between them may show on its new node while the hosts still count it on\n"
	"the old one.\n"
	"\n"
	"Options:\n"
	"  --hosts  the hosts only\n"
	"  --json   {\"vms\": [{name, node (null: none), state, owner, contact, app,\n"
	"           tier, classification, priority}], \"hosts\": [{name, state,\n"
	"           clearance, effective_classification (null: no VM), vms}]};\n"
	"           with --hosts, {\"hosts\": [...]} only. Unset text fields are \"\".\n"
	"  --csv    one table as CSV (RFC 4180), for a spreadsheet: the VMs, or with\n"
	"           --hosts the hosts. The first record names the columns as --json\n"
	"           names the keys (name,node,state,owner,contact,app,tier,\n"
	"           classification,priority; name,state,clearance,\n"
	"           effective_classification,vms); a null or unset value is an empty\n"
	"           field; a field holding a comma, a quote or a line break is\n"
	"           quoted, its quotes doubled; records end with CRLF.\n"
	"\n"
	"Example:\n"
	"  $ hvctl inventory\n"
	"  VMs: 2\n"
	"    NAME   NODE  STATE    OWNER  CONTACT     APP   TIER  CLASS         PRIORITY\n"
	"    crm1   n1    running  bob    bob@ex.org  crm   db    confidential  high\n"
	"    shop1  -     stopped  alice  -           shop  web   internal      medium\n"
	"\n"
	"  Hosts: 2\n"
	"    NAME  STATE   CLEARANCE     EFFECTIVE     VMS\n"
	"    n1    online  confidential  confidential  1\n"
	"    n2    online  confidential  -             0\n"
	"  $ hvctl inventory --csv > vms.csv; hvctl inventory --csv --hosts > hosts.csv\n";

/* The keys of an inventory entry, in order: --json's and the CSV header's. */
static const char *const vm_keys[] = {
	"name", "node", "state", "owner", "contact", "app", "tier", "classification", "priority",
	NULL,
};
static const char *const host_keys[] = {
	"name", "state", "clearance", "effective_classification", "vms", NULL,
};

/* @from's values at @keys, a new object; a missing one becomes null. */
static json_t *project(json_t *from, const char *const *keys)
{
	json_t *o = json_object(), *v;

	for (size_t i = 0; o && keys[i]; i++) {
		v = json_object_get(from, keys[i]);
		json_object_set_new(o, keys[i], v ? json_incref(v) : json_null());
	}
	return o;
}

static json_t *project_all(json_t *a, const char *const *keys)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach(a, i, v)
		json_array_append_new(out, project(v, keys));
	return out;
}

/* The parts of the inventory asked for, {"vms": [...], "hosts": [...]}; or an exit code. */
static int inventory_fetch(struct ctl *ctl, bool want_vms, bool want_hosts, json_t **inv)
{
	json_t *res;
	int rc;

	*inv = json_object();
	if (!*inv) {
		fprintf(stderr, "hvctl: inventory: out of memory\n");
		return EXIT_DAEMON_ERROR;
	}
	if (want_vms) {
		rc = call(ctl, "vm.list", NULL, &res);
		if (rc)
			goto err;
		json_object_set_new(*inv, "vms", project_all(json_object_get(res, "vms"), vm_keys));
		json_decref(res);
	}
	if (want_hosts) {
		rc = call(ctl, "node.list", NULL, &res);
		if (rc)
			goto err;
		json_object_set_new(*inv, "hosts",
				    project_all(json_object_get(res, "nodes"), host_keys));
		json_decref(res);
	}
	return 0;
err:
	json_decref(*inv);
	*inv = NULL;
	return rc;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void print_vms(json_t *vms, bool csv)
{
	struct ctl_table t;
	json_t *v;
	size_t i;

	ctl_table_init(&t, 9);
	if (csv)
		ctl_table_row(&t, vm_keys[0], vm_keys[1], vm_keys[2], vm_keys[3], vm_keys[4],
			      vm_keys[5], vm_keys[6], vm_keys[7], vm_keys[8]);
	else
		ctl_table_row(&t, "NAME", "NODE", "STATE", "OWNER", "CONTACT", "APP", "TIER",
			      "CLASS", "PRIORITY");
	json_array_foreach(vms, i, v)
		ctl_table_row(&t, str(v, "name"), str(v, "node"), str(v, "state"), str(v, "owner"),
			      str(v, "contact"), str(v, "app"), str(v, "tier"),
			      str(v, "classification"), str(v, "priority"));
	if (csv) {
		ctl_table_print_csv(&t);
		return;
	}
	printf("VMs: %zu\n", json_array_size(vms));
	ctl_table_print(&t, "  ");
}

static void print_hosts(json_t *hosts, bool csv)
{
	struct ctl_table t;
	char n[24];
	json_t *h;
	size_t i;

	ctl_table_init(&t, 5);
	if (csv)
		ctl_table_row(&t, host_keys[0], host_keys[1], host_keys[2], host_keys[3],
			      host_keys[4]);
	else
		ctl_table_row(&t, "NAME", "STATE", "CLEARANCE", "EFFECTIVE", "VMS");
	json_array_foreach(hosts, i, h)
	{
		snprintf(n, sizeof(n), "%lld",
			 (long long)json_integer_value(json_object_get(h, "vms")));
		ctl_table_row(&t, str(h, "name"), str(h, "state"), str(h, "clearance"),
			      str(h, "effective_classification"), n);
	}
	if (csv) {
		ctl_table_print_csv(&t);
		return;
	}
	printf("Hosts: %zu\n", json_array_size(hosts));
	ctl_table_print(&t, "  ");
}

int hvctl_inventory(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hosts", no_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "csv", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool hosts_only = false, want_vms, want_hosts;
	json_t *inv;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			hosts_only = true;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'c':
			ctl->csv = true;
			break;
		case 'h':
			fputs(hvctl_inventory_help, stdout);
			return 0;
		default:
			return usage_error(hvctl_inventory_help, "inventory: unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(hvctl_inventory_help, "inventory: unexpected argument '%s'",
				   argv[optind]);
	rc = ctl_csv_check(ctl, hvctl_inventory_help, "inventory");
	if (rc >= 0)
		return rc;
	/* CSV holds one table: the VMs, or with --hosts the hosts */
	want_vms = !hosts_only;
	want_hosts = hosts_only || !ctl->csv;
	rc = inventory_fetch(ctl, want_vms, want_hosts, &inv);
	if (rc)
		return rc;
	if (ctl->json) {
		print_json(inv);
	} else {
		if (want_vms)
			print_vms(json_object_get(inv, "vms"), ctl->csv);
		if (want_vms && want_hosts)
			putchar('\n');
		if (want_hosts)
			print_hosts(json_object_get(inv, "hosts"), ctl->csv);
	}
	json_decref(inv);
	return 0;
}
