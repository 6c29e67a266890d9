/*
 * hvctl node drain|resume|impact: planned maintenance. A drain moves every
 * VM off a node (the leader does it, by priority policy, live or quick, rules
 * and capacity respected); --wait follows it VM by VM until nothing is left
 * in flight. impact is the list to send to the owners before the window.
 */
#include "hvctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 500
#define PROGRESS_MS 5000 /* a migration still running says how far it is this often */

static int maint_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int maint_usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return usage_error(hvctl_node_help, "%s", msg);
}

/* "live -> n2", "quick -> n3 (live failed)", "stop", "stays" */
static const char *action_text(json_t *it, char *buf, size_t len)
{
	const char *action = ctl_str(it, "action");

	if (!strcmp(action, "live") || !strcmp(action, "quick"))
		snprintf(buf, len, "%s -> %s%s", action, ctl_str(it, "to"),
			 json_is_true(json_object_get(it, "fallback")) ? " (live failed)" : "");
	else
		snprintf(buf, len, "%s", action);
	return buf;
}

static int impact_fetch(struct ctl *ctl, const char *node, json_t **res)
{
	json_t *args = json_pack("{s:s}", "node", node);
	int rc;

	if (!args)
		return EXIT_USAGE;
	rc = call(ctl, "node.impact", args, res);
	json_decref(args);
	return rc;
}

/* @it[@key] as --json has it ("" when missing: a table prints "-", CSV an empty field) */
static const char *val(json_t *it, const char *key)
{
	const char *v = json_string_value(json_object_get(it, key));

	return v ? v : "";
}

static void impact_table(json_t *vms, bool csv)
{
	struct ctl_table t;
	char act[160];
	json_t *it;
	size_t i;

	ctl_table_init(&t, csv ? 10 : 9);
	/* CSV (the --csv convention): columns named as the JSON keys, values as in JSON */
	if (csv)
		ctl_table_row(&t, "name", "owner", "contact", "app", "tier", "priority",
			      "classification", "action", "to", "why");
	else
		ctl_table_row(&t, "VM", "OWNER", "CONTACT", "APP", "TIER", "PRIORITY", "CLASS",
			      "ACTION", "WHY");
	json_array_foreach(vms, i, it) {
		if (csv)
			ctl_table_row(&t, val(it, "name"), val(it, "owner"), val(it, "contact"),
				      val(it, "app"), val(it, "tier"), val(it, "priority"),
				      val(it, "classification"), val(it, "action"), val(it, "to"),
				      val(it, "why"));
		else
			ctl_table_row(&t, val(it, "name"), val(it, "owner"), val(it, "contact"),
				      val(it, "app"), val(it, "tier"), val(it, "priority"),
				      val(it, "classification"), action_text(it, act, sizeof(act)),
				      val(it, "why"));
	}
	if (csv)
		ctl_table_print_csv(&t);
	else
		ctl_table_print(&t, "  ");
}

/* --- option parsing ---------------------------------------------------------------------- */

struct maint_opts {
	bool wait, force, csv;
	long timeout_s;
	const char *node;
};

static int parse(struct ctl *ctl, int argc, char **argv, const char *what, bool drain, bool impact,
		 struct maint_opts *o)
{
	static const struct option opts[] = {
		{"wait", no_argument, NULL, 'w'},
		{"force", no_argument, NULL, 'f'},
		{"timeout", required_argument, NULL, 't'},
		{"csv", no_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
		case 'f':
		case 't':
			if (!drain)
				return maint_usage(
					"%s: --wait, --force and --timeout are for node drain",
					what);
			if (c == 'w')
				o->wait = true;
			else if (c == 'f')
				o->force = true;
			else {
				errno = 0;
				o->timeout_s = strtol(optarg, &end, 10);
				if (errno || *end || end == optarg || o->timeout_s < 1 ||
				    o->timeout_s > INT_MAX / 1000)
					return maint_usage(
						"node drain: --timeout '%s': seconds, 1 or more",
						optarg);
			}
			break;
		case 'c':
			if (!impact)
				return maint_usage("%s: --csv is for node impact", what);
			o->csv = true;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			fputs(hvctl_node_help, stdout);
			return 0;
		case ':':
			return maint_usage("%s: option '%s' needs a value", what, argv[optind - 1]);
		default:
			return maint_usage("%s: unknown option '%s'", what, argv[optind - 1]);
		}
	}
	if (o->csv && ctl->json)
		return maint_usage("%s: --csv or --json, not both", what);
	if (argc - optind < 1)
		return maint_usage("%s: no node name given", what);
	if (argc - optind > 1)
		return maint_usage("%s: unexpected argument '%s'", what, argv[optind + 1]);
	o->node = argv[optind];
	return -1;
}

/* --- node impact ------------------------------------------------------------------------- */

static int node_impact(struct ctl *ctl, int argc, char **argv)
{
	struct maint_opts o;
	json_t *res, *vms;
	int rc;

	rc = parse(ctl, argc, argv, "node impact", false, true, &o);
	if (rc >= 0)
		return rc;
	rc = impact_fetch(ctl, o.node, &res);
	if (rc)
		return rc;
	vms = json_object_get(res, "vms");
	if (ctl->json) {
		print_json(res);
	} else if (o.csv) {
		impact_table(vms, true);
	} else if (!json_array_size(vms)) {
		printf("node %s (%s%s) runs no VM: a downtime affects nobody\n", o.node,
		       ctl_str(res, "state"),
		       json_is_true(json_object_get(res, "maintenance")) ? ", maintenance" : "");
	} else {
		printf("node %s (%s%s): %zu VM(s); what a drain does with each now:\n", o.node,
		       ctl_str(res, "state"),
		       json_is_true(json_object_get(res, "maintenance")) ? ", maintenance" : "",
		       json_array_size(vms));
		impact_table(vms, false);
	}
	json_decref(res);
	return 0;
}

/* --- node drain -------------------------------------------------------------------------- */

/* One VM of the drained node, as --wait follows it. */
struct follow {
	char name[72];
	json_int_t seen_mig, seen_last; /* migration ids already told */
	char held[600];			/* the reason already told */
	int64_t progress_ms;		/* when its migration's progress was last told */
	bool done, moved, stopped;
};

static json_t *vm_of(json_t *vms, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(vms, i, v) if (!strcmp(ctl_str(v, "name"), name)) return v;
	return NULL;
}

static bool on_node(json_t *v, const char *node)
{
	const char *st = ctl_str(v, "ha_state");

	return !strcmp(ctl_str(v, "assigned_node"), node) &&
		(!strcmp(st, "starting") || !strcmp(st, "started") || !strcmp(st, "stopping"));
}

static json_int_t id_of(json_t *o)
{
	return json_integer_value(json_object_get(o, "id"));
}

/* Tell what changed for @f; true while it still has something in flight. */
static bool follow_step(struct ctl *ctl, struct follow *f, json_t *v, const char *node,
			size_t *ndone, size_t total)
{
	json_t *mig = json_object_get(v, "migration"), *last = json_object_get(v, "last_migration");
	const char *held = json_string_value(json_object_get(v, "held"));
	bool quiet = ctl->json, here = on_node(v, node), ended = false;
	char text[1024] = "";

	if (json_is_object(mig) && id_of(mig) != f->seen_mig) {
		f->seen_mig = id_of(mig);
		f->progress_ms = ctl_now_ms();
		if (!quiet)
			printf("      vm %s: %s migration to %s\n", f->name, ctl_str(mig, "mode"),
			       ctl_str(mig, "to"));
	} else if (json_is_object(json_object_get(mig, "progress")) &&
		   ctl_now_ms() - f->progress_ms >= PROGRESS_MS) {
		f->progress_ms = ctl_now_ms();
		if (!quiet)
			printf("      vm %s: %s\n", f->name, ctl_mig_progress(mig, text, sizeof(text)));
	}
	if (json_is_object(last) && id_of(last) != f->seen_last) {
		f->seen_last = id_of(last);
		ctl_mig_result(f->name, v, last, text, sizeof(text));
		ended = true;
	}
	/* gone from the node once nothing is in flight for it (a handoff ends on the target) */
	if (!here && !json_is_object(mig)) {
		f->done = true;
		f->stopped = strcmp(ctl_str(v, "ha_state"), "starting") &&
			strcmp(ctl_str(v, "ha_state"), "started");
		f->moved = !f->stopped;
		(*ndone)++;
		if (!quiet && f->stopped)
			printf("[%zu/%zu] vm %s: %s: %s\n", *ndone, total, f->name,
			       ctl_str(v, "ha_state"), ctl_str(v, "ha_reason"));
		else if (!quiet)
			printf("[%zu/%zu] %s\n", *ndone, total, ended ? text : "moved");
		return false;
	}
	if (ended && !quiet)
		printf("      %s\n", text);
	if (!here)
		return true;
	if (held && !json_is_object(mig)) {
		if (strcmp(held, f->held)) {
			snprintf(f->held, sizeof(f->held), "%s", held);
			if (!quiet)
				printf("      vm %s: stays on %s: %s\n", f->name, node, held);
		}
		return false;
	}
	return true;
}

static void print_drain_plan(const char *node, json_t *impact)
{
	json_t *vms = json_object_get(impact, "vms");

	if (!json_array_size(vms)) {
		printf("node %s: in maintenance; it runs no VM\n", node);
		return;
	}
	printf("node %s: in maintenance (no VM is placed there); moving %zu VM(s) off it:\n", node,
	       json_array_size(vms));
	impact_table(vms, false);
}

static int drain_wait(struct ctl *ctl, const char *node, json_t *impact, long timeout_s)
{
	json_t *vms0 = json_object_get(impact, "vms"), *res = NULL, *vms, *it, *out;
	size_t n = json_array_size(vms0), i, moved = 0, stopped = 0, held = 0, ndone = 0;
	int64_t start = ctl_now_ms();
	struct follow *f = calloc(n ? n : 1, sizeof(*f));
	bool busy, timed_out = false;
	int rc = 0;

	if (!f)
		return EXIT_DAEMON_ERROR;
	json_array_foreach(vms0, i, it)
		snprintf(f[i].name, sizeof(f[i].name), "%s", ctl_str(it, "name"));
	rc = call(ctl, "vm.list", NULL, &res);
	for (i = 0; !rc && i < n; i++) {
		json_t *v = vm_of(json_object_get(res, "vms"), f[i].name);

		/* what happened before the drain is not news */
		f[i].seen_last = id_of(json_object_get(v, "last_migration"));
	}
	json_decref(res);
	for (;;) {
		if (rc)
			goto out;
		ctl_sleep_ms(POLL_MS);
		rc = call(ctl, "vm.list", NULL, &res);
		if (rc)
			goto out;
		vms = json_object_get(res, "vms");
		busy = false;
		for (i = 0; i < n; i++) {
			json_t *v = vm_of(vms, f[i].name);

			if (f[i].done)
				continue;
			if (!v) {
				f[i].done = f[i].stopped = true;
				ndone++;
				continue;
			}
			busy |= follow_step(ctl, &f[i], v, node, &ndone, n);
		}
		json_decref(res);
		res = NULL;
		if (!busy)
			break;
		if (timeout_s && ctl_now_ms() - start > timeout_s * 1000) {
			fprintf(stderr,
				"hvctl: node drain %s: still under way after %ld s (see hvctl node "
				"impact %s)\n",
				node, timeout_s, node);
			timed_out = true;
			break;
		}
	}
	out = json_array();
	for (i = 0; i < n; i++) {
		moved += f[i].moved;
		stopped += f[i].stopped;
		held += !f[i].done;
		if (out)
			json_array_append_new(out,
					      json_pack("{s:s,s:s,s:s}", "name", f[i].name,
							"result",
							f[i].moved	       ? "moved"
								: f[i].stopped ? "stopped"
								: f[i].held[0] ? "stays"
									       : "moving",
							"why", f[i].held));
	}
	if (ctl->json) {
		json_t *j = json_pack("{s:s,s:o,s:I,s:b,s:b}", "node", node, "vms",
				      out ? out : json_array(), "elapsed_ms",
				      (json_int_t)(ctl_now_ms() - start), "empty", held == 0,
				      "timed_out", timed_out);

		print_json(j);
		json_decref(j);
	} else {
		json_decref(out);
		printf("node %s: %s after %.1f s: %zu moved, %zu stopped, %zu still there\n", node,
		       timed_out ? "drain still under way" : held ? "drain incomplete" : "drained",
		       (ctl_now_ms() - start) / 1000.0, moved, stopped, held);
		for (i = 0; i < n; i++)
			if (!f[i].done)
				printf("  %s: %s\n", f[i].name, f[i].held[0] ? f[i].held : "moving");
		if (held && !timed_out)
			printf("the node stays in maintenance; fix the cause and run 'hvctl node "
			       "drain %s' again, or --force to stop them\n",
			       node);
	}
	rc = timed_out ? EXIT_TIMEOUT : held ? EXIT_DAEMON_ERROR : 0;
out:
	free(f);
	return rc;
}

static int node_drain(struct ctl *ctl, int argc, char **argv)
{
	struct maint_opts o;
	json_t *args, *res = NULL, *impact = NULL;
	int rc;

	rc = parse(ctl, argc, argv, "node drain", true, false, &o);
	if (rc >= 0)
		return rc;
	args = json_pack("{s:s,s:b}", "node", o.node, "force", o.force);
	if (!args)
		return EXIT_USAGE;
	rc = call(ctl, "node.drain", args, &res);
	json_decref(args);
	json_decref(res);
	if (rc)
		return rc;
	rc = impact_fetch(ctl, o.node, &impact);
	if (rc)
		return rc;
	if (!o.wait) {
		if (ctl->json)
			print_json(impact);
		else
			print_drain_plan(o.node, impact);
		json_decref(impact);
		return 0;
	}
	if (!ctl->json)
		print_drain_plan(o.node, impact);
	rc = drain_wait(ctl, o.node, impact, o.timeout_s);
	json_decref(impact);
	return rc;
}

/* --- node resume ------------------------------------------------------------------------- */

static int node_resume(struct ctl *ctl, int argc, char **argv)
{
	json_t *args, *res = NULL, *v;
	struct maint_opts o;
	size_t i, back = 0;
	int rc;

	rc = parse(ctl, argc, argv, "node resume", false, false, &o);
	if (rc >= 0)
		return rc;
	args = json_pack("{s:s}", "node", o.node);
	if (!args)
		return EXIT_USAGE;
	rc = call(ctl, "node.resume", args, &res);
	json_decref(args);
	json_decref(res);
	if (rc)
		return rc;
	rc = call(ctl, "vm.list", NULL, &res);
	if (rc)
		return rc;
	if (ctl->json) {
		json_t *fb = json_array();

		json_array_foreach(json_object_get(res, "vms"), i,
				   v) if (fb && !strcmp(ctl_str(v, "home"), o.node))
			json_array_append_new(fb,
					      json_pack("{s:s,s:s,s:s}", "name", ctl_str(v, "name"),
							"failback", ctl_str(v, "failback"), "on",
							ctl_str(v, "node")));
		v = json_pack("{s:s,s:o}", "node", o.node, "failback", fb ? fb : json_array());
		print_json(v);
		json_decref(v);
		json_decref(res);
		return 0;
	}
	printf("node %s: maintenance ended; it takes VMs again\n", o.node);
	json_array_foreach(json_object_get(res, "vms"), i, v)
	{
		const char *fb = ctl_str(v, "failback");

		if (strcmp(ctl_str(v, "home"), o.node))
			continue;
		back++;
		if (!strcmp(fb, "immediate"))
			printf("  vm %s (on %s): fails back to %s now, live\n", ctl_str(v, "name"),
			       ctl_str(v, "node"), o.node);
		else
			printf("  vm %s (on %s): fails back to %s live in its window %s (UTC)\n",
			       ctl_str(v, "name"), ctl_str(v, "node"), o.node, fb);
	}
	if (!back)
		printf("  no VM fails back to it (their failback is none: they stay where they "
		       "are)\n");
	json_decref(res);
	return 0;
}

int hvctl_node_maint(struct ctl *ctl, int argc, char **argv)
{
	if (!strcmp(argv[0], "drain"))
		return node_drain(ctl, argc, argv);
	if (!strcmp(argv[0], "resume"))
		return node_resume(ctl, argc, argv);
	return node_impact(ctl, argc, argv);
}
