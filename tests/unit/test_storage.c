/*
 * Unit tests of storage/'s pure parts: LUN URLs, reservation keys, initiator
 * names and ISIDs, SCSI status and sense as words and errno values, the
 * PERSISTENT RESERVE IN and REPORT SUPPORTED OPERATION CODES parameter data
 * (built by hand, big-endian, as SPC-4 lays it out), and the acquire decision,
 * branch by branch and as the loop lun_acquire runs against a simulated target.
 *
 * Parameter data is handed to the parsers in buffers of exactly its length, so
 * a sanitized build (SANITIZE=1) catches any read past the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../storage/storage.h"

/* --- helpers ----------------------------------------------------------------- */

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* A heap copy of exactly @len bytes: ASan reports any read past it. Free it. */
static uint8_t *exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

/* Asserts that @hay contains @needle, saying what it was looking for. */
#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (!strstr(h_, n_))                                                               \
			fail_msg("\"%s\" does not contain \"%s\"", h_, n_);                        \
	} while (0)

#define assert_not_contains(hay, needle)                                                           \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (strstr(h_, n_))                                                                \
			fail_msg("\"%s\" contains \"%s\"", h_, n_);                                \
	} while (0)

/* "0x%016llx", as messages name keys. */
static const char *hexkey(char *buf, size_t len, uint64_t key)
{
	snprintf(buf, len, "0x%016" PRIx64, key);
	return buf;
}

/* --- LUN URLs ---------------------------------------------------------------- */

static struct lun_url parse_ok(const char *s)
{
	struct lun_url u;
	char err[512] = "";
	int rc = lun_url_parse(s, &u, err, sizeof(err));

	if (rc != 0)
		fail_msg("lun_url_parse(\"%s\") = %d: %s", s, rc, err);
	return u;
}

/* Refused with -EINVAL and a one-line message containing @word (callers give 1024). */
static void parse_bad(const char *s, const char *word)
{
	struct lun_url u;
	char err[1024] = "";
	int rc = lun_url_parse(s, &u, err, sizeof(err));

	if (rc != -EINVAL)
		fail_msg("lun_url_parse(\"%s\") = %d, expected -EINVAL", s, rc);
	if (!strstr(err, word))
		fail_msg("lun_url_parse(\"%s\"): message \"%s\" does not name \"%s\"", s, err,
			 word);
	if (strchr(err, '\n'))
		fail_msg("lun_url_parse(\"%s\"): message is more than one line", s);
}

#define IQN "iqn.2026-11.lab.hvcluster:x"

static void test_url_ipv4(void **state)
{
	struct lun_url u = parse_ok("iscsi://10.77.0.2:3260/" IQN "/1");

	assert_string_equal(u.host, "10.77.0.2");
	assert_int_equal(u.port, 3260);
	assert_string_equal(u.target, IQN);
	assert_int_equal(u.lun, 1);
	assert_string_equal(u.portal, "10.77.0.2:3260");
}

static void test_url_dns_default_port(void **state)
{
	struct lun_url u =
		parse_ok("iscsi://san-1.example.org/iqn.2003-01.org.linux-iscsi.san:sn.12ab/0");

	assert_string_equal(u.host, "san-1.example.org");
	assert_int_equal(u.port, LUN_PORT_DEFAULT);
	assert_int_equal(u.port, 3260);
	assert_string_equal(u.target, "iqn.2003-01.org.linux-iscsi.san:sn.12ab");
	assert_int_equal(u.lun, 0);
	assert_string_equal(u.portal, "san-1.example.org:3260");

	/* the scheme is case-insensitive, like any URL scheme */
	u = parse_ok("ISCSI://san/" IQN "/2");
	assert_string_equal(u.host, "san");
	assert_int_equal(u.lun, 2);
}

static void test_url_ipv6(void **state)
{
	struct lun_url u = parse_ok("iscsi://[fd00:77::2]:3261/" IQN "/16383");

	/* the brackets belong to the URL and the portal, not to the host */
	assert_string_equal(u.host, "fd00:77::2");
	assert_int_equal(u.port, 3261);
	assert_int_equal(u.lun, 16383);
	assert_int_equal(u.lun, LUN_MAX);
	assert_string_equal(u.portal, "[fd00:77::2]:3261");

	u = parse_ok("iscsi://[::1]/" IQN "/5");
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 3260);
	assert_string_equal(u.portal, "[::1]:3260");
}

static void test_url_eui_naa_targets(void **state)
{
	struct lun_url u = parse_ok("iscsi://h/eui.0123456789abcdef/3");

	assert_string_equal(u.target, "eui.0123456789abcdef");
	u = parse_ok("iscsi://h/eui.0123456789ABCDEF/3");
	assert_string_equal(u.target, "eui.0123456789ABCDEF");
	u = parse_ok("iscsi://h/naa.52004567ba64678d/4");
	assert_string_equal(u.target, "naa.52004567ba64678d");
	u = parse_ok("iscsi://h/naa.60014051234567890abcdef0123456ab/4");
	assert_string_equal(u.target, "naa.60014051234567890abcdef0123456ab");
	/* an iqn. name without the optional ":anything" */
	u = parse_ok("iscsi://h/iqn.2026-01.org.example/0");
	assert_string_equal(u.target, "iqn.2026-01.org.example");
}

static void test_url_ports_and_lengths(void **state)
{
	char url[1024], host[LUN_HOST_MAX + 1], target[LUN_TARGET_MAX + 1], portal[300];
	struct lun_url u;

	u = parse_ok("iscsi://h:1/" IQN "/1");
	assert_int_equal(u.port, 1);
	u = parse_ok("iscsi://h:65535/" IQN "/1");
	assert_int_equal(u.port, 65535);
	assert_string_equal(u.portal, "h:65535");

	/* a 255-character host (labels of 63) and the longest port fit the portal */
	memset(host, 'a', LUN_HOST_MAX);
	for (size_t i = 63; i < LUN_HOST_MAX; i += 64)
		host[i] = '.';
	host[LUN_HOST_MAX] = '\0';
	/* a 223-character target */
	snprintf(target, sizeof(target), "%s", IQN);
	memset(target + strlen(IQN), 'y', LUN_TARGET_MAX - strlen(IQN));
	target[LUN_TARGET_MAX] = '\0';
	snprintf(url, sizeof(url), "iscsi://%s:65535/%s/7", host, target);
	u = parse_ok(url);
	assert_string_equal(u.host, host);
	assert_string_equal(u.target, target);
	snprintf(portal, sizeof(portal), "%s:65535", host);
	assert_string_equal(u.portal, portal);

	/* one more character is refused, with the limit named */
	snprintf(url, sizeof(url), "iscsi://%s/%sy/7", host, target);
	parse_bad(url, "223");
	snprintf(url, sizeof(url), "iscsi://a%s/%s/7", host, target);
	parse_bad(url, "255");
}

static void test_url_refused_scheme_and_shape(void **state)
{
	parse_bad("", "empty");
	parse_bad("http://10.0.0.2/" IQN "/1", "not an iSCSI URL");
	parse_bad("iscsi:/10.0.0.2/" IQN "/1", "not an iSCSI URL");
	parse_bad("10.0.0.2/" IQN "/1", "not an iSCSI URL");
	parse_bad("iscsi://10.0.0.2/" IQN "/1?transport=iser", "query");
	parse_bad("iscsi://10.0.0.2/" IQN "/1#frag", "fragment");
	parse_bad("iscsi://10.0.0.2/" IQN "/1 ", "white space");
	parse_bad("iscsi://10.0.0.2/" IQN "/\t1", "white space");
	parse_bad("iscsi://10.0.0.2", "no target name");
	parse_bad("iscsi://10.0.0.2//1", "target name is empty");
}

static void test_url_refused_credentials(void **state)
{
	struct lun_url u;
	char err[512];

	parse_bad("iscsi://admin@10.0.0.2/" IQN "/1", "credentials");
	parse_bad("iscsi://admin:s3cret@10.0.0.2/" IQN "/1", "credentials");

	/* the message goes to logs: it must not repeat a password, whatever else is wrong */
	assert_int_equal(
		lun_url_parse("iscsi://admin:s3cret@10.0.0.2/" IQN "/1", &u, err, sizeof(err)),
		-EINVAL);
	assert_not_contains(err, "s3cret");
	assert_contains(err, "10.0.0.2");
	assert_int_equal(
		lun_url_parse("iscsi://admin:s3cret@10.0.0.2/" IQN "/1?x=1", &u, err, sizeof(err)),
		-EINVAL);
	assert_not_contains(err, "s3cret");
	assert_int_equal(lun_url_parse("iscsi://admin:s3cret@10.0.0.2", &u, err, sizeof(err)),
			 -EINVAL);
	assert_not_contains(err, "s3cret");
	assert_int_equal(lun_url_parse("https://admin:s3cret@10.0.0.2/x", &u, err, sizeof(err)),
			 -EINVAL);
	assert_not_contains(err, "s3cret");
}

static void test_url_refused_host_and_port(void **state)
{
	parse_bad("iscsi:///" IQN "/1", "host is empty");
	parse_bad("iscsi://:3260/" IQN "/1", "host is empty");
	parse_bad("iscsi://san_1/" IQN "/1", "host");
	parse_bad("iscsi://-san/" IQN "/1", "host");
	parse_bad("iscsi://san-/" IQN "/1", "host");
	parse_bad("iscsi://a..b/" IQN "/1", "empty label");
	parse_bad("iscsi://san./" IQN "/1", "host");

	parse_bad("iscsi://10.0.0.2:0/" IQN "/1", "port");
	parse_bad("iscsi://10.0.0.2:65536/" IQN "/1", "port");
	parse_bad("iscsi://10.0.0.2:99999999999999999999/" IQN "/1", "port");
	parse_bad("iscsi://10.0.0.2:/" IQN "/1", "port");
	parse_bad("iscsi://10.0.0.2:32a/" IQN "/1", "port");
	parse_bad("iscsi://10.0.0.2:-1/" IQN "/1", "port");

	parse_bad("iscsi://[fd00::2/" IQN "/1", "']'");
	parse_bad("iscsi://[fd00::zz]/" IQN "/1", "IPv6");
	parse_bad("iscsi://[]/" IQN "/1", "IPv6");
	parse_bad("iscsi://[10.0.0.2]/" IQN "/1", "IPv6");
	parse_bad("iscsi://[::1]x/" IQN "/1", "junk after the IPv6");
	parse_bad("iscsi://[::1]:0/" IQN "/1", "port");
	parse_bad("iscsi://[::1]:65536/" IQN "/1", "port");
	/* an IPv6 address needs its brackets */
	parse_bad("iscsi://fd00::2/" IQN "/1", "port");
}

static void test_url_refused_target(void **state)
{
	parse_bad("iscsi://h/iqn.26-11.lab.x:t/1", "YYYY-MM");
	parse_bad("iscsi://h/iqn.2026-1.lab.x:t/1", "YYYY-MM");
	parse_bad("iscsi://h/iqn.2026-13.lab.x:t/1", "month");
	parse_bad("iscsi://h/iqn.2026-00.lab.x:t/1", "month");
	parse_bad("iscsi://h/iqn.2026-11./1", "reverse domain");
	parse_bad("iscsi://h/iqn.2026-11.:t/1", "reverse domain");
	parse_bad("iscsi://h/iqn.2026-11.lab..x:t/1", "empty label");
	parse_bad("iscsi://h/iqn.2026-11.lab.:t/1", "empty label");
	parse_bad("iscsi://h/iqn.2026-11.Lab.x:t/1", "target name may only have");
	parse_bad("iscsi://h/iqn.2026-11.lab.x:T/1", "target name may only have");
	parse_bad("iscsi://h/iqn.2026-11.lab_x:t/1", "target name may only have");
	parse_bad("iscsi://h/iqn/1", "iqn.");
	parse_bad("iscsi://h/target0/1", "iqn., eui. or naa.");
	parse_bad("iscsi://h/eui.0123456789abcde/1", "eui.");
	parse_bad("iscsi://h/eui.0123456789abcdefa/1", "eui.");
	parse_bad("iscsi://h/eui.0123456789abcdeg/1", "eui.");
	parse_bad("iscsi://h/naa.0123456789abcdef0123/1", "naa.");
	parse_bad("iscsi://h/naa.0123456789abcdef0123456789abcdeX/1", "naa.");
}

static void test_url_refused_lun(void **state)
{
	parse_bad("iscsi://h/" IQN, "no LUN");
	parse_bad("iscsi://h/" IQN "/", "no LUN");
	parse_bad("iscsi://h/" IQN "/16384", "16384");
	parse_bad("iscsi://h/" IQN "/16384", "out of range");
	parse_bad("iscsi://h/" IQN "/99999", "out of range");
	parse_bad("iscsi://h/" IQN "/123456", "not a number");
	parse_bad("iscsi://h/" IQN "/-1", "not a number");
	parse_bad("iscsi://h/" IQN "/one", "'one'");
	parse_bad("iscsi://h/" IQN "/1x", "not a number");
	parse_bad("iscsi://h/" IQN "/1/", "junk after the LUN");
	parse_bad("iscsi://h/" IQN "/1/2", "junk after the LUN");
}

static void test_url_error_buffers(void **state)
{
	struct lun_url u;
	char err[16];

	/* no message wanted */
	assert_int_equal(lun_url_parse("iscsi://h/" IQN "/16384", &u, NULL, 0), -EINVAL);
	assert_int_equal(lun_url_parse("ftp://h/", &u, NULL, 0), -EINVAL);
	assert_int_equal(lun_url_parse(NULL, &u, NULL, 0), -EINVAL);
	/* a short buffer gets a terminated prefix */
	memset(err, 'x', sizeof(err));
	assert_int_equal(lun_url_parse("iscsi://h/" IQN "/16384", &u, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	/* control characters never break the one-line message */
	parse_bad("iscsi://h/" IQN "/1\nroot: rebooting", "white space");
	parse_bad("iscsi://h/" IQN "/1\r", "control");
}

/* --- identity ---------------------------------------------------------------- */

static void test_node_key(void **state)
{
	uint64_t k1 = storage_node_key("prod", 1), k2 = storage_node_key("prod", 2);
	uint64_t seen[64];

	/* deterministic: every node computes the same key for node N */
	assert_true(k1 == storage_node_key("prod", 1));
	assert_true(k1 != 0);
	assert_true(storage_node_key("prod", 0) != 0);
	assert_true(storage_node_key("", 0) != 0);
	assert_int_equal(storage_key_nodeid(k1), 1);
	assert_int_equal(storage_key_nodeid(k2), 2);
	assert_int_equal(storage_key_nodeid(storage_node_key("prod", 0xfffffffeu)), 0xfffffffeu);
	assert_true(storage_key_same_cluster(k1, k2));
	assert_true(k1 != k2);

	/* distinct per node id, same high half */
	for (uint32_t i = 0; i < 64; i++) {
		seen[i] = storage_node_key("prod", i + 1);
		assert_true(storage_key_same_cluster(seen[i], k1));
		assert_int_equal(storage_key_nodeid(seen[i]), i + 1);
		for (uint32_t j = 0; j < i; j++)
			assert_true(seen[i] != seen[j]);
	}

	/* other clusters: another high half, so their keys never pass for ours */
	assert_false(storage_key_same_cluster(k1, storage_node_key("test", 1)));
	assert_false(storage_key_same_cluster(k1, storage_node_key("Prod", 1)));
	assert_false(storage_key_same_cluster(k1, storage_node_key("prod2", 1)));
	assert_true(storage_node_key("test", 1) != k1);

	/* the high half is FNV-1a 32 of the name, so sg_persist output can be checked by hand */
	assert_true(storage_node_key("", 2) == 0x811c9dc500000002ull);
	assert_true(storage_node_key("a", 7) == 0xe40c292c00000007ull);
	assert_true(storage_node_key("foobar", 3) == 0xbf9cf96800000003ull);
	/* a name whose hash is 0 still gives node 0 a key: 0 means "no key" to the target */
	assert_true(storage_node_key("bsvvj|", 0) != 0);
	assert_true(storage_node_key("bsvvj|", 0) >> 32 != 0);
	assert_true(storage_key_same_cluster(storage_node_key("bsvvj|", 0),
					     storage_node_key("bsvvj|", 5)));
}

static void test_initiator_name(void **state)
{
	char buf[LUN_TARGET_MAX + 64], url[512];
	struct lun_url u;

	storage_initiator_name(buf, sizeof(buf), "prod", "node1");
	assert_string_equal(buf, "iqn.2026-11.org.hvcluster:prod:node1");

	storage_initiator_name(buf, sizeof(buf), "Prod_Cluster", "Node 1.Lab");
	assert_string_equal(buf, "iqn.2026-11.org.hvcluster:prod-cluster:node-1.lab");

	/* ':' '/' '@' and UTF-8 bytes become '-' (one per byte) */
	storage_initiator_name(buf, sizeof(buf), "a:b/c@d", "n\xc3\xa9ud");
	assert_string_equal(buf, "iqn.2026-11.org.hvcluster:a-b-c-d:n--ud");

	/* the result is an iSCSI name the URL parser accepts as one */
	snprintf(url, sizeof(url), "iscsi://h/%s/0", buf);
	assert_int_equal(lun_url_parse(url, &u, NULL, 0), 0);
}

static void test_initiator_name_truncation(void **state)
{
	char big[600], buf[LUN_TARGET_MAX + 64];

	memset(big, 'N', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	/* never more than an iSCSI name may be, whatever the buffer */
	storage_initiator_name(buf, sizeof(buf), "c", big);
	assert_int_equal(strlen(buf), LUN_TARGET_MAX);
	assert_memory_equal(buf, "iqn.2026-11.org.hvcluster:c:nnnn", 32);
	assert_int_equal(buf[LUN_TARGET_MAX - 1], 'n');

	/* a cluster name that fills everything leaves no ':' and no node name */
	storage_initiator_name(buf, sizeof(buf), big, "node1");
	assert_int_equal(strlen(buf), LUN_TARGET_MAX);
	assert_null(strchr(buf + strlen("iqn.2026-11.org.hvcluster:"), ':'));
	assert_null(strstr(buf, "node1"));
}

static void test_initiator_name_small_buffers(void **state)
{
	static const char full[] = "iqn.2026-11.org.hvcluster:prod:node1";
	char buf[64];

	for (size_t len = 1; len <= sizeof(full) + 1; len++) {
		memset(buf, '#', sizeof(buf));
		storage_initiator_name(buf, len, "PROD", "node1");
		/* a terminated prefix of the full name, and nothing written past @len */
		if (strlen(buf) != (len <= sizeof(full) ? len - 1 : sizeof(full) - 1))
			fail_msg("len %zu: \"%s\"", len, buf);
		assert_memory_equal(buf, full, strlen(buf));
		for (size_t i = len; i < sizeof(buf); i++)
			if (buf[i] != '#')
				fail_msg("len %zu: byte %zu written", len, i);
	}
	/* exactly the prefix fits: no dangling ':' after it */
	storage_initiator_name(buf, sizeof("iqn.2026-11.org.hvcluster:"), "prod", "node1");
	assert_string_equal(buf, "iqn.2026-11.org.hvcluster:");
	storage_initiator_name(buf, sizeof("iqn.2026-11.org.hvcluster:prod:"), "prod", "n");
	assert_string_equal(buf, "iqn.2026-11.org.hvcluster:prod:");
}

static void test_isid(void **state)
{
	static const char *const ini = "iqn.2026-11.org.hvcluster:prod:node1";
	uint64_t mgmt = storage_isid(ini, "mgmt");
	uint64_t disks[16];
	char purpose[64];

	/* the same on every login: a re-login is the same I_T nexus */
	assert_true(mgmt == storage_isid(ini, "mgmt"));
	/* 48 bits, type 0x80 (random) in the top byte */
	assert_true(mgmt >> 48 == 0);
	assert_int_equal(mgmt >> 40, 0x80);

	/* different purposes and different initiators never share a session */
	assert_true(mgmt != storage_isid(ini, "vm:0f8fad5b-d9cb-469f-a165-70867728950e:0"));
	assert_true(mgmt != storage_isid("iqn.2026-11.org.hvcluster:prod:node2", "mgmt"));
	assert_true(mgmt != storage_isid("iqn.2026-11.org.hvcluster:test:node1", "mgmt"));
	/* the separator keeps ("ab", "c") apart from ("a", "bc") */
	assert_true(storage_isid("ab", "c") != storage_isid("a", "bc"));
	assert_true(storage_isid("a", "b") != storage_isid("b", "a"));

	/* every disk of a VM has its own session */
	for (int i = 0; i < 16; i++) {
		snprintf(purpose, sizeof(purpose), "vm:0f8fad5b-d9cb-469f-a165-70867728950e:%d", i);
		disks[i] = storage_isid(ini, purpose);
		assert_int_equal(disks[i] >> 40, 0x80);
		assert_true(disks[i] != mgmt);
		for (int j = 0; j < i; j++)
			assert_true(disks[i] != disks[j]);
	}
}

/* --- SCSI words and errno ---------------------------------------------------- */

static void test_scsi_status_name(void **state)
{
	char buf[32];

	assert_string_equal(scsi_status_name(0x00, buf, sizeof(buf)), "GOOD");
	assert_string_equal(scsi_status_name(0x02, buf, sizeof(buf)), "CHECK CONDITION");
	assert_string_equal(scsi_status_name(0x08, buf, sizeof(buf)), "BUSY");
	assert_string_equal(scsi_status_name(0x18, buf, sizeof(buf)), "RESERVATION CONFLICT");
	assert_string_equal(scsi_status_name(0x28, buf, sizeof(buf)), "TASK SET FULL");
	assert_string_equal(scsi_status_name(0x40, buf, sizeof(buf)), "TASK ABORTED");
	assert_string_equal(scsi_status_name(0x22, buf, sizeof(buf)), "status 0x22");
	assert_ptr_equal(scsi_status_name(0x22, buf, sizeof(buf)), buf);
	/* a short buffer is cut, not overrun */
	memset(buf, '#', sizeof(buf));
	assert_string_equal(scsi_status_name(0x22, buf, 5), "stat");
	assert_int_equal(buf[5], '#');
}

static void test_scsi_sense_key_name(void **state)
{
	char buf[32];

	assert_string_equal(scsi_sense_key_name(0x0, buf, sizeof(buf)), "NO_SENSE");
	assert_string_equal(scsi_sense_key_name(0x2, buf, sizeof(buf)), "NOT_READY");
	assert_string_equal(scsi_sense_key_name(0x5, buf, sizeof(buf)), "ILLEGAL_REQUEST");
	assert_string_equal(scsi_sense_key_name(0x6, buf, sizeof(buf)), "UNIT_ATTENTION");
	assert_string_equal(scsi_sense_key_name(0x7, buf, sizeof(buf)), "DATA_PROTECT");
	assert_string_equal(scsi_sense_key_name(0xb, buf, sizeof(buf)), "ABORTED_COMMAND");
	assert_string_equal(scsi_sense_key_name(0xe, buf, sizeof(buf)), "MISCOMPARE");
	assert_string_equal(scsi_sense_key_name(0x42, buf, sizeof(buf)), "sense key 0x42");
	assert_string_equal(scsi_sense_key_name(-1, buf, sizeof(buf)), "sense key 0xffffffff");
}

static void test_scsi_asc_name(void **state)
{
	assert_string_equal(scsi_asc_name(0x24, 0x00), "INVALID FIELD IN CDB");
	assert_string_equal(scsi_asc_name(0x20, 0x00), "INVALID COMMAND OPERATION CODE");
	assert_string_equal(scsi_asc_name(0x25, 0x00), "LOGICAL UNIT NOT SUPPORTED");
	assert_string_equal(scsi_asc_name(0x29, 0x07), "I_T NEXUS LOSS OCCURRED");
	assert_string_equal(scsi_asc_name(0x2a, 0x03), "RESERVATIONS PREEMPTED");
	assert_string_equal(scsi_asc_name(0x2a, 0x04), "RESERVATIONS RELEASED");
	assert_string_equal(scsi_asc_name(0x2a, 0x05), "REGISTRATIONS PREEMPTED");
	assert_string_equal(scsi_asc_name(0x26, 0x04), "INVALID RELEASE OF PERSISTENT RESERVATION");
	assert_string_equal(scsi_asc_name(0x55, 0x04), "INSUFFICIENT REGISTRATION RESOURCES");
	/* both halves count */
	assert_null(scsi_asc_name(0x24, 0x01));
	assert_null(scsi_asc_name(0x2a, 0x02));
	assert_null(scsi_asc_name(0x99, 0x00));
	assert_null(scsi_asc_name(-1, -1));
}

static void test_scsi_sense_describe(void **state)
{
	char buf[128];

	assert_ptr_equal(scsi_sense_describe(buf, sizeof(buf), 0x5, 0x24, 0x00), buf);
	assert_string_equal(buf, "sense ILLEGAL_REQUEST asc/ascq 0x24/0x00 (INVALID FIELD IN CDB)");
	scsi_sense_describe(buf, sizeof(buf), 0x6, 0x2a, 0x03);
	assert_string_equal(buf,
			    "sense UNIT_ATTENTION asc/ascq 0x2a/0x03 (RESERVATIONS PREEMPTED)");
	/* unknown code: no parenthesis */
	scsi_sense_describe(buf, sizeof(buf), 0x3, 0x7f, 0x01);
	assert_string_equal(buf, "sense MEDIUM_ERROR asc/ascq 0x7f/0x01");
	scsi_sense_describe(buf, sizeof(buf), 0x42, 0x24, 0x00);
	assert_contains(buf, "sense key 0x42");
	assert_contains(buf, "(INVALID FIELD IN CDB)");
	/* cut, terminated, not overrun */
	memset(buf, '#', sizeof(buf));
	scsi_sense_describe(buf, 11, 0x5, 0x24, 0x00);
	assert_string_equal(buf, "sense ILLE");
	assert_int_equal(buf[11], '#');
}

static void test_scsi_sense_errno(void **state)
{
	/* the table at the top of storage.h */
	assert_int_equal(scsi_sense_errno(0x5, 0x20, 0x00), -EOPNOTSUPP);
	assert_int_equal(scsi_sense_errno(0x5, 0x25, 0x00), -ENXIO);
	assert_int_equal(scsi_sense_errno(0x5, 0x24, 0x00), -EINVAL);
	assert_int_equal(scsi_sense_errno(0x5, 0x26, 0x00), -EINVAL);
	assert_int_equal(scsi_sense_errno(0x5, 0x26, 0x04), -EINVAL);
	assert_int_equal(scsi_sense_errno(0x5, 0x1a, 0x00), -EINVAL);
	assert_int_equal(scsi_sense_errno(0x7, 0x27, 0x00), -EROFS);
	assert_int_equal(scsi_sense_errno(0x7, 0x00, 0x00), -EROFS);
	/* any other CHECK CONDITION, including a UNIT ATTENTION left after the retries */
	assert_int_equal(scsi_sense_errno(0x6, 0x29, 0x00), -EIO);
	assert_int_equal(scsi_sense_errno(0x6, 0x2a, 0x03), -EIO);
	assert_int_equal(scsi_sense_errno(0x2, 0x04, 0x01), -EIO);
	assert_int_equal(scsi_sense_errno(0x3, 0x11, 0x00), -EIO);
	assert_int_equal(scsi_sense_errno(0x4, 0x44, 0x00), -EIO);
	assert_int_equal(scsi_sense_errno(0xb, 0x00, 0x00), -EIO);
	assert_int_equal(scsi_sense_errno(0x0, 0x00, 0x00), -EIO);
	/* the asc decides only under ILLEGAL REQUEST */
	assert_int_equal(scsi_sense_errno(0x6, 0x20, 0x00), -EIO);
	assert_int_equal(scsi_sense_errno(0x6, 0x25, 0x00), -EIO);
}

static void test_pr_type_name(void **state)
{
	char buf[32];

	assert_string_equal(lun_pr_type_name(LUN_PR_TYPE_WE, buf, sizeof(buf)), "Write Exclusive");
	assert_string_equal(lun_pr_type_name(LUN_PR_TYPE_EA, buf, sizeof(buf)), "Exclusive Access");
	assert_string_equal(lun_pr_type_name(LUN_PR_TYPE_WERO, buf, sizeof(buf)),
			    "Write Exclusive - Registrants Only");
	assert_string_equal(lun_pr_type_name(LUN_PR_TYPE_EARO, buf, sizeof(buf)),
			    "Exclusive Access - Registrants Only");
	assert_string_equal(lun_pr_type_name(LUN_PR_TYPE_WEAR, buf, sizeof(buf)),
			    "Write Exclusive - All Registrants");
	assert_string_equal(lun_pr_type_name(LUN_PR_TYPE_EAAR, buf, sizeof(buf)),
			    "Exclusive Access - All Registrants");
	assert_string_equal(lun_pr_type_name(2, buf, sizeof(buf)), "type 2");
	assert_string_equal(lun_pr_type_name(0, buf, sizeof(buf)), "type 0");
}

/* --- READ KEYS --------------------------------------------------------------- */

/* READ KEYS data: generation, ADDITIONAL LENGTH @addl, then @n keys. Its length. */
static size_t keys_data(uint8_t *buf, uint32_t gen, uint32_t addl, const uint64_t *keys, size_t n)
{
	put_be32(buf, gen);
	put_be32(buf + 4, addl);
	for (size_t i = 0; i < n; i++)
		put_be64(buf + 8 + 8 * i, keys[i]);
	return 8 + 8 * n;
}

static int parse_keys(const uint8_t *data, size_t len, struct lun_pr_state *st)
{
	uint8_t *p = exact(data, len);
	int rc = lun_pr_parse_keys(p, len, st);

	free(p);
	return rc;
}

static void test_pr_parse_keys(void **state)
{
	const uint64_t keys[] = {0x8c1f2a3b00000002ull, 0x8c1f2a3b00000001ull,
				 0x8c1f2a3b00000002ull};
	uint8_t buf[64];
	struct lun_pr_state st;
	size_t len = keys_data(buf, 0x01020304, 24, keys, 3);

	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(parse_keys(buf, len, &st), 0);
	assert_int_equal(st.generation, 0x01020304);
	assert_int_equal(st.nkeys, 3);
	assert_false(st.keys_truncated);
	assert_true(st.keys[0] == keys[0]);
	assert_true(st.keys[1] == keys[1]);
	assert_true(st.keys[2] == keys[2]);
	assert_int_equal(lun_pr_count_key(&st, keys[0]), 2);
	assert_int_equal(lun_pr_count_key(&st, keys[1]), 1);
	assert_int_equal(lun_pr_count_key(&st, 0x8c1f2a3b00000003ull), 0);

	/* nobody registered */
	len = keys_data(buf, 7, 0, NULL, 0);
	assert_int_equal(parse_keys(buf, len, &st), 0);
	assert_int_equal(st.generation, 7);
	assert_int_equal(st.nkeys, 0);
	assert_false(st.keys_truncated);

	/* bytes past ADDITIONAL LENGTH are not keys */
	len = keys_data(buf, 7, 8, keys, 3);
	assert_int_equal(parse_keys(buf, len, &st), 0);
	assert_int_equal(st.nkeys, 1);
	assert_false(st.keys_truncated);
}

static void test_pr_parse_keys_short(void **state)
{
	const uint64_t keys[] = {1, 2, 3};
	uint8_t buf[64];
	struct lun_pr_state st;

	/* no header: malformed */
	keys_data(buf, 1, 0, NULL, 0);
	for (size_t len = 0; len < 8; len++)
		assert_int_equal(parse_keys(buf, len, &st), -EPROTO);

	/* the target says 3 keys, the data holds 2 and a half: 2, and we know we lack some */
	keys_data(buf, 1, 24, keys, 3);
	assert_int_equal(parse_keys(buf, 8 + 20, &st), 0);
	assert_int_equal(st.nkeys, 2);
	assert_true(st.keys[1] == 2);
	assert_true(st.keys_truncated);

	/* an absurd ADDITIONAL LENGTH reads nothing past the data */
	keys_data(buf, 1, 0xffffffffu, keys, 1);
	assert_int_equal(parse_keys(buf, 16, &st), 0);
	assert_int_equal(st.nkeys, 1);
	assert_true(st.keys[0] == 1);
	assert_true(st.keys_truncated);

	/* a partial key is not a key */
	keys_data(buf, 1, 12, keys, 2);
	assert_int_equal(parse_keys(buf, 20, &st), 0);
	assert_int_equal(st.nkeys, 1);
}

static void test_pr_parse_keys_many(void **state)
{
	uint64_t keys[LUN_PR_MAX_KEYS + 2];
	uint8_t buf[8 + 8 * (LUN_PR_MAX_KEYS + 2)];
	struct lun_pr_state st;
	size_t len;

	for (size_t i = 0; i < LUN_PR_MAX_KEYS + 2; i++)
		keys[i] = 0x1000 + i;

	/* exactly LUN_PR_MAX_KEYS: all of them */
	len = keys_data(buf, 9, 8 * LUN_PR_MAX_KEYS, keys, LUN_PR_MAX_KEYS);
	assert_int_equal(parse_keys(buf, len, &st), 0);
	assert_int_equal(st.nkeys, LUN_PR_MAX_KEYS);
	assert_false(st.keys_truncated);
	assert_true(st.keys[LUN_PR_MAX_KEYS - 1] == 0x1000 + LUN_PR_MAX_KEYS - 1);

	/* more: the first LUN_PR_MAX_KEYS, flagged */
	len = keys_data(buf, 9, 8 * (LUN_PR_MAX_KEYS + 2), keys, LUN_PR_MAX_KEYS + 2);
	assert_int_equal(parse_keys(buf, len, &st), 0);
	assert_int_equal(st.nkeys, LUN_PR_MAX_KEYS);
	assert_true(st.keys_truncated);
	assert_true(st.keys[0] == 0x1000);
	assert_true(st.keys[LUN_PR_MAX_KEYS - 1] == 0x1000 + LUN_PR_MAX_KEYS - 1);
}

/* --- READ RESERVATION -------------------------------------------------------- */

/* READ RESERVATION data with a reservation: 8 + 16 bytes. */
static size_t resv_data(uint8_t *buf, uint32_t gen, uint64_t key, uint8_t scope, uint8_t type)
{
	memset(buf, 0, 24);
	put_be32(buf, gen);
	put_be32(buf + 4, 16);
	put_be64(buf + 8, key);
	put_be32(buf + 16, 0xdeadbeef); /* obsolete */
	buf[21] = (uint8_t)(scope << 4 | type);
	put_be16(buf + 22, 0xbeef); /* obsolete */
	return 24;
}

static int parse_resv(const uint8_t *data, size_t len, struct lun_pr_state *st)
{
	uint8_t *p = exact(data, len);
	int rc = lun_pr_parse_reservation(p, len, st);

	free(p);
	return rc;
}

static void test_pr_parse_reservation(void **state)
{
	const uint64_t keys[] = {0x8c1f2a3b00000001ull};
	uint8_t buf[32];
	struct lun_pr_state st;
	size_t len;

	/* after READ KEYS, as lun_read_pr does: the keys stay */
	memset(&st, 0, sizeof(st));
	len = keys_data(buf, 5, 8, keys, 1);
	assert_int_equal(parse_keys(buf, len, &st), 0);

	len = resv_data(buf, 6, 0x8c1f2a3b00000001ull, 0, LUN_PR_TYPE_WERO);
	assert_int_equal(parse_resv(buf, len, &st), 0);
	assert_true(st.reserved);
	assert_true(st.holder == 0x8c1f2a3b00000001ull);
	assert_int_equal(st.type, LUN_PR_TYPE_WERO);
	assert_int_equal(st.scope, 0);
	assert_int_equal(st.generation, 6);
	assert_int_equal(st.nkeys, 1);
	assert_true(st.keys[0] == keys[0]);

	/* scope and type are the two halves of byte 21 */
	len = resv_data(buf, 6, 0, 0x1, LUN_PR_TYPE_EAAR);
	assert_int_equal(parse_resv(buf, len, &st), 0);
	assert_true(st.reserved);
	assert_int_equal(st.scope, 1);
	assert_int_equal(st.type, LUN_PR_TYPE_EAAR);
	assert_true(st.holder == 0);

	/* no reservation clears what a previous read said */
	len = resv_data(buf, 6, 0x8c1f2a3b00000001ull, 0, LUN_PR_TYPE_WERO);
	assert_int_equal(parse_resv(buf, len, &st), 0);
	put_be32(buf, 11);
	put_be32(buf + 4, 0);
	assert_int_equal(parse_resv(buf, 8, &st), 0);
	assert_false(st.reserved);
	assert_true(st.holder == 0);
	assert_int_equal(st.type, 0);
	assert_int_equal(st.generation, 11);
	assert_int_equal(st.nkeys, 1);
}

static void test_pr_parse_reservation_malformed(void **state)
{
	uint8_t buf[32];
	struct lun_pr_state st;

	memset(&st, 0, sizeof(st));
	resv_data(buf, 1, 0x42, 0, LUN_PR_TYPE_WERO);
	for (size_t len = 0; len < 8; len++)
		assert_int_equal(parse_resv(buf, len, &st), -EPROTO);
	/* a reservation announced, its descriptor cut before the type */
	for (size_t len = 8; len < 22; len++)
		assert_int_equal(parse_resv(buf, len, &st), -EPROTO);
	/* an ADDITIONAL LENGTH too short for a descriptor */
	put_be32(buf + 4, 8);
	assert_int_equal(parse_resv(buf, 24, &st), -EPROTO);
	put_be32(buf + 4, 15);
	assert_int_equal(parse_resv(buf, 24, &st), -EPROTO);
	/* a malformed answer never reads as a reservation */
	assert_false(st.reserved);
}

/* --- REPORT CAPABILITIES ----------------------------------------------------- */

static int parse_caps(const uint8_t *data, size_t len, struct lun_pr_caps *caps)
{
	uint8_t *p = exact(data, len);
	int rc = lun_pr_parse_caps(p, len, caps);

	free(p);
	return rc;
}

static void test_pr_parse_caps(void **state)
{
	/* LIO: PTPL_C, TMV, every type (WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX, EX_AC_AR) */
	const uint8_t lio[8] = {0x00, 0x08, 0x01, 0x80, 0xea, 0x01, 0x00, 0x00};
	uint8_t buf[8];
	struct lun_pr_caps caps;

	memset(&caps, 0, sizeof(caps));
	assert_int_equal(parse_caps(lio, sizeof(lio), &caps), 0);
	assert_true(caps.pr_supported);
	assert_true(caps.report_caps);
	assert_true(caps.ptpl_capable);
	assert_true(caps.type_mask_valid);
	assert_int_equal(caps.type_mask, 0xea01);
	assert_true(caps.wero_supported);

	/* every type but Write Exclusive - Registrants Only */
	memcpy(buf, lio, sizeof(buf));
	buf[4] = 0xca;
	assert_int_equal(parse_caps(buf, sizeof(buf), &caps), 0);
	assert_true(caps.type_mask_valid);
	assert_int_equal(caps.type_mask, 0xca01);
	assert_false(caps.wero_supported);

	/* only WR_EX_RO, and ALLOW COMMANDS set beside TMV; PTPL_A is not PTPL_C */
	memcpy(buf, lio, sizeof(buf));
	buf[2] = 0x00;
	buf[3] = 0x80 | 0x10 | 0x01;
	buf[4] = 0x20;
	buf[5] = 0x00;
	assert_int_equal(parse_caps(buf, sizeof(buf), &caps), 0);
	assert_false(caps.ptpl_capable);
	assert_true(caps.type_mask_valid);
	assert_int_equal(caps.type_mask, 0x2000);
	assert_true(caps.wero_supported);

	/* no TYPE MASK VALID: the mask means nothing, WERO is assumed */
	memcpy(buf, lio, sizeof(buf));
	buf[3] = 0x00;
	buf[4] = 0x00;
	assert_int_equal(parse_caps(buf, sizeof(buf), &caps), 0);
	assert_false(caps.type_mask_valid);
	assert_int_equal(caps.type_mask, 0);
	assert_true(caps.wero_supported);
}

static void test_pr_parse_caps_malformed(void **state)
{
	const uint8_t lio[8] = {0x00, 0x08, 0x01, 0x80, 0xea, 0x01, 0x00, 0x00};
	uint8_t buf[8];
	struct lun_pr_caps caps;

	for (size_t len = 0; len < 6; len++)
		assert_int_equal(parse_caps(lio, len, &caps), -EPROTO);
	/* a LENGTH that does not cover the type mask */
	memcpy(buf, lio, sizeof(buf));
	put_be16(buf, 0);
	assert_int_equal(parse_caps(buf, sizeof(buf), &caps), -EPROTO);
	put_be16(buf, 4);
	assert_int_equal(parse_caps(buf, sizeof(buf), &caps), -EPROTO);
}

/* --- REPORT SUPPORTED OPERATION CODES ---------------------------------------- */

/* Appends a command descriptor at *@pos: @ctdp adds a 12-byte timeouts descriptor. */
static void opcode_desc(uint8_t *buf, size_t *pos, uint8_t op, int sa, bool ctdp)
{
	uint8_t *d = buf + *pos;

	memset(d, 0, 8);
	d[0] = op;
	if (sa >= 0) {
		put_be16(d + 2, (uint16_t)sa);
		d[5] |= 0x01; /* SERVACTV */
	}
	put_be16(d + 6, 10);
	*pos += 8;
	if (ctdp) {
		d[5] |= 0x02;
		memset(buf + *pos, 0, 12);
		put_be16(buf + *pos, 0x0a);
		*pos += 12;
	}
}

static bool opcodes(const uint8_t *data, size_t len)
{
	uint8_t *p = exact(data, len);
	bool yes = lun_opcodes_list_preempt_abort(p, len);

	free(p);
	return yes;
}

static void test_opcodes_preempt_abort(void **state)
{
	uint8_t buf[512];
	size_t pos = 4;

	/* TEST UNIT READY, READ (16), PR IN READ KEYS, PR OUT REGISTER .. PREEMPT AND ABORT */
	opcode_desc(buf, &pos, 0x00, -1, false);
	opcode_desc(buf, &pos, 0x88, -1, false);
	opcode_desc(buf, &pos, 0x5e, 0, false);
	for (int sa = 0; sa <= 5; sa++)
		opcode_desc(buf, &pos, 0x5f, sa, false);
	put_be32(buf, (uint32_t)(pos - 4));
	assert_true(opcodes(buf, pos));

	/* the same list stopping at PREEMPT */
	pos = 4;
	opcode_desc(buf, &pos, 0x00, -1, false);
	for (int sa = 0; sa <= 4; sa++)
		opcode_desc(buf, &pos, 0x5f, sa, false);
	opcode_desc(buf, &pos, 0x5f, 6, false);
	opcode_desc(buf, &pos, 0x5e, 5, false); /* PR IN, not OUT */
	put_be32(buf, (uint32_t)(pos - 4));
	assert_false(opcodes(buf, pos));

	/* service action 5 in a descriptor whose SERVACTV is clear is no service action */
	pos = 4;
	opcode_desc(buf, &pos, 0x5f, 5, false);
	buf[4 + 5] &= (uint8_t)~0x01;
	put_be32(buf, (uint32_t)(pos - 4));
	assert_false(opcodes(buf, pos));
}

static void test_opcodes_timeout_descriptors(void **state)
{
	uint8_t buf[512], *fake;
	size_t pos = 4;

	/* descriptors followed by timeouts descriptors, PREEMPT AND ABORT last */
	opcode_desc(buf, &pos, 0x00, -1, true);
	opcode_desc(buf, &pos, 0x5f, 4, true);
	opcode_desc(buf, &pos, 0x5f, 5, true);
	put_be32(buf, (uint32_t)(pos - 4));
	assert_true(opcodes(buf, pos));

	/* what looks like PR OUT / 5 inside a timeouts descriptor is not a command */
	pos = 4;
	opcode_desc(buf, &pos, 0x12, -1, true);
	fake = buf + pos - 12;
	fake[0] = 0x5f;
	put_be16(fake + 2, 5);
	fake[5] = 0x01;
	opcode_desc(buf, &pos, 0x5f, 4, false);
	put_be32(buf, (uint32_t)(pos - 4));
	assert_false(opcodes(buf, pos));
}

static void test_opcodes_lengths_and_garbage(void **state)
{
	uint8_t buf[512];
	size_t pos = 4;
	uint32_t x = 12345;

	opcode_desc(buf, &pos, 0x00, -1, false);
	opcode_desc(buf, &pos, 0x5f, 5, false);

	/* COMMAND DATA LENGTH ends the list, even with more bytes behind it */
	put_be32(buf, 8);
	assert_false(opcodes(buf, pos));
	/* and a length past the data is cut to the data */
	put_be32(buf, 0x7fffffff);
	assert_true(opcodes(buf, pos));
	assert_false(opcodes(buf, pos - 1));
	for (size_t len = 0; len < 4; len++)
		assert_false(opcodes(buf, len));

	/* all ones: huge length, every descriptor 0xff with CTDP */
	memset(buf, 0xff, sizeof(buf));
	assert_false(opcodes(buf, sizeof(buf)));

	/* noise of every length parses without reading past it (see SANITIZE=1) */
	for (size_t len = 0; len <= 300; len++) {
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (uint8_t)(x >> 16);
		}
		(void)opcodes(buf, len);
		(void)parse_keys(buf, len, &(struct lun_pr_state){0});
		(void)parse_resv(buf, len, &(struct lun_pr_state){0});
		(void)parse_caps(buf, len, &(struct lun_pr_caps){0});
	}
}

/* --- keys in messages -------------------------------------------------------- */

static void test_count_key_and_describe(void **state)
{
	struct lun_pr_state st = {.nkeys = 4, .keys = {5, 6, 5, 5}};
	char buf[96];
	uint64_t ours = 0x8c1f2a3b00000001ull;

	assert_int_equal(lun_pr_count_key(&st, 5), 3);
	assert_int_equal(lun_pr_count_key(&st, 6), 1);
	assert_int_equal(lun_pr_count_key(&st, 7), 0);
	/* only the first nkeys count */
	st.nkeys = 1;
	assert_int_equal(lun_pr_count_key(&st, 5), 1);
	assert_int_equal(lun_pr_count_key(&st, 6), 0);

	assert_ptr_equal(lun_key_describe(buf, sizeof(buf), 0x8c1f2a3b00000002ull, ours), buf);
	assert_string_equal(buf, "0x8c1f2a3b00000002 (node 2)");
	lun_key_describe(buf, sizeof(buf), 0x1234567800000002ull, ours);
	assert_string_equal(buf, "0x1234567800000002 (not a key of this cluster)");
	/* no key of ours to compare with */
	lun_key_describe(buf, sizeof(buf), 0x1234567800000009ull, 0);
	assert_string_equal(buf, "0x1234567800000009 (node 9)");
	/* leading zeros kept: always 16 digits */
	lun_key_describe(buf, sizeof(buf), 0x0000000100000003ull, 0x0000000100000001ull);
	assert_string_equal(buf, "0x0000000100000003 (node 3)");
	/* cut, not overrun */
	memset(buf, '#', sizeof(buf));
	lun_key_describe(buf, 8, ours, ours);
	assert_string_equal(buf, "0x8c1f2");
	assert_int_equal(buf[8], '#');
}

/* --- the acquire decision ---------------------------------------------------- */

static uint64_t K1, K2, K3, KX; /* node 1 (us), 2 and 3 of "prod"; node 2 of "test" */
static const struct lun_pr_caps caps_plain = {.pr_supported = true, .wero_supported = true};
static const struct lun_pr_caps caps_abort = {
	.pr_supported = true, .wero_supported = true, .preempt_abort = true};

static int setup_keys(void **state)
{
	K1 = storage_node_key("prod", 1);
	K2 = storage_node_key("prod", 2);
	K3 = storage_node_key("prod", 3);
	KX = storage_node_key("test", 2);
	return 0;
}

/* A state with @n registrations, reserved by @holder with @type when @type != 0. */
static struct lun_pr_state pr_state(uint8_t type, uint64_t holder, unsigned int n, ...)
{
	struct lun_pr_state st;
	va_list ap;

	memset(&st, 0, sizeof(st));
	va_start(ap, n);
	for (unsigned int i = 0; i < n; i++)
		st.keys[i] = va_arg(ap, uint64_t);
	va_end(ap);
	st.nkeys = n;
	st.reserved = type != 0;
	st.type = type;
	st.holder = holder;
	return st;
}

static struct lun_acq_step decide(const struct lun_pr_state *st, uint64_t key, bool takeover,
				  const struct lun_pr_caps *caps)
{
	struct lun_acq_step step;

	memset(&step, 0xa5, sizeof(step));
	lun_acquire_decide(st, key, takeover, caps, &step);
	/* every step says why, on one line */
	assert_true(memchr(step.reason, '\0', sizeof(step.reason)) != NULL);
	assert_true(step.reason[0] != '\0');
	assert_null(strchr(step.reason, '\n'));
	return step;
}

static void assert_refused(const struct lun_acq_step *step, int err)
{
	if (step->action != LUN_ACQ_REFUSE)
		fail_msg("action %d, expected REFUSE %d: %s", step->action, err, step->reason);
	assert_int_equal(step->err, err);
	assert_false(step->abort);
}

static void assert_preempts(const struct lun_acq_step *step, uint64_t victim, bool with_abort)
{
	if (step->action != LUN_ACQ_PREEMPT)
		fail_msg("action %d, expected PREEMPT: %s", step->action, step->reason);
	if (step->preempt_key != victim)
		fail_msg("preempts 0x%016" PRIx64 ", expected 0x%016" PRIx64 ": %s",
			 step->preempt_key, victim, step->reason);
	assert_int_equal(step->abort, with_abort);
	assert_int_equal(step->err, 0);
}

static void test_decide_our_key_missing(void **state)
{
	struct lun_pr_state st = pr_state(0, 0, 0);
	struct lun_acq_step step;
	char kb[32];

	/* preempted between our REGISTER and the read: stop, whatever takeover says */
	step = decide(&st, K1, false, &caps_plain);
	assert_refused(&step, -EAGAIN);
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K1));
	assert_contains(step.reason, "not registered");

	st = pr_state(LUN_PR_TYPE_WERO, K2, 2, K2, K2);
	step = decide(&st, K1, true, &caps_abort);
	assert_refused(&step, -EAGAIN);
	assert_int_equal(step.preempt_key, 0);
}

static void test_decide_free_lun(void **state)
{
	struct lun_pr_state st = pr_state(0, 0, 1, K1);
	struct lun_acq_step step;

	step = decide(&st, K1, false, &caps_plain);
	assert_int_equal(step.action, LUN_ACQ_RESERVE);
	assert_int_equal(step.err, 0);
	assert_int_equal(step.preempt_key, 0);
	step = decide(&st, K1, true, &caps_abort);
	assert_int_equal(step.action, LUN_ACQ_RESERVE);

	/* our key from several nexuses (hvnoded and disk servers) is still only us */
	st = pr_state(0, 0, 3, K1, K1, K1);
	step = decide(&st, K1, false, NULL);
	assert_int_equal(step.action, LUN_ACQ_RESERVE);
}

static void test_decide_done(void **state)
{
	struct lun_pr_state st = pr_state(LUN_PR_TYPE_WERO, K1, 1, K1);
	struct lun_acq_step step;

	step = decide(&st, K1, false, &caps_plain);
	assert_int_equal(step.action, LUN_ACQ_DONE);
	assert_int_equal(step.err, 0);
	step = decide(&st, K1, true, &caps_abort);
	assert_int_equal(step.action, LUN_ACQ_DONE);

	st = pr_state(LUN_PR_TYPE_WERO, K1, 3, K1, K1, K1);
	step = decide(&st, K1, false, &caps_plain);
	assert_int_equal(step.action, LUN_ACQ_DONE);
}

static void test_decide_refuses_other_node(void **state)
{
	struct lun_pr_state st = pr_state(0, 0, 2, K2, K1);
	struct lun_acq_step step;
	char kb[32];

	/* node 2 registered, nobody reserved */
	step = decide(&st, K1, false, &caps_abort);
	assert_refused(&step, -EBUSY);
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K2));
	assert_contains(step.reason, "(node 2)");
	assert_int_equal(step.preempt_key, 0);

	/* node 2 holds the reservation, node 3 registered too: both named, once each */
	st = pr_state(LUN_PR_TYPE_WERO, K2, 5, K2, K1, K3, K2, K3);
	step = decide(&st, K1, false, &caps_plain);
	assert_refused(&step, -EBUSY);
	assert_contains(step.reason, "Write Exclusive - Registrants Only");
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K2));
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K3));
	assert_true(strstr(step.reason, "registered: ") != NULL);
	/* K3 appears once in the list of registrations */
	assert_null(strstr(strstr(step.reason, hexkey(kb, sizeof(kb), K3)) + 1, kb));

	/* even while we hold the reservation: node 3 can still write under WERO */
	st = pr_state(LUN_PR_TYPE_WERO, K1, 2, K1, K3);
	step = decide(&st, K1, false, &caps_plain);
	assert_refused(&step, -EBUSY);
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K3));

	/* a key of another cluster is said to be one */
	st = pr_state(0, 0, 2, K1, KX);
	step = decide(&st, K1, false, &caps_plain);
	assert_refused(&step, -EBUSY);
	assert_contains(step.reason, hexkey(kb, sizeof(kb), KX));
	assert_contains(step.reason, "not a key of this cluster");

	/* a reservation holder whose registration we did not see is still there */
	st = pr_state(LUN_PR_TYPE_WE, K2, 1, K1);
	step = decide(&st, K1, false, &caps_plain);
	assert_refused(&step, -EBUSY);
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K2));
	assert_contains(step.reason, "Write Exclusive");
}

static void test_decide_takeover_preempts(void **state)
{
	struct lun_pr_state st = pr_state(0, 0, 2, K2, K1);
	struct lun_acq_step step;
	char kb[32];

	step = decide(&st, K1, true, &caps_plain);
	assert_preempts(&step, K2, false);
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K2));
	/* PREEMPT AND ABORT only when the target lists it */
	step = decide(&st, K1, true, &caps_abort);
	assert_preempts(&step, K2, true);
	step = decide(&st, K1, true, NULL);
	assert_preempts(&step, K2, false);

	/* a stale registration of another node while we hold the reservation */
	st = pr_state(LUN_PR_TYPE_WERO, K1, 3, K1, K3, K1);
	step = decide(&st, K1, true, &caps_plain);
	assert_preempts(&step, K3, false);

	/* a key of another cluster is preempted like any other */
	st = pr_state(0, 0, 2, KX, K1);
	step = decide(&st, K1, true, &caps_plain);
	assert_preempts(&step, KX, false);
}

static void test_decide_holder_first(void **state)
{
	/* node 3 registered first, node 2 holds: preempting node 2 moves the reservation */
	struct lun_pr_state st = pr_state(LUN_PR_TYPE_WERO, K2, 4, K3, K1, K2, K3);
	struct lun_acq_step step;
	char kb[32];

	step = decide(&st, K1, true, &caps_abort);
	assert_preempts(&step, K2, true);
	assert_contains(step.reason, hexkey(kb, sizeof(kb), K2));
	assert_contains(step.reason, "holder");

	/* holder of another type, e.g. Exclusive Access */
	st = pr_state(LUN_PR_TYPE_EA, K3, 3, K2, K3, K1);
	step = decide(&st, K1, true, &caps_plain);
	assert_preempts(&step, K3, false);
}

static void test_decide_own_reservation_other_type(void **state)
{
	static const uint8_t types[] = {LUN_PR_TYPE_WE, LUN_PR_TYPE_EA, LUN_PR_TYPE_EARO};
	char tb[64];

	for (size_t i = 0; i < sizeof(types); i++) {
		struct lun_pr_state st = pr_state(types[i], K1, 2, K1, K1);
		struct lun_acq_step step = decide(&st, K1, false, &caps_plain);

		/* not ours to convert without being asked to */
		assert_refused(&step, -EPERM);
		assert_contains(step.reason, lun_pr_type_name(types[i], tb, sizeof(tb)));
		/* takeover converts it: PREEMPT of our own key, which moves the type to WERO */
		step = decide(&st, K1, true, &caps_plain);
		assert_preempts(&step, K1, false);
	}
}

static void test_decide_all_registrants(void **state)
{
	static const uint8_t types[] = {LUN_PR_TYPE_WEAR, LUN_PR_TYPE_EAAR};
	char kb[32], tb[64];

	for (size_t i = 0; i < sizeof(types); i++) {
		struct lun_pr_state st = pr_state(types[i], 0, 1, K1);
		struct lun_acq_step step;

		/* only us: an all-registrants reservation is ours, but not WERO */
		step = decide(&st, K1, false, &caps_plain);
		assert_refused(&step, -EPERM);
		assert_contains(step.reason, lun_pr_type_name(types[i], tb, sizeof(tb)));
		step = decide(&st, K1, true, &caps_abort);
		assert_preempts(&step, 0, true);

		/* others registered hold it too */
		st = pr_state(types[i], 0, 3, K2, K1, K3);
		step = decide(&st, K1, false, &caps_plain);
		assert_refused(&step, -EBUSY);
		assert_contains(step.reason, "every registrant");
		assert_contains(step.reason, hexkey(kb, sizeof(kb), K2));
		assert_contains(step.reason, hexkey(kb, sizeof(kb), K3));
		/* takeover: PREEMPT with key 0 removes every other registrant at once */
		step = decide(&st, K1, true, &caps_plain);
		assert_preempts(&step, 0, false);
		step = decide(&st, K1, true, &caps_abort);
		assert_preempts(&step, 0, true);
	}
}

static void test_decide_truncated_keys(void **state)
{
	struct lun_pr_state st;
	struct lun_acq_step step;

	/* LUN_PR_MAX_KEYS registrations of ours seen, more not: another node may be there */
	st = pr_state(LUN_PR_TYPE_WERO, K1, 0);
	for (unsigned int i = 0; i < LUN_PR_MAX_KEYS; i++)
		st.keys[i] = K1;
	st.nkeys = LUN_PR_MAX_KEYS;
	st.keys_truncated = true;
	step = decide(&st, K1, false, &caps_plain);
	assert_true(step.action != LUN_ACQ_DONE);
	assert_refused(&step, -EPROTO);
	st.reserved = false;
	step = decide(&st, K1, true, &caps_plain);
	assert_true(step.action != LUN_ACQ_RESERVE);
	assert_refused(&step, -EPROTO);

	/* a foreign key among those seen is still refused or preempted as usual */
	st.keys[5] = K2;
	step = decide(&st, K1, false, &caps_plain);
	assert_refused(&step, -EBUSY);
	step = decide(&st, K1, true, &caps_plain);
	assert_preempts(&step, K2, false);
}

/*
 * A target as SPC-4 has it, for the loop lun_acquire runs: our nexus is the
 * first registration of @key; PREEMPT removes every registration of the victim
 * (ours excepted) and, when the victim held the reservation (key 0: an
 * all-registrants one), gives it to us as WERO.
 */
static void target_apply(struct lun_pr_state *st, uint64_t key, const struct lun_acq_step *step)
{
	unsigned int n = 0;
	bool ours_kept = false;

	if (step->action == LUN_ACQ_RESERVE) {
		assert_false(st->reserved);
		st->reserved = true;
		st->holder = key;
		st->type = LUN_PR_TYPE_WERO;
		return;
	}
	assert_int_equal(step->action, LUN_ACQ_PREEMPT);
	for (unsigned int i = 0; i < st->nkeys; i++) {
		bool ours = st->keys[i] == key && !ours_kept;
		bool victim = step->preempt_key ? st->keys[i] == step->preempt_key : true;

		ours_kept |= ours;
		if (ours || !victim)
			st->keys[n++] = st->keys[i];
	}
	st->nkeys = n;
	if (st->reserved && (step->preempt_key == 0 || st->holder == step->preempt_key)) {
		st->holder = key;
		st->type = LUN_PR_TYPE_WERO;
	}
}

static void test_decide_loop_takeover_converges(void **state)
{
	struct lun_pr_state starts[] = {
		pr_state(0, 0, 1, K1),
		pr_state(LUN_PR_TYPE_WERO, K1, 1, K1),
		pr_state(0, 0, 4, K2, K1, K3, K2),
		pr_state(LUN_PR_TYPE_WERO, K2, 5, K2, K2, K1, K3, KX),
		pr_state(LUN_PR_TYPE_EA, K3, 3, K3, K1, K1),
		pr_state(LUN_PR_TYPE_WE, K1, 2, K1, K1),
		pr_state(LUN_PR_TYPE_WEAR, 0, 3, K2, K1, K3),
		pr_state(LUN_PR_TYPE_EAAR, 0, 1, K1),
		pr_state(LUN_PR_TYPE_WERO, K1, 3, K1, K2, K3),
	};

	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		struct lun_pr_state st = starts[i];
		struct lun_acq_step step;
		int steps = 0;

		for (;;) {
			step = decide(&st, K1, true, &caps_plain);
			if (step.action == LUN_ACQ_DONE || step.action == LUN_ACQ_REFUSE)
				break;
			if (++steps > 8)
				fail_msg("start %zu: no end after 8 steps: %s", i, step.reason);
			target_apply(&st, K1, &step);
		}
		if (step.action != LUN_ACQ_DONE)
			fail_msg("start %zu: refused: %s", i, step.reason);
		/* what DONE promises: WERO of our key, nobody else registered */
		assert_true(st.reserved);
		assert_int_equal(st.type, LUN_PR_TYPE_WERO);
		assert_true(st.holder == K1);
		assert_int_equal(lun_pr_count_key(&st, K1), st.nkeys);
		assert_true(st.nkeys >= 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_ipv4),
		cmocka_unit_test(test_url_dns_default_port),
		cmocka_unit_test(test_url_ipv6),
		cmocka_unit_test(test_url_eui_naa_targets),
		cmocka_unit_test(test_url_ports_and_lengths),
		cmocka_unit_test(test_url_refused_scheme_and_shape),
		cmocka_unit_test(test_url_refused_credentials),
		cmocka_unit_test(test_url_refused_host_and_port),
		cmocka_unit_test(test_url_refused_target),
		cmocka_unit_test(test_url_refused_lun),
		cmocka_unit_test(test_url_error_buffers),
		cmocka_unit_test(test_node_key),
		cmocka_unit_test(test_initiator_name),
		cmocka_unit_test(test_initiator_name_truncation),
		cmocka_unit_test(test_initiator_name_small_buffers),
		cmocka_unit_test(test_isid),
		cmocka_unit_test(test_scsi_status_name),
		cmocka_unit_test(test_scsi_sense_key_name),
		cmocka_unit_test(test_scsi_asc_name),
		cmocka_unit_test(test_scsi_sense_describe),
		cmocka_unit_test(test_scsi_sense_errno),
		cmocka_unit_test(test_pr_type_name),
		cmocka_unit_test(test_pr_parse_keys),
		cmocka_unit_test(test_pr_parse_keys_short),
		cmocka_unit_test(test_pr_parse_keys_many),
		cmocka_unit_test(test_pr_parse_reservation),
		cmocka_unit_test(test_pr_parse_reservation_malformed),
		cmocka_unit_test(test_pr_parse_caps),
		cmocka_unit_test(test_pr_parse_caps_malformed),
		cmocka_unit_test(test_opcodes_preempt_abort),
		cmocka_unit_test(test_opcodes_timeout_descriptors),
		cmocka_unit_test(test_opcodes_lengths_and_garbage),
		cmocka_unit_test(test_count_key_and_describe),
		cmocka_unit_test_setup(test_decide_our_key_missing, setup_keys),
		cmocka_unit_test_setup(test_decide_free_lun, setup_keys),
		cmocka_unit_test_setup(test_decide_done, setup_keys),
		cmocka_unit_test_setup(test_decide_refuses_other_node, setup_keys),
		cmocka_unit_test_setup(test_decide_takeover_preempts, setup_keys),
		cmocka_unit_test_setup(test_decide_holder_first, setup_keys),
		cmocka_unit_test_setup(test_decide_own_reservation_other_type, setup_keys),
		cmocka_unit_test_setup(test_decide_all_registrants, setup_keys),
		cmocka_unit_test_setup(test_decide_truncated_keys, setup_keys),
		cmocka_unit_test_setup(test_decide_loop_takeover_converges, setup_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
