/* hvctl security report: what an auditor asks, one section per check. */
#include "hvctl.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

const char hvctl_security_help[] =
	"Usage: hvctl security report [--json]\n"
	"\n"
	"What an auditor asks of the cluster, from the replicated state (the same on\n"
	"every node) and what this node's corosync runs with. One section per check,\n"
	"each with a verdict (OK, or how many findings) and its findings; a finding\n"
	"is a problem (should never be) or a warning (allowed, worth knowing):\n"
	"\n"
	"  clearance             VMs on a node whose clearance is below their\n"
	"                        classification (placement forbids it: a problem)\n"
	"  hosts                 each node's clearance and effective classification:\n"
	"                        the highest of the VMs running on or assigned to it\n"
	"  owner-contact         VMs without owner or contact: nobody to notify\n"
	"  rules                 anti-affinity and tier-separation rules the running\n"
	"                        VMs break: a soft rule may be (a warning), a hard rule\n"
	"                        should not be (a problem)\n"
	"  corosync-crypto       corosync without crypto_cipher or crypto_hash: the\n"
	"                        cluster's messages in clear (a problem)\n"
	"  migration-keys        nodes that publish no CURVE key: no migration to or\n"
	"                        from them can run (migrations are CURVE only)\n"
	"  storage-reservations  VMs created with --no-fence-storage, with their LUNs:\n"
	"                        no persistent reservation keeps a second host off them;\n"
	"                        and VMs with a state LUN (save/restore): it is reserved\n"
	"                        only while a save or restore uses it\n"
	"  fencing               nodes without a fence level (storage fencing only,\n"
	"                        built in: a warning) or with no level that can fence\n"
	"                        them (a problem)\n"
	"\n"
	"A viewer may run it. The exit status is 0 with or without findings (it is a\n"
	"report); 1 only when it could not be made.\n"
	"\n"
	"With --json: {findings: [{check, severity (\"problem\"|\"warning\"), object,\n"
	"detail, ...}], hosts: [{name, clearance, effective_classification (null: no\n"
	"VM), vms}], checks: {CHECK: \"ok\"|\"findings\"}, corosync: {crypto_cipher,\n"
	"crypto_hash}}. A clearance finding also has vm, classification, node and\n"
	"clearance; a storage-reservations finding has disks (those without\n"
	"reservations) and, when the VM has one, state_lun.\n"
	"\n"
	"Example:\n"
	"  $ hvctl security report\n"
	"  Guests above their host's clearance: OK\n"
	"  Hosts' effective classification: 2 hosts\n"
	"    NODE  CLEARANCE     EFFECTIVE  VMS\n"
	"    n1    secret        internal   2\n"
	"    n2    confidential  -          0\n"
	"  VMs without owner or contact: 1 finding\n"
	"    SEVERITY  VM     DETAIL\n"
	"    warning   test1  no contact: nobody to notify about it\n"
	"  ...\n"
	"  0 problems, 1 warning\n";

/* The sections, in order; @what heads the OBJECT column. */
static const struct section {
	const char *check;
	const char *title;
	const char *what;
} sections[] = {
	{ "clearance", "Guests above their host's clearance", "VM" },
	{ "owner-contact", "VMs without owner or contact", "VM" },
	{ "rules", "Anti-affinity and tier-separation rules broken now", "RULE" },
	{ "corosync-crypto", "Corosync without encryption", "CHANNEL" },
	{ "migration-keys", "Nodes without a CURVE migration key", "NODE" },
	{ "storage-reservations", "LUNs without persistent reservations", "VM" },
	{ "fencing", "Nodes without a usable fence level", "NODE" },
};

static void print_verdict(const char *title, size_t n, const char *noun)
{
	if (n)
		printf("%s: %zu %s%s\n", title, n, noun, n == 1 ? "" : "s");
	else
		printf("%s: OK\n", title);
}

static void print_hosts(json_t *hosts)
{
	struct ctl_table t;
	char vms[24];
	json_t *h;
	size_t i;

	print_verdict("Hosts' effective classification", json_array_size(hosts), "host");
	if (!json_array_size(hosts))
		return;
	ctl_table_init(&t, 4);
	ctl_table_row(&t, "NODE", "CLEARANCE", "EFFECTIVE", "VMS");
	json_array_foreach(hosts, i, h)
	{
		snprintf(vms, sizeof(vms), "%lld",
			 (long long)json_integer_value(json_object_get(h, "vms")));
		ctl_table_row(&t, ctl_str(h, "name"), ctl_str(h, "clearance"),
			      ctl_str(h, "effective_classification"), vms);
	}
	ctl_table_print(&t, "  ");
}

/* One check: its verdict, then its findings as a table. */
static void print_section(const struct section *sec, json_t *findings)
{
	struct ctl_table t;
	size_t i, n = 0;
	json_t *f;

	json_array_foreach(findings, i, f)
		n += !strcmp(ctl_str(f, "check"), sec->check);
	print_verdict(sec->title, n, "finding");
	if (!n)
		return;
	ctl_table_init(&t, 3);
	ctl_table_row(&t, "SEVERITY", sec->what, "DETAIL");
	json_array_foreach(findings, i, f)
		if (!strcmp(ctl_str(f, "check"), sec->check))
			ctl_table_row(&t, ctl_str(f, "severity"), ctl_str(f, "object"),
				      ctl_str(f, "detail"));
	ctl_table_print(&t, "  ");
}

static void print_report(json_t *res)
{
	json_t *findings = json_object_get(res, "findings"), *f;
	size_t i, problems = 0;

	print_section(&sections[0], findings);
	print_hosts(json_object_get(res, "hosts"));
	for (size_t k = 1; k < sizeof(sections) / sizeof(sections[0]); k++)
		print_section(&sections[k], findings);
	json_array_foreach(findings, i, f)
		problems += !strcmp(ctl_str(f, "severity"), "problem");
	printf("%zu problem%s, %zu warning%s\n", problems, problems == 1 ? "" : "s",
	       json_array_size(findings) - problems,
	       json_array_size(findings) - problems == 1 ? "" : "s");
}

int hvctl_security(struct ctl *ctl, int argc, char **argv)
{
	json_t *res;
	int rc;

	rc = parse_common(ctl, argc, argv, hvctl_security_help);
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return usage_error(hvctl_security_help, "security: no subcommand given");
	if (strcmp(argv[optind], "report"))
		return usage_error(hvctl_security_help, "security: unknown subcommand '%s'",
				   argv[optind]);
	if (optind + 1 < argc)
		return usage_error(hvctl_security_help, "security report: unexpected argument '%s'",
				   argv[optind + 1]);
	rc = call(ctl, "security.report", NULL, &res);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		print_report(res);
	json_decref(res);
	return 0;
}
