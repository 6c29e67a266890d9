/* hvctl vm migrate, vm migrate-cancel; how vm show and vm list show a migration. */
#include "hvctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 500	      /* vm.show while waiting */
#define LOG_EVERY_MS 1000     /* --watch when stdout is not a terminal: a line a second at most */
#define TIMEOUT_DEFAULT_S 600 /* --timeout */
#define MIB (1024.0 * 1024.0)

static const char migrate_help[] =
	"Usage: hvctl vm migrate NAME [--to NODE] [--mode live|quick] [--wait | --watch]\n"
	"                        [--timeout SECONDS] [--json]\n"
	"\n"
	"Move running VM NAME to another node. The request is recorded in the cluster\n"
	"state, where it waits (phase queued) until both nodes have a free migration\n"
	"slot; then the source streams the VM to the target (running), stops it,\n"
	"releases its LUNs, and the target takes them and resumes it (handoff). The VM\n"
	"keeps its definition, disks, MAC addresses and state; a migration that fails\n"
	"or is cancelled leaves it on the source.\n"
	"\n"
	"Without --wait or --watch, hvctl returns once the request is recorded and\n"
	"prints its id, the source and the target; 'hvctl vm show NAME' follows it.\n"
	"\n"
	"Modes:\n"
	"  live    (default) the guest runs while its memory is copied, in rounds that\n"
	"          resend what it wrote meanwhile; it stops only for the last round and\n"
	"          the handoff: a downtime of milliseconds when its memory settles.\n"
	"  quick   the guest is paused, everything is copied once, and it resumes on\n"
	"          the target: the downtime is the whole copy, but it always ends, also\n"
	"          for a guest that writes memory faster than the network carries it.\n"
	"\n"
	"Options:\n"
	"  --to NODE          the target; without it the placement engine chooses one\n"
	"                     as for a start (capacity, rules, preferred and allowed\n"
	"                     nodes; 'hvctl vm explain NAME' says what it thinks)\n"
	"  --mode live|quick  see Modes (default live)\n"
	"  --wait             wait until the migration ends, then print how: the time it\n"
	"                     took, the downtime, the bytes of guest state sent and the\n"
	"                     bytes on the wire (compressed); or why it failed\n"
	"  --watch            as --wait, showing its progress every 0.5 s: phase,\n"
	"                     elapsed time, bytes sent, bytes on the wire, rate (MiB/s),\n"
	"                     bytes remaining, dirty rate (pages/s), iteration (copy\n"
	"                     round). On a terminal one line is rewritten; otherwise a\n"
	"                     line a second at most.\n"
	"  --timeout SECONDS  with --wait or --watch: stop waiting after SECONDS (default\n"
	"                     600). The migration goes on; 'hvctl vm migrate-cancel NAME'\n"
	"                     stops it.\n"
	"  --json             without --wait: the VM as 'hvctl vm show NAME --json' prints\n"
	"                     it, with its \"migration\" {id, mode, from, to, phase,\n"
	"                     progress}; with --wait or --watch: the \"last_migration\"\n"
	"                     {id, mode, from, to, result, reason, total_ms, downtime_ms,\n"
	"                     raw_bytes, wire_bytes} once it ended, and no progress lines\n"
	"\n"
	"Exit status:\n"
	"  0  the migration is queued (without --wait), or it completed\n"
	"  1  hvnoded refused it (the message says why), or it failed or was cancelled\n"
	"  2  usage error\n"
	"  3  hvnoded is not reachable\n"
	"  4  --timeout passed before it ended (it goes on)\n"
	"\n"
	"Examples:\n"
	"  hvctl vm migrate web1 --to node2 --watch\n"
	"  hvctl vm migrate db1 --mode quick --wait --timeout 120 --json\n";

static const char migrate_cancel_help[] =
	"Usage: hvctl vm migrate-cancel NAME [--json]\n"
	"\n"
	"Cancel the migration of VM NAME, queued or in flight: it ends as cancelled and\n"
	"the VM stays on the source, running. A migration that already reached its\n"
	"handoff may end otherwise; the output says how it ended.\n"
	"\n"
	"With --json: the VM as 'hvctl vm show NAME --json' prints it, with its\n"
	"\"last_migration\" (or its \"migration\" while the source is still stopping it).\n"
	"\n"
	"Exit status: 0 the cancel was accepted, 1 hvnoded refused it (no migration of\n"
	"that VM, for one), 2 usage error, 3 hvnoded is not reachable.\n"
	"\n"
	"Example:\n"
	"  hvctl vm migrate-cancel web1\n";

/* --- fields: "-" whenever a value is missing or not what the contract says ---------------- */

/* @o[@key] when it is a number >= 0 */
static bool number(json_t *o, const char *key, double *v)
{
	json_t *n = json_object_get(o, key);

	if (!json_is_number(n) || json_number_value(n) < 0)
		return false;
	*v = json_number_value(n);
	return true;
}

static const char *integer(json_t *o, const char *key, char *buf, size_t len)
{
	json_t *n = json_object_get(o, key);

	if (!json_is_integer(n))
		return "-";
	snprintf(buf, len, "%lld", (long long)json_integer_value(n));
	return buf;
}

static const char *size(json_t *o, const char *key, char *buf, size_t len)
{
	double v;

	if (!number(o, key, &v))
		return "-";
	return ctl_size(v < 18e18 ? (uint64_t)v : UINT64_MAX, buf, len);
}

/* @o[@key] divided by @div, @prec decimals, then @unit */
static const char *quantity(json_t *o, const char *key, double div, int prec, const char *unit,
			    char *buf, size_t len)
{
	double v;

	if (!number(o, key, &v))
		return "-";
	snprintf(buf, len, "%.*f%s", prec, v / div, unit);
	return buf;
}

static bool has_id(json_t *mig, json_int_t id)
{
	json_t *n = json_object_get(mig, "id");

	return json_is_integer(n) && json_integer_value(n) == id;
}

/* --- the lines ---------------------------------------------------------------------------- */

const char *ctl_mig_progress(json_t *mig, char *buf, size_t len)
{
	json_t *p = json_object_get(mig, "progress");
	const char *qemu = json_string_value(json_object_get(p, "qemu_status"));
	char el[32], raw[32], wire[32], rate[32], rem[32], dirty[32], it[32];

	snprintf(buf, len,
		 "elapsed %s, sent %s, wire %s, rate %s, remaining %s, dirty %s, iteration %s%s%s",
		 quantity(p, "elapsed_ms", 1000, 1, " s", el, sizeof(el)),
		 size(p, "raw_bytes", raw, sizeof(raw)), size(p, "wire_bytes", wire, sizeof(wire)),
		 quantity(p, "rate_bps", MIB, 1, " MiB/s", rate, sizeof(rate)),
		 size(p, "remaining_bytes", rem, sizeof(rem)),
		 quantity(p, "dirty_rate_pps", 1, 0, " pages/s", dirty, sizeof(dirty)),
		 quantity(p, "iteration", 1, 0, "", it, sizeof(it)),
		 /* QEMU's own word only when it says more than "still copying" */
		 qemu && *qemu && strcmp(qemu, "active") ? ", QEMU " : "",
		 qemu && *qemu && strcmp(qemu, "active") ? qemu : "");
	return buf;
}

/* "in 2.41 s, downtime 35 ms, 512.0 MiB sent as 41.2 MiB on the wire" */
static const char *completed_stats(json_t *last, char *buf, size_t len)
{
	char total[32], down[32], raw[32], wire[32];

	snprintf(buf, len, "in %s, downtime %s, %s sent as %s on the wire",
		 quantity(last, "total_ms", 1000, 2, " s", total, sizeof(total)),
		 quantity(last, "downtime_ms", 1, 0, " ms", down, sizeof(down)),
		 size(last, "raw_bytes", raw, sizeof(raw)),
		 size(last, "wire_bytes", wire, sizeof(wire)));
	return buf;
}

/* "completed in ...", "failed: REASON", "cancelled" */
static const char *end_text(json_t *last, char *buf, size_t len)
{
	const char *result = ctl_str(last, "result"), *reason = ctl_str(last, "reason");
	char stats[256];

	if (!strcmp(result, "completed"))
		snprintf(buf, len, "completed %s", completed_stats(last, stats, sizeof(stats)));
	else if (strcmp(reason, "-"))
		snprintf(buf, len, "%s: %s", result, reason);
	else
		snprintf(buf, len, "%s", result);
	return buf;
}

const char *ctl_mig_result(const char *name, json_t *vm, json_t *last, char *buf, size_t len)
{
	const char *node = json_string_value(json_object_get(vm, "node"));
	const char *state = ctl_str(vm, "state");
	char text[512], id[24], where[160];

	if (!strcmp(ctl_str(last, "result"), "completed")) {
		snprintf(buf, len, "vm %s: migrated %s -> %s (%s) %s", name, ctl_str(last, "from"),
			 ctl_str(last, "to"), ctl_str(last, "mode"),
			 completed_stats(last, text, sizeof(text)));
		return buf;
	}
	if (!node || !*node)
		node = ctl_str(last, "from");
	if (!strcmp(state, "running"))
		snprintf(where, sizeof(where), "still running on %s", node);
	else
		snprintf(where, sizeof(where), "now %s on %s", state, node);
	snprintf(buf, len, "vm %s: migration %s %s (%s)", name, integer(last, "id", id, sizeof(id)),
		 end_text(last, text, sizeof(text)), where);
	return buf;
}

const char *ctl_mig_state(json_t *vm, char *buf, size_t len)
{
	json_t *mig = json_object_get(vm, "migration");
	const char *to = json_string_value(json_object_get(mig, "to"));

	if (!json_is_object(mig))
		return ctl_str(vm, "state");
	if (to && *to)
		snprintf(buf, len, "migrating->%s", to);
	else
		snprintf(buf, len, "migrating");
	return buf;
}

void ctl_mig_show(json_t *vm)
{
	json_t *mig = json_object_get(vm, "migration");
	json_t *last = json_object_get(vm, "last_migration");
	char id[24], text[512];

	if (json_is_object(mig)) {
		printf("Migration:      %s (%s) %s -> %s: %s\n", integer(mig, "id", id, sizeof(id)),
		       ctl_str(mig, "mode"), ctl_str(mig, "from"), ctl_str(mig, "to"),
		       ctl_str(mig, "phase"));
		if (json_is_object(json_object_get(mig, "progress")))
			printf("Progress:       %s\n", ctl_mig_progress(mig, text, sizeof(text)));
	}
	if (json_is_object(last))
		printf("Last migration: %s (%s) %s -> %s: %s\n",
		       integer(last, "id", id, sizeof(id)), ctl_str(last, "mode"),
		       ctl_str(last, "from"), ctl_str(last, "to"),
		       end_text(last, text, sizeof(text)));
}

/* --- --watch ------------------------------------------------------------------------------ */

struct progress {
	bool tty;	 /* rewrite the line in place; else log a line a second at most */
	int rows;	 /* terminal rows the line took (the cursor is at the end of the last) */
	int64_t last_ms; /* when the last line was logged; -1: none yet */
};

static int term_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		return ws.ws_col;
	return 80;
}

/* How much of @p goes on a row of @width: up to the last ", " that fits, else cut. */
static size_t row_len(const char *p, size_t width)
{
	if (strlen(p) <= width)
		return strlen(p);
	for (size_t i = width; i > 1; i--)
		if (p[i - 1] == ',' && p[i] == ' ')
			return i;
	return width;
}

/*
 * Rewrite the line in place. Wider than the terminal, it takes more rows, broken
 * between fields: cut to one row, a narrow terminal would hide the dirty rate and
 * the iteration, which say whether a live migration converges; and a row that the
 * terminal wraps itself cannot be rewritten.
 */
static void tty_show(struct progress *pr, const char *line)
{
	size_t width = (size_t)term_width() - 1;
	int rows = 0;

	if (pr->rows > 1)
		printf("\033[%dA", pr->rows - 1);
	while (*line) {
		size_t n = row_len(line, width);

		printf("%s\r%.*s\033[K", rows ? "\n" : "", (int)n, line);
		rows++;
		for (line += n; *line == ' '; line++)
			;
	}
	/* rows a longer line left: blank them, then back to our last row */
	for (int i = rows; i < pr->rows; i++)
		printf("\n\033[K");
	if (pr->rows > rows)
		printf("\033[%dA", pr->rows - rows);
	pr->rows = rows;
}

static void progress_show(struct progress *pr, json_t *mig)
{
	char line[640], text[512];
	int64_t now = ctl_now_ms();

	snprintf(line, sizeof(line), "%s: %s", ctl_str(mig, "phase"),
		 ctl_mig_progress(mig, text, sizeof(text)));
	if (pr->tty) {
		tty_show(pr, line);
	} else {
		if (pr->last_ms >= 0 && now - pr->last_ms < LOG_EVERY_MS)
			return;
		pr->last_ms = now;
		puts(line);
	}
	fflush(stdout);
}

static void progress_end(struct progress *pr)
{
	if (pr->rows)
		putchar('\n');
	pr->rows = 0;
}

/* --- vm migrate --------------------------------------------------------------------------- */

struct migrate_opts {
	const char *to; /* NULL: placement chooses */
	const char *mode;
	bool wait, watch;
	long timeout_s;
};

/* "600" -> 600; -1 for anything but a whole number of 1..INT_MAX */
static long seconds(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end || end == s || v < 1 || v > INT_MAX ? -1 : v;
}

static int parse_migrate(struct ctl *ctl, int argc, char **argv, struct migrate_opts *o)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "mode", required_argument, NULL, 'm' },
		{ "wait", no_argument, NULL, 'w' },
		{ "watch", no_argument, NULL, 'W' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool timeout = false;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!*optarg)
				return usage_error(migrate_help,
						   "vm migrate: --to needs a node name");
			o->to = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "live") && strcmp(optarg, "quick"))
				return usage_error(migrate_help,
					"vm migrate: --mode '%s': expected live or quick", optarg);
			o->mode = optarg;
			break;
		case 'w':
			o->wait = true;
			break;
		case 'W':
			o->watch = true;
			break;
		case 'T':
			o->timeout_s = seconds(optarg);
			if (o->timeout_s < 0)
				return usage_error(migrate_help,
					"vm migrate: --timeout '%s': expected seconds > 0", optarg);
			timeout = true;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			fputs(migrate_help, stdout);
			return 0;
		case ':':
			return usage_error(migrate_help, "vm migrate: option '%s' needs a value",
					   argv[optind - 1]);
		default:
			return usage_error(migrate_help, "vm migrate: unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error(migrate_help, "vm migrate: no VM name given");
	if (optind + 1 < argc)
		return usage_error(migrate_help, "vm migrate: unexpected argument '%s'",
				   argv[optind + 1]);
	if (timeout && !o->wait && !o->watch)
		return usage_error(migrate_help, "vm migrate: --timeout needs --wait or --watch");
	return -1;
}

/* "vm web1: live migration 7 queued: node1 -> node2" */
static void print_queued(const char *name, json_t *vm, const char *mode)
{
	json_t *mig = json_object_get(vm, "migration");
	const char *from = ctl_str(mig, "from"), *phase = ctl_str(mig, "phase");
	char id[24];

	if (!json_is_object(mig)) {
		printf("vm %s: %s migration asked for\n", name, mode);
		return;
	}
	if (!strcmp(from, "-"))
		from = ctl_str(vm, "node");
	printf("vm %s: %s migration %s %s: %s -> %s\n", name,
	       json_is_string(json_object_get(mig, "mode")) ? ctl_str(mig, "mode") : mode,
	       integer(mig, "id", id, sizeof(id)), strcmp(phase, "-") ? phase : "queued", from,
	       ctl_str(mig, "to"));
}

/* @vm the last vm.show reply: print how migration @id ended; 0 when it completed. */
static int report_end(struct ctl *ctl, const char *name, json_t *vm, json_int_t id)
{
	json_t *last = json_object_get(vm, "last_migration");
	char line[1024];

	if (!has_id(last, id)) {
		fprintf(stderr,
			"hvctl: vm migrate: %s: migration %lld is neither in flight nor the last one that ended (another ended since?); 'hvctl vm show %s' says where it runs\n",
			name, (long long)id, name);
		return EXIT_DAEMON_ERROR;
	}
	if (ctl->json)
		print_json(last);
	else
		puts(ctl_mig_result(name, vm, last, line, sizeof(line)));
	return strcmp(ctl_str(last, "result"), "completed") ? EXIT_DAEMON_ERROR : 0;
}

/* Poll vm.show until migration @id of @name is over; @vm (consumed) the migrate reply. */
static int wait_migration(struct ctl *ctl, const char *name, json_int_t id, json_t *vm,
			  const struct migrate_opts *o)
{
	struct progress pr = { .tty = isatty(STDOUT_FILENO), .last_ms = -1 };
	json_t *args = json_pack("{s:s}", "name", name);
	int64_t start = ctl_now_ms();
	int rc = 0;

	while (has_id(json_object_get(vm, "migration"), id)) {
		if (o->watch && !ctl->json)
			progress_show(&pr, json_object_get(vm, "migration"));
		if (ctl_now_ms() - start >= (int64_t)o->timeout_s * 1000) {
			progress_end(&pr);
			fprintf(stderr,
				"hvctl: vm migrate: %s: migration %lld not over after %ld s (phase %s); it goes on: 'hvctl vm migrate-cancel %s' stops it\n",
				name, (long long)id, o->timeout_s,
				ctl_str(json_object_get(vm, "migration"), "phase"), name);
			rc = EXIT_TIMEOUT;
			goto out;
		}
		ctl_sleep_ms(POLL_MS);
		json_decref(vm);
		rc = call(ctl, "vm.show", args, &vm);
		if (rc) {
			progress_end(&pr);
			goto out;
		}
	}
	progress_end(&pr);
	rc = report_end(ctl, name, vm, id);
out:
	json_decref(vm);
	json_decref(args);
	return rc;
}

int hvctl_vm_migrate(struct ctl *ctl, int argc, char **argv)
{
	struct migrate_opts o = { .mode = "live", .timeout_s = TIMEOUT_DEFAULT_S };
	json_t *args, *res, *id;
	const char *name;
	int rc;

	rc = parse_migrate(ctl, argc, argv, &o);
	if (rc >= 0)
		return rc;
	name = argv[optind];
	/* s*: no "to" at all when not given, so that placement chooses */
	args = json_pack("{s:s,s:s,s:s*}", "name", name, "mode", o.mode, "to", o.to);
	if (!args) {
		fprintf(stderr, "hvctl: vm migrate: out of memory or not valid UTF-8\n");
		return EXIT_USAGE;
	}
	rc = call(ctl, "vm.migrate", args, &res);
	json_decref(args);
	if (rc)
		return rc;
	if (!o.wait && !o.watch) {
		if (ctl->json)
			print_json(res);
		else
			print_queued(name, res, o.mode);
		json_decref(res);
		return 0;
	}
	id = json_object_get(json_object_get(res, "migration"), "id");
	if (!json_is_integer(id)) {
		fprintf(stderr,
			"hvctl: vm migrate: %s: hvnoded's reply names no migration id: nothing to wait for; 'hvctl vm show %s' shows the VM\n",
			name, name);
		json_decref(res);
		return EXIT_DAEMON_ERROR;
	}
	return wait_migration(ctl, name, json_integer_value(id), res, &o);
}

/* --- vm migrate-cancel -------------------------------------------------------------------- */

static void print_cancelled(const char *name, json_t *vm)
{
	json_t *mig = json_object_get(vm, "migration");
	json_t *last = json_object_get(vm, "last_migration");
	const char *msg = json_string_value(json_object_get(vm, "message"));
	const char *result = ctl_str(last, "result");
	char id[24];

	if (json_is_object(mig))
		printf("vm %s: migration %s is being cancelled (phase %s)%s%s\n", name,
		       integer(mig, "id", id, sizeof(id)), ctl_str(mig, "phase"), msg ? ": " : "",
		       msg ? msg : "");
	else if (json_is_object(last) && (!strcmp(result, "cancelled") || !strcmp(result, "-")))
		printf("vm %s: migration %s cancelled\n", name,
		       integer(last, "id", id, sizeof(id)));
	else if (json_is_object(last))
		printf("vm %s: migration %s had already %s\n", name,
		       integer(last, "id", id, sizeof(id)), result);
	else
		printf("vm %s: %s\n", name, msg ? msg : "migration cancelled");
}

int hvctl_vm_migrate_cancel(struct ctl *ctl, int argc, char **argv)
{
	json_t *res;
	int rc;

	rc = hvctl_vm_call(ctl, argc, argv, migrate_cancel_help, "vm.migrate-cancel", &res);
	if (rc >= 0)
		return rc;
	if (ctl->json)
		print_json(res);
	else
		print_cancelled(argv[optind], res);
	json_decref(res);
	return 0;
}
