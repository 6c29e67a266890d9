/*
 * hvctl: the command-line client of hvnoded.
 *
 * Exit codes: 0 ok, 1 the daemon reported an error, 2 usage error,
 * 3 the daemon is not reachable.
 */
#include "proto.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <qb/qbipcc.h>

#include "hvctl.h"

#define IPC_TIMEOUT_MS 300000

const char hvctl_main_help[] =
	"Usage: hvctl [--ipc NAME] COMMAND [ARGS...] [--json]\n"
	"\n"
	"Control the hvcluster node agent (hvnoded) on this host.\n"
	"\n"
	"Commands:\n"
	"  status                 cluster name, this node, quorum, the leader, the members\n"
	"  inventory [--hosts] [--csv]\n"
	"                         every VM with its node, state, owner, contact, app,\n"
	"                         tier, classification; every host with its clearance,\n"
	"                         effective classification and VMs\n"
	"  vm create NAME ...     define a VM (see 'hvctl help vm')\n"
	"  vm list [--owner O] [--app A] [--node N]\n"
	"                         the VMs (all, or those matching) with state and node\n"
	"  vm show NAME           a VM's definition and state\n"
	"  vm start|stop|shutdown|pause|resume NAME\n"
	"  vm console-log NAME    the end of a VM's serial console\n"
	"  vm delete NAME         remove a stopped VM's definition (its disks stay)\n"
	"  vm explain NAME        where a VM runs and why; what placement says now\n"
	"  vm migrate NAME [--to NODE] [--wait|--watch]\n"
	"                         move a running VM to another node (see\n"
	"                         'hvctl vm migrate --help')\n"
	"  vm migrate-cancel NAME cancel a VM's migration\n"
	"  rule add|list|show|del placement rules (see 'hvctl help rule')\n"
	"  plan --fail NODE[,..]  what if nodes failed: where their VMs would go\n"
	"  settings [KEY=VALUE..] cluster-wide settings: overcommit, restart limit\n"
	"  node list              the nodes: state, capacity, watchdog, VMs\n"
	"  node drain NODE [--wait] [--force]\n"
	"                         planned maintenance: move every VM off NODE (live or\n"
	"                         quick by priority), no placement there until resume\n"
	"  node resume NODE       end the maintenance; VMs with failback go back\n"
	"  node impact NODE [--csv]\n"
	"                         what a downtime of NODE means: each VM, its owner and\n"
	"                         contact, and what a drain does with it\n"
	"  node fence|confirm-fenced NODE\n"
	"                         fence a node now, or say it is off (powered off by hand)\n"
	"  fence device|level ... fence devices, each node's levels (see 'hvctl help fence')\n"
	"  fence history          the last fences: when, which node, ok or FAILED, why\n"
	"  acl add|list|del       who may do what: users and groups bound to roles\n"
	"  audit [--since WHEN]   every change asked for, allowed or denied, and by whom\n"
	"  security report        what an auditor asks: clearances, owners, broken rules,\n"
	"                         unencrypted channels, unprotected LUNs, fencing gaps\n"
	"  help [COMMAND]         help on a command\n"
	"\n"
	"Options:\n"
	"  --json             machine-readable output (a JSON document on stdout)\n"
	"  -s, --ipc NAME     hvnoded's IPC service name (default: $HVCTL_IPC or '" HV_IPC_DEFAULT_NAME "')\n"
	"  -h, --help         help (after a command: that command's help)\n"
	"  -V, --version      print the version\n"
	"\n"
	"Exit status:\n"
	"  0  success\n"
	"  1  hvnoded reported an error (the message says which object and why)\n"
	"  2  usage error (unknown command or option, bad argument)\n"
	"  3  hvnoded is not reachable (the message names the IPC socket and the cause)\n"
	"  4  a wait timed out (vm migrate --wait): what it waited for goes on\n";

static const char status_help[] =
	"Usage: hvctl status [--json]\n"
	"\n"
	"Show the cluster as this node sees it: the cluster name, this node's id and\n"
	"name, whether corosync is reachable, whether the cluster is quorate, the\n"
	"leader (the lowest node id of the quorate membership, which makes every\n"
	"decision of the cluster), and the members: nodes whose hvnoded is running\n"
	"and which corosync counts in the current membership.\n"
	"\n"
	"With --json: an object with cluster (string), node {id, name}, corosync\n"
	"(\"connected\" or \"unavailable\"), quorate (bool), leader (node id or null),\n"
	"members [{id, name}].\n";

int usage_error(const char *help, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hvctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s", help ? help : hvctl_main_help);
	return EXIT_USAGE;
}

/* Send one request; on success *res is the body and the return the daemon's status. */
static int request(const struct ctl *ctl, const char *cmd, json_t *args, json_t **res,
		   int *exit_code)
{
	struct qb_ipc_request_header hdr = { .id = HV_IPC_REQUEST };
	struct qb_ipc_response_header *rh;
	qb_ipcc_connection_t *conn;
	struct iovec iov[2];
	json_error_t jerr;
	json_t *req;
	char *text, *buf;
	ssize_t n;
	int rc = 0;

	*res = NULL;
	conn = qb_ipcc_connect(ctl->ipc_name, HV_IPC_MAX_MSG);
	if (!conn) {
		fprintf(stderr,
			"hvctl: cannot reach hvnoded on IPC socket '%s' (libqb IPC, an abstract "
			"unix socket of this network namespace): %s; is hvnoded running?\n",
			ctl->ipc_name, strerror(errno));
		*exit_code = EXIT_UNREACHABLE;
		return -1;
	}
	req = json_pack("{s:s,s:o}", "cmd", cmd, "args", args ? json_incref(args) : json_object());
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	buf = malloc(HV_IPC_MAX_MSG);
	if (!text || !buf) {
		fprintf(stderr, "hvctl: out of memory\n");
		*exit_code = EXIT_DAEMON_ERROR;
		rc = -1;
		goto out;
	}
	hdr.size = sizeof(hdr) + strlen(text);
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = text;
	iov[1].iov_len = strlen(text);
	n = qb_ipcc_sendv_recv(conn, iov, 2, buf, HV_IPC_MAX_MSG, IPC_TIMEOUT_MS);
	if (n < (ssize_t)sizeof(*rh)) {
		fprintf(stderr, "hvctl: no answer from hvnoded on IPC socket '%s': %s\n",
			ctl->ipc_name, n < 0 ? strerror((int)-n) : "short reply");
		*exit_code = EXIT_UNREACHABLE;
		rc = -1;
		goto out;
	}
	rh = (struct qb_ipc_response_header *)buf;
	if (rh->size != n) {
		fprintf(stderr, "hvctl: malformed reply from hvnoded (%zd bytes, header says %d)\n",
			n, rh->size);
		*exit_code = EXIT_DAEMON_ERROR;
		rc = -1;
		goto out;
	}
	*res = json_loadb(buf + sizeof(*rh), n - sizeof(*rh), 0, &jerr);
	if (!*res || !json_is_object(*res)) {
		fprintf(stderr, "hvctl: malformed reply from hvnoded: %s\n",
			*res ? "not an object" : jerr.text);
		json_decref(*res);
		*res = NULL;
		*exit_code = EXIT_DAEMON_ERROR;
		rc = -1;
		goto out;
	}
	rc = rh->error;
out:
	free(buf);
	free(text);
	qb_ipcc_disconnect(conn);
	return rc;
}

void print_json(json_t *obj)
{
	char *s = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s) {
		puts(s);
		free(s);
	}
}

/* Run @cmd; print an error reply and return the exit code, or 0 with *res set. */
int call(const struct ctl *ctl, const char *cmd, json_t *args, json_t **res)
{
	int exit_code = 0, rc;

	rc = request(ctl, cmd, args, res, &exit_code);
	if (exit_code)
		return exit_code;
	if (rc != 0) {
		const char *msg = json_string_value(json_object_get(*res, "error"));

		if (ctl->json)
			print_json(*res);
		fprintf(stderr, "hvctl: %s: %s\n", cmd, msg ? msg : strerror(-rc));
		json_decref(*res);
		*res = NULL;
		return EXIT_DAEMON_ERROR;
	}
	return 0;
}

static const char *yesno(json_t *b)
{
	return json_is_true(b) ? "yes" : "no";
}

static const char settings_help[] =
	"Usage: hvctl settings [KEY=VALUE ...] [--json]\n"
	"\n"
	"Show the cluster-wide settings, or change some (cluster-wide, as one change):\n"
	"  cpu_overcommit_pct   vcpus placed per 100 host CPUs (default 400)\n"
	"  mem_overcommit_pct   memory placed per 100 MiB of host memory (default 100)\n"
	"  restart_max          restarts of a failed VM on its node within the window,\n"
	"                       then it moves once, then it goes to error (default 3)\n"
	"  restart_window_s     that window in seconds (default 300)\n"
	"  migrate_max_per_node migrations in flight per node, as source or target; more\n"
	"                       wait in a queue (default 2)\n"
	"  migrate_downtime_ms  the longest pause a live migration may make, handoff\n"
	"                       included (default 300; QEMU's own limit is 100 ms lower)\n"
	"  migrate_bandwidth_mbps  MiB/s a migration may use, 0 no limit (default 0)\n"
	"  migrate_compress     LZ4 on the wire: yes or no (default yes)\n"
	"  migrate_threads      compression threads on the source (default 1)\n"
	"  migrate_timeout_s    a migration running longer is cancelled; the time in the\n"
	"                       queue does not count (default 600)\n"
	"  drain_high, drain_medium, drain_low\n"
	"                       what node drain does with a VM of that priority: live,\n"
	"                       quick or stop (a cold move: stopped, started on another\n"
	"                       node; default live, live, quick)\n"
	"Example: hvctl settings cpu_overcommit_pct=200 restart_max=5 drain_low=live\n";

static int do_settings(struct ctl *ctl, int argc, char **argv)
{
	json_t *set = json_object(), *args = NULL, *res, *v;
	const char *key;
	int rc;

	rc = parse_common(ctl, argc, argv, settings_help);
	if (rc >= 0)
		goto out;
	for (int i = optind; i < argc; i++) {
		char *eq = strchr(argv[i], '='), *end;
		long long n;

		if (!eq || eq == argv[i]) {
			rc = usage_error(settings_help, "settings: '%s' is not KEY=VALUE", argv[i]);
			goto out;
		}
		if (!strcmp(eq + 1, "yes") || !strcmp(eq + 1, "no")) {
			*eq = '\0';
			json_object_set_new(set, argv[i], json_boolean(eq[1] == 'y'));
			continue;
		}
		if (!strcmp(eq + 1, "live") || !strcmp(eq + 1, "quick") || !strcmp(eq + 1, "stop")) {
			*eq = '\0';
			json_object_set_new(set, argv[i], json_string(eq + 1));
			continue;
		}
		n = strtoll(eq + 1, &end, 10);
		if (!eq[1] || *end || n < 0) {
			rc = usage_error(settings_help, "settings: '%s' is not a number (or yes/no, live/quick/stop)",
					 eq + 1);
			goto out;
		}
		*eq = '\0';
		json_object_set_new(set, argv[i], json_integer(n));
	}
	if (json_object_size(set))
		args = json_pack("{s:O}", "set", set);
	rc = call(ctl, "settings", args, &res);
	if (rc)
		goto out;
	if (args) {
		json_decref(res);
		rc = call(ctl, "settings", NULL, &res);
		if (rc)
			goto out;
	}
	if (ctl->json) {
		print_json(res);
	} else {
		json_object_foreach(res, key, v) {
			if (json_is_boolean(v))
				printf("%-22s %s\n", key, yesno(v));
			else if (json_is_string(v))
				printf("%-22s %s\n", key, json_string_value(v));
			else
				printf("%-22s %lld\n", key, (long long)json_integer_value(v));
		}
	}
	json_decref(res);
out:
	json_decref(set);
	json_decref(args);
	return rc;
}

/* "State:" line: this node's copy of the cluster state (absent from an older hvnoded). */
static void print_state_sync(json_t *res)
{
	const char *sync = json_string_value(json_object_get(res, "state_sync"));
	const char *moved = json_string_value(json_object_get(res, "state_corrupt_moved_to"));
	long long version = json_integer_value(json_object_get(res, "state_version"));

	if (!sync)
		return;
	if (!strcmp(sync, "waiting"))
		printf("State:     waiting for the cluster's state (local file was corrupt: moved "
		       "to %s)\n",
		       moved ? moved : "?");
	else
		printf("State:     version %lld, %s%s%s%s\n", version, sync,
		       moved ? " (the corrupt local file is kept in " : "", moved ? moved : "",
		       moved ? ")" : "");
}

static int do_status(struct ctl *ctl, int argc, char **argv)
{
	json_t *res, *members, *m, *v, *leader;
	json_int_t local, leader_id;
	size_t i;
	int rc;

	rc = parse_common(ctl, argc, argv, status_help);
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return usage_error(status_help, "status: unexpected argument '%s'", argv[optind]);
	rc = call(ctl, "status", NULL, &res);
	if (rc)
		return rc;
	if (ctl->json) {
		print_json(res);
		json_decref(res);
		return 0;
	}
	local = json_integer_value(json_object_get(json_object_get(res, "node"), "id"));
	leader = json_object_get(res, "leader");
	leader_id = json_is_integer(leader) ? json_integer_value(leader) : 0;
	printf("Cluster:   %s\n", json_string_value(json_object_get(res, "cluster")));
	printf("Node:      %s", json_string_value(json_object_get(json_object_get(res, "node"), "name")));
	if (local)
		printf(" (id %lld)\n", (long long)local);
	else
		printf(" (id not known until corosync answers)\n");
	printf("Corosync:  %s", json_string_value(json_object_get(res, "corosync")));
	if (json_object_get(res, "corosync_error"))
		printf(" (%s)", json_string_value(json_object_get(res, "corosync_error")));
	printf("\nQuorate:   %s\n", yesno(json_object_get(res, "quorate")));
	print_state_sync(res);
	if (leader_id)
		printf("Leader:    %s (id %lld)\n",
		       json_string_value(json_object_get(res, "leader_name")),
		       (long long)leader_id);
	else
		printf("Leader:    none\n");
	members = json_object_get(res, "members");
	printf("\nMembers: %zu\n  %-6s %-24s %s\n", json_array_size(members), "ID", "NAME", "");
	json_array_foreach(members, i, m)
	{
		json_int_t id = json_integer_value(json_object_get(m, "id"));

		printf("  %-6lld %-24s %s%s%s\n", (long long)id,
		       json_string_value(json_object_get(m, "name")),
		       id == leader_id ? "leader" : "", id == leader_id && id == local ? ", " : "",
		       id == local ? "this node" : "");
	}
	m = json_object_get(res, "nodes");
	printf("\nNodes: %zu\n  %-6s %-16s %-14s %6s %9s %4s\n", json_array_size(m), "ID", "NAME",
	       "STATE", "VCPUS", "MEMORY", "VMS");
	json_array_foreach(m, i, v)
	{
		bool fence = !strcmp(json_string_value(json_object_get(v, "state")) ?: "",
				     "fence-pending");

		printf("  %-6lld %-16s %-14s %6lld %8lldM %4lld%s\n",
		       (long long)json_integer_value(json_object_get(v, "id")),
		       json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "state")),
		       (long long)json_integer_value(json_object_get(v, "vcpus")),
		       (long long)json_integer_value(json_object_get(v, "memory")),
		       (long long)json_integer_value(json_object_get(v, "vms")),
		       fence ? "  <-- NOT FENCED YET: its VMs stay down" :
		       json_is_true(json_object_get(v, "maintenance")) ?
			       "  maintenance: no VM is placed here (hvctl node resume)" : "");
	}
	m = json_object_get(res, "vms");
	printf("\nVMs: %zu\n  %-24s %-10s %-16s %s\n", json_array_size(m), "NAME", "STATE", "NODE",
	       "REASON");
	json_array_foreach(m, i, v)
	{
		json_t *node = json_object_get(v, "node");

		printf("  %-24s %-10s %-16s %s\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "state")),
		       json_is_string(node) ? json_string_value(node) : "-",
		       json_string_value(json_object_get(v, "reason")));
	}
	json_decref(res);
	return 0;
}

/*
 * Options every command takes: --json, --help. Returns -1 to go on (optind
 * at the first operand), or an exit code.
 */
int parse_common(struct ctl *ctl, int argc, char **argv, const char *help)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		default:
			return usage_error(help, "%s: unknown option '%s'", argv[0],
					   argv[optind - 1]);
		}
	}
	return -1;
}

static const struct command {
	const char *name;
	int (*fn)(struct ctl *ctl, int argc, char **argv);
	const char *help;
} commands[] = {
	{ "status", do_status, status_help },
	{ "settings", do_settings, settings_help },
	{ "vm", hvctl_vm, hvctl_vm_help },
	{ "rule", hvctl_rule, hvctl_rule_help },
	{ "plan", hvctl_plan, hvctl_plan_help },
	{ "fence", hvctl_fence, hvctl_fence_help },
	{ "node", hvctl_node, hvctl_node_help },
	{ "acl", hvctl_acl, hvctl_acl_help },
	{ "audit", hvctl_audit, hvctl_audit_help },
	{ "security", hvctl_security, hvctl_security_help },
	{ "inventory", hvctl_inventory, hvctl_inventory_help },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int do_help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		fputs(hvctl_main_help, stdout);
		return 0;
	}
	c = find_command(argv[1]);
	if (!c)
		return usage_error(NULL, "help: unknown command '%s'", argv[1]);
	fputs(c->help, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "ipc", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .ipc_name = getenv("HVCTL_IPC") };
	const struct command *cmd;
	bool help = false;
	int c;

	if (!ctl.ipc_name || !*ctl.ipc_name)
		ctl.ipc_name = HV_IPC_DEFAULT_NAME;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:s:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			ctl.json = true;
			break;
		case 's':
			ctl.ipc_name = optarg;
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			printf("hvctl %s\n", HV_VERSION);
			return 0;
		case ':':
			return usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		if (help) {
			fputs(hvctl_main_help, stdout);
			return 0;
		}
		return usage_error(NULL, "no command given");
	}
	if (strcmp(argv[optind], "help") == 0)
		return do_help(argc - optind, argv + optind);
	cmd = find_command(argv[optind]);
	if (!cmd)
		return usage_error(NULL, "unknown command '%s'", argv[optind]);
	if (help) {
		fputs(cmd->help, stdout);
		return 0;
	}
	return cmd->fn(&ctl, argc - optind, argv + optind);
}
