/* Unit tests of cluster/secreport.c: the security report of states built from ops. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/ops.h"
#include "../../cluster/secreport.h"
#include "../../cluster/state.h"

/* Apply @text as sent by node @sender (1 leads); a refusal fails the test with its reason. */
static void apply_from(cluster_state_t *s, uint32_t sender, const char *text)
{
	struct op_ctx ctx = { .sender = sender, .leader = 1 };
	json_error_t jerr;
	json_t *op = json_loads(text, 0, &jerr);
	char err[512] = "";
	int rc;

	if (!op)
		fail_msg("bad JSON in the test: %s: %s", text, jerr.text);
	rc = state_apply(s, op, &ctx, err, sizeof(err));
	json_decref(op);
	if (rc)
		fail_msg("%s: %d %s", text, rc, err);
}

static void apply(cluster_state_t *s, const char *text)
{
	apply_from(s, 1, text);
}

/* Node @id, online, cleared for @clearance; @key false: it publishes no migration key. */
static void add_node(cluster_state_t *s, int id, const char *clearance, bool key)
{
	char op[512];

	snprintf(op, sizeof(op),
		 "{\"op\":\"node.hello\",\"id\":%d,\"name\":\"n%d\",\"vcpus\":8,\"memory\":8192,"
		 "\"domain\":\"\",\"clearance\":\"%s\",\"watchdog_s\":%d,"
		 "\"mig_endpoint\":\"tcp://10.0.0.%d:7790\",\"mig_key\":\"%s\"}",
		 id, id, clearance, id == 3 ? 10 : 0, id,
		 key ? "0000000000000000000000000000000000000000" : "");
	apply_from(s, (uint32_t)id, op);
	snprintf(op, sizeof(op),
		 "{\"op\":\"mgr.node\",\"id\":%d,\"expect\":\"joining\",\"status\":\"online\","
		 "\"at_ms\":1}",
		 id);
	apply(s, op);
}

/* A VM running on node @node (0: stopped); @extra: more fields of its definition. */
static void add_vm(cluster_state_t *s, int n, const char *name, int node, const char *extra)
{
	char op[1024];

	snprintf(op, sizeof(op),
		 "{\"op\":\"vm.create\",\"def\":{\"name\":\"%s\","
		 "\"uuid\":\"00000000-0000-4000-8000-0000000000%02d\",\"vcpus\":1,\"memory\":64,"
		 "\"disks\":[\"iscsi://san/iqn.2026-11.org.example:t/%d\"]%s}}",
		 name, n, n, extra);
	apply(s, op);
	if (!node)
		return;
	snprintf(op, sizeof(op), "{\"op\":\"vm.want\",\"name\":\"%s\",\"running\":true}", name);
	apply(s, op);
	snprintf(op, sizeof(op),
		 "{\"op\":\"mgr.vm\",\"name\":\"%s\",\"expect_epoch\":0,\"state\":\"started\","
		 "\"node\":%d,\"epoch\":1}",
		 name, node);
	apply(s, op);
}

static const struct secreport_local crypto_on = {
	.node = "n1", .crypto_cipher = "aes256", .crypto_hash = "sha256"
};

/* The findings of @check, as "severity object: detail" lines joined by '\n'. */
static const char *findings_of(json_t *rep, const char *check, char *buf, size_t len)
{
	json_t *f;
	size_t i, used = 0;

	buf[0] = '\0';
	json_array_foreach(json_object_get(rep, "findings"), i, f)
	{
		if (strcmp(json_string_value(json_object_get(f, "check")), check))
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s %s: %s\n",
					 json_string_value(json_object_get(f, "severity")),
					 json_string_value(json_object_get(f, "object")),
					 json_string_value(json_object_get(f, "detail")));
		if (used >= len)
			break;
	}
	return buf;
}

static const char *check_verdict(json_t *rep, const char *check)
{
	return json_string_value(json_object_get(json_object_get(rep, "checks"), check));
}

/* A cluster that keeps everything: every check is ok but fencing (storage only, built in). */
static void test_clean_cluster(void **unused)
{
	cluster_state_t *s = state_create();
	json_t *rep, *h;
	char buf[2048];

	add_node(s, 1, "secret", true);
	add_node(s, 2, "internal", true);
	add_vm(s, 1, "db", 1,
	       ",\"owner\":\"alice\",\"contact\":\"a@x\",\"classification\":\"confidential\"");
	add_vm(s, 2, "web", 2, ",\"owner\":\"bob\",\"contact\":\"b@x\",\"classification\":\"public\"");
	apply(s, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"apart\",\"type\":\"anti-affinity\","
		 "\"hard\":true,\"vms\":[\"db\",\"web\"]}}");
	rep = secreport_build(s, &crypto_on);
	assert_non_null(rep);
	assert_string_equal(check_verdict(rep, SECREPORT_CLEARANCE), "ok");
	assert_string_equal(check_verdict(rep, SECREPORT_OWNER), "ok");
	assert_string_equal(check_verdict(rep, SECREPORT_RULES), "ok");
	assert_string_equal(check_verdict(rep, SECREPORT_COROSYNC), "ok");
	assert_string_equal(check_verdict(rep, SECREPORT_MIGKEYS), "ok");
	assert_string_equal(check_verdict(rep, SECREPORT_STORAGE), "ok");
	assert_string_equal(findings_of(rep, SECREPORT_FENCING, buf, sizeof(buf)),
			    "warning n1: no level configured: storage fencing only (built-in), no "
			    "power fence\n"
			    "warning n2: no level configured: storage fencing only (built-in), no "
			    "power fence\n");
	h = json_object_get(rep, "hosts");
	assert_int_equal(json_array_size(h), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0),
							      "effective_classification")),
			    "confidential");
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 1),
							      "effective_classification")),
			    "public");
	assert_string_equal(json_string_value(json_object_get(json_object_get(rep, "corosync"),
							      "crypto_cipher")),
			    "aes256");
	json_decref(rep);
	state_destroy(s);
}

/* Everything an auditor should be told, each under its check. */
static void test_findings(void **unused)
{
	struct secreport_local off = { .node = "n1", .crypto_cipher = "none",
				       .crypto_hash = "none" };
	cluster_state_t *s = state_create();
	json_t *rep, *f;
	char buf[4096];
	size_t nvms;

	add_node(s, 1, "internal", true);
	add_node(s, 2, "secret", false);
	add_node(s, 3, "secret", true);
	/* the manager placed it above n1's clearance: placement never would */
	add_vm(s, 1, "spy", 1,
	       ",\"owner\":\"o\",\"contact\":\"c\",\"classification\":\"secret\",\"app\":\"shop\","
	       "\"tier\":\"db\"");
	add_vm(s, 2, "anon", 1, ",\"app\":\"shop\",\"tier\":\"web\"");
	add_vm(s, 3, "nopr", 3, ",\"owner\":\"o\",\"fence_storage\":false");
	add_vm(s, 4, "idle", 0, ",\"owner\":\"o\",\"contact\":\"c\","
	       "\"state_lun\":\"iscsi://san/iqn.2026-11.org.example:t/9\"");
	apply(s, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"tiers\",\"type\":\"tier-separation\","
		 "\"hard\":false,\"app\":\"shop\"}}");
	apply(s, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"apart\",\"type\":\"anti-affinity\","
		 "\"hard\":true,\"vms\":[\"spy\",\"anon\"]}}");
	apply(s, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"together\",\"type\":\"affinity\","
		 "\"hard\":false,\"vms\":[\"spy\",\"nopr\"]}}");
	apply(s, "{\"op\":\"fence.level.add\",\"level\":{\"node\":2,\"index\":1,"
		 "\"devices\":[\"storage\"]}}");
	apply(s, "{\"op\":\"fence.level.add\",\"level\":{\"node\":3,\"index\":1,"
		 "\"devices\":[\"storage\"]}}");
	rep = secreport_build(s, &off);
	assert_non_null(rep);

	assert_string_equal(findings_of(rep, SECREPORT_CLEARANCE, buf, sizeof(buf)),
			    "problem spy: classified secret, runs on node n1, which is cleared "
			    "for internal only\n");
	f = json_array_get(json_object_get(rep, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "clearance")), "internal");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
				    json_object_get(rep, "hosts"), 0), "effective_classification")),
			    "secret");
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(rep, "hosts"), 1),
						 "effective_classification")));
	/* what node.list shows too: the highest of the VMs on it, -1 for none */
	assert_int_equal(secreport_host_class(s, 1, &nvms), VM_CLASS_SECRET);
	assert_int_equal(nvms, 2);
	assert_int_equal(secreport_host_class(s, 2, &nvms), -1);
	assert_int_equal(nvms, 0);
	assert_int_equal(secreport_host_class(s, 3, &nvms), VM_CLASS_PUBLIC);
	assert_int_equal(nvms, 1);

	assert_string_equal(findings_of(rep, SECREPORT_OWNER, buf, sizeof(buf)),
			    "warning anon: no owner and no contact: nobody to notify about it\n"
			    "warning nopr: no contact: nobody to notify about it\n");
	/* affinity is not a security rule: not reported */
	assert_string_equal(findings_of(rep, SECREPORT_RULES, buf, sizeof(buf)),
			    "warning tiers: soft tier-separation broken: spy (tier db) and anon "
			    "(tier web) both run on n1\n"
			    "problem apart: hard anti-affinity broken: spy and anon both run on "
			    "n1\n");
	assert_string_equal(findings_of(rep, SECREPORT_COROSYNC, buf, sizeof(buf)),
			    "problem corosync: crypto_cipher none, crypto_hash none (as node n1 "
			    "runs it): cluster messages travel in clear and unauthenticated; set "
			    "crypto_cipher: aes256 and crypto_hash: sha256 in corosync.conf\n");
	assert_string_equal(json_string_value(json_object_get(json_object_get(rep, "corosync"),
							      "crypto_hash")),
			    "none");
	assert_string_equal(findings_of(rep, SECREPORT_MIGKEYS, buf, sizeof(buf)),
			    "warning n2: publishes no CURVE migration key (online): no migration "
			    "to or from it can run (the migration channel is CURVE only)\n");
	assert_string_equal(findings_of(rep, SECREPORT_STORAGE, buf, sizeof(buf)),
			    "warning nopr: created with --no-fence-storage: no persistent "
			    "reservation keeps a second host off "
			    "iscsi://san/iqn.2026-11.org.example:t/3; only power fencing protects "
			    "them\n"
			    "warning idle: its state LUN iscsi://san/iqn.2026-11.org.example:t/9 is "
			    "reserved only while a save or restore uses it, and storage fencing "
			    "does not cover it\n");
	{
		/* the keys: disks (those without reservations), state_lun when there is one */
		json_t *fs = json_object_get(rep, "findings"), *one, *nopr = NULL, *idle = NULL;
		size_t i;

		json_array_foreach(fs, i, one) {
			if (strcmp(json_string_value(json_object_get(one, "check")), SECREPORT_STORAGE))
				continue;
			if (!strcmp(json_string_value(json_object_get(one, "object")), "nopr"))
				nopr = one;
			else
				idle = one;
		}
		assert_non_null(nopr);
		assert_non_null(idle);
		assert_int_equal(json_array_size(json_object_get(nopr, "disks")), 1);
		assert_null(json_object_get(nopr, "state_lun"));
		assert_int_equal(json_array_size(json_object_get(idle, "disks")), 0);
		assert_string_equal(json_string_value(json_object_get(idle, "state_lun")),
				    "iscsi://san/iqn.2026-11.org.example:t/9");
	}
	/* n2 has a storage level and nothing against it; n3's only level cannot fence it */
	assert_string_equal(findings_of(rep, SECREPORT_FENCING, buf, sizeof(buf)),
			    "warning n1: no level configured: storage fencing only (built-in), no "
			    "power fence\n"
			    "problem n3: none of its 1 levels can fence it (storage cannot while a "
			    "VM without persistent reservations is on it); its watchdog (10 s) lets "
			    "its VMs be recovered 20 s after it leaves\n");
	json_decref(rep);
	state_destroy(s);
}

/* Storage fencing only, and a VM on the node it cannot fence: a problem, not a warning. */
static void test_storage_only_cannot_fence(void **unused)
{
	struct secreport_local down = { .node = "n1", .crypto_rc = -ENOTCONN };
	cluster_state_t *s = state_create();
	json_t *rep;
	char buf[2048];

	add_node(s, 1, "public", true);
	add_vm(s, 1, "raw", 1, ",\"owner\":\"o\",\"contact\":\"c\",\"fence_storage\":false,"
	       "\"state_lun\":\"iscsi://san/iqn.2026-11.org.example:s/1\"");
	rep = secreport_build(s, &down);
	/* a VM without reservations and with a state LUN: one finding, every LUN in it */
	assert_string_equal(findings_of(rep, SECREPORT_STORAGE, buf, sizeof(buf)),
			    "warning raw: created with --no-fence-storage: no persistent "
			    "reservation keeps a second host off "
			    "iscsi://san/iqn.2026-11.org.example:t/1; only power fencing protects "
			    "them; its state LUN iscsi://san/iqn.2026-11.org.example:s/1 is "
			    "reserved only while a save or restore uses it, and storage fencing "
			    "does not cover it\n");
	assert_string_equal(findings_of(rep, SECREPORT_FENCING, buf, sizeof(buf)),
			    "problem n1: no level configured: storage fencing only (built-in), "
			    "which cannot fence it while vm raw (no persistent reservations) is on "
			    "it; no watchdog either: its VMs stay down until an admin confirms it "
			    "is off\n");
	assert_string_equal(findings_of(rep, SECREPORT_COROSYNC, buf, sizeof(buf)),
			    "warning corosync: node n1 cannot read corosync's crypto settings: "
			    "Transport endpoint is not connected\n");
	assert_null(json_object_get(rep, "corosync"));
	json_decref(rep);
	state_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_cluster),
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_storage_only_cannot_fence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
