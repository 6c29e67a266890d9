/*
 * lun-tool: look at and change a LUN's persistent reservations with the
 * storage library, for the integration tests and for admins debugging.
 *
 *   lun-tool keys URL [--json] [--initiator IQN]
 *   lun-tool acquire URL --key 0x.. --initiator IQN [--takeover]
 *   lun-tool release URL --key 0x.. --initiator IQN
 *   lun-tool caps URL [--json]
 *
 * Keys are printed as "0x%016" PRIx64, as hvctl prints them. Sessions use the
 * purpose "lun-tool", so the same initiator always gets the same I_T nexus:
 * "release" finds the registration an earlier "acquire" left.
 *
 * Exit codes: 0 ok, 1 the operation failed (message on stderr), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "../../storage/storage.h"

#define DEFAULT_INITIATOR "iqn.2026-11.org.hvcluster:lun-tool"
#define PURPOSE "lun-tool"
#define ERR_MAX 1024

#define EXIT_FAILED 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"Usage:\n"
	"  lun-tool keys URL [--json] [--initiator IQN]\n"
	"  lun-tool acquire URL --key 0x.. [--initiator IQN] [--takeover]\n"
	"  lun-tool release URL --key 0x.. [--initiator IQN]\n"
	"  lun-tool caps URL [--json] [--initiator IQN]\n"
	"\n"
	"Show or change the SCSI-3 persistent reservations of the iSCSI LUN at URL\n"
	"(iscsi://HOST[:PORT]/TARGET/LUN).\n"
	"\n"
	"Commands:\n"
	"  keys     the registered keys (one per I_T nexus, in target order) and the\n"
	"           reservation (READ KEYS, READ RESERVATION)\n"
	"  acquire  own the LUN with KEY: register it, reserve Write Exclusive -\n"
	"           Registrants Only; refused while another key is there, unless\n"
	"           --takeover, which preempts it\n"
	"  release  give the LUN up: no registration and no reservation of KEY left\n"
	"  caps     what the target supports (REPORT CAPABILITIES)\n"
	"\n"
	"Options:\n"
	"  --key 0x..          the reservation key (0x and up to 16 hex digits)\n"
	"  --initiator IQN     the initiator name (default " DEFAULT_INITIATOR ");\n"
	"                      release with the one that acquired\n"
	"  --takeover          acquire: preempt another node's key\n"
	"  --json              keys, caps: a JSON document on stdout\n"
	"  --timeout S         seconds per step and SCSI command (default 10)\n"
	"  -v, --verbose       log every SCSI step on stderr\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 ok, 1 the operation failed (the message says why), 2 usage error.\n";

enum cmd { CMD_KEYS, CMD_ACQUIRE, CMD_RELEASE, CMD_CAPS };

struct opts {
	enum cmd cmd;
	const char *url;
	const char *initiator;
	uint64_t key;		/* 0: not given */
	bool takeover;
	bool json;
	bool verbose;
	int timeout_s;
};

static const struct {
	const char *name;
	enum cmd cmd;
} commands[] = {
	{ "keys", CMD_KEYS },
	{ "acquire", CMD_ACQUIRE },
	{ "release", CMD_RELEASE },
	{ "caps", CMD_CAPS },
};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...);

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("lun-tool: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

static int parse_timeout(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 3600)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

enum { OPT_KEY = 256, OPT_INITIATOR, OPT_TAKEOVER, OPT_JSON, OPT_TIMEOUT };

static const struct option long_opts[] = {
	{ "key", required_argument, NULL, OPT_KEY },
	{ "initiator", required_argument, NULL, OPT_INITIATOR },
	{ "takeover", no_argument, NULL, OPT_TAKEOVER },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Which options make sense with which command. */
static int check_opts(const struct opts *o, const char *name)
{
	bool needs_key = o->cmd == CMD_ACQUIRE || o->cmd == CMD_RELEASE;

	if (needs_key && !o->key)
		return usage_error("%s: --key is required", name);
	if (!needs_key && o->key)
		return usage_error("%s: --key makes no sense here", name);
	if (o->takeover && o->cmd != CMD_ACQUIRE)
		return usage_error("%s: --takeover is for acquire", name);
	if (o->json && needs_key)
		return usage_error("%s: --json is for keys and caps", name);
	return 0;
}

/* 0, EXIT_USAGE, or -1 when --help was printed. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	const char *name;
	size_t i;
	int c;

	memset(o, 0, sizeof(*o));
	o->initiator = DEFAULT_INITIATOR;
	if (argc < 2)
		return usage_error("a command is needed");
	name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
		fputs(usage_text, stdout);
		return -1;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0]))
		return usage_error("unknown command '%s'", name);
	o->cmd = commands[i].cmd;

	/* the command takes getopt's argv[0] place */
	argc--;
	argv++;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":vh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			if (storage_key_parse(optarg, &o->key) || o->key == 0)
				return usage_error("--key %s: not a reservation key (0x and 1 to 16 hex digits, not zero)",
						   optarg);
			break;
		case OPT_INITIATOR:
			if (strncmp(optarg, "iqn.", 4) != 0)
				return usage_error("--initiator %s: not an iSCSI name (iqn....)",
						   optarg);
			o->initiator = optarg;
			break;
		case OPT_TAKEOVER:
			o->takeover = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &o->timeout_s))
				return usage_error("--timeout %s: not a number of seconds (1..3600)",
						   optarg);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case ':':
			return usage_error("%s: option %s needs an argument", name,
					   argv[optind - 1]);
		default:
			return usage_error("%s: unknown option %s", name, argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("%s: the LUN's URL is missing", name);
	if (argc - optind > 1)
		return usage_error("%s: one URL only ('%s' is extra)", name, argv[optind + 1]);
	o->url = argv[optind];
	return check_opts(o, name);
}

static void log_stderr(void *opaque, int level, const char *msg)
{
	fprintf(stderr, "lun-tool: %s%s\n", level <= LOG_WARNING ? "warning: " : "", msg);
}

/* Our strings are ASCII names; escape anyway so the output is always JSON. */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void keys_json(const struct lun_pr_state *st)
{
	char tb[32];

	printf("{\"keys\": [");
	for (unsigned int i = 0; i < st->nkeys; i++)
		printf("%s\"0x%016" PRIx64 "\"", i ? ", " : "", st->keys[i]);
	printf("], \"holder\": ");
	if (st->reserved)
		printf("\"0x%016" PRIx64 "\"", st->holder);
	else
		printf("null");
	printf(", \"type\": ");
	if (st->reserved)
		json_string(lun_pr_type_name(st->type, tb, sizeof(tb)));
	else
		printf("null");
	printf(", \"generation\": %" PRIu32 "}\n", st->generation);
}

static void keys_human(const char *url, const struct lun_pr_state *st)
{
	char kb[96], tb[32];

	printf("%s\n", url);
	printf("  generation:    %" PRIu32 "\n", st->generation);
	printf("  registrations: %u%s\n", st->nkeys, st->keys_truncated ? " (list truncated)" : "");
	for (unsigned int i = 0; i < st->nkeys; i++)
		printf("    %s\n", lun_key_describe(kb, sizeof(kb), st->keys[i], 0));
	if (!st->reserved) {
		printf("  reservation:   none\n");
		return;
	}
	printf("  reservation:   %s, ", lun_pr_type_name(st->type, tb, sizeof(tb)));
	if (st->type == LUN_PR_TYPE_WEAR || st->type == LUN_PR_TYPE_EAAR)
		printf("held by every registrant\n");
	else
		printf("held by %s\n", lun_key_describe(kb, sizeof(kb), st->holder, 0));
}

static int do_keys(lun_session_t *s, const struct opts *o)
{
	struct lun_pr_state st;
	char err[ERR_MAX];

	if (lun_read_pr(s, &st, err, sizeof(err))) {
		fprintf(stderr, "lun-tool: %s\n", err);
		return EXIT_FAILED;
	}
	if (st.keys_truncated)
		fprintf(stderr, "lun-tool: warning: more than %d registrations; only the first are listed\n",
			LUN_PR_MAX_KEYS);
	if (o->json)
		keys_json(&st);
	else
		keys_human(o->url, &st);
	return 0;
}

/* The types of SPC's PERSISTENT RESERVATION TYPE MASK, as lun_pr_parse_caps stores it. */
static const struct {
	uint16_t bit;
	int type;
} type_bits[] = {
	{ 0x0200, LUN_PR_TYPE_WE },   { 0x0800, LUN_PR_TYPE_EA },   { 0x2000, LUN_PR_TYPE_WERO },
	{ 0x4000, LUN_PR_TYPE_EARO }, { 0x8000, LUN_PR_TYPE_WEAR }, { 0x0001, LUN_PR_TYPE_EAAR },
};

static void caps_json(const struct lun_pr_caps *c)
{
	char tb[32];
	bool first = true;

	printf("{\"pr_supported\": %s, \"report_caps\": %s, \"type_mask_valid\": %s, "
	       "\"type_mask\": %u, \"types\": ",
	       c->pr_supported ? "true" : "false", c->report_caps ? "true" : "false",
	       c->type_mask_valid ? "true" : "false", (unsigned)c->type_mask);
	if (!c->type_mask_valid) {
		printf("null");
	} else {
		putchar('[');
		for (size_t i = 0; i < sizeof(type_bits) / sizeof(type_bits[0]); i++) {
			if (!(c->type_mask & type_bits[i].bit))
				continue;
			printf("%s", first ? "" : ", ");
			json_string(lun_pr_type_name(type_bits[i].type, tb, sizeof(tb)));
			first = false;
		}
		putchar(']');
	}
	printf(", \"wero_supported\": %s, \"ptpl_capable\": %s, \"preempt_abort\": %s}\n",
	       c->wero_supported ? "true" : "false", c->ptpl_capable ? "true" : "false",
	       c->preempt_abort ? "true" : "false");
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

static void caps_human(const char *url, const struct lun_pr_caps *c)
{
	char tb[32];

	printf("%s\n", url);
	printf("  persistent reservations:  %s\n", yes_no(c->pr_supported));
	printf("  REPORT CAPABILITIES:      %s\n",
	       c->report_caps ? "yes" : "no (probed with READ KEYS)");
	if (c->type_mask_valid) {
		printf("  types (mask 0x%04x):\n", (unsigned)c->type_mask);
		for (size_t i = 0; i < sizeof(type_bits) / sizeof(type_bits[0]); i++)
			if (c->type_mask & type_bits[i].bit)
				printf("    %s\n", lun_pr_type_name(type_bits[i].type, tb,
								 sizeof(tb)));
	} else {
		printf("  types:                    not listed by the target\n");
	}
	printf("  Write Excl. - Reg. Only:  %s\n", yes_no(c->wero_supported));
	printf("  persist through power loss: %s\n", yes_no(c->ptpl_capable));
	printf("  PREEMPT AND ABORT:        %s\n", yes_no(c->preempt_abort));
}

static int do_caps(lun_session_t *s, const struct opts *o)
{
	struct lun_pr_caps caps;
	char err[ERR_MAX];
	int rc;

	rc = lun_pr_capabilities(s, &caps, err, sizeof(err));
	/* no WERO: the capabilities were read; show them with the refusal */
	if (rc && rc != -EOPNOTSUPP) {
		fprintf(stderr, "lun-tool: %s\n", err);
		return EXIT_FAILED;
	}
	if (o->json)
		caps_json(&caps);
	else
		caps_human(o->url, &caps);
	if (rc) {
		fprintf(stderr, "lun-tool: %s\n", err);
		return EXIT_FAILED;
	}
	return 0;
}

static int do_acquire(lun_session_t *s, const struct opts *o)
{
	char err[ERR_MAX];

	if (lun_acquire(s, o->key, o->takeover, err, sizeof(err))) {
		fprintf(stderr, "lun-tool: %s\n", err);
		return EXIT_FAILED;
	}
	printf("%s: acquired with key 0x%016" PRIx64 " as %s\n", o->url, o->key, o->initiator);
	return 0;
}

static int do_release(lun_session_t *s, const struct opts *o)
{
	char err[ERR_MAX];

	if (lun_release(s, o->key, err, sizeof(err))) {
		fprintf(stderr, "lun-tool: %s\n", err);
		return EXIT_FAILED;
	}
	printf("%s: released key 0x%016" PRIx64 "\n", o->url, o->key);
	return 0;
}

int main(int argc, char **argv)
{
	char err[ERR_MAX];
	lun_session_t *s;
	struct opts o;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	s = lun_open(o.url, o.initiator, PURPOSE, o.timeout_s, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "lun-tool: %s\n", err);
		return EXIT_FAILED;
	}
	if (o.verbose)
		lun_set_log(s, log_stderr, NULL);
	switch (o.cmd) {
	case CMD_KEYS:
		rc = do_keys(s, &o);
		break;
	case CMD_ACQUIRE:
		rc = do_acquire(s, &o);
		break;
	case CMD_RELEASE:
		rc = do_release(s, &o);
		break;
	case CMD_CAPS:
		rc = do_caps(s, &o);
		break;
	}
	lun_close(s);
	return rc;
}
