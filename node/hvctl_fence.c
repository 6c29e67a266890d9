/* hvctl fence ..., hvctl node ...: fence devices and levels, fence history, the nodes. */
#include "hvctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char hvctl_fence_help[] =
	"Usage: hvctl fence SUBCOMMAND ... [--json]\n"
	"\n"
	"How the cluster fences a node that is gone: it tries the node's levels in\n"
	"order until one succeeds; a level succeeds when each of its devices does. The\n"
	"built-in device storage preempts the node's SCSI-3 reservation key on the LUNs\n"
	"of its VMs. Any other device is an agent in the fence-agents protocol (such\n"
	"as fence_ipmilan) that powers the node off. A node without levels is fenced\n"
	"by storage alone.\n"
	"\n"
	"  fence device add NAME --agent PATH [--param KEY=VALUE]... [--secret KEY=FILE]...\n"
	"      define a device: the agent and its parameters (the agent's own names:\n"
	"      ip, username, ...). A secret (a password) is given as the absolute path\n"
	"      of a file holding it, never itself: the node that fences reads the file\n"
	"      then, so it must exist on every node, readable by root only. A\n"
	"      parameter whose name says secret (passw..., secret, token, community,\n"
	"      ...) must be given so. The agent must exist on every node; this node\n"
	"      checks that it is an executable file writable by root only, and asks it\n"
	"      (action=metadata) which parameters it takes: unknown ones and missing\n"
	"      required ones are refused, by the agent's names.\n"
	"  fence device list          every device: name, agent, parameters\n"
	"  fence device del NAME      delete a device no level uses\n"
	"  fence level add NODE INDEX DEVICE[,DEVICE...]\n"
	"      give NODE a level (INDEX 1..99: the order levels are tried in) made of\n"
	"      these devices, all of which must succeed (e.g. storage,ipmi: preempt\n"
	"      the keys and power off)\n"
	"  fence level list           every node's levels (\"1 storage (default)\" for a\n"
	"                             node without any)\n"
	"  fence level del NODE INDEX delete a level\n"
	"  fence history              the last fences, oldest first: when, which node,\n"
	"                             ok or FAILED, by which node, what each level did\n"
	"\n"
	"Changes need root. NAME: letters, digits, - _ . (at most 64); parameter\n"
	"names: a-z 0-9 _. action, plug, port and nodename are set by hvcluster when\n"
	"it fences.\n"
	"\n"
	"With --json: device list prints an array of {name, agent, params {KEY:\n"
	"VALUE}, secrets {KEY: FILE}}; level list an array of {node, node_id, index,\n"
	"devices, default}; history an array of {time, at_ms, node, node_id, ok, by,\n"
	"by_id, detail}; add and del print {op, applied}.\n";

const char hvctl_node_help[] =
	"Usage: hvctl node SUBCOMMAND ... [--json]\n"
	"\n"
	"  node list                  every node: id, name, state, capacity, failure\n"
	"                             domain, clearance, watchdog, VMs assigned to it\n"
	"  node drain NODE [--wait] [--force] [--timeout SECONDS]\n"
	"                             put NODE in maintenance (nothing is placed there)\n"
	"                             and move every VM off it, by the policy for its\n"
	"                             priority (settings drain_high, drain_medium,\n"
	"                             drain_low: live, quick or stop; by default live,\n"
	"                             live, quick); a failed live migration falls back\n"
	"                             to quick. Rules and capacity hold; at most\n"
	"                             migrate_max_per_node at once. A VM that cannot go\n"
	"                             anywhere stays, with the reason; --force stops it\n"
	"                             instead (it starts again where a node can take\n"
	"                             it). --wait follows it VM by VM: exit 0 once the\n"
	"                             node is empty, 1 when VMs stay, 4 after --timeout\n"
	"  node resume NODE           end NODE's maintenance; VMs the drain moved whose\n"
	"                             failback is immediate (or a window, when open)\n"
	"                             migrate back live (hvctl vm create --failback)\n"
	"  node impact NODE [--csv]   what a downtime of NODE means, to send to the\n"
	"                             owners before a maintenance window: each VM on it,\n"
	"                             its owner, contact, app, tier, priority,\n"
	"                             classification, and what a drain does with it now\n"
	"                             (live or quick to a node, stop, or stays: why)\n"
	"  node fence NODE            fence NODE now, as if it had failed: it becomes\n"
	"                             fence-pending, the leader fences it through its\n"
	"                             levels (hvctl fence level list) and its VMs are\n"
	"                             recovered elsewhere once it is fenced\n"
	"  node confirm-fenced NODE   say that fence-pending NODE is off (you powered it\n"
	"                             off by hand): it counts as fenced and its VMs start\n"
	"                             elsewhere. If it is not really off, its VMs then\n"
	"                             run twice and their disks are corrupted: check\n"
	"                             the host first.\n"
	"\n"
	"Drain, resume, fence and confirm-fenced need the admin role (root is), are\n"
	"audited; fence and confirm-fenced cannot name the node hvctl runs on. States:\n"
	"joining, online, fence-pending (gone, not fenced yet: its VMs stay down),\n"
	"fenced, offline (hvnoded stopped cleanly running nothing: not fenced); with\n"
	"(draining) while a maintenance still has VMs to move and (maintenance) once\n"
	"it is empty.\n"
	"\n"
	"With --json: list prints an array of {id, name, state, vcpus, memory, domain,\n"
	"clearance, maintenance, draining, ready, watchdog_s, vms,\n"
	"effective_classification (the highest classification of its VMs; null: no\n"
	"VM), member, local, ...}; impact (and drain without --wait) {node, state,\n"
	"maintenance, vms: [{name, owner, contact, app, tier, priority,\n"
	"classification, ha, action (live, quick, stop, stays, wait), to, why,\n"
	"fallback, state}]}; drain --wait {node, vms: [{name, result (moved, stopped,\n"
	"stays), why}], elapsed_ms, empty}; resume {node, failback: [{name, failback,\n"
	"on}]}; fence and confirm-fenced {op, applied}.\n";

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static int fence_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fence_usage(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return usage_error(hvctl_fence_help, "%s", msg);
}

static int node_usage(const char *fmt, const char *arg)
{
	return usage_error(hvctl_node_help, fmt, arg);
}

/* --- small pieces of the subcommands ---------------------------------------------------- */

/* Send @args (consumed) as @cmd; print {op, applied} with --json, else @done. */
static int change(struct ctl *ctl, const char *cmd, json_t *args, const char *done)
{
	json_t *res;
	int rc;

	if (!args) {
		fprintf(stderr, "hvctl: %s: out of memory or not valid UTF-8\n", cmd);
		return EXIT_USAGE;
	}
	rc = call(ctl, cmd, args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		puts(done);
	json_decref(res);
	return 0;
}

/* Fetch @cmd's @key array (the caller decrefs *res); 0 or the exit code. */
static int fetch(struct ctl *ctl, const char *cmd, const char *key, json_t **res, json_t **arr)
{
	int rc = call(ctl, cmd, NULL, res);

	if (rc)
		return rc;
	*arr = json_object_get(*res, key);
	if (ctl->json)
		print_json(*arr);
	return 0;
}

/* Only options common to all (--json, --help), then exactly @nargs operands. */
static int operands(struct ctl *ctl, int argc, char **argv, const char *help, int nargs,
		    const char *what, const char *missing)
{
	int rc;

	argv[0] = (char *)what; /* parse_common's messages name argv[0]: the whole subcommand */
	rc = parse_common(ctl, argc, argv, help);
	if (rc >= 0)
		return rc;
	if (argc - optind < nargs)
		return usage_error(help, "%s: %s", what, missing);
	if (argc - optind > nargs)
		return usage_error(help, "%s: unexpected argument '%s'", what,
				   argv[optind + nargs]);
	return -1;
}

/* "1".."99", or 0. */
static unsigned int parse_index(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 99)
		return 0;
	return (unsigned int)v;
}

/* --- fence device ----------------------------------------------------------------------- */

/* KEY=... added to @obj; a usage error when it is not KEY=VALUE or KEY was given before. */
static int add_kv(json_t *params, json_t *secrets, const char *opt, char *kv, bool secret)
{
	char *eq = strchr(kv, '=');
	const char *key = kv;

	if (!eq || eq == kv)
		/* for a secret, the argument may be the secret itself: never print it */
		return secret ? fence_usage("fence device add: --secret takes KEY=FILE")
			      : fence_usage("fence device add: --param '%s' is not KEY=VALUE", kv);
	*eq = '\0';
	if (json_object_get(params, key) || json_object_get(secrets, key))
		return fence_usage("fence device add: parameter %s is given twice", key);
	if (secret && eq[1] != '/')
		return fence_usage("fence device add: --secret %s: give the absolute path of a file holding the secret, not the secret itself",
				   key);
	if (json_object_set_new(secret ? secrets : params, key, json_string(eq + 1)))
		return fence_usage("fence device add: %s %s: not valid UTF-8", opt, key);
	return -1;
}

/*
 * A secret file is read when a node fences, by whichever node is the leader
 * then: say now if it is missing here or others can read it.
 */
static void warn_secret_files(json_t *secrets)
{
	const char *key;
	struct stat st;
	json_t *v;

	json_object_foreach(secrets, key, v)
	{
		const char *path = json_string_value(v);

		if (stat(path, &st) < 0)
			fprintf(stderr,
				"hvctl: warning: secret %s: file %s: %s on this node; each node that may fence needs it\n",
				key, path, strerror(errno));
		else if (st.st_mode & (S_IRWXG | S_IRWXO))
			fprintf(stderr,
				"hvctl: warning: secret %s: file %s can be read by group or others (mode %04o): chmod 600 it\n",
				key, path, (unsigned)(st.st_mode & 07777));
	}
}

static int device_add_send(struct ctl *ctl, const char *name, const char *agent, json_t *params,
			   json_t *secrets)
{
	json_t *dev, *args, *res;
	int rc;

	dev = json_pack("{s:s,s:o,s:O,s:O}", "name", name, "agent", ctl_abs_path(agent), "params",
			params, "secrets", secrets);
	if (!dev)
		return fence_usage("fence device add: '%s' or '%s' is not valid UTF-8", name,
				   agent);
	args = json_pack("{s:O}", "device", dev);
	rc = args ? call(ctl, "fence.device.add", args, &res) : EXIT_DAEMON_ERROR;
	json_decref(args);
	if (rc)
		goto out;
	if (ctl->json)
		print_json(res);
	else
		printf("fence device %s added: agent %s, %zu parameter%s, %zu secret file%s\n",
		       name, ctl_str(dev, "agent"), json_object_size(params),
		       json_object_size(params) == 1 ? "" : "s", json_object_size(secrets),
		       json_object_size(secrets) == 1 ? "" : "s");
	json_decref(res);
	warn_secret_files(secrets);
out:
	json_decref(dev);
	return rc;
}

static int device_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "param", required_argument, NULL, 'p' },
		{ "secret", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *params = json_object(), *secrets = json_object();
	const char *agent = NULL;
	int c, rc = EXIT_USAGE;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			agent = optarg;
			continue;
		case 'p':
		case 's':
			rc = add_kv(params, secrets, c == 's' ? "--secret" : "--param", optarg,
				    c == 's');
			if (rc >= 0)
				goto out;
			rc = EXIT_USAGE;
			continue;
		case 'j':
			ctl->json = true;
			continue;
		case 'h':
			fputs(hvctl_fence_help, stdout);
			rc = 0;
			goto out;
		case ':':
			fence_usage("fence device add: option '%s' needs a value",
				    argv[optind - 1]);
			goto out;
		default:
			fence_usage("fence device add: unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		fence_usage("fence device add: no device name given");
		goto out;
	}
	if (optind + 1 < argc) {
		fence_usage("fence device add: unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!agent) {
		fence_usage("fence device add: --agent PATH is needed");
		goto out;
	}
	rc = device_add_send(ctl, argv[optind], agent, params, secrets);
out:
	json_decref(params);
	json_decref(secrets);
	return rc;
}

/* "k=v k2=v2 password=<file /etc/x>": the secrets as the files they are. */
static const char *device_params(json_t *dev, char *buf, size_t len)
{
	const char *const kinds[] = { "params", "secrets" };
	const char *key;
	size_t off = 0;
	json_t *v;

	buf[0] = '\0';
	for (size_t k = 0; k < 2; k++)
		json_object_foreach(json_object_get(dev, kinds[k]), key, v)
		{
			int n = snprintf(buf + off, len - off, k ? "%s%s=<file %s>" : "%s%s=%s",
					 off ? " " : "", key, json_string_value(v));

			if (n < 0 || (size_t)n >= len - off)
				return buf;
			off += (size_t)n;
		}
	return buf;
}

static int device_list(struct ctl *ctl, int argc, char **argv)
{
	json_t *res, *devs, *dev;
	char params[4096];
	struct ctl_table t;
	size_t i;
	int rc;

	rc = operands(ctl, argc, argv, hvctl_fence_help, 0, "fence device list", "");
	if (rc >= 0)
		return rc;
	rc = fetch(ctl, "fence.device.list", "devices", &res, &devs);
	if (rc || ctl->json)
		goto out;
	if (!json_array_size(devs)) {
		printf("no fence devices (the built-in device %s needs none)\n", "storage");
		goto out;
	}
	ctl_table_init(&t, 3);
	ctl_table_row(&t, "NAME", "AGENT", "PARAMS");
	json_array_foreach(devs, i, dev)
		ctl_table_row(&t, ctl_str(dev, "name"), ctl_str(dev, "agent"),
			  device_params(dev, params, sizeof(params)));
	ctl_table_print(&t, "");
out:
	json_decref(res);
	return rc;
}

static int device_del(struct ctl *ctl, int argc, char **argv)
{
	char done[256];
	int rc;

	rc = operands(ctl, argc, argv, hvctl_fence_help, 1, "fence device del",
		      "no device name given");
	if (rc >= 0)
		return rc;
	snprintf(done, sizeof(done), "fence device %s deleted", argv[optind]);
	return change(ctl, "fence.device.del", json_pack("{s:s}", "name", argv[optind]), done);
}

static int fence_device(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return fence_usage("fence device: no subcommand given (add, list or del)");
	argc--;
	argv++;
	if (!strcmp(argv[0], "add"))
		return device_add(ctl, argc, argv);
	if (!strcmp(argv[0], "list"))
		return device_list(ctl, argc, argv);
	if (!strcmp(argv[0], "del") || !strcmp(argv[0], "delete"))
		return device_del(ctl, argc, argv);
	return fence_usage("fence device: unknown subcommand '%s'", argv[0]);
}

/* --- fence level ------------------------------------------------------------------------- */

static int level_add(struct ctl *ctl, int argc, char **argv)
{
	json_t *devs = json_array();
	char *copy, *save = NULL, *tok, done[1024], names[512];
	unsigned int index;
	int rc;

	rc = operands(ctl, argc, argv, hvctl_fence_help, 3, "fence level add",
		      "NODE INDEX DEVICE[,DEVICE...] needed");
	if (rc >= 0)
		goto out;
	index = parse_index(argv[optind + 1]);
	if (!index) {
		rc = fence_usage("fence level add: index '%s': a number 1 to 99", argv[optind + 1]);
		goto out;
	}
	copy = strdup(argv[optind + 2]);
	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
		json_array_append_new(devs, json_string(tok));
	free(copy);
	if (!json_array_size(devs)) {
		rc = fence_usage("fence level add: no device given");
		goto out;
	}
	snprintf(done, sizeof(done), "fence level %u of node %s added: %s%s", index, argv[optind],
		 ctl_join(devs, names, sizeof(names)),
		 json_array_size(devs) > 1 ? " (all must succeed)" : "");
	rc = change(ctl, "fence.level.add",
		    json_pack("{s:s,s:I,s:O}", "node", argv[optind], "index", (json_int_t)index,
			      "devices", devs),
		    done);
out:
	json_decref(devs);
	return rc;
}

static int level_list(struct ctl *ctl, int argc, char **argv)
{
	json_t *res, *levels, *lv;
	char index[16], devs[1024];
	struct ctl_table t;
	size_t i;
	int rc;

	rc = operands(ctl, argc, argv, hvctl_fence_help, 0, "fence level list", "");
	if (rc >= 0)
		return rc;
	rc = fetch(ctl, "fence.level.list", "levels", &res, &levels);
	if (rc || ctl->json)
		goto out;
	ctl_table_init(&t, 3);
	ctl_table_row(&t, "NODE", "INDEX", "DEVICES");
	json_array_foreach(levels, i, lv)
	{
		bool dflt = json_is_true(json_object_get(lv, "default"));

		snprintf(index, sizeof(index), "%lld", num(lv, "index"));
		ctl_join(json_object_get(lv, "devices"), devs, sizeof(devs) - 16);
		if (dflt)
			strcat(devs, " (default)");
		ctl_table_row(&t, ctl_str(lv, "node"), index, devs);
	}
	ctl_table_print(&t, "");
out:
	json_decref(res);
	return rc;
}

static int level_del(struct ctl *ctl, int argc, char **argv)
{
	unsigned int index;
	char done[256];
	int rc;

	rc = operands(ctl, argc, argv, hvctl_fence_help, 2, "fence level del", "NODE INDEX needed");
	if (rc >= 0)
		return rc;
	index = parse_index(argv[optind + 1]);
	if (!index)
		return fence_usage("fence level del: index '%s': a number 1 to 99",
				   argv[optind + 1]);
	snprintf(done, sizeof(done), "fence level %u of node %s deleted", index, argv[optind]);
	return change(ctl, "fence.level.del",
		      json_pack("{s:s,s:I}", "node", argv[optind], "index", (json_int_t)index),
		      done);
}

static int fence_level(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return fence_usage("fence level: no subcommand given (add, list or del)");
	argc--;
	argv++;
	if (!strcmp(argv[0], "add"))
		return level_add(ctl, argc, argv);
	if (!strcmp(argv[0], "list"))
		return level_list(ctl, argc, argv);
	if (!strcmp(argv[0], "del") || !strcmp(argv[0], "delete"))
		return level_del(ctl, argc, argv);
	return fence_usage("fence level: unknown subcommand '%s'", argv[0]);
}

/* --- fence history ----------------------------------------------------------------------- */

static int fence_history(struct ctl *ctl, int argc, char **argv)
{
	json_t *res, *fences, *f;
	struct ctl_table t;
	size_t i;
	int rc;

	rc = operands(ctl, argc, argv, hvctl_fence_help, 0, "fence history", "");
	if (rc >= 0)
		return rc;
	rc = fetch(ctl, "fence.history", "fences", &res, &fences);
	if (rc || ctl->json)
		goto out;
	if (!json_array_size(fences)) {
		printf("no fences recorded\n");
		goto out;
	}
	ctl_table_init(&t, 5);
	ctl_table_row(&t, "TIME", "NODE", "RESULT", "BY", "DETAIL");
	json_array_foreach(fences, i, f)
		ctl_table_row(&t, ctl_str(f, "time"), ctl_str(f, "node"),
			  json_is_true(json_object_get(f, "ok")) ? "ok" : "FAILED", ctl_str(f, "by"),
			  ctl_str(f, "detail"));
	ctl_table_print(&t, "");
out:
	json_decref(res);
	return rc;
}

int hvctl_fence(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return fence_usage("fence: no subcommand given (device, level or history)");
	argc--;
	argv++;
	if (!strcmp(argv[0], "device"))
		return fence_device(ctl, argc, argv);
	if (!strcmp(argv[0], "level"))
		return fence_level(ctl, argc, argv);
	if (!strcmp(argv[0], "history"))
		return fence_history(ctl, argc, argv);
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		fputs(hvctl_fence_help, stdout);
		return 0;
	}
	return fence_usage("fence: unknown subcommand '%s'", argv[0]);
}

/* --- node ---------------------------------------------------------------------------------- */

static const char *node_state(json_t *n, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", ctl_str(n, "state"),
		 !json_is_true(json_object_get(n, "maintenance")) ? "" :
		 json_is_true(json_object_get(n, "draining")) ? " (draining)" : " (maintenance)");
	return buf;
}

static int node_list(struct ctl *ctl, int argc, char **argv)
{
	char id[16], state[64], vcpus[16], mem[32], wd[16], vms[16];
	json_t *res, *nodes, *n;
	struct ctl_table t;
	size_t i;
	int rc;

	rc = operands(ctl, argc, argv, hvctl_node_help, 0, "node list", "");
	if (rc >= 0)
		return rc;
	rc = fetch(ctl, "node.list", "nodes", &res, &nodes);
	if (rc || ctl->json)
		goto out;
	if (!json_array_size(nodes)) {
		printf("no nodes known yet\n");
		goto out;
	}
	ctl_table_init(&t, 9);
	ctl_table_row(&t, "ID", "NAME", "STATE", "VCPUS", "MEMORY", "DOMAIN", "CLEARANCE", "WATCHDOG",
		  "VMS");
	json_array_foreach(nodes, i, n)
	{
		snprintf(id, sizeof(id), "%lld", num(n, "id"));
		snprintf(vcpus, sizeof(vcpus), "%lld", num(n, "vcpus"));
		snprintf(mem, sizeof(mem), "%lldM", num(n, "memory"));
		snprintf(wd, sizeof(wd), num(n, "watchdog_s") ? "%llds" : "none",
			 num(n, "watchdog_s"));
		snprintf(vms, sizeof(vms), "%lld", num(n, "vms"));
		ctl_table_row(&t, id, ctl_str(n, "name"), node_state(n, state, sizeof(state)), vcpus, mem,
			  ctl_str(n, "domain"), ctl_str(n, "clearance"), wd, vms);
	}
	ctl_table_print(&t, "");
out:
	json_decref(res);
	return rc;
}

/* node fence NODE, node confirm-fenced NODE. */
static int node_admin(struct ctl *ctl, int argc, char **argv, bool confirm)
{
	char done[512];
	int rc;

	rc = operands(ctl, argc, argv, hvctl_node_help, 1,
		      confirm ? "node confirm-fenced" : "node fence", "no node name given");
	if (rc >= 0)
		return rc;
	if (confirm)
		snprintf(done, sizeof(done),
			 "node %s confirmed fenced: its VMs may now start elsewhere", argv[optind]);
	else
		snprintf(done, sizeof(done),
			 "node %s: fence asked; the leader fences it now (see hvctl node list, hvctl fence history)",
			 argv[optind]);
	return change(ctl, confirm ? "node.confirm" : "node.fence",
		      json_pack("{s:s}", "node", argv[optind]), done);
}

int hvctl_node(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return node_usage("node: %s",
				  "no subcommand given (list, drain, resume, impact, fence or confirm-fenced)");
	argc--;
	argv++;
	if (!strcmp(argv[0], "list"))
		return node_list(ctl, argc, argv);
	if (!strcmp(argv[0], "fence"))
		return node_admin(ctl, argc, argv, false);
	if (!strcmp(argv[0], "confirm-fenced"))
		return node_admin(ctl, argc, argv, true);
	if (!strcmp(argv[0], "drain") || !strcmp(argv[0], "resume") || !strcmp(argv[0], "impact"))
		return hvctl_node_maint(ctl, argc, argv);
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		fputs(hvctl_node_help, stdout);
		return 0;
	}
	return node_usage("node: unknown subcommand '%s'", argv[0]);
}
