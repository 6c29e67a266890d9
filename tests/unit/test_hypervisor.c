/*
 * Unit tests of hypervisor/: QEMU's command line and the spec's validation,
 * the QMP line parser, the QMP client against a fake QEMU on a socketpair
 * driven by a qb_loop, and the stderr tail.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <qb/qbdefs.h>
#include <qb/qbloop.h>

#include "../../hypervisor/hypervisor.h"
#include "../../hypervisor/qmp.h"
#include "../../hypervisor/spawn.h"

/* --- argv ------------------------------------------------------------------ */

static struct hv_disk disks[2];
static struct hv_nic nics[1];
static struct hv_spec spec;
static const struct hv_caps tcg = {.kvm = false};
static const struct hv_caps kvm = {.kvm = true};

static int setup_spec(void **state)
{
	disks[0] = (struct hv_disk){.nbd_socket = "/run/hv/vms/web1/disk0.sock"};
	disks[1] = (struct hv_disk){.nbd_socket = "/run/hv/vms/web1/disk1.sock", .bus = HV_BUS_IDE};
	nics[0] = (struct hv_nic){.tap_fd = 5, .mac = "52:54:00:12:34:56"};
	spec = (struct hv_spec){
		.name = "web1",
		.uuid = "0f8fad5b-d9cb-469f-a165-70867728950e",
		.vcpus = 2,
		.memory_mb = 512,
		.disks = disks,
		.ndisks = 2,
		.nics = nics,
		.nnics = 1,
		.kernel = "/boot/vmlinuz",
		.initrd = "/boot/initrd.img",
		.append = "console=ttyS0 root=/dev/vda",
		.dir = "/run/hv/vms/web1",
		.uid = 64001,
		.gid = 64001,
	};
	return 0;
}

static size_t argc_of(char **argv)
{
	size_t n = 0;

	while (argv[n])
		n++;
	return n;
}

/* Index of option @opt followed by @val (NULL: any), from @from on; -1 if absent. */
static long find_opt(char **argv, size_t from, const char *opt, const char *val)
{
	for (size_t i = from; argv[i]; i++)
		if (!strcmp(argv[i], opt) && (!val || (argv[i + 1] && !strcmp(argv[i + 1], val))))
			return (long)i;
	return -1;
}

static char **build_ok(const struct hv_caps *caps)
{
	char err[256] = "";
	char **argv = NULL;
	int rc = hv_build_argv(&spec, caps, &argv, err, sizeof(err));

	if (rc)
		fail_msg("hv_build_argv: %d: %s", rc, err);
	assert_non_null(argv);
	return argv;
}

static void assert_opt(char **argv, const char *opt, const char *val)
{
	if (find_opt(argv, 0, opt, val) < 0)
		fail_msg("argv lacks %s %s", opt, val ? val : "");
}

static void test_argv_full_spec(void **state)
{
	char **argv = build_ok(&tcg);
	long bd0, dev0, bd1, dev1;

	assert_string_equal(argv[0], "qemu-system-x86_64");
	assert_opt(argv, "-name", "guest=web1,debug-threads=on");
	assert_opt(argv, "-uuid", "0f8fad5b-d9cb-469f-a165-70867728950e");
	assert_opt(argv, "-nodefaults", NULL);
	assert_opt(argv, "-no-user-config", NULL);
	assert_opt(argv, "-display", "none");
	assert_opt(argv, "-machine", "pc,mem-merge=off");
	assert_opt(argv, "-accel", "tcg");
	assert_opt(argv, "-smp", "2");
	assert_opt(argv, "-m", "512M");
	assert_opt(argv, "-sandbox",
		   "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	assert_opt(argv, "-chardev",
		   "socket,id=qmp,path=/run/hv/vms/web1/qmp.sock,server=on,wait=off");
	assert_opt(argv, "-mon", "chardev=qmp,mode=control");
	assert_opt(argv, "-chardev", "file,id=serial0,path=/run/hv/vms/web1/console.log,append=on");
	assert_opt(argv, "-serial", "chardev:serial0");

	/* each disk: its node on the NBD unix socket, then its device on that node */
	bd0 = find_opt(argv, 0, "-blockdev",
		       "{\"driver\":\"nbd\",\"node-name\":\"disk0\",\"server\":{\"type\":\"unix\","
		       "\"path\":\"/run/hv/vms/web1/disk0.sock\"},\"read-only\":false,"
		       "\"cache\":{\"direct\":false,\"no-flush\":false}}");
	dev0 = find_opt(argv, 0, "-device",
			"virtio-blk-pci,drive=disk0,id=disk0-dev,write-cache=on,werror=stop,"
			"rerror=stop");
	bd1 = find_opt(argv, 0, "-blockdev", NULL);
	bd1 = find_opt(argv, bd1 + 1, "-blockdev", NULL);
	dev1 = find_opt(argv, 0, "-device",
			"ide-hd,drive=disk1,id=disk1-dev,bus=ide.0,unit=0,write-cache=on,"
			"werror=stop,rerror=stop");
	assert_true(bd0 > 0 && dev0 > bd0);
	assert_true(bd1 > dev0 && dev1 > bd1);
	assert_non_null(strstr(argv[bd1 + 1], "\"path\":\"/run/hv/vms/web1/disk1.sock\""));

	assert_opt(argv, "-netdev", "tap,id=net0,fd=5");
	assert_opt(argv, "-device", "virtio-net-pci,id=nic0,netdev=net0,mac=52:54:00:12:34:56");
	assert_opt(argv, "-kernel", "/boot/vmlinuz");
	assert_opt(argv, "-initrd", "/boot/initrd.img");
	assert_opt(argv, "-append", "console=ttyS0 root=/dev/vda");
	/* the driver always starts stopped and sends cont itself */
	assert_opt(argv, "-S", NULL);
	assert_int_equal(find_opt(argv, 0, "-incoming", NULL), -1);
	/* direct boot: no boot index on the disk */
	for (size_t i = 0; argv[i]; i++)
		assert_null(strstr(argv[i], "bootindex"));
	hv_argv_free(argv);
}

static void test_argv_kvm_and_binary(void **state)
{
	char **argv;

	spec.qemu_binary = "/opt/qemu/bin/qemu-system-x86_64";
	argv = build_ok(&kvm);
	assert_string_equal(argv[0], "/opt/qemu/bin/qemu-system-x86_64");
	assert_opt(argv, "-accel", "kvm");
	assert_int_equal(find_opt(argv, 0, "-accel", "tcg"), -1);
	hv_argv_free(argv);
}

static void test_argv_boot_from_disk(void **state)
{
	char **argv;

	spec.kernel = spec.initrd = spec.append = NULL;
	argv = build_ok(&tcg);
	assert_int_equal(find_opt(argv, 0, "-kernel", NULL), -1);
	assert_int_equal(find_opt(argv, 0, "-append", NULL), -1);
	assert_opt(argv, "-device",
		   "virtio-blk-pci,drive=disk0,id=disk0-dev,write-cache=on,werror=stop,"
		   "rerror=stop,bootindex=1");
	hv_argv_free(argv);
}

static void test_argv_file_ide_units(void **state)
{
	struct hv_disk ide[3] = {
		{.file = "/tmp/a.img", .bus = HV_BUS_IDE},
		{.file = "/tmp/b.img", .bus = HV_BUS_IDE},
		{.file = "/tmp/c.img", .bus = HV_BUS_IDE},
	};
	char **argv;

	spec.disks = ide;
	spec.ndisks = 3;
	spec.nnics = 0;
	argv = build_ok(&tcg);
	assert_opt(argv, "-blockdev",
		   "{\"driver\":\"file\",\"node-name\":\"disk0\",\"filename\":\"/tmp/a.img\","
		   "\"read-only\":false,\"cache\":{\"direct\":false,\"no-flush\":false}}");
	assert_opt(argv, "-device",
		   "ide-hd,drive=disk1,id=disk1-dev,bus=ide.0,unit=1,write-cache=on,werror=stop,"
		   "rerror=stop");
	assert_opt(argv, "-device",
		   "ide-hd,drive=disk2,id=disk2-dev,bus=ide.1,unit=0,write-cache=on,werror=stop,"
		   "rerror=stop");
	assert_int_equal(find_opt(argv, 0, "-netdev", NULL), -1);
	hv_argv_free(argv);
}

static void test_argv_paused_incoming_commas(void **state)
{
	char **argv;
	size_t n;

	spec.start_paused = true;
	spec.incoming_defer = true;
	spec.dir = "/run/a,b";
	spec.uuid = NULL;
	argv = build_ok(&tcg);
	n = argc_of(argv);
	assert_opt(argv, "-S", NULL);
	assert_string_equal(argv[n - 2], "-incoming");
	assert_string_equal(argv[n - 1], "defer");
	assert_opt(argv, "-chardev", "socket,id=qmp,path=/run/a,,b/qmp.sock,server=on,wait=off");
	assert_int_equal(find_opt(argv, 0, "-uuid", NULL), -1);
	hv_argv_free(argv);
}

static void test_argv_nic_without_tap(void **state)
{
	char **argv;

	nics[0] = (struct hv_nic){.tap_fd = -1, .mac = "52:54:00:ab:cd:ef", .model = "e1000"};
	argv = build_ok(&tcg);
	assert_opt(argv, "-device", "e1000,id=nic0,mac=52:54:00:ab:cd:ef");
	assert_int_equal(find_opt(argv, 0, "-netdev", NULL), -1);
	hv_argv_free(argv);
}

static void test_probe_caps(void **state)
{
	struct hv_caps caps = {.kvm = true};

	/* whatever the host offers: no /dev/kvm means TCG */
	hv_probe_caps(&caps);
	if (access("/dev/kvm", F_OK) != 0)
		assert_false(caps.kvm);
}

/* --- validation ------------------------------------------------------------ */

enum field {
	F_UID,
	F_GID,
	F_NAME,
	F_VCPUS,
	F_MEMORY,
	F_DIR,
	F_UUID,
	F_KERNEL,
	F_SOCKET0,
	F_FILE0,
	F_SOCKET1,
	F_IDE_RO1,
	F_MAC,
	F_TAP_FD,
	F_MODEL,
	F_NO_BOOT,
	F_FIVE_IDE,
};

struct bad_case {
	const char *what;
	enum field field;
	const char *str;
	uint64_t num;
	const char *message; /* a substring of the error */
};

static const struct bad_case bad_cases[] = {
	{"uid 0", F_UID, NULL, 0, "must not run as root"},
	{"gid 0", F_GID, NULL, 0, "must not run as root"},
	{"name with a space", F_NAME, "web 1", 0, "bad VM name 'web 1'"},
	{"empty name", F_NAME, "", 0, "bad VM name ''"},
	{"no name", F_NAME, NULL, 0, "bad VM name '(none)'"},
	{"name starting with -", F_NAME, "-web", 0, "bad VM name '-web'"},
	{"name with a comma", F_NAME, "a,b", 0, "bad VM name 'a,b'"},
	{"65-char name", F_NAME,
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, "bad VM name"},
	{"0 vcpus", F_VCPUS, NULL, 0, "vcpus 0 out of range"},
	{"257 vcpus", F_VCPUS, NULL, 257, "vcpus 257 out of range"},
	{"8 MiB", F_MEMORY, NULL, 8, "memory 8 MiB out of range"},
	{"over 16 TiB", F_MEMORY, NULL, (16ULL << 20) + 1, "memory 16777217 MiB out of range"},
	{"relative dir", F_DIR, "run/hv", 0, "VM directory 'run/hv' is not an absolute path"},
	{"dir too long for a socket", F_DIR,
	 "/run/hvcluster/vms/"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	 0, "too long for a unix socket path"},
	{"bad uuid", F_UUID, "0f8fad5b-d9cb-469f-a165-70867728950", 0, "bad UUID"},
	{"initrd without kernel", F_KERNEL, NULL, 0, "initrd or append given without a kernel"},
	{"relative kernel", F_KERNEL, "vmlinuz", 0, "kernel 'vmlinuz' is not an absolute path"},
	{"relative NBD socket", F_SOCKET0, "disk0.sock", 0,
	 "disk 0: NBD socket 'disk0.sock' is not an absolute"},
	{"disk with two sources", F_FILE0, "/tmp/x.img", 0, "disk 0: needs exactly one of"},
	{"disk without a source", F_SOCKET1, NULL, 0, "disk 1: needs exactly one of"},
	{"read-only IDE", F_IDE_RO1, NULL, 0, "disk 1: an IDE disk cannot be read-only"},
	{"short MAC", F_MAC, "52:54:00:12:34", 0, "nic 0: MAC '52:54:00:12:34' is not"},
	{"non-hex MAC", F_MAC, "52:54:00:12:34:zz", 0, "nic 0: MAC '52:54:00:12:34:zz'"},
	{"multicast MAC", F_MAC, "01:00:5e:00:00:01", 0, "nic 0: MAC '01:00:5e:00:00:01'"},
	{"MAC with dashes", F_MAC, "52-54-00-12-34-56", 0, "nic 0: MAC '52-54-00-12-34-56'"},
	{"no MAC", F_MAC, NULL, 0, "nic 0: MAC '(none)'"},
	{"tap fd 1", F_TAP_FD, NULL, 1, "nic 0: tap fd 1"},
	{"NIC model with options", F_MODEL, "virtio-net-pci,addr=3", 0, "nic 0: bad model"},
	{"nothing to boot", F_NO_BOOT, NULL, 0, "nothing to boot"},
	{"5 IDE disks", F_FIVE_IDE, NULL, 0, "5 IDE disks: at most 4"},
};

static void apply_bad(const struct bad_case *c)
{
	const char **strs[] = {
		[F_NAME] = &spec.name,
		[F_DIR] = &spec.dir,
		[F_UUID] = &spec.uuid,
		[F_KERNEL] = &spec.kernel,
		[F_SOCKET0] = &disks[0].nbd_socket,
		[F_FILE0] = &disks[0].file,
		[F_SOCKET1] = &disks[1].nbd_socket,
		[F_MAC] = &nics[0].mac,
		[F_MODEL] = &nics[0].model,
		[F_FIVE_IDE] = NULL,
	};
	static struct hv_disk five[5];

	if (strs[c->field]) {
		*strs[c->field] = c->str;
		return;
	}
	spec.uid = c->field == F_UID ? c->num : spec.uid;
	spec.gid = c->field == F_GID ? c->num : spec.gid;
	spec.vcpus = c->field == F_VCPUS ? c->num : spec.vcpus;
	spec.memory_mb = c->field == F_MEMORY ? c->num : spec.memory_mb;
	nics[0].tap_fd = c->field == F_TAP_FD ? (int)c->num : nics[0].tap_fd;
	disks[1].readonly = c->field == F_IDE_RO1;
	if (c->field == F_NO_BOOT) {
		spec.ndisks = 0;
		spec.kernel = spec.initrd = spec.append = NULL;
	}
	if (c->field == F_FIVE_IDE) {
		for (int i = 0; i < 5; i++)
			five[i] = (struct hv_disk){.file = "/tmp/x.img", .bus = HV_BUS_IDE};
		spec.disks = five;
		spec.ndisks = 5;
	}
}

static void test_validation_failures(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char err[256] = "";
		char **argv = (char **)&err; /* must be reset to NULL */
		int rc;

		setup_spec(NULL);
		apply_bad(&bad_cases[i]);
		rc = hv_build_argv(&spec, &tcg, &argv, err, sizeof(err));
		if (rc != -EINVAL)
			fail_msg("%s: hv_build_argv returned %d, expected -EINVAL",
				 bad_cases[i].what, rc);
		assert_null(argv);
		if (!strstr(err, bad_cases[i].message))
			fail_msg("%s: message '%s' lacks '%s'", bad_cases[i].what, err,
				 bad_cases[i].message);
	}
}

static void test_validation_accepts_limits(void **state)
{
	char err[256];

	spec.memory_mb = 16;
	spec.vcpus = 256;
	assert_int_equal(hv_spec_validate(&spec, err, sizeof(err)), 0);
	spec.memory_mb = 16ULL << 20;
	spec.name = "A.b_c-9";
	assert_int_equal(hv_spec_validate(&spec, err, sizeof(err)), 0);
}

/* --- QMP parser -------------------------------------------------------------- */

static int feed_str(struct qmp_parser *p, const char *s)
{
	return qmp_parser_feed(p, s, strlen(s));
}

static void test_parser_messages(void **state)
{
	struct qmp_parser p;
	struct qmp_msg m;
	char err[256];

	qmp_parser_init(&p, QMP_LINE_MAX);
	assert_int_equal(feed_str(&p,
				  "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7}}, "
				  "\"capabilities\": [\"oob\"]}}\r\n"
				  "{\"return\": {}, \"id\": 7}\n"
				  "\n"
				  "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The "
				  "command foo has not been found\"}, \"id\": 8}\n"
				  "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
				  "\"event\": \"STOP\"}\n"
				  "{\"event\": \"BLOCK_IO_ERROR\", \"data\": {\"device\": \"\", "
				  "\"action\": \"stop\"}}\n"),
			 0);

	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 1);
	assert_int_equal(m.type, QMP_MSG_GREETING);
	assert_true(json_is_object(m.value));
	qmp_msg_clear(&m);

	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 1);
	assert_int_equal(m.type, QMP_MSG_RETURN);
	assert_int_equal(json_integer_value(m.id), 7);
	assert_true(json_is_object(m.value));
	qmp_msg_clear(&m);

	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 1);
	assert_int_equal(m.type, QMP_MSG_ERROR);
	assert_int_equal(json_integer_value(m.id), 8);
	assert_string_equal(m.err_class, "CommandNotFound");
	assert_string_equal(m.err_desc, "The command foo has not been found");
	qmp_msg_clear(&m);

	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 1);
	assert_int_equal(m.type, QMP_MSG_EVENT);
	assert_string_equal(m.event, "STOP");
	assert_null(m.value);
	qmp_msg_clear(&m);

	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 1);
	assert_string_equal(m.event, "BLOCK_IO_ERROR");
	assert_string_equal(json_string_value(json_object_get(m.value, "action")), "stop");
	qmp_msg_clear(&m);

	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 0);
	qmp_parser_fini(&p);
}

static void test_parser_byte_by_byte(void **state)
{
	const char *s = "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 1}\n"
			"{\"event\": \"RESUME\"}\n";
	struct qmp_parser p;
	struct qmp_msg m;
	char err[256];
	int got = 0;

	qmp_parser_init(&p, QMP_LINE_MAX);
	for (size_t i = 0; s[i]; i++) {
		assert_int_equal(qmp_parser_feed(&p, &s[i], 1), 0);
		int rc = qmp_parser_next(&p, &m, err, sizeof(err));

		assert_true(rc == 0 || rc == 1);
		if (rc == 0)
			continue;
		/* a message only completes with its newline */
		assert_int_equal(s[i], '\n');
		if (got++ == 0) {
			assert_int_equal(m.type, QMP_MSG_RETURN);
			assert_true(json_is_true(json_object_get(m.value, "running")));
		} else {
			assert_string_equal(m.event, "RESUME");
		}
		qmp_msg_clear(&m);
	}
	assert_int_equal(got, 2);
	qmp_parser_fini(&p);
}

static void test_parser_garbage(void **state)
{
	static const char *const bad[] = {
		"this is not json\n",
		"[1, 2]\n",
		"{\"foo\": 1}\n",
		"{\"return\": {}, \"event\": \"STOP\"}\n",
		"{\"error\": {\"class\": \"GenericError\"}, \"id\": 1}\n",
		"{\"error\": \"oops\", \"id\": 1}\n",
		"{\"event\": 42}\n",
		"{\"event\": \"STOP\", \"data\": [1]}\n",
		"{\"QMP\": 1}\n",
		"{\"return\": {}, \"return\": {}}\n",
		"{\"return\": {}, \"id\": 1} trailing\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qmp_parser p;
		struct qmp_msg m;
		char err[256] = "";

		qmp_parser_init(&p, QMP_LINE_MAX);
		assert_int_equal(feed_str(&p, bad[i]), 0);
		if (qmp_parser_next(&p, &m, err, sizeof(err)) != -EPROTO)
			fail_msg("line %zu accepted: %s", i, bad[i]);
		assert_non_null(strstr(err, "malformed QMP message"));
		assert_null(m.root);
		qmp_parser_fini(&p);
	}
}

static void test_parser_long_lines(void **state)
{
	struct qmp_parser p;
	struct qmp_msg m;
	char err[256], line[200];

	/* an unfinished line over the bound fails as soon as it is fed */
	qmp_parser_init(&p, 64);
	memset(line, 'x', 100);
	assert_int_equal(qmp_parser_feed(&p, line, 65), -EMSGSIZE);
	qmp_parser_fini(&p);

	/* a complete line over the bound fails when taken; shorter ones before it pass */
	qmp_parser_init(&p, 64);
	assert_int_equal(feed_str(&p, "{\"return\": {}, \"id\": 1}\n"), 0);
	snprintf(line, sizeof(line), "{\"return\": \"%080d\", \"id\": 2}\n", 0);
	assert_int_equal(feed_str(&p, line), 0);
	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 1);
	qmp_msg_clear(&m);
	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, "longer than 64"));
	qmp_parser_fini(&p);

	/* exactly at the bound is fine */
	qmp_parser_init(&p, 24);
	assert_int_equal(feed_str(&p, "{\"return\": {}, \"id\": 1}\n"), 0); /* 24 + newline */
	assert_int_equal(qmp_parser_next(&p, &m, err, sizeof(err)), 1);
	qmp_msg_clear(&m);
	qmp_parser_fini(&p);
}

/* --- QMP client against a fake QEMU ------------------------------------------- */

struct fake {
	qb_loop_t *loop;
	int srv;	/* the fake QEMU's end */
	char in[65536]; /* what the client sent, not handled yet */
	size_t inlen;
	bool garbage_on_query; /* answer query-thing with garbage */
	bool close_on_query;   /* hang up at query-thing */
	int caps_seen, cmds_seen;
	int got_fd;	/* the last fd passed with SCM_RIGHTS, -1 none */
	int fd_with;	/* the byte offset in @in it came with */

	qmp_client_t *c;
	int ready, broken;
	char broken_why[256];
	int events;
	char last_event[64];
	int replies;
	json_t *result;
	char err_class[64], err_desc[256];
	int want_replies;
	bool destroy_in_reply;
	qb_loop_timer_handle guard;
};

static void srv_write(struct fake *f, const char *s)
{
	size_t len = strlen(s);

	assert_int_equal(write(f->srv, s, len), (ssize_t)len);
}

static void srv_answer(struct fake *f, json_t *cmd)
{
	const char *name = json_string_value(json_object_get(cmd, "execute"));
	json_int_t id = json_integer_value(json_object_get(cmd, "id"));
	char line[512];

	assert_non_null(name);
	assert_true(id > 0);
	if (!strcmp(name, "qmp_capabilities")) {
		f->caps_seen++;
		snprintf(line, sizeof(line), "{\"return\": {}, \"id\": %lld}\n", (long long)id);
	} else if (!strcmp(name, "getfd")) {
		/* QEMU's rule: the fd comes with the command's first byte */
		assert_true(f->got_fd >= 0);
		assert_int_equal(f->fd_with, 0);
		assert_int_equal(write(f->got_fd, "fd!", 3), 3);
		close(f->got_fd);
		f->got_fd = -1;
		snprintf(line, sizeof(line), "{\"return\": {}, \"id\": %lld}\n", (long long)id);
	} else if (!strcmp(name, "query-thing")) {
		f->cmds_seen++;
		if (f->close_on_query) {
			close(f->srv);
			f->srv = -1;
			return;
		}
		if (f->garbage_on_query) {
			srv_write(f, "}{ garbage\n");
			return;
		}
		/* an event may come before the reply */
		srv_write(f, "{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1}}\n");
		assert_int_equal(
			json_integer_value(json_object_get(json_object_get(cmd, "arguments"), "n")),
			41);
		snprintf(line, sizeof(line), "{\"return\": {\"answer\": 42}, \"id\": %lld}\n",
			 (long long)id);
	} else {
		f->cmds_seen++;
		snprintf(line, sizeof(line),
			 "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command %s "
			 "has not been found\"}, \"id\": %lld}\n",
			 name, (long long)id);
	}
	srv_write(f, line);
}

static int32_t srv_readable(int32_t fd, int32_t revents, void *data)
{
	struct fake *f = data;
	char *nl;
	json_t *cmd;
	size_t len;
	ssize_t n;

	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = f->in + f->inlen, .iov_len = sizeof(f->in) - f->inlen };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;

	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
		if (f->got_fd >= 0)
			close(f->got_fd);
		memcpy(&f->got_fd, CMSG_DATA(cm), sizeof(int));
		/* 0: it came at the start of a command, not in the middle of one */
		f->fd_with = f->inlen && f->in[f->inlen - 1] != '\n' ? -1 : 0;
	}
	f->inlen += n;
	/* the client's commands, one JSON object a line */
	while ((nl = memchr(f->in, '\n', f->inlen))) {
		len = nl - f->in;
		cmd = json_loadb(f->in, len, 0, NULL);
		assert_non_null(cmd);
		memmove(f->in, nl + 1, f->inlen - len - 1);
		f->inlen -= len + 1;
		srv_answer(f, cmd);
		json_decref(cmd);
		if (f->srv < 0) {
			qb_loop_poll_del(f->loop, fd);
			return -1;
		}
	}
	return 0;
}

static void c_ready(qmp_client_t *c, void *arg)
{
	struct fake *f = arg;

	f->ready++;
}

static void c_event(qmp_client_t *c, const char *name, json_t *data, void *arg)
{
	struct fake *f = arg;

	assert_true(json_is_object(data));
	f->events++;
	snprintf(f->last_event, sizeof(f->last_event), "%s", name);
}

static void c_broken(qmp_client_t *c, const char *why, void *arg)
{
	struct fake *f = arg;

	f->broken++;
	snprintf(f->broken_why, sizeof(f->broken_why), "%s", why);
	qb_loop_stop(f->loop);
}

static const struct qmp_client_ops c_ops = {
	.ready = c_ready,
	.event = c_event,
	.broken = c_broken,
};

static void c_reply(json_t *result, const char *err_class, const char *err_desc, void *arg)
{
	struct fake *f = arg;

	f->replies++;
	json_decref(f->result);
	f->result = json_incref(result);
	snprintf(f->err_class, sizeof(f->err_class), "%s", err_class ? err_class : "");
	snprintf(f->err_desc, sizeof(f->err_desc), "%s", err_desc ? err_desc : "");
	if (f->destroy_in_reply) {
		qmp_client_destroy(f->c);
		f->c = NULL;
	}
	if (f->replies >= f->want_replies)
		qb_loop_stop(f->loop);
}

static void guard_expired(void *data)
{
	struct fake *f = data;

	qb_loop_stop(f->loop);
	fail_msg("the loop ran for 5 s without the expected callbacks");
}

/* A connected pair: the client's end goes to the client, the other is the fake QEMU. */
static void fake_connect(struct fake *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	f->srv = sv[1];
	f->inlen = 0;
	assert_int_equal(qb_loop_poll_add(f->loop, QB_LOOP_MED, f->srv, POLLIN, f, srv_readable),
			 0);
	assert_int_equal(qmp_client_attach(f->c, sv[0]), 0);
	assert_true(qmp_client_is_attached(f->c));
	srv_write(f, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
}

static void fake_disconnect(struct fake *f)
{
	if (f->srv >= 0) {
		qb_loop_poll_del(f->loop, f->srv);
		close(f->srv);
		f->srv = -1;
	}
}

static int setup_fake(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->loop = qb_loop_create();
	assert_non_null(f->loop);
	f->c = qmp_client_create(f->loop, "test", &c_ops, f);
	assert_non_null(f->c);
	f->srv = -1;
	f->got_fd = -1;
	*state = f;
	return 0;
}

static int teardown_fake(void **state)
{
	struct fake *f = *state;

	if (f->c)
		qmp_client_destroy(f->c);
	fake_disconnect(f);
	json_decref(f->result);
	if (f->got_fd >= 0)
		close(f->got_fd);
	qb_loop_destroy(f->loop);
	free(f);
	return 0;
}

static void run_loop(struct fake *f, int want_replies)
{
	f->want_replies = want_replies;
	assert_int_equal(qb_loop_timer_add(f->loop, QB_LOOP_LOW, 5000 * QB_TIME_NS_IN_MSEC, f,
					   guard_expired, &f->guard),
			 0);
	qb_loop_run(f->loop);
	qb_loop_timer_del(f->loop, f->guard);
}

static void test_client_command_reply(void **state)
{
	struct fake *f = *state;
	json_t *args = json_pack("{s:i}", "n", 41);

	/* sent before the connection: queued until capabilities are negotiated */
	assert_int_equal(qmp_client_send(f->c, "query-thing", args, c_reply, f), 0);
	json_decref(args); /* borrowed */
	fake_connect(f);
	assert_false(qmp_client_is_ready(f->c));
	run_loop(f, 1);

	assert_int_equal(f->caps_seen, 1);
	assert_int_equal(f->ready, 1);
	assert_true(qmp_client_is_ready(f->c));
	assert_int_equal(f->replies, 1);
	assert_string_equal(f->err_class, "");
	assert_int_equal(json_integer_value(json_object_get(f->result, "answer")), 42);
	assert_int_equal(f->events, 1);
	assert_string_equal(f->last_event, "RESUME");
	assert_int_equal(f->broken, 0);
}

/* getfd: the fd travels with the command (SCM_RIGHTS); ours stays ours. */
static void test_client_passes_fd(void **state)
{
	struct fake *f = *state;
	json_t *args = json_pack("{s:s}", "fdname", "hvmig");
	char buf[8];
	int p[2];

	assert_int_equal(pipe(p), 0);
	fake_connect(f);
	/* a command before it, still queued: the fd must not ride on its bytes */
	assert_int_equal(qmp_client_send(f->c, "no-such-command", NULL, c_reply, f), 0);
	assert_int_equal(qmp_client_send_fd(f->c, "getfd", args, p[1], c_reply, f), 0);
	json_decref(args);
	assert_int_equal(qmp_client_send_fd(f->c, "getfd", NULL, 987654, c_reply, f), -EBADF);
	run_loop(f, 2);
	assert_int_equal(f->replies, 2);
	assert_string_equal(f->err_class, "");
	/* what the fake QEMU wrote into the fd it received arrives in our pipe */
	assert_int_equal(read(p[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "fd!", 3);
	/* the caller's fd is still open and its own */
	assert_int_equal(write(p[1], "x", 1), 1);
	close(p[0]);
	close(p[1]);
}

static void test_client_error_reply(void **state)
{
	struct fake *f = *state;

	fake_connect(f);
	assert_int_equal(qmp_client_send(f->c, "no-such-command", NULL, c_reply, f), 0);
	run_loop(f, 1);
	assert_int_equal(f->replies, 1);
	assert_null(f->result);
	assert_string_equal(f->err_class, "CommandNotFound");
	assert_string_equal(f->err_desc, "The command no-such-command has not been found");
	assert_int_equal(f->broken, 0);
}

static void test_client_garbage_breaks(void **state)
{
	struct fake *f = *state;
	json_t *args = json_pack("{s:i}", "n", 41);

	f->garbage_on_query = true;
	fake_connect(f);
	assert_int_equal(qmp_client_send(f->c, "query-thing", args, c_reply, f), 0);
	json_decref(args);
	run_loop(f, 1);
	/* the command in flight fails; the connection is dropped, the client lives on */
	assert_int_equal(f->replies, 1);
	assert_string_equal(f->err_class, "Disconnected");
	assert_int_equal(f->broken, 1);
	assert_non_null(strstr(f->broken_why, "malformed QMP message"));
	assert_false(qmp_client_is_attached(f->c));
	assert_int_equal(qmp_client_send(f->c, "later", NULL, NULL, NULL), 0);
}

static void test_client_reconnect_keeps_queue(void **state)
{
	struct fake *f = *state;
	json_t *args = json_pack("{s:i}", "n", 41);

	/* QEMU hangs up at the first query-thing: it fails, the second waits */
	f->close_on_query = true;
	fake_connect(f);
	assert_int_equal(qmp_client_send(f->c, "query-thing", args, c_reply, f), 0);
	run_loop(f, 1);
	assert_int_equal(f->broken, 1);
	assert_int_equal(f->replies, 1);
	assert_string_equal(f->err_class, "Disconnected");
	fake_disconnect(f);

	assert_int_equal(qmp_client_send(f->c, "query-thing", args, c_reply, f), 0);
	json_decref(args);
	f->close_on_query = false;
	fake_connect(f);
	run_loop(f, 2);
	assert_int_equal(f->ready, 2);
	assert_int_equal(f->caps_seen, 2);
	assert_int_equal(f->replies, 2);
	assert_string_equal(f->err_class, "");
	assert_int_equal(json_integer_value(json_object_get(f->result, "answer")), 42);
}

static void test_client_destroy_in_callback(void **state)
{
	struct fake *f = *state;

	fake_connect(f);
	f->destroy_in_reply = true;
	assert_int_equal(qmp_client_send(f->c, "bad-one", NULL, c_reply, f), 0);
	/* pending when the client goes: cancelled inside the destroy, exactly once */
	assert_int_equal(qmp_client_send(f->c, "bad-two", NULL, c_reply, f), 0);
	run_loop(f, 1);
	assert_null(f->c);
	assert_int_equal(f->replies, 2);
	assert_string_equal(f->err_class, "Cancelled");
}

static void test_client_fail_all(void **state)
{
	struct fake *f = *state;

	assert_int_equal(qmp_client_send(f->c, "a", NULL, c_reply, f), 0);
	assert_int_equal(qmp_client_send(f->c, "b", NULL, c_reply, f), 0);
	qmp_client_fail_all(f->c, "Disconnected", "QEMU exited");
	assert_int_equal(f->replies, 2);
	assert_string_equal(f->err_desc, "QEMU exited");
	json_t *notobj = json_integer(1);

	assert_int_equal(qmp_client_send(f->c, "c", notobj, c_reply, f), -EINVAL);
	json_decref(notobj);
}

/* --- process helpers ----------------------------------------------------------- */

static void test_stderr_tail(void **state)
{
	char dir[] = "/tmp/test_hypervisor.XXXXXX", path[256], tail[4200];
	FILE *fp;
	long start;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, HV_STDERR_LOG);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "old run line\n");
	start = ftell(fp);
	for (int i = 1; i <= 15; i++)
		fprintf(fp, "line %d\n", i);
	fprintf(fp, "with\ttab\n");
	fclose(fp);

	hv_stderr_tail(dir, start, 3, tail, sizeof(tail));
	assert_string_equal(tail, "line 14\nline 15\nwith?tab");
	hv_stderr_tail(dir, start, 100, tail, sizeof(tail));
	assert_non_null(strstr(tail, "line 1\n"));
	assert_null(strstr(tail, "old run"));
	/* nothing new since @from */
	hv_stderr_tail(dir, start + 1000, 10, tail, sizeof(tail));
	assert_string_equal(tail, "");

	unlink(path);
	rmdir(dir);
}

static void test_start_refuses_bad_dir(void **state)
{
	char dir[] = "/tmp/test_hypervisor.XXXXXX", err[512] = "";
	static const struct qemu_vm_ops ops = {0};
	qb_loop_t *loop = qb_loop_create();
	struct hv_disk d = {.file = "/tmp/none.img", .bus = HV_BUS_IDE};
	struct hv_spec s = {
		.name = "t",
		.vcpus = 1,
		.memory_mb = 32,
		.disks = &d,
		.ndisks = 1,
		.uid = 64001,
		.gid = 64001,
		.qemu_binary = "/bin/true",
	};
	qemu_vm_t *vm;

	assert_non_null(mkdtemp(dir));
	chmod(dir, 0755);
	s.dir = dir;
	/* not owned by 64001, and 0755: refused before anything runs */
	vm = qemu_vm_start(loop, &s, &ops, NULL, err, sizeof(err));
	assert_null(vm);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(err, "must be owned by 64001:64001 with mode 0700"));
	/* and nothing was created in it */
	assert_int_equal(rmdir(dir), 0);
	qb_loop_destroy(loop);
}

static void test_names(void **state)
{
	assert_string_equal(qemu_state_name(QEMU_STATE_PAUSED), "paused");
	assert_string_equal(qemu_state_name(QEMU_STATE_SHUTTING_DOWN), "shutting-down");
	assert_string_equal(qemu_event_name(QEMU_EVENT_BLOCK_IO_ERROR), "BLOCK_IO_ERROR");
	assert_string_equal(qemu_event_name((enum qemu_event)999), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_argv_full_spec, setup_spec),
		cmocka_unit_test_setup(test_argv_kvm_and_binary, setup_spec),
		cmocka_unit_test_setup(test_argv_boot_from_disk, setup_spec),
		cmocka_unit_test_setup(test_argv_file_ide_units, setup_spec),
		cmocka_unit_test_setup(test_argv_paused_incoming_commas, setup_spec),
		cmocka_unit_test_setup(test_argv_nic_without_tap, setup_spec),
		cmocka_unit_test(test_probe_caps),
		cmocka_unit_test(test_validation_failures),
		cmocka_unit_test_setup(test_validation_accepts_limits, setup_spec),
		cmocka_unit_test(test_parser_messages),
		cmocka_unit_test(test_parser_byte_by_byte),
		cmocka_unit_test(test_parser_garbage),
		cmocka_unit_test(test_parser_long_lines),
		cmocka_unit_test_setup_teardown(test_client_command_reply, setup_fake,
						teardown_fake),
		cmocka_unit_test_setup_teardown(test_client_passes_fd, setup_fake, teardown_fake),
		cmocka_unit_test_setup_teardown(test_client_error_reply, setup_fake, teardown_fake),
		cmocka_unit_test_setup_teardown(test_client_garbage_breaks, setup_fake,
						teardown_fake),
		cmocka_unit_test_setup_teardown(test_client_reconnect_keeps_queue, setup_fake,
						teardown_fake),
		cmocka_unit_test_setup_teardown(test_client_destroy_in_callback, setup_fake,
						teardown_fake),
		cmocka_unit_test_setup_teardown(test_client_fail_all, setup_fake, teardown_fake),
		cmocka_unit_test(test_stderr_tail),
		cmocka_unit_test(test_start_refuses_bad_dir),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
