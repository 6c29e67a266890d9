/* hvctl rule ..., hvctl plan, hvctl vm explain: placement rules and what placement says. */
#include "hvctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char hvctl_rule_help[] =
	"Usage: hvctl rule SUBCOMMAND ... [--json]\n"
	"\n"
	"Placement rules: which VMs must (hard) or should (soft) run apart or together.\n"
	"A hard rule is never broken by the cluster: a VM stays down rather than break\n"
	"it. A soft rule is kept when the cluster can; 'hvctl vm explain' and\n"
	"'hvctl plan' say when it is not.\n"
	"\n"
	"  rule add anti-affinity NAME --vms A,B[,...] [--hard|--soft]\n"
	"           [--scope node|domain]\n"
	"      the VMs run on distinct nodes (--scope domain: distinct failure domains)\n"
	"  rule add affinity NAME --vms A,B[,...] [--hard|--soft]\n"
	"      the VMs run on one node\n"
	"  rule add tier-separation NAME --app APP [--hard|--soft]\n"
	"      VMs of app APP with different tiers never share a node (see vm create\n"
	"      --app and --tier)\n"
	"  rule list                  every rule: name, type, hard/soft, scope, members\n"
	"  rule show NAME             a rule, the state and node of its VMs, and whether\n"
	"                             the VMs where they run now keep it\n"
	"  rule del NAME              delete a rule\n"
	"\n"
	"Rules are hard unless --soft is given; the scope is node unless --scope domain\n"
	"is given. NAME: letters, digits, - _ . (at most 64). --vms names 2 to 32 VMs\n"
	"that exist. A rule that contradicts another (an affinity of two VMs that an\n"
	"anti-affinity keeps apart, or of two tiers of an app that a tier separation\n"
	"keeps apart) is refused, naming the other rule.\n"
	"\n"
	"With --json: list prints an array of {name, type, hard, scope, vms} (or app\n"
	"instead of vms and no scope: tier-separation); show that object with members\n"
	"[{name, exists, state, node, tier}], kept (bool) and broken_by (when not kept);\n"
	"add and del print {op, applied}.\n";

const char hvctl_plan_help[] =
	"Usage: hvctl plan --fail NODE[,NODE...] [--json]\n"
	"\n"
	"What if these nodes failed now? Runs the placement engine on the current\n"
	"cluster state with those nodes unusable; nothing in the cluster changes.\n"
	"Every VM running on them needs a new node, as the manager would recover it\n"
	"(HA VMs wanted running; the others stay down); every other running VM stays\n"
	"where it runs.\n"
	"\n"
	"Prints, for each VM of the failed nodes, where it would go and why, or why it\n"
	"cannot be placed; the soft rules that placement breaks; running VMs of other\n"
	"nodes that a hard rule would no longer let stay; and a summary. --fail may be\n"
	"given more than once.\n"
	"\n"
	"Exit status: 0 also when some VMs cannot be placed (the output says so),\n"
	"1 on errors (an unknown node), 2 on usage errors.\n"
	"\n"
	"With --json: {\"fail\": [NODE...], \"vms\": [{name, from, to (null: no node),\n"
	"reason, broken, recover}], \"unplaced\": N, \"moves\": [...]}. reason: why this\n"
	"node, or why none; broken: soft rules broken (\"\" none); recover: false when\n"
	"the cluster would not restart it elsewhere (not HA, or not wanted running);\n"
	"unplaced: how many VMs of the failed nodes get no node; moves: running VMs of\n"
	"other nodes that a hard rule would no longer let stay (same fields).\n";

static const char vm_explain_help[] =
	"Usage: hvctl vm explain NAME [--json]\n"
	"\n"
	"Where VM NAME is and why: its state as the cluster's manager holds it, its\n"
	"node, its assignment epoch, the reason the manager recorded, the last event\n"
	"its node reported. Then what the placement engine says now, with the nodes\n"
	"that are online and not in maintenance: if the VM runs, whether it stays (and\n"
	"why), if not, where it would start; or why it cannot be placed; the soft rules\n"
	"that breaks. Then the rules that name it, and the nodes.\n"
	"\n"
	"With --json: {name, state, node, epoch, want_running, ha, reason, restarts,\n"
	"event {event, epoch, node, reason} (when any), placement {need, node, moved,\n"
	"why, reason, broken}, rules [...], nodes [{name, state, maintenance, usable}]}.\n";

/* "a,b,c" -> ["a","b","c"] appended to @a; empty items are skipped. 0 or -1 (no memory). */
static int split_into(json_t *a, const char *s)
{
	char *copy = strdup(s), *save = NULL, *tok;

	if (!copy) {
		fprintf(stderr, "hvctl: out of memory\n");
		return -1;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(tok));
	free(copy);
	return 0;
}

/* --- rule ------------------------------------------------------------------------------ */

static int rule_usage(const char *fmt, const char *arg)
{
	return usage_error(hvctl_rule_help, fmt, arg);
}

static const char *rule_scope(json_t *r)
{
	return json_object_get(r, "scope") ? ctl_str(r, "scope") : "-";
}

/* MEMBERS: the VMs, or "app APP" for a tier separation. */
static const char *rule_members(json_t *r, char *buf, size_t len)
{
	if (json_object_get(r, "app")) {
		snprintf(buf, len, "app %s", ctl_str(r, "app"));
		return buf;
	}
	return ctl_join(json_object_get(r, "vms"), buf, len);
}

static void rule_table(json_t *rules, const char *indent)
{
	struct ctl_table t;
	char members[4096];
	json_t *r;
	size_t i;

	ctl_table_init(&t, 5);
	ctl_table_row(&t, "NAME", "TYPE", "HARD", "SCOPE", "MEMBERS");
	json_array_foreach(rules, i, r)
		ctl_table_row(&t, ctl_str(r, "name"), ctl_str(r, "type"),
			  json_is_true(json_object_get(r, "hard")) ? "yes" : "no", rule_scope(r),
			  rule_members(r, members, sizeof(members)));
	ctl_table_print(&t, indent);
}

/* Options of rule add, checked against the type as far as hvctl can. */
struct rule_opts {
	json_t *vms;
	const char *app;
	const char *scope;
	int hard; /* -1 not given */
};

static int rule_add_check(const char *type, const struct rule_opts *o)
{
	bool tiers = !strcmp(type, "tier-separation");

	if (strcmp(type, "anti-affinity") && strcmp(type, "affinity") && !tiers)
		return rule_usage("rule add: unknown rule type '%s' (anti-affinity, affinity or "
				  "tier-separation)",
				  type);
	if (tiers && !o->app)
		return rule_usage("rule add: %s needs --app APP", type);
	if (tiers && json_array_size(o->vms))
		return rule_usage("rule add: %s takes --app, not --vms", type);
	if (!tiers && o->app)
		return rule_usage("rule add: %s takes --vms, not --app", type);
	if (!tiers && json_array_size(o->vms) < 2)
		return rule_usage("rule add: %s needs --vms with at least 2 VMs", type);
	if (o->scope && strcmp(type, "anti-affinity"))
		return rule_usage("rule add: --scope applies to anti-affinity only, not %s", type);
	if (o->scope && strcmp(o->scope, "node") && strcmp(o->scope, "domain"))
		return rule_usage("rule add: --scope '%s': expected node or domain", o->scope);
	return -1;
}

/*
 * A rule is checked against the other rules, not against where the VMs run:
 * say so when the running VMs break it already (the cluster does not move
 * running VMs for a new rule).
 */
static void warn_if_broken(struct ctl *ctl, const char *name)
{
	json_t *args = json_pack("{s:s}", "name", name), *res;

	if (args && call(ctl, "rule.show", args, &res) == 0) {
		if (json_is_false(json_object_get(res, "kept")))
			fprintf(stderr,
				"hvctl: warning: rule %s is broken where the VMs run now: %s; "
				"running VMs are not moved for it (see hvctl vm explain)\n",
				name, ctl_str(res, "broken_by"));
		json_decref(res);
	}
	json_decref(args);
}

static int rule_add_send(struct ctl *ctl, const char *type, const char *name,
			 const struct rule_opts *o)
{
	json_t *rule, *args, *res;
	char members[4096];
	int rc;

	rule = json_pack("{s:s,s:s,s:b}", "name", name, "type", type, "hard", o->hard != 0);
	if (!rule) {
		fprintf(stderr, "hvctl: rule add: rule %s: not a valid string\n", name);
		return EXIT_USAGE;
	}
	if (o->app)
		json_object_set_new(rule, "app", json_string(o->app));
	else
		json_object_set(rule, "vms", o->vms);
	if (o->scope)
		json_object_set_new(rule, "scope", json_string(o->scope));
	args = json_pack("{s:o}", "rule", rule);
	rc = call(ctl, "rule.add", args, &res);
	if (rc)
		goto out;
	if (ctl->json) {
		print_json(res);
	} else {
		printf("rule %s added: %s %s%s%s%s of %s%s\n", name, o->hard ? "hard" : "soft",
		       type, o->scope ? " (scope " : "", o->scope ? o->scope : "",
		       o->scope ? ")" : "", o->app ? "app " : "",
		       o->app ? o->app : ctl_join(o->vms, members, sizeof(members)));
		warn_if_broken(ctl, name);
	}
	json_decref(res);
out:
	json_decref(args);
	return rc;
}

static int rule_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vms", required_argument, NULL, 'v' },
		{ "app", required_argument, NULL, 'a' },
		{ "hard", no_argument, NULL, 'H' },
		{ "soft", no_argument, NULL, 'S' },
		{ "scope", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rule_opts o = { .vms = json_array(), .hard = -1 };
	int c, rc = EXIT_USAGE;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (split_into(o.vms, optarg))
				goto out;
			continue;
		case 'a':
			o.app = optarg;
			continue;
		case 'H':
		case 'S':
			if (o.hard == (c == 'S')) {
				rule_usage("rule add: %s", "--hard and --soft exclude each other");
				goto out;
			}
			o.hard = c == 'H';
			continue;
		case 's':
			o.scope = optarg;
			continue;
		case 'j':
			ctl->json = true;
			continue;
		case 'h':
			fputs(hvctl_rule_help, stdout);
			rc = 0;
			goto out;
		case ':':
			rule_usage("rule add: option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			rule_usage("rule add: unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind + 2 > argc) {
		rule_usage("rule add: %s",
			   optind >= argc ? "no rule type given" : "no rule name given");
		goto out;
	}
	if (optind + 2 < argc) {
		rule_usage("rule add: unexpected argument '%s'", argv[optind + 2]);
		goto out;
	}
	rc = rule_add_check(argv[optind], &o);
	if (rc >= 0)
		goto out;
	if (o.hard < 0)
		o.hard = 1;
	rc = rule_add_send(ctl, argv[optind], argv[optind + 1], &o);
out:
	json_decref(o.vms);
	return rc;
}

static int rule_list(struct ctl *ctl, int argc, char **argv)
{
	json_t *res, *rules;
	int rc;

	rc = parse_common(ctl, argc, argv, hvctl_rule_help);
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return rule_usage("rule list: unexpected argument '%s'", argv[optind]);
	rc = call(ctl, "rule.list", NULL, &res);
	if (rc)
		return rc;
	rules = json_object_get(res, "rules");
	if (ctl->json)
		print_json(rules);
	else if (!json_array_size(rules))
		printf("no rules\n");
	else
		rule_table(rules, "");
	json_decref(res);
	return 0;
}

static void rule_show_human(json_t *r)
{
	bool tiers = json_object_get(r, "app") != NULL;
	struct ctl_table t;
	json_t *m;
	size_t i;

	printf("Name:     %s\n", ctl_str(r, "name"));
	printf("Type:     %s, %s", ctl_str(r, "type"),
	       json_is_true(json_object_get(r, "hard")) ? "hard (never broken by the cluster)"
							: "soft (kept when the cluster can)");
	if (json_object_get(r, "scope"))
		printf(", scope %s", ctl_str(r, "scope"));
	if (tiers)
		printf("\nApp:      %s", ctl_str(r, "app"));
	if (json_is_true(json_object_get(r, "kept")))
		printf("\nNow:      kept by the VMs where they run\n");
	else
		printf("\nNow:      BROKEN: %s\n", ctl_str(r, "broken_by"));
	printf("Members:  %zu%s\n", json_array_size(json_object_get(r, "members")),
	       tiers && !json_array_size(json_object_get(r, "members")) ? " (no VM has this app)"
									   : "");
	if (!json_array_size(json_object_get(r, "members")))
		return;
	/* the tier column goes last: without it, the table has 3 columns */
	ctl_table_init(&t, tiers ? 4 : 3);
	ctl_table_row(&t, "VM", "STATE", "NODE", "TIER");
	json_array_foreach(json_object_get(r, "members"), i, m)
	{
		bool exists = json_is_true(json_object_get(m, "exists"));

		ctl_table_row(&t, ctl_str(m, "name"), exists ? ctl_str(m, "state") : "(no such VM)",
			  ctl_str(m, "node"), ctl_str(m, "tier"));
	}
	ctl_table_print(&t, "  ");
}

/* Subcommands that take just NAME: show, del. */
static int rule_named(struct ctl *ctl, int argc, char **argv, const char *cmd)
{
	json_t *args, *res;
	int rc;

	rc = parse_common(ctl, argc, argv, hvctl_rule_help);
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return rule_usage("rule %s: no rule name given", argv[0]);
	if (optind + 1 < argc)
		return rule_usage("rule: unexpected argument '%s'", argv[optind + 1]);
	args = json_pack("{s:s}", "name", argv[optind]);
	rc = call(ctl, cmd, args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else if (!strcmp(cmd, "rule.del"))
		printf("rule %s deleted\n", argv[optind]);
	else
		rule_show_human(res);
	json_decref(res);
	return 0;
}

int hvctl_rule(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return rule_usage("rule: %s", "no subcommand given");
	argc--;
	argv++;
	if (!strcmp(argv[0], "add"))
		return rule_add(ctl, argc, argv);
	if (!strcmp(argv[0], "list"))
		return rule_list(ctl, argc, argv);
	if (!strcmp(argv[0], "show"))
		return rule_named(ctl, argc, argv, "rule.show");
	if (!strcmp(argv[0], "del") || !strcmp(argv[0], "delete"))
		return rule_named(ctl, argc, argv, "rule.del");
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		fputs(hvctl_rule_help, stdout);
		return 0;
	}
	return rule_usage("rule: unknown subcommand '%s'", argv[0]);
}

/* --- vm explain ------------------------------------------------------------------------ */

static void explain_placement(json_t *vm)
{
	json_t *p = json_object_get(vm, "placement");
	const char *node = json_string_value(json_object_get(p, "node"));
	bool stay = !strcmp(ctl_str(p, "need"), "stay");

	if (!node)
		printf("Placement: none: %s\nWhy not:   %s\n",
		       stay ? "it could neither stay nor go elsewhere" : "it cannot be placed",
		       ctl_str(p, "reason"));
	else if (stay && !json_is_true(json_object_get(p, "moved")))
		printf("Placement: %s: it stays there\nWhy:       %s\n", node, ctl_str(p, "why"));
	else if (stay)
		printf("Placement: %s: a hard constraint no longer lets it stay where it runs\n"
		       "Why:       %s\n",
		       node, ctl_str(p, "why"));
	else
		printf("Placement: %s: where it would start now\nWhy:       %s\n", node,
		       ctl_str(p, "why"));
	if (*ctl_str(p, "broken") != '-')
		printf("Breaks:    soft rules %s\n", ctl_str(p, "broken"));
}

static void explain_human(json_t *vm)
{
	json_t *ev = json_object_get(vm, "event"), *n;
	struct ctl_table t;
	size_t i;

	printf("VM:        %s\n", ctl_str(vm, "name"));
	printf("State:     %s", ctl_str(vm, "state"));
	if (json_is_string(json_object_get(vm, "node")))
		printf(" on %s", ctl_str(vm, "node"));
	printf(" (epoch %lld)\n", (long long)json_integer_value(json_object_get(vm, "epoch")));
	printf("Wanted:    %s, %s\n",
	       json_is_true(json_object_get(vm, "want_running")) ? "running" : "stopped",
	       json_is_true(json_object_get(vm, "ha"))
		       ? "HA (recovered elsewhere if its node fails)"
		       : "not HA");
	printf("Reason:    %s\n", ctl_str(vm, "reason"));
	if (ev)
		printf("Event:     %s on %s (epoch %lld)%s%s\n", ctl_str(ev, "event"), ctl_str(ev, "node"),
		       (long long)json_integer_value(json_object_get(ev, "epoch")),
		       *ctl_str(ev, "reason") != '-' ? ": " : "",
		       *ctl_str(ev, "reason") != '-' ? ctl_str(ev, "reason") : "");
	if (json_integer_value(json_object_get(vm, "restarts")))
		printf("Restarts:  %lld in the current window\n",
		       (long long)json_integer_value(json_object_get(vm, "restarts")));
	printf("\n");
	explain_placement(vm);
	printf("\nRules naming it: %zu\n", json_array_size(json_object_get(vm, "rules")));
	if (json_array_size(json_object_get(vm, "rules")))
		rule_table(json_object_get(vm, "rules"), "  ");
	printf("\nNodes:\n");
	ctl_table_init(&t, 4);
	ctl_table_row(&t, "NAME", "STATE", "MAINTENANCE", "USABLE");
	json_array_foreach(json_object_get(vm, "nodes"), i, n)
		ctl_table_row(&t, ctl_str(n, "name"), ctl_str(n, "state"),
			  json_is_true(json_object_get(n, "maintenance")) ? "yes" : "no",
			  json_is_true(json_object_get(n, "usable")) ? "yes" : "no");
	ctl_table_print(&t, "  ");
}

int hvctl_vm_explain(struct ctl *ctl, int argc, char **argv)
{
	json_t *args, *res;
	int rc;

	rc = parse_common(ctl, argc, argv, vm_explain_help);
	if (rc >= 0)
		return rc;
	if (optind >= argc)
		return usage_error(vm_explain_help, "vm explain: no VM name given");
	if (optind + 1 < argc)
		return usage_error(vm_explain_help, "vm explain: unexpected argument '%s'",
				   argv[optind + 1]);
	args = json_pack("{s:s}", "name", argv[optind]);
	rc = call(ctl, "vm.explain", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		explain_human(res);
	json_decref(res);
	return 0;
}

/* --- plan --fail ------------------------------------------------------------------------- */

/* One line per VM: where it goes, or why it does not. */
static void plan_table(json_t *vms, const char *indent)
{
	char why[1024];
	struct ctl_table t;
	json_t *v;
	size_t i;

	ctl_table_init(&t, 4);
	ctl_table_row(&t, "VM", "FROM", "TO", "WHY");
	json_array_foreach(vms, i, v)
	{
		bool to = json_is_string(json_object_get(v, "to"));

		if (to)
			snprintf(why, sizeof(why), "%s", ctl_str(v, "reason"));
		else if (json_is_false(json_object_get(v, "recover")))
			snprintf(why, sizeof(why), "stays down: %s", ctl_str(v, "reason"));
		else
			snprintf(why, sizeof(why), "CANNOT BE PLACED: %s", ctl_str(v, "reason"));
		ctl_table_row(&t, ctl_str(v, "name"), ctl_str(v, "from"), to ? ctl_str(v, "to") : "-", why);
	}
	ctl_table_print(&t, indent);
}

static void plan_broken(json_t *res)
{
	const char *const lists[] = { "vms", "moves" };
	bool any = false;
	json_t *v;
	size_t i;

	for (size_t k = 0; k < 2; k++)
		json_array_foreach(json_object_get(res, lists[k]), i, v)
		{
			if (*ctl_str(v, "broken") == '-')
				continue;
			if (!any)
				printf("\nSoft rules broken:\n");
			any = true;
			printf("  %s: %s\n", ctl_str(v, "name"), ctl_str(v, "broken"));
		}
	if (!any)
		printf("\nSoft rules broken: none\n");
}

static void plan_human(json_t *res)
{
	json_t *vms = json_object_get(res, "vms"), *moves = json_object_get(res, "moves"), *v;
	size_t i, placed = 0, down = 0, nvms = json_array_size(vms);
	char fail[4096];

	ctl_join(json_object_get(res, "fail"), fail, sizeof(fail));
	if (!nvms) {
		printf("If %s failed: no VM runs there, nothing would move.\n", fail);
		if (!json_array_size(moves))
			return;
	} else {
		printf("If %s failed: %zu VM%s ran there.\n\n", fail, nvms, nvms == 1 ? "" : "s");
		plan_table(vms, "");
	}
	if (json_array_size(moves)) {
		printf("\nRunning VMs of other nodes that a hard rule would no longer let stay\n"
		       "(TO: where placement would put them):\n");
		plan_table(moves, "  ");
	}
	plan_broken(res);
	json_array_foreach(vms, i, v)
	{
		placed += json_is_string(json_object_get(v, "to"));
		down += json_is_false(json_object_get(v, "recover"));
	}
	printf("\nSummary: %zu recovered elsewhere", placed);
	if (nvms - placed - down)
		printf(", %zu CANNOT BE PLACED and would stay down", nvms - placed - down);
	if (down)
		printf(", %zu not recovered (not HA, or not wanted running)", down);
	printf(".\n");
}

int hvctl_plan(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fail", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *fail = json_array(), *args, *res;
	int c, rc = EXIT_USAGE;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (split_into(fail, optarg))
				goto out;
			continue;
		case 'j':
			ctl->json = true;
			continue;
		case 'h':
			fputs(hvctl_plan_help, stdout);
			rc = 0;
			goto out;
		case ':':
			usage_error(hvctl_plan_help, "plan: option '%s' needs a value",
				    argv[optind - 1]);
			goto out;
		default:
			usage_error(hvctl_plan_help, "plan: unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		usage_error(hvctl_plan_help, "plan: unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!json_array_size(fail)) {
		usage_error(hvctl_plan_help, "plan: --fail NODE[,NODE...] is needed");
		goto out;
	}
	args = json_pack("{s:O}", "fail", fail);
	rc = call(ctl, "plan", args, &res);
	json_decref(args);
	if (rc)
		goto out;
	if (ctl->json)
		print_json(res);
	else
		plan_human(res);
	json_decref(res);
out:
	json_decref(fail);
	return rc;
}
