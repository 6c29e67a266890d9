/* hvctl vm ...: define, run and inspect VMs. */
#include "hvctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char hvctl_vm_help[] =
	"Usage: hvctl vm SUBCOMMAND ... [--json]\n"
	"\n"
	"  vm create NAME --vcpus N --memory SIZE --disk URL[,bus=virtio|ide] [--disk ...]\n"
	"            [--nic bridge=BR[,mac=MAC]]... [--kernel FILE [--initrd FILE] [--append STR]]\n"
	"            [--priority high|medium|low] [--ha on|off] [--no-fence-storage]\n"
	"            [--owner O] [--contact C] [--app A] [--tier T]\n"
	"            [--class public|internal|confidential|secret]\n"
	"            [--prefer N1,N2] [--allow N1,N2] [--state-lun URL]\n"
	"            [--failback none|immediate|HH:MM-HH:MM]\n"
	"      Define a VM. NAME: letters, digits, - _ . (at most 64). SIZE takes K, M, G, T\n"
	"      (plain numbers are MiB). Disks are iSCSI LUNs, iscsi://HOST[:PORT]/IQN/LUN;\n"
	"      each is checked before the VM is defined: reachable, and supporting SCSI-3\n"
	"      persistent reservations, which is how hvcluster makes sure only one host\n"
	"      writes to it. --no-fence-storage accepts LUNs without that protection (the\n"
	"      VM then relies on power fencing). --prefer orders the preferred nodes,\n"
	"      --allow restricts the VM to those nodes. A MAC is generated when not given\n"
	"      and kept across moves. --state-lun: an iSCSI LUN of its own where 'vm save'\n"
	"      writes its state (memory and devices; at least its memory size).\n"
	"      --failback: when a drain moved it and its node leaves maintenance (node\n"
	"      resume), none (default) keeps it where it is, immediate migrates it back\n"
	"      live at once, HH:MM-HH:MM (UTC; may wrap midnight) does so in that window.\n"
	"  vm list [--owner OWNER] [--app APP] [--node NODE]\n"
	"                             every VM: name, state, node, size, owner, app;\n"
	"                             with filters, the VMs that match all of them,\n"
	"                             exactly (--owner '' the VMs without an owner).\n"
	"                             --node: the VMs on NODE as the list shows it; a\n"
	"                             NODE the cluster does not know is an error\n"
	"                             (exit 1), not an empty list\n"
	"  vm show NAME               the definition and runtime state of a VM\n"
	"  vm start NAME              take its LUNs, start its disk server and QEMU here\n"
	"  vm stop NAME               hard stop (power cut), then release its LUNs\n"
	"  vm shutdown NAME [--timeout SEC]\n"
	"                             ACPI power button; hard stop after SEC (default 120)\n"
	"  vm pause NAME | vm resume NAME\n"
	"  vm console-log NAME [--lines N]\n"
	"                             the last N lines (default 50) of the serial console\n"
	"  vm delete NAME             remove the definition of a stopped VM (disks stay)\n"
	"  vm explain NAME            where it runs and why; what placement says now\n"
	"                             (see 'hvctl vm explain --help')\n"
	"  vm migrate NAME [--to NODE] [--mode live|quick] [--wait | --watch]\n"
	"             [--timeout SEC]\n"
	"                             move a running VM to another node, live (default)\n"
	"                             or paused (see 'hvctl vm migrate --help')\n"
	"  vm migrate-cancel NAME     cancel its migration: it stays where it runs\n"
	"  vm save NAME               pause it, write its state to its state LUN, stop\n"
	"                             it: a later start resumes it where it was\n"
	"  vm restore NAME [--on NODE]\n"
	"                             start a saved VM from its state (on NODE, or where\n"
	"                             placement puts it); 'vm start' restores it too\n"
	"\n"
	"While a VM migrates, list shows its state as migrating->NODE, and show its\n"
	"migration and progress; show also says how its last migration ended.\n"
	"\n"
	"With --json, list prints an array of {name, state, node, ...} (filtered\n"
	"alike), show and the other subcommands an object (with \"migration\" and\n"
	"\"last_migration\" when there are such). 'hvctl inventory' lists every VM with\n"
	"its owner, contact and classification, and every host.\n";

static int vm_usage(const char *fmt, const char *arg)
{
	return usage_error(hvctl_vm_help, fmt, arg);
}

/*
 * What getopt_long() returned for the options every vm subcommand takes (--json, --help)
 * and its errors ("vm list: ..." when @cmd is "vm list"): -1 to go on, or the exit code.
 */
static int vm_common_opt(struct ctl *ctl, int c, char **argv, const char *cmd)
{
	switch (c) {
	case 'j':
		ctl->json = true;
		return -1;
	case 'h':
		fputs(hvctl_vm_help, stdout);
		return 0;
	case ':':
		return usage_error(hvctl_vm_help, "%s: option '%s' needs a value", cmd,
				   argv[optind - 1]);
	default:
		return usage_error(hvctl_vm_help, "%s: unknown option '%s'", cmd, argv[optind - 1]);
	}
}

/* "a,b,c" -> ["a","b","c"] */
static json_t *split_list(const char *s)
{
	json_t *a = json_array();
	char *copy = strdup(s), *save = NULL, *tok;

	if (!a || !copy) {
		free(copy);
		json_decref(a);
		return NULL;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(tok));
	free(copy);
	return a;
}

/* "URL[,bus=ide]" */
static json_t *disk_arg(const char *s)
{
	const char *comma = strchr(s, ',');
	json_t *d;

	if (!comma)
		return json_pack("{s:s}", "url", s);
	if (strncmp(comma, ",bus=", 5) != 0)
		return NULL;
	d = json_pack("{s:s%,s:s}", "url", s, (size_t)(comma - s), "bus", comma + 5);
	return d;
}

/* "bridge=BR[,mac=MAC]" */
static json_t *nic_arg(const char *s)
{
	json_t *n = json_object();
	char *copy = strdup(s), *save = NULL, *tok;

	if (!n || !copy)
		goto err;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			goto err;
		*eq = '\0';
		if (strcmp(tok, "bridge") && strcmp(tok, "mac"))
			goto err;
		json_object_set_new(n, tok, json_string(eq + 1));
	}
	free(copy);
	return n;
err:
	free(copy);
	json_decref(n);
	return NULL;
}

static int vm_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "disk", required_argument, NULL, 'd' },
		{ "nic", required_argument, NULL, 'n' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "priority", required_argument, NULL, 'p' },
		{ "ha", required_argument, NULL, 'H' },
		{ "no-fence-storage", no_argument, NULL, 'F' },
		{ "owner", required_argument, NULL, 'o' },
		{ "contact", required_argument, NULL, 'C' },
		{ "app", required_argument, NULL, 'A' },
		{ "tier", required_argument, NULL, 'T' },
		{ "class", required_argument, NULL, 'L' },
		{ "prefer", required_argument, NULL, 'P' },
		{ "allow", required_argument, NULL, 'W' },
		{ "state-lun", required_argument, NULL, 'S' },
		{ "failback", required_argument, NULL, 'B' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *def = json_object(), *disks = json_array(), *nics = json_array(), *res, *v;
	char *end;
	long n;
	int c, rc = EXIT_USAGE;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		v = NULL;
		switch (c) {
		case 'c':
			n = strtol(optarg, &end, 10);
			if (*end || end == optarg) {
				vm_usage("vm create: --vcpus '%s' is not a number", optarg);
				goto out;
			}
			json_object_set_new(def, "vcpus", json_integer(n));
			continue;
		case 'm':
			v = json_string(optarg);
			json_object_set_new(def, "memory", v);
			continue;
		case 'd':
			v = disk_arg(optarg);
			if (!v) {
				vm_usage("vm create: --disk '%s': expected URL[,bus=virtio|ide]", optarg);
				goto out;
			}
			json_array_append_new(disks, v);
			continue;
		case 'n':
			v = nic_arg(optarg);
			if (!v) {
				vm_usage("vm create: --nic '%s': expected bridge=BR[,mac=MAC]", optarg);
				goto out;
			}
			json_array_append_new(nics, v);
			continue;
		case 'k':
			json_object_set_new(def, "kernel", ctl_abs_path(optarg));
			continue;
		case 'i':
			json_object_set_new(def, "initrd", ctl_abs_path(optarg));
			continue;
		case 'a':
			json_object_set_new(def, "append", json_string(optarg));
			continue;
		case 'S':
			json_object_set_new(def, "state_lun", json_string(optarg));
			continue;
		case 'B':
			json_object_set_new(def, "failback", json_string(optarg));
			continue;
		case 'p':
			json_object_set_new(def, "priority", json_string(optarg));
			continue;
		case 'H':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				vm_usage("vm create: --ha '%s': expected on or off", optarg);
				goto out;
			}
			json_object_set_new(def, "ha", json_boolean(!strcmp(optarg, "on")));
			continue;
		case 'F':
			json_object_set_new(def, "fence_storage", json_false());
			continue;
		case 'o':
			json_object_set_new(def, "owner", json_string(optarg));
			continue;
		case 'C':
			json_object_set_new(def, "contact", json_string(optarg));
			continue;
		case 'A':
			json_object_set_new(def, "app", json_string(optarg));
			continue;
		case 'T':
			json_object_set_new(def, "tier", json_string(optarg));
			continue;
		case 'L':
			json_object_set_new(def, "classification", json_string(optarg));
			continue;
		case 'P':
			json_object_set_new(def, "preferred", split_list(optarg));
			continue;
		case 'W':
			json_object_set_new(def, "possible", split_list(optarg));
			continue;
		case 'j':
			ctl->json = true;
			continue;
		case 'h':
			fputs(hvctl_vm_help, stdout);
			rc = 0;
			goto out;
		case ':':
			vm_usage("vm create: option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			vm_usage("vm create: unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		vm_usage("vm create: %s", "no VM name given");
		goto out;
	}
	if (optind + 1 < argc) {
		vm_usage("vm create: unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	json_object_set_new(def, "name", json_string(argv[optind]));
	if (json_array_size(disks))
		json_object_set(def, "disks", disks);
	if (json_array_size(nics))
		json_object_set(def, "nics", nics);
	v = json_pack("{s:O}", "def", def);
	rc = call(ctl, "vm.create", v, &res);
	json_decref(v);
	if (rc)
		goto out;
	if (ctl->json)
		print_json(res);
	else
		printf("vm %s created (uuid %s)\n", argv[optind],
		       json_string_value(json_object_get(res, "uuid")));
	json_decref(res);
out:
	json_decref(def);
	json_decref(disks);
	json_decref(nics);
	return rc;
}

/* vm list [--owner O] [--app A] [--node N]: the daemon filters (and names an unknown node). */
static int vm_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "app", required_argument, NULL, 'A' },
		{ "node", required_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *owner = NULL, *app = NULL, *node = NULL;
	char state[96], vcpus[24], memory[24];
	json_t *args, *res, *vm;
	struct ctl_table t;
	size_t i;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			owner = optarg;
			break;
		case 'A':
			app = optarg;
			break;
		case 'N':
			node = optarg;
			break;
		default:
			rc = vm_common_opt(ctl, c, argv, "vm list");
			if (rc >= 0)
				return rc;
		}
	}
	if (optind < argc)
		return vm_usage("vm list: unexpected argument '%s'", argv[optind]);
	/* a filter not given is left out: the daemon lists every VM */
	args = json_pack("{s:s*,s:s*,s:s*}", "owner", owner, "app", app, "node", node);
	if (!args)
		return vm_usage("vm list: %s", "a filter is not valid UTF-8");
	rc = call(ctl, "vm.list", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json) {
		print_json(json_object_get(res, "vms"));
		json_decref(res);
		return 0;
	}
	ctl_table_init(&t, 7);
	ctl_table_row(&t, "NAME", "STATE", "NODE", "VCPUS", "MEMORY", "OWNER", "APP");
	json_array_foreach(json_object_get(res, "vms"), i, vm)
	{
		snprintf(vcpus, sizeof(vcpus), "%lld",
			 (long long)json_integer_value(json_object_get(vm, "vcpus")));
		snprintf(memory, sizeof(memory), "%lldM",
			 (long long)json_integer_value(json_object_get(vm, "memory")));
		ctl_table_row(&t, ctl_str(vm, "name"), ctl_mig_state(vm, state, sizeof(state)),
			      ctl_str(vm, "node"), vcpus, memory, ctl_str(vm, "owner"),
			      ctl_str(vm, "app"));
	}
	ctl_table_print(&t, "");
	json_decref(res);
	return 0;
}

static void show_human(json_t *vm)
{
	json_t *v;
	size_t i;

	printf("Name:           %s\n", ctl_str(vm, "name"));
	printf("UUID:           %s\n", ctl_str(vm, "uuid"));
	printf("State:          %s", ctl_str(vm, "state"));
	if (json_object_get(vm, "reason"))
		printf(" (%s)", ctl_str(vm, "reason"));
	printf("\nNode:           %s\n", ctl_str(vm, "node"));
	if (json_object_get(vm, "last_error"))
		printf("Last error:     %s\n", ctl_str(vm, "last_error"));
	ctl_mig_show(vm);
	printf("vCPUs:          %lld\n", (long long)json_integer_value(json_object_get(vm, "vcpus")));
	printf("Memory:         %lld MiB\n",
	       (long long)json_integer_value(json_object_get(vm, "memory")));
	json_array_foreach(json_object_get(vm, "disks"), i, v)
		printf("Disk %zu:         %s (%s)\n", i, ctl_str(v, "url"), ctl_str(v, "bus"));
	json_array_foreach(json_object_get(vm, "nics"), i, v)
		printf("NIC %zu:          bridge %s, mac %s\n", i, ctl_str(v, "bridge"), ctl_str(v, "mac"));
	if (*ctl_str(vm, "state_lun") != '-')
		printf("State LUN:      %s%s\n", ctl_str(vm, "state_lun"),
		       json_is_true(json_object_get(vm, "saved")) ? " (holds its saved state)" : "");
	if (*ctl_str(vm, "kernel") != '-')
		printf("Kernel:         %s\nInitrd:         %s\nAppend:         %s\n",
		       ctl_str(vm, "kernel"), ctl_str(vm, "initrd"), ctl_str(vm, "append"));
	printf("Priority:       %s\nHA:             %s\nStorage fence:  %s\n", ctl_str(vm, "priority"),
	       json_is_true(json_object_get(vm, "ha")) ? "on" : "off",
	       json_is_true(json_object_get(vm, "fence_storage")) ? "persistent reservations"
								  : "NONE (power fencing only)");
	printf("Owner:          %s\nContact:        %s\nApp / tier:     %s / %s\n",
	       ctl_str(vm, "owner"), ctl_str(vm, "contact"), ctl_str(vm, "app"), ctl_str(vm, "tier"));
	printf("Classification: %s\n", ctl_str(vm, "classification"));
	if (json_is_string(json_object_get(vm, "home")))
		printf("Failback:       %s (a drain moved it off %s)\n", ctl_str(vm, "failback"),
		       ctl_str(vm, "home"));
	else
		printf("Failback:       %s\n", ctl_str(vm, "failback"));
	if (json_is_string(json_object_get(vm, "held")))
		printf("Held:           %s\n", ctl_str(vm, "held"));
	if (json_is_true(json_object_get(vm, "frozen")))
		printf("Frozen:         its node stopped it on shutdown; it starts there again on its return\n");
	printf("Preferred:      ");
	json_array_foreach(json_object_get(vm, "preferred"), i, v)
		printf("%s%s", i ? "," : "", json_string_value(v));
	printf("%s\nPossible:       ",
	       json_array_size(json_object_get(vm, "preferred")) ? "" : "-");
	json_array_foreach(json_object_get(vm, "possible"), i, v)
		printf("%s%s", i ? "," : "", json_string_value(v));
	printf("%s\n", json_array_size(json_object_get(vm, "possible")) ? "" : "any node");
}

int hvctl_vm_call(struct ctl *ctl, int argc, char **argv, const char *help, const char *cmd,
		  json_t **res)
{
	json_t *args;
	int rc;

	rc = parse_common(ctl, argc, argv, help);
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return usage_error(help, "vm %s: no VM name given", argv[0]);
	if (optind + 1 < argc)
		return usage_error(help, "vm %s: unexpected argument '%s'", argv[0],
				   argv[optind + 1]);
	args = json_pack("{s:s}", "name", argv[optind]);
	if (!args)
		return usage_error(help, "vm %s: the VM name is not valid UTF-8", argv[0]);
	rc = call(ctl, cmd, args, res);
	json_decref(args);
	return rc ? rc : -1;
}

/* Subcommands that take just NAME (and --json). */
static int vm_simple(struct ctl *ctl, int argc, char **argv, const char *cmd, const char *done)
{
	json_t *res;
	int rc;

	rc = hvctl_vm_call(ctl, argc, argv, hvctl_vm_help, cmd, &res);
	if (rc >= 0)
		return rc;
	if (ctl->json)
		print_json(res);
	else if (done)
		printf("vm %s %s\n", argv[optind], done);
	else
		show_human(res);
	json_decref(res);
	return 0;
}

/* vm restore NAME [--on NODE] */
static int vm_restore(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "on", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *on = NULL;
	json_t *args, *res;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'o')
			on = optarg;
		else if (c == 'j')
			ctl->json = true;
		else if (c == 'h')
			return fputs(hvctl_vm_help, stdout) < 0;
		else
			return vm_usage("vm restore: unknown option or missing value '%s'",
					argv[optind - 1]);
	}
	if (optind + 1 != argc)
		return vm_usage("vm restore: %s", "expected one VM name");
	args = on ? json_pack("{s:s,s:s}", "name", argv[optind], "on", on)
		  : json_pack("{s:s}", "name", argv[optind]);
	rc = call(ctl, "vm.restore", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		printf("vm %s restored on %s\n", argv[optind], ctl_str(res, "node"));
	json_decref(res);
	return 0;
}

/* Subcommands with one integer option (--timeout, --lines). */
static int vm_with_number(struct ctl *ctl, int argc, char **argv, const char *opt, long *value)
{
	const struct option opts[] = {
		{ opt, required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			*value = strtol(optarg, &end, 10);
			if (*end || end == optarg || *value < 0)
				return vm_usage("vm: '%s' is not a non-negative number", optarg);
			break;
		default:
			rc = vm_common_opt(ctl, c, argv, "vm");
			if (rc >= 0)
				return rc;
		}
	}
	if (optind >= argc)
		return vm_usage("vm %s: no VM name given", argv[0]);
	if (optind + 1 < argc)
		return vm_usage("vm %s: unexpected argument", argv[0]);
	return -1;
}

static int vm_shutdown(struct ctl *ctl, int argc, char **argv)
{
	long timeout = 120;
	json_t *args, *res;
	int rc = vm_with_number(ctl, argc, argv, "timeout", &timeout);

	if (rc >= 0)
		return rc;
	args = json_pack("{s:s,s:I}", "name", argv[optind], "timeout", (json_int_t)timeout);
	rc = call(ctl, "vm.shutdown", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		printf("vm %s shut down%s\n", argv[optind],
		       json_is_true(json_object_get(res, "forced")) ? " (forced after timeout)" : "");
	json_decref(res);
	return 0;
}

static int vm_console(struct ctl *ctl, int argc, char **argv)
{
	long lines = 50;
	json_t *args, *res;
	int rc = vm_with_number(ctl, argc, argv, "lines", &lines);

	if (rc >= 0)
		return rc;
	args = json_pack("{s:s,s:I}", "name", argv[optind], "lines", (json_int_t)lines);
	rc = call(ctl, "vm.console", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		fputs(ctl_str(res, "text"), stdout);
	json_decref(res);
	return 0;
}

int hvctl_vm(struct ctl *ctl, int argc, char **argv)
{
	static const struct {
		const char *name;
		const char *cmd;
		const char *done; /* NULL: print the VM */
	} simple[] = {
		{ "show", "vm.show", NULL },	     { "start", "vm.start", "started" },
		{ "stop", "vm.stop", "stopped" },    { "pause", "vm.pause", "paused" },
		{ "resume", "vm.resume", "resumed" }, { "delete", "vm.delete", "deleted" },
		{ "save", "vm.save", "saved to its state LUN, stopped" },
	};

	if (argc < 2)
		return vm_usage("vm: %s", "no subcommand given");
	argc--;
	argv++;
	if (!strcmp(argv[0], "create"))
		return vm_create(ctl, argc, argv);
	if (!strcmp(argv[0], "list"))
		return vm_list(ctl, argc, argv);
	if (!strcmp(argv[0], "shutdown"))
		return vm_shutdown(ctl, argc, argv);
	if (!strcmp(argv[0], "console-log"))
		return vm_console(ctl, argc, argv);
	if (!strcmp(argv[0], "explain"))
		return hvctl_vm_explain(ctl, argc, argv);
	if (!strcmp(argv[0], "migrate"))
		return hvctl_vm_migrate(ctl, argc, argv);
	if (!strcmp(argv[0], "migrate-cancel"))
		return hvctl_vm_migrate_cancel(ctl, argc, argv);
	if (!strcmp(argv[0], "restore"))
		return vm_restore(ctl, argc, argv);
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		if (!strcmp(argv[0], simple[i].name))
			return vm_simple(ctl, argc, argv, simple[i].cmd, simple[i].done);
	return vm_usage("vm: unknown subcommand '%s'", argv[0]);
}
