/* hvctl acl ... and hvctl audit: who may do what, and what was done. */
#include "hvctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char hvctl_acl_help[] =
	"Usage: hvctl acl SUBCOMMAND ... [--json]\n"
	"\n"
	"  acl add NAME (--user USER | --group GROUP) --role ROLE\n"
	"          [--owner OWNER | --app APP | --vms GLOB]\n"
	"      Bind a unix user or group to a role, for the VMs of a scope (default: all).\n"
	"      Roles: viewer (read; the consoles of VMs in scope only), operator (start,\n"
	"      stop, shutdown, pause, resume, migrate, save, restore VMs in scope),\n"
	"      vm-admin (also create and delete VMs in scope), admin (everything:\n"
	"      nodes, rules, fencing, settings, bindings; never scoped).\n"
	"      root is always admin; a user with no binding may do nothing.\n"
	"      Example: hvctl acl add shop-ops --group shopops --role operator --app shop\n"
	"  acl list                   the bindings\n"
	"  acl del NAME               remove a binding\n";

const char hvctl_audit_help[] =
	"Usage: hvctl audit [--since WHEN] [--limit N] [--json]\n"
	"\n"
	"Every request that changes the cluster, allowed, refused or denied, as this\n"
	"node's audit log has it (every node keeps one): when, from which node, who\n"
	"(uid, user, role), the command, its object and the result (ok, refused,\n"
	"denied, with the reason). The newest records, oldest first: those since WHEN\n"
	"(30m, 2h, 7d ago, or seconds since the epoch), at most N (default 1000, up to\n"
	"100000) and as many as fit in one reply; a note on stderr says when older ones\n"
	"were left out.\n";

static int acl_usage(const char *fmt, const char *arg)
{
	return usage_error(hvctl_acl_help, fmt, arg);
}

static int acl_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' }, { "group", required_argument, NULL, 'g' },
		{ "role", required_argument, NULL, 'r' }, { "owner", required_argument, NULL, 'o' },
		{ "app", required_argument, NULL, 'a' },  { "vms", required_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },	   { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *b = json_object(), *args, *res;
	int c, rc = EXIT_USAGE;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			json_object_set_new(b, "user", json_string(optarg));
			break;
		case 'g':
			json_object_set_new(b, "group", json_string(optarg));
			break;
		case 'r':
			json_object_set_new(b, "role", json_string(optarg));
			break;
		case 'o':
		case 'a':
		case 'v':
			if (json_object_get(b, "scope")) {
				acl_usage("acl add: %s", "one scope at most (--owner, --app, --vms)");
				goto out;
			}
			json_object_set_new(b, "scope",
					    json_string(c == 'o' ? "owner" : c == 'a' ? "app" : "name"));
			json_object_set_new(b, "value", json_string(optarg));
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			fputs(hvctl_acl_help, stdout);
			rc = 0;
			goto out;
		case ':':
			acl_usage("acl add: option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			acl_usage("acl add: unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind + 1 != argc) {
		acl_usage("acl add: %s", "exactly one binding NAME is needed");
		goto out;
	}
	json_object_set_new(b, "name", json_string(argv[optind]));
	args = json_pack("{s:O}", "binding", b);
	rc = call(ctl, "acl.add", args, &res);
	json_decref(args);
	if (rc)
		goto out;
	if (ctl->json)
		print_json(res);
	else
		printf("binding %s added\n", argv[optind]);
	json_decref(res);
out:
	json_decref(b);
	return rc;
}

static int acl_list(struct ctl *ctl)
{
	struct ctl_table t;
	json_t *res, *b;
	size_t i;
	int rc;

	rc = call(ctl, "acl.list", NULL, &res);
	if (rc)
		return rc;
	b = json_incref(json_object_get(res, "bindings"));
	json_decref(res);
	res = b ? b : json_array();
	if (ctl->json) {
		print_json(res);
		json_decref(res);
		return 0;
	}
	if (!json_array_size(res))
		printf("No bindings: only root may use hvctl.\n");
	ctl_table_init(&t, 4);
	ctl_table_row(&t, "NAME", "SUBJECT", "ROLE", "SCOPE");
	json_array_foreach(res, i, b)
	{
		char subject[160], scope[160];
		const char *g = json_string_value(json_object_get(b, "group"));
		const char *sc = json_string_value(json_object_get(b, "scope"));

		snprintf(subject, sizeof(subject), "%s %s", g ? "group" : "user",
			 g ? g : json_string_value(json_object_get(b, "user")));
		snprintf(scope, sizeof(scope), "%s%s%s", sc ? sc : "all",
			 sc && strcmp(sc, "all") ? " " : "",
			 sc && strcmp(sc, "all") ? json_string_value(json_object_get(b, "value")) : "");
		ctl_table_row(&t, json_string_value(json_object_get(b, "name")), subject,
			      json_string_value(json_object_get(b, "role")), scope);
	}
	if (json_array_size(res))
		ctl_table_print(&t, "");
	else
		json_decref(t.rows);
	json_decref(res);
	return 0;
}

int hvctl_acl(struct ctl *ctl, int argc, char **argv)
{
	json_t *args, *res;
	int rc;

	if (argc < 2)
		return acl_usage("acl: %s", "no subcommand given");
	if (!strcmp(argv[1], "add"))
		return acl_add(ctl, argc - 1, argv + 1);
	rc = parse_common(ctl, argc - 1, argv + 1, hvctl_acl_help);
	if (rc >= 0)
		return rc;
	if (!strcmp(argv[1], "list")) {
		if (optind + 1 < argc)
			return acl_usage("acl list: unexpected argument '%s'", argv[optind + 1]);
		return acl_list(ctl);
	}
	if (strcmp(argv[1], "del"))
		return acl_usage("acl: unknown subcommand '%s'", argv[1]);
	if (optind + 2 != argc)
		return acl_usage("acl del: %s", "exactly one binding NAME is needed");
	args = json_pack("{s:s}", "name", argv[optind + 1]);
	rc = call(ctl, "acl.del", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		printf("binding %s deleted\n", argv[optind + 1]);
	json_decref(res);
	return 0;
}

/* "30m", "2h", "7d", "90s" ago, or seconds since the epoch: ms since the epoch; -1 bad. */
static long long since_ms(const char *s)
{
	char *end;
	long long n = strtoll(s, &end, 10);
	long long mult = !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
		       : !strcmp(end, "d")  ? 86400
					    : 0;

	if (end == s || n < 0)
		return -1;
	if (!*end)
		return n * 1000;
	if (!mult)
		return -1;
	return ((long long)time(NULL) - n * mult) * 1000;
}

int hvctl_audit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long long since = 0, limit = 0;
	json_t *args, *res, *r;
	char *end;
	bool more;
	size_t i;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			since = since_ms(optarg);
			if (since < 0)
				return usage_error(hvctl_audit_help,
						   "audit: --since '%s': expected 30m, 2h, 7d or "
						   "epoch seconds",
						   optarg);
			break;
		case 'l':
			limit = strtoll(optarg, &end, 10);
			if (end == optarg || *end || limit < 1 || limit > 100000)
				return usage_error(hvctl_audit_help,
						   "audit: --limit '%s': expected 1 to 100000", optarg);
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			fputs(hvctl_audit_help, stdout);
			return 0;
		default:
			return usage_error(hvctl_audit_help, "audit: bad option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(hvctl_audit_help, "audit: unexpected argument '%s'",
				   argv[optind]);
	args = json_pack("{s:I,s:I}", "since_ms", (json_int_t)since, "limit", (json_int_t)limit);
	rc = call(ctl, "audit", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	r = json_incref(json_object_get(res, "records"));
	more = json_is_true(json_object_get(res, "more"));
	json_decref(res);
	if (more)
		fprintf(stderr,
			"hvctl audit: older records left out (%zu shown): narrow with --since or raise --limit\n",
			json_array_size(r));
	res = r ? r : json_array();
	if (ctl->json) {
		print_json(res);
		json_decref(res);
		return 0;
	}
	json_array_foreach(res, i, r)
	{
		json_t *who = json_object_get(r, "who");
		time_t at = (time_t)(json_integer_value(json_object_get(r, "at_ms")) / 1000);
		struct tm tm;
		char when[32];

		localtime_r(&at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%s  %-8s uid %-6lld %-10s %-9s %-18s %-20s %s%s%s\n", when,
		       json_string_value(json_object_get(r, "from")),
		       (long long)json_integer_value(json_object_get(who, "uid")),
		       json_string_value(json_object_get(who, "user")) ?: "",
		       json_string_value(json_object_get(who, "role")) ?: "",
		       json_string_value(json_object_get(r, "cmd")) ?: "",
		       json_string_value(json_object_get(r, "object")) ?: "",
		       json_string_value(json_object_get(r, "result")) ?: "",
		       json_object_get(r, "reason") ? ": " : "",
		       json_string_value(json_object_get(r, "reason")) ?: "");
	}
	json_decref(res);
	return 0;
}
