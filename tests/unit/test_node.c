/*
 * Unit tests of node/: the config reader, the IPC request decoder, the state file at start,
 * the audit log read from its end.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../node/auditlog.h"
#include "../../node/config.h"
#include "../../node/ipcproto.h"
#include "../../node/statefile.h"
#include "../../node/proto.h"

static char path[64];

static int setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/hvtest-conf-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static void write_conf(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Load @text; return the status, the message in @err. */
static int load(const char *text, struct hv_config *cfg, char *err, size_t errlen)
{
	write_conf(text);
	err[0] = '\0';
	return hv_config_load(cfg, path, err, errlen);
}

static void test_full_config(void **state)
{
	struct hv_config cfg;
	char err[512];
	int rc;

	rc = load("# comment\n"
		  "[node]\n"
		  "name = n1\n"
		  "state_dir = /var/lib/x   # trailing comment\n"
		  "run_dir=/run/x\n"
		  "\n"
		  "[cluster]\n"
		  "name = lab-1\n"
		  "[log]\n"
		  "target = file\n"
		  "file = /tmp/x.log\n"
		  "level = debug\n"
		  "blackbox = no\n",
		  &cfg, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(cfg.node_name, "n1");
	assert_string_equal(cfg.state_dir, "/var/lib/x");
	assert_string_equal(cfg.run_dir, "/run/x");
	assert_string_equal(cfg.cluster_name, "lab-1");
	assert_string_equal(cfg.ipc_name, "hvnoded");
	assert_int_equal(cfg.log_target, HV_LOG_FILE);
	assert_string_equal(cfg.log_file, "/tmp/x.log");
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_false(cfg.log_blackbox);
	assert_string_equal(cfg.blackbox_dir, "/var/lib/x");
	assert_int_equal(cfg.vm_uid_base, 640000);
	assert_int_equal(cfg.vm_uid_count, 1000);
	assert_string_equal(cfg.qemu, "/usr/bin/qemu-system-x86_64");
	hv_config_free(&cfg);
}

static void test_defaults(void **state)
{
	struct hv_config cfg;
	char err[512];

	assert_int_equal(load("[cluster]\nname = c\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.state_dir, "/var/lib/hvcluster");
	assert_string_equal(cfg.run_dir, "/run/hvcluster");
	assert_int_equal(cfg.log_target, HV_LOG_SYSLOG);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_true(cfg.log_blackbox);
	assert_non_null(cfg.node_name);
	hv_config_free(&cfg);
}

/* Each bad file must be refused with a message naming file, line and key. */
static void test_bad_input(void **state)
{
	static const struct {
		const char *text;
		const char *expect; /* substring of the error, after "<path>:" */
	} cases[] = {
		{ "[cluster]\nname = c\nbogus = 1\n", ":3: unknown key 'bogus' in section [cluster]" },
		{ "[nodes]\n", ":1: unknown section [nodes]" },
		{ "name = x\n", ":1: key 'name' outside of any section" },
		{ "[cluster]\nname c\n", ":2: expected 'key = value'" },
		{ "[cluster\n", ":1: malformed section header" },
		{ "[cluster]\nname = c\nname = d\n", ":3: [cluster] name given twice" },
		{ "[cluster]\nname = a b\n", ":2: [cluster] name: 'a b' is not a valid name" },
		{ "[cluster]\nname = c\n[node]\nstate_dir = rel\n",
		  ":4: [node] state_dir: 'rel' is not an absolute path" },
		{ "[cluster]\nname = c\n[log]\nlevel = loud\n", ":4: [log] level: 'loud'" },
		{ "[cluster]\nname = c\n[log]\ntarget = printer\n", ":4: [log] target: 'printer'" },
		{ "[cluster]\nname = c\n[log]\nblackbox = maybe\n", ":4: [log] blackbox: 'maybe'" },
		{ "[cluster]\nname =\n", ":2: [cluster] name: empty value" },
		{ "[node]\nname = n1\n", ": [cluster] name is mandatory and missing" },
		{ "[cluster]\nname = c\n[log]\ntarget = file\n", ": [log] target = file needs [log] file" },
		{ "[cluster]\nname = c\n[vm]\nuid_base = 0\n", ":4: [vm] uid_base: '0' is not a number in 1000..4294967294" },
		{ "[cluster]\nname = c\n[vm]\nuid_count = 12x\n", ":4: [vm] uid_count: '12x' is not a number" },
		{ "[cluster]\nname = c\n[vm]\nuid_base = 4294967000\nuid_count = 1000\n", ": [vm] uid_base + uid_count exceeds the uid range" },
		{ "[cluster]\nname = c\n[vm]\nqemu = qemu\n", ":4: [vm] qemu: 'qemu' is not an absolute path" },
	};
	struct hv_config cfg;
	char err[512], want[600];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(cases[i].text, &cfg, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "%s%s", path, cases[i].expect);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: got '%s', want prefix '%s'", i, err, want);
		/* a failed load leaves nothing allocated */
		assert_null(cfg.cluster_name);
	}
}

static void test_missing_file(void **state)
{
	struct hv_config cfg;
	char err[512];

	assert_int_equal(hv_config_load(&cfg, "/nonexistent/hvnoded.conf", err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/hvnoded.conf: cannot open: No such file or directory");
}

static void test_nul_byte(void **state)
{
	struct hv_config cfg;
	char err[512];
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fwrite("[cluster]\nname = c\0x\n", 1, 21, f);
	fclose(f);
	assert_int_equal(hv_config_load(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: NUL byte"));
}

static void test_log_level_parse(void **state)
{
	assert_int_equal(hv_log_level_parse("error"), LOG_ERR);
	assert_int_equal(hv_log_level_parse("warning"), LOG_WARNING);
	assert_int_equal(hv_log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(hv_log_level_parse("DEBUG"), -EINVAL);
	assert_int_equal(hv_log_level_parse(""), -EINVAL);
}

/* A request as hvctl sends it: a header whose size is @hsize (0: the true size), then @body. */
static size_t request(unsigned char *buf, size_t cap, int32_t id, int32_t hsize, const char *body,
		      size_t blen)
{
	struct qb_ipc_request_header hdr = { .id = id };

	assert_true(sizeof(hdr) + blen <= cap);
	hdr.size = hsize ? hsize : (int32_t)(sizeof(hdr) + blen);
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), body, blen);
	return sizeof(hdr) + blen;
}

static int decode(const char *body, char *cmd, json_t **args, char *err, size_t errlen)
{
	unsigned char buf[512];
	size_t n = request(buf, sizeof(buf), HV_IPC_REQUEST, 0, body, strlen(body));

	return ipc_request_decode(buf, n, cmd, HV_IPC_CMD_MAX, args, err, errlen);
}

static void test_ipc_decode_ok(void **state)
{
	char cmd[HV_IPC_CMD_MAX], err[256];
	json_t *args;

	assert_int_equal(decode("{\"cmd\":\"vm.stop\",\"args\":{\"name\":\"web1\"}}", cmd, &args,
				err, sizeof(err)), 0);
	assert_string_equal(cmd, "vm.stop");
	assert_true(json_is_object(args));
	assert_string_equal(json_string_value(json_object_get(args, "name")), "web1");
	/* args outlives the request it came from */
	assert_int_equal(args->refcount, 1);
	json_decref(args);

	/* no "args": an empty object, so handlers never see NULL */
	assert_int_equal(decode("{\"cmd\":\"status\"}", cmd, &args, err, sizeof(err)), 0);
	assert_string_equal(cmd, "status");
	assert_true(json_is_object(args));
	assert_int_equal(json_object_size(args), 0);
	json_decref(args);

	/* an unknown name is the command table's business, not the decoder's */
	assert_int_equal(decode("{\"cmd\":\"format-all-disks\"}", cmd, &args, err, sizeof(err)), 0);
	assert_string_equal(cmd, "format-all-disks");
	json_decref(args);
}

/* ipc.c sends these messages to the client and logs them: they must not change. */
static void test_ipc_decode_malformed(void **state)
{
	static const struct {
		const char *body;
		const char *expect; /* prefix of the error */
	} cases[] = {
		{ "\x01\xff{{{ garbage", "malformed request: not JSON: " },
		{ "", "malformed request: not JSON: " },
		{ "[1,2,3]", "malformed request: not an object with a string \"cmd\"" },
		{ "{\"command\":\"status\"}", "malformed request: not an object with a string \"cmd\"" },
		{ "{\"cmd\":7}", "malformed request: not an object with a string \"cmd\"" },
		{ "{\"cmd\":\"status\",\"args\":7}", "malformed request: \"args\" is not an object" },
		{ "{\"cmd\":\"status\",\"args\":null}", "malformed request: \"args\" is not an object" },
		{ "{\"cmd\":\"status\",\"cmd\":\"vm.stop\"}", "malformed request: not JSON: duplicate" },
		{ "{\"cmd\":\"\"}", "malformed request: \"cmd\" is empty or holds a NUL byte" },
		/* json_string_value() would read "status": jansson refuses it without JSON_ALLOW_NUL */
		{ "{\"cmd\":\"status\\u0000vm.stop\"}",
		  "malformed request: not JSON: \\u0000 is not allowed" },
		{ "{\"cmd\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
		  "malformed request: \"cmd\" is longer than 63 bytes" },
	};
	char cmd[HV_IPC_CMD_MAX], err[256];
	json_t *args;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		args = (json_t *)&args; /* must be reset */
		assert_int_equal(decode(cases[i].body, cmd, &args, err, sizeof(err)), -EPROTO);
		assert_null(args);
		assert_string_equal(cmd, "");
		if (strncmp(err, cases[i].expect, strlen(cases[i].expect)) != 0)
			fail_msg("case %zu: got '%s', want prefix '%s'", i, err, cases[i].expect);
	}
	/* 63 bytes is the longest name that fits */
	assert_int_equal(decode("{\"cmd\":\"012345678901234567890123456789012345678901234567890123456789012\"}",
				cmd, &args, err, sizeof(err)), 0);
	assert_int_equal(strlen(cmd), 63);
	json_decref(args);
}

static void test_ipc_decode_header(void **state)
{
	const char *body = "{\"cmd\":\"status\"}";
	unsigned char buf[512];
	char cmd[HV_IPC_CMD_MAX], err[256];
	json_t *args;
	size_t n;

	/* shorter than a header, whatever it claims */
	n = request(buf, sizeof(buf), HV_IPC_REQUEST, 0, body, strlen(body));
	assert_int_equal(ipc_request_decode(buf, sizeof(struct qb_ipc_request_header) - 1, cmd,
					    sizeof(cmd), &args, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "malformed request: bad header size");
	assert_null(args);
	/* ipc-garbage short: a header claiming 2 bytes */
	n = request(buf, sizeof(buf), HV_IPC_REQUEST, 2, body, strlen(body));
	assert_int_equal(ipc_request_decode(buf, n, cmd, sizeof(cmd), &args, err, sizeof(err)),
			 -EPROTO);
	assert_string_equal(err, "malformed request: bad header size");
	n = request(buf, sizeof(buf), HV_IPC_REQUEST, -1, body, strlen(body));
	assert_int_equal(ipc_request_decode(buf, n, cmd, sizeof(cmd), &args, err, sizeof(err)),
			 -EPROTO);
	assert_string_equal(err, "malformed request: bad header size");
	/* ipc-garbage oversize: the header claims more than was sent */
	n = request(buf, sizeof(buf), HV_IPC_REQUEST, 100000, body, strlen(body));
	assert_int_equal(ipc_request_decode(buf, n, cmd, sizeof(cmd), &args, err, sizeof(err)),
			 -EPROTO);
	assert_string_equal(err, "malformed request: bad header size");
	/* ipc-garbage badid */
	n = request(buf, sizeof(buf), 4242, 0, body, strlen(body));
	assert_int_equal(ipc_request_decode(buf, n, cmd, sizeof(cmd), &args, err, sizeof(err)),
			 -EPROTO);
	assert_string_equal(err, "malformed request: unknown message id 4242");
	assert_null(args);
	/* the JSON is what the header says, not what follows it: here "{}" cut to "{" */
	n = request(buf, sizeof(buf), HV_IPC_REQUEST,
		    (int32_t)(sizeof(struct qb_ipc_request_header) + 1), "{}", 2);
	assert_int_equal(ipc_request_decode(buf, n, cmd, sizeof(cmd), &args, err, sizeof(err)),
			 -EPROTO);
	assert_non_null(strstr(err, "not JSON"));
	/* and bytes after it are ignored, as libqb's buffer may hold them */
	n = request(buf, sizeof(buf), HV_IPC_REQUEST,
		    (int32_t)(sizeof(struct qb_ipc_request_header) + strlen(body)), body,
		    strlen(body) + 1);
	assert_int_equal(ipc_request_decode(buf, n, cmd, sizeof(cmd), &args, err, sizeof(err)), 0);
	json_decref(args);
	/* an unaligned buffer */
	n = request(buf + 1, sizeof(buf) - 1, HV_IPC_REQUEST, 0, body, strlen(body));
	assert_int_equal(ipc_request_decode(buf + 1, n, cmd, sizeof(cmd), &args, err, sizeof(err)),
			 0);
	assert_string_equal(cmd, "status");
	json_decref(args);
}

/* Small buffers: names that do not fit are refused, messages are cut but terminated. */
static void test_ipc_decode_small_buffers(void **state)
{
	const char *body = "{\"cmd\":\"status\"}";
	unsigned char buf[512];
	char cmd[8], err[8];
	json_t *args;
	size_t n = request(buf, sizeof(buf), HV_IPC_REQUEST, 0, body, strlen(body));

	assert_int_equal(ipc_request_decode(buf, n, cmd, 7, &args, err, sizeof(err)), 0);
	assert_string_equal(cmd, "status");
	json_decref(args);
	assert_int_equal(ipc_request_decode(buf, n, cmd, 6, &args, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "malform");
	assert_null(args);
	assert_int_equal(ipc_request_decode(buf, n, cmd, 0, &args, err, 1), -EPROTO);
	assert_string_equal(err, "");
	assert_int_equal(ipc_request_decode(buf, n, cmd, 0, &args, NULL, 0), -EPROTO);
	assert_null(args);
}

static void write_file(const char *p, const char *text, mode_t mode)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

static char *read_file(const char *p)
{
	static char buf[4096];
	FILE *f = fopen(p, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A truncated state file is never started from: set aside (kept, mode kept), and remembered. */
static void test_statefile_corrupt_at_start(void **unused)
{
	char dir[] = "/tmp/test_node.XXXXXX", sf[128], marker[160], moved[4200], moved2[4200];
	char err[2048];
	cluster_state_t *s = state_create();
	struct stat st;
	bool needed;

	assert_non_null(mkdtemp(dir));
	snprintf(sf, sizeof(sf), "%s/state.json", dir);
	snprintf(marker, sizeof(marker), "%s.needed", sf);

	/* no file at all: a new node, nothing needed */
	assert_int_equal(statefile_load_at_start(sf, s, &needed, moved, sizeof(moved), err,
						 sizeof(err)), 0);
	assert_false(needed);

	/* a good file loads */
	assert_int_equal(statefile_save(sf, s, err, sizeof(err)), 0);
	assert_int_equal(statefile_load_at_start(sf, s, &needed, moved, sizeof(moved), err,
						 sizeof(err)), 0);
	assert_false(needed);

	/* half a file: refused, moved aside with its bytes and mode, the marker says where */
	write_file(sf, "{\"version\": 3, \"vms\": [", 0640);
	assert_int_equal(statefile_load_at_start(sf, s, &needed, moved, sizeof(moved), err,
						 sizeof(err)), 0);
	assert_true(needed);
	assert_non_null(strstr(err, sf));
	assert_non_null(strstr(err, "corrupt"));
	assert_non_null(strstr(err, moved));
	assert_non_null(strstr(moved, "/state.json.corrupt-"));
	assert_int_equal(access(sf, F_OK), -1);
	assert_string_equal(read_file(moved), "{\"version\": 3, \"vms\": [");
	assert_int_equal(stat(moved, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_non_null(strstr(read_file(marker), moved));

	/* a restart before the cluster's state came: still needed, not a new node */
	assert_int_equal(statefile_load_at_start(sf, s, &needed, moved2, sizeof(moved2), err,
						 sizeof(err)), 0);
	assert_true(needed);
	assert_string_equal(moved2, moved);

	/* garbage in the same second: another name, the first one is not replaced */
	write_file(sf, "\x01\x02garbage", 0600);
	assert_int_equal(statefile_load_at_start(sf, s, &needed, moved2, sizeof(moved2), err,
						 sizeof(err)), 0);
	assert_true(needed);
	assert_string_not_equal(moved2, moved);
	assert_string_equal(read_file(moved), "{\"version\": 3, \"vms\": [");

	/* the cluster's state arrived and was saved: the marker goes, the bad files stay */
	assert_int_equal(statefile_save(sf, s, err, sizeof(err)), 0);
	statefile_needed_done(sf);
	assert_int_equal(access(marker, F_OK), -1);
	assert_int_equal(statefile_load_at_start(sf, s, &needed, moved2, sizeof(moved2), err,
						 sizeof(err)), 0);
	assert_false(needed);
	assert_int_equal(access(moved, F_OK), 0);

	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
	state_destroy(s);
}

/* An audit log of @n records, at_ms 1000 + i, with a line of garbage and a torn last line. */
static int audit_log_file(char *name, size_t namelen, int n, bool torn)
{
	FILE *f;
	int fd;

	snprintf(name, namelen, "/tmp/hvtest-audit-XXXXXX");
	fd = mkstemp(name);
	assert_true(fd >= 0);
	f = fdopen(dup(fd), "w");
	assert_non_null(f);
	for (int i = 0; i < n; i++) {
		fprintf(f, "{\"at_ms\":%d,\"cmd\":\"vm.start\",\"object\":\"vm%d\",\"pad\":\"%0200d\"}\n",
			1000 + i, i, 0);
		if (i == n / 2)
			fprintf(f, "not json\n\n[1]\n");
	}
	if (torn)
		fprintf(f, "{\"at_ms\":999999,\"cmd\":\"vm.st");
	fclose(f);
	return fd;
}

static int at(json_t *recs, size_t i)
{
	return (int)json_integer_value(json_object_get(json_array_get(recs, i), "at_ms"));
}

static void test_audit_log_tail(void **state)
{
	char name[64];
	int fd = audit_log_file(name, sizeof(name), 3000, true); /* ~700 KB: many chunks */
	json_t *recs;
	bool more;

	/* the newest 1000, oldest first; the torn line and the garbage are skipped */
	assert_int_equal(audit_log_tail(fd, 0, 1000, 1 << 20, &recs, &more), 0);
	assert_int_equal(json_array_size(recs), 1000);
	assert_int_equal(at(recs, 0), 3000);
	assert_int_equal(at(recs, 999), 3999);
	assert_true(more);
	json_decref(recs);

	/* all of them: none left out */
	assert_int_equal(audit_log_tail(fd, 0, 5000, 4 << 20, &recs, &more), 0);
	assert_int_equal(json_array_size(recs), 3000);
	assert_int_equal(at(recs, 0), 1000);
	assert_int_equal(at(recs, 1500), 2500);
	assert_int_equal(at(recs, 2999), 3999);
	assert_false(more);
	json_decref(recs);

	/* --since: the records from then on, and nothing older is "left out" */
	assert_int_equal(audit_log_tail(fd, 3990, 1000, 1 << 20, &recs, &more), 0);
	assert_int_equal(json_array_size(recs), 10);
	assert_int_equal(at(recs, 0), 3990);
	assert_false(more);
	json_decref(recs);
	assert_int_equal(audit_log_tail(fd, 3990, 5, 1 << 20, &recs, &more), 0);
	assert_int_equal(json_array_size(recs), 5);
	assert_int_equal(at(recs, 0), 3995);
	assert_true(more);
	json_decref(recs);

	/* what fits in the bytes given, the newest */
	assert_int_equal(audit_log_tail(fd, 0, 1000, 10000, &recs, &more), 0);
	assert_true(json_array_size(recs) > 10 && json_array_size(recs) < 100);
	assert_int_equal(at(recs, json_array_size(recs) - 1), 3999);
	assert_true(more);
	{
		char *text = json_dumps(recs, JSON_COMPACT);

		assert_true(strlen(text) <= 10000 + 2);
		free(text);
	}
	json_decref(recs);
	close(fd);
	unlink(name);

	/* an empty log, and one line without a newline */
	fd = audit_log_file(name, sizeof(name), 0, false);
	assert_int_equal(audit_log_tail(fd, 0, 1000, 1 << 20, &recs, &more), 0);
	assert_int_equal(json_array_size(recs), 0);
	assert_false(more);
	json_decref(recs);
	assert_int_equal(write(fd, "{\"at_ms\":5}", 11), 11);
	assert_int_equal(audit_log_tail(fd, 0, 1000, 1 << 20, &recs, &more), 0);
	assert_int_equal(json_array_size(recs), 1);
	assert_int_equal(at(recs, 0), 5);
	json_decref(recs);
	close(fd);
	unlink(name);
}

/* A state file bigger than STATEFILE_MAX is refused unread (also at start: set aside). */
static void test_statefile_too_big(void **unused)
{
	char dir[] = "/tmp/test_node.XXXXXX", sf[128], moved[4200], err[2048];
	cluster_state_t *s = state_create();
	bool needed;

	assert_non_null(mkdtemp(dir));
	snprintf(sf, sizeof(sf), "%s/state.json", dir);
	write_file(sf, "{\"format\":2,\"version\":1}", 0600);
	assert_int_equal(truncate(sf, (off_t)STATEFILE_MAX + 1), 0); /* sparse */
	assert_int_equal(statefile_load(sf, s, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, sf));
	assert_non_null(strstr(err, "too big"));
	assert_int_equal(state_version(s), 0);

	assert_int_equal(statefile_load_at_start(sf, s, &needed, moved, sizeof(moved), err,
						 sizeof(err)), 0);
	assert_true(needed);
	assert_non_null(strstr(err, "too big"));
	assert_int_equal(access(sf, F_OK), -1);
	assert_int_equal(unlink(moved), 0);
	{
		char marker[160];

		snprintf(marker, sizeof(marker), "%s.needed", sf);
		assert_int_equal(unlink(marker), 0);
	}
	/* a directory where the file should be */
	assert_int_equal(mkdir(sf, 0700), 0);
	assert_int_equal(statefile_load(sf, s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rmdir(sf), 0);
	assert_int_equal(rmdir(dir), 0);
	state_destroy(s);
}

/* statefile_parse: the bytes alone; refused input leaves the state as it was. */
static void test_statefile_parse(void **unused)
{
	static const char good[] = "{\"format\":2,\"version\":5,\"vms\":[]}";
	static const char nul[] = "{\"format\":2,\0\"version\":6}";
	cluster_state_t *s = state_create();
	char err[512];

	assert_int_equal(statefile_parse(good, strlen(good), s, err, sizeof(err)), 0);
	assert_int_equal(state_version(s), 5);
	/* only @len bytes count: a prefix is a truncated file */
	assert_int_equal(statefile_parse(good, 10, s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "corrupt"));
	assert_int_equal(statefile_parse(nul, sizeof(nul) - 1, s, err, sizeof(err)), -EINVAL);
	assert_int_equal(statefile_parse("[]", 2, s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid"));
	assert_int_equal(statefile_parse(good, (size_t)STATEFILE_MAX + 1, s, err, sizeof(err)),
			 -EFBIG);
	assert_int_equal(state_version(s), 5);
	state_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
		cmocka_unit_test(test_log_level_parse),
		cmocka_unit_test(test_ipc_decode_ok),
		cmocka_unit_test(test_ipc_decode_malformed),
		cmocka_unit_test(test_ipc_decode_header),
		cmocka_unit_test(test_ipc_decode_small_buffers),
		cmocka_unit_test(test_statefile_corrupt_at_start),
		cmocka_unit_test(test_audit_log_tail),
		cmocka_unit_test(test_statefile_too_big),
		cmocka_unit_test(test_statefile_parse),
	};

	return cmocka_run_group_tests_name("node", tests, NULL, NULL);
}
