/* Unit tests of cluster/: membership arithmetic, VM definitions, the state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/members.h"
#include "../../cluster/state.h"
#include "../../cluster/vm.h"

static void test_merge_intersects_and_sorts(void **state)
{
	/* node 4's hvnoded is in the group but corosync has dropped node 4 */
	uint32_t cpg[] = { 3, 1, 4, 3 };
	uint32_t quorum[] = { 1, 2, 3 };
	uint32_t out[MEMBERS_MAX];
	size_t n = members_merge(cpg, 4, quorum, 3, out, MEMBERS_MAX);

	assert_int_equal(n, 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 3);
}

static void test_merge_bounds(void **state)
{
	uint32_t cpg[] = { 5, 4, 3, 2, 1 };
	uint32_t out[2];

	/* never writes past max; no member without quorum membership */
	assert_int_equal(members_merge(cpg, 5, cpg, 5, out, 2), 2);
	assert_int_equal(members_merge(cpg, 5, NULL, 0, out, 2), 0);
	assert_int_equal(members_merge(NULL, 0, cpg, 5, out, 2), 0);
}

static void test_merge_ignores_zero(void **state)
{
	uint32_t ids[] = { 0, 2 };
	uint32_t out[4];

	assert_int_equal(members_merge(ids, 2, ids, 2, out, 4), 1);
	assert_int_equal(out[0], 2);
}

static void test_leader(void **state)
{
	uint32_t ids[] = { 7, 3, 9 };

	assert_int_equal(members_leader(ids, 3, true), 3);
	/* no leader without quorum */
	assert_int_equal(members_leader(ids, 3, false), 0);
	assert_int_equal(members_leader(NULL, 0, true), 0);
}

static void test_leader_changes_when_lowest_leaves(void **state)
{
	uint32_t before[] = { 1, 2, 3 };
	uint32_t after[] = { 2, 3 };

	assert_int_equal(members_leader(before, 3, true), 1);
	assert_int_equal(members_leader(after, 2, true), 2);
}

static void test_backoff(void **state)
{
	unsigned int ms = 0, seen[8];

	for (int i = 0; i < 8; i++)
		seen[i] = ms = members_backoff_next(ms);
	assert_int_equal(seen[0], 100);
	assert_int_equal(seen[1], 200);
	assert_int_equal(seen[4], 1600);
	assert_int_equal(seen[5], 3200);
	assert_int_equal(seen[6], 5000);
	assert_int_equal(seen[7], 5000);
}

static const char *const good_vm =
	"{\"name\":\"web-1\",\"vcpus\":2,\"memory\":\"1G\","
	"\"disks\":[\"iscsi://10.0.0.2/iqn.2026-11.org.example:t/1\","
	"{\"url\":\"iscsi://10.0.0.2:3260/iqn.2026-11.org.example:t/2\",\"bus\":\"ide\"}],"
	"\"nics\":[{\"bridge\":\"br0\"}],\"priority\":\"high\",\"ha\":false,"
	"\"owner\":\"alice\",\"contact\":\"alice@example.org\",\"app\":\"shop\","
	"\"tier\":\"web\",\"classification\":\"internal\","
	"\"possible\":[\"n1\",\"n2\"],\"preferred\":[\"n2\"]}";

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void test_vm_def_parse(void **state)
{
	struct vm_def d;
	char err[256];
	json_t *j = parse(good_vm);
	uint8_t rnd[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

	assert_int_equal(vm_def_from_json(j, &d, err, sizeof(err)), 0);
	json_decref(j);
	assert_string_equal(d.name, "web-1");
	assert_int_equal(d.vcpus, 2);
	assert_int_equal(d.memory_mb, 1024);
	assert_int_equal(d.ndisks, 2);
	assert_int_equal(d.disks[0].bus, VM_BUS_VIRTIO);
	assert_int_equal(d.disks[1].bus, VM_BUS_IDE);
	assert_int_equal(d.priority, VM_PRIO_HIGH);
	assert_false(d.ha);
	assert_true(d.fence_storage);
	assert_int_equal(d.classification, VM_CLASS_INTERNAL);
	assert_int_equal(d.npossible, 2);
	assert_string_equal(d.preferred[0], "n2");
	assert_string_equal(d.uuid, "");
	vm_def_assign_identity(&d, rnd);
	assert_string_equal(d.uuid, "01020304-0506-4708-890a-0b0c0d0e0f10");
	assert_int_equal(strncmp(d.nics[0].mac, "52:54:00:", 9), 0);
}

static void test_vm_def_round_trip(void **state)
{
	struct vm_def a, b;
	char err[256];
	uint8_t rnd[16] = { 0 };
	json_t *j = parse(good_vm), *out;

	assert_int_equal(vm_def_from_json(j, &a, err, sizeof(err)), 0);
	vm_def_assign_identity(&a, rnd);
	out = vm_def_to_json(&a);
	assert_int_equal(vm_def_from_json(out, &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	json_decref(j);
	json_decref(out);
}

/* Each bad definition is refused with a message naming the field. */
static void test_vm_def_bad(void **state)
{
	static const struct {
		const char *json;
		const char *msg;
	} cases[] = {
		{ "[]", "a VM definition must be a JSON object" },
		{ "{\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-01.x:y/1\"]}", "name: missing" },
		{ "{\"name\":\"a b\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"]}", "name: 'a b' is not valid" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64}", "disks: missing" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[]}", "disks: a VM needs at least one disk" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"file:///x.img\"]}", "disks[0]: 'file:///x.img' is not an iSCSI URL" },
		{ "{\"name\":\"a\",\"vcpus\":0,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"]}", "vcpus: 0 is out of range" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":\"99999T\",\"disks\":[\"iscsi://h/i/1\"]}", "memory: 104856551424 MiB is out of range" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":\"12Q\",\"disks\":[\"iscsi://h/i/1\"]}", "memory: '12Q' is not a size: unknown unit" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"color\":1}", "unknown field 'color'" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"priority\":\"urgent\"}", "priority: 'urgent' is not one of low, medium, high" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\",\"iscsi://h/i/1\"]}", "disks: iscsi://h/i/1 given twice" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"nics\":[{\"bridge\":\"br0\",\"mac\":\"01:00:00:00:00:01\"}]}", "nics[0]: mac must be a unicast" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"kernel\":\"vmlinuz\"}", "kernel: 'vmlinuz' is not an absolute path" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"initrd\":\"/i\"}", "initrd: needs a kernel" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"possible\":[\"n1\"],\"preferred\":[\"n3\"]}", "preferred: node n3 is not among the possible nodes" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"owner\":\"x\\ny\"}", "owner: contains control characters" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/i/1\"],\"uuid\":\"NOT-A-UUID\"}", "uuid: 'NOT-A-UUID' is not a lowercase uuid" },
	};
	struct vm_def d;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = parse(cases[i].json);

		assert_int_equal(vm_def_from_json(j, &d, err, sizeof(err)), -EINVAL);
		if (strncmp(err, cases[i].msg, strlen(cases[i].msg)))
			fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].msg);
		json_decref(j);
	}
}

static void test_size_parse(void **state)
{
	uint64_t mb;
	char err[128];

	assert_int_equal(vm_size_parse_mb("512", &mb, err, sizeof(err)), 0);
	assert_int_equal(mb, 512);
	assert_int_equal(vm_size_parse_mb("2G", &mb, err, sizeof(err)), 0);
	assert_int_equal(mb, 2048);
	assert_int_equal(vm_size_parse_mb("2GiB", &mb, err, sizeof(err)), 0);
	assert_int_equal(mb, 2048);
	assert_int_equal(vm_size_parse_mb("65536K", &mb, err, sizeof(err)), 0);
	assert_int_equal(mb, 64);
	assert_int_equal(vm_size_parse_mb("1T", &mb, err, sizeof(err)), 0);
	assert_int_equal(mb, 1024 * 1024);
	assert_int_equal(vm_size_parse_mb("100K", &mb, err, sizeof(err)), -EINVAL);
	assert_int_equal(vm_size_parse_mb("-1", &mb, err, sizeof(err)), -EINVAL);
	assert_int_equal(vm_size_parse_mb("1Gx", &mb, err, sizeof(err)), -EINVAL);
	assert_int_equal(vm_size_parse_mb("99999999999999999999999", &mb, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(vm_size_parse_mb("18014398509481984T", &mb, err, sizeof(err)), -EINVAL);
}

static void add_vm(cluster_state_t *s, const char *name, const char *uuid, int want)
{
	struct vm_def d;
	char err[256], text[512];
	json_t *j;

	snprintf(text, sizeof(text),
		 "{\"name\":\"%s\",\"uuid\":\"%s\",\"vcpus\":1,\"memory\":64,"
		 "\"disks\":[\"iscsi://h/i/1\"]}",
		 name, uuid);
	j = parse(text);
	assert_int_equal(vm_def_from_json(j, &d, err, sizeof(err)), 0);
	json_decref(j);
	assert_int_equal(state_vm_add(s, &d, err, sizeof(err)), want);
}

static void test_state(void **state)
{
	cluster_state_t *s = state_create(), *t = state_create();
	char err[256];
	json_t *j;

	add_vm(s, "a", "00000000-0000-4000-8000-000000000001", 0);
	add_vm(s, "b", "00000000-0000-4000-8000-000000000002", 0);
	add_vm(s, "a", "00000000-0000-4000-8000-000000000003", -EEXIST);
	add_vm(s, "c", "00000000-0000-4000-8000-000000000002", -EEXIST);
	assert_int_equal(state_version(s), 2);
	assert_int_equal(state_vm_count(s), 2);
	assert_non_null(state_vm_find(s, "b"));
	assert_int_equal(state_vm_del(s, "a"), 0);
	assert_int_equal(state_vm_del(s, "a"), -ENOENT);
	assert_int_equal(state_version(s), 3);

	j = state_to_json(s);
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), 0);
	assert_int_equal(state_version(t), 3);
	assert_string_equal(state_vm_at(t, 0)->name, "b");
	json_decref(j);

	/* a bad file changes nothing */
	j = parse("{\"format\":1,\"version\":9,\"vms\":[{\"name\":\"x\"}]}");
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state: vms[0]: vcpus: missing");
	json_decref(j);
	j = parse("{\"format\":2,\"version\":9,\"vms\":[]}");
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state: format 2 is not supported (this build reads 1)");
	json_decref(j);
	assert_int_equal(state_version(t), 3);
	assert_int_equal(state_vm_count(t), 1);
	state_destroy(s);
	state_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_intersects_and_sorts),
		cmocka_unit_test(test_merge_bounds),
		cmocka_unit_test(test_merge_ignores_zero),
		cmocka_unit_test(test_leader),
		cmocka_unit_test(test_leader_changes_when_lowest_leaves),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_vm_def_parse),
		cmocka_unit_test(test_vm_def_round_trip),
		cmocka_unit_test(test_vm_def_bad),
		cmocka_unit_test(test_size_parse),
		cmocka_unit_test(test_state),
	};

	return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
