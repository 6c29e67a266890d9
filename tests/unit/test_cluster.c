/* Unit tests of cluster/: membership arithmetic, VM definitions, the state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/drain.h"
#include "../../cluster/manager.h"
#include "../../cluster/members.h"
#include "../../cluster/ops.h"
#include "../../cluster/repl.h"
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
	/* the shape of a disk URL is checked in the state too: an op may come from elsewhere */
	static const char *const bad_urls[] = {
		"iscsi://10.0.0.3/../:3260/iqn.2026-11.org.example:t/4",
		"iscsi://10.0.0.3/iqn.2026-11.org.example:t/../4",
		"iscsi://10.0.0.3:0/iqn.2026-11.org.example:t/1",
		"iscsi://10.0.0.3/target/1",
		"iscsi://10.0.0.3/iqn.2026-11.org.example:t/16384",
		"iscsi:///iqn.2026-11.org.example:t/1",
	};

	for (size_t u = 0; u < sizeof(bad_urls) / sizeof(bad_urls[0]); u++) {
		char text[512], uerr[400];
		struct vm_def ud;
		json_t *uj;

		snprintf(text, sizeof(text),
			 "{\"name\":\"u\",\"vcpus\":1,\"memory\":64,\"disks\":[\"%s\"]}",
			 bad_urls[u]);
		uj = parse(text);
		assert_int_equal(vm_def_from_json(uj, &ud, uerr, sizeof(uerr)), -EINVAL);
		assert_non_null(strstr(uerr, "is not an iSCSI URL"));
		json_decref(uj);
	}

	static const struct {
		const char *json;
		const char *msg;
	} cases[] = {
		{ "[]", "a VM definition must be a JSON object" },
		{ "{\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-01.x:y/1\"]}", "name: missing" },
		{ "{\"name\":\"a b\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"]}", "name: 'a b' is not valid" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64}", "disks: missing" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[]}", "disks: a VM needs at least one disk" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"file:///x.img\"]}", "disks[0]: 'file:///x.img' is not an iSCSI URL" },
		{ "{\"name\":\"a\",\"vcpus\":0,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"]}", "vcpus: 0 is out of range" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":\"99999T\",\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"]}", "memory: 104856551424 MiB is out of range" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":\"12Q\",\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"]}", "memory: '12Q' is not a size: unknown unit" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"color\":1}", "unknown field 'color'" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"priority\":\"urgent\"}", "priority: 'urgent' is not one of low, medium, high" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\",\"iscsi://h/iqn.2026-11.org.example:i/1\"]}", "disks: iscsi://h/iqn.2026-11.org.example:i/1 given twice" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"nics\":[{\"bridge\":\"br0\",\"mac\":\"01:00:00:00:00:01\"}]}", "nics[0]: mac must be a unicast" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"kernel\":\"vmlinuz\"}", "kernel: 'vmlinuz' is not an absolute path" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"initrd\":\"/i\"}", "initrd: needs a kernel" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"possible\":[\"n1\"],\"preferred\":[\"n3\"]}", "preferred: node n3 is not among the possible nodes" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"owner\":\"x\\ny\"}", "owner: contains control characters" },
		{ "{\"name\":\"a\",\"vcpus\":1,\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"],\"uuid\":\"NOT-A-UUID\"}", "uuid: 'NOT-A-UUID' is not a lowercase uuid" },
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
		 "\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/1\"]}",
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
	j = parse("{\"format\":4,\"version\":9,\"vms\":[]}");
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state: format 4 is not supported (this build reads 1..3)");
	json_decref(j);
	j = parse("{\"format\":2,\"version\":9,\"vms\":[],\"nodes\":[{\"id\":0}]}");
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state: nodes[0]: node: id 0 is not a node");
	json_decref(j);
	assert_int_equal(state_version(t), 3);
	assert_int_equal(state_vm_count(t), 1);
	state_destroy(s);
	state_destroy(t);
}


/* --- replication: N replicas on a fake totally ordered bus -------------------------- */

#define BUS_MAX 256

struct bus_msg {
	uint32_t sender;
	size_t len;
	uint8_t *buf;
};

struct replica;

struct bus {
	struct bus_msg msgs[BUS_MAX];
	size_t n;
	struct replica *nodes[8];
	size_t nnodes;
};

struct replica {
	struct bus *bus;
	uint32_t id;
	cluster_state_t *state;
	repl_t *repl;
	unsigned int refused, applied, persisted, warnings;
	char last_err[1024];
};

static int fake_send(void *arg, const void *buf, size_t len)
{
	struct replica *r = arg;
	struct bus_msg *m = &r->bus->msgs[r->bus->n++];

	assert_true(r->bus->n <= BUS_MAX);
	m->sender = r->id;
	m->len = len;
	m->buf = malloc(len);
	memcpy(m->buf, buf, len);
	return 0;
}

static void fake_applied(void *arg, const json_t *op, uint32_t sender, int rc, const char *err)
{
	struct replica *r = arg;

	if (rc) {
		r->refused++;
		snprintf(r->last_err, sizeof(r->last_err), "%s", err);
	} else {
		r->applied++;
	}
}

static void fake_persist(void *arg)
{
	((struct replica *)arg)->persisted++;
}

static void fake_log(void *arg, int level, const char *msg)
{
	if (level <= 4) /* LOG_WARNING */
		((struct replica *)arg)->warnings++;
}

static const struct repl_ops fake_ops = {
	.send = fake_send,
	.applied = fake_applied,
	.persist = fake_persist,
	.log = fake_log,
};

static struct replica *replica_new(struct bus *b, uint32_t id)
{
	struct replica *r = calloc(1, sizeof(*r));

	r->bus = b;
	r->id = id;
	r->state = state_create();
	r->repl = repl_create(r->state, &fake_ops, r);
	repl_set_local(r->repl, id);
	b->nodes[b->nnodes++] = r;
	return r;
}

static void replica_free(struct replica *r)
{
	repl_destroy(r->repl);
	state_destroy(r->state);
	free(r);
}

/* Deliver everything sent so far (and whatever that sends) to @to, in one total order. */
static void bus_pump(struct bus *b, struct replica **to, size_t nto)
{
	for (size_t i = 0; i < b->n; i++) {
		for (size_t k = 0; k < nto; k++)
			repl_deliver(to[k]->repl, b->msgs[i].sender, 100 + b->msgs[i].sender,
				     b->msgs[i].buf, b->msgs[i].len);
	}
	for (size_t i = 0; i < b->n; i++)
		free(b->msgs[i].buf);
	b->n = 0;
}

static void confchg(struct bus *b, struct replica **to, size_t nto)
{
	uint32_t ids[8];

	for (size_t k = 0; k < nto; k++)
		ids[k] = to[k]->id;
	for (size_t k = 0; k < nto; k++)
		repl_confchg(to[k]->repl, ids, NULL, nto);
	bus_pump(b, to, nto);
}

static void submit(struct replica *r, const char *op)
{
	json_t *j = parse(op);

	assert_int_equal(repl_submit(r->repl, j), 0);
	json_decref(j);
}

/* A VM on LUN @lun (a LUN belongs to one VM). */
#define VM_OP(name, uuid, lun)                                                                  \
	"{\"op\":\"vm.create\",\"def\":{\"name\":\"" name "\",\"uuid\":\"" uuid "\",\"vcpus\":1,"       \
	"\"memory\":\"64M\",\"disks\":[\"iscsi://10.0.0.2/iqn.2026-11.org.example:t/" lun "\"]}}"

static void test_repl_sync_and_ops(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1), *r2 = replica_new(&b, 2);
	struct replica *both[] = { r1, r2 };
	json_t *empty = json_object();

	assert_int_equal(repl_submit(r1->repl, empty), -EAGAIN); /* not synced yet */
	json_decref(empty);
	repl_quorum(r1->repl, true);
	repl_quorum(r2->repl, true);
	confchg(&b, both, 2);
	assert_true(repl_is_synced(r1->repl));
	assert_true(repl_is_synced(r2->repl));
	assert_int_equal(repl_leader(r2->repl), 1);

	submit(r2, VM_OP("a", "00000000-0000-4000-8000-000000000001", "1"));
	submit(r1, VM_OP("a", "00000000-0000-4000-8000-000000000002", "2")); /* same name: refused */
	bus_pump(&b, both, 2);
	assert_int_equal(state_vm_count(r1->state), 1);
	assert_int_equal(state_vm_count(r2->state), 1);
	assert_string_equal(state_vm_at(r1->state, 0)->uuid, "00000000-0000-4000-8000-000000000001");
	assert_int_equal(state_version(r1->state), state_version(r2->state));
	assert_int_equal(r1->refused, 1);
	assert_non_null(strstr(r1->last_err, "vm a already exists"));

	/* the manager's ops only from the leader (node 1) */
	submit(r2, "{\"op\":\"mgr.vm\",\"name\":\"a\",\"expect_epoch\":0,\"state\":\"starting\"}");
	bus_pump(&b, both, 2);
	assert_int_equal(state_vm_status(r1->state, "a")->state, VM_HA_STOPPED);
	assert_non_null(strstr(r1->last_err, "only the leader"));
	replica_free(r1);
	replica_free(r2);
}

static void test_repl_joiner_adopts_quorate_side(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1), *r2 = replica_new(&b, 2), *r3 = replica_new(&b, 3);
	struct replica *two[] = { r1, r2 }, *alone[] = { r3 }, *all[] = { r1, r2, r3 };
	json_t *j;

	/* r3 comes with a bigger, older history of its own, and no quorum */
	for (int i = 0; i < 5; i++)
		state_bump(r3->state);
	confchg(&b, alone, 1);
	repl_quorum(r1->repl, true);
	repl_quorum(r2->repl, true);
	confchg(&b, two, 2);
	submit(r1, VM_OP("a", "00000000-0000-4000-8000-000000000001", "1"));
	bus_pump(&b, two, 2);
	assert_true(state_version(r3->state) > state_version(r1->state));

	/* an op sent right after the configuration change waits for the sync */
	confchg(&b, all, 0); /* nothing: keep the API honest */
	for (size_t k = 0; k < 3; k++)
		repl_confchg(all[k]->repl, (uint32_t[]){ 1, 2, 3 }, NULL, 3);
	j = parse(VM_OP("b", "00000000-0000-4000-8000-000000000002", "2"));
	/* r1 is in a round: it may not send, but an op already on the wire is queued */
	assert_int_equal(repl_submit(r1->repl, j), -EAGAIN);
	json_decref(j);
	bus_pump(&b, all, 3);
	for (size_t k = 0; k < 3; k++) {
		assert_true(repl_is_synced(all[k]->repl));
		assert_int_equal(state_vm_count(all[k]->state), 1);
		assert_non_null(state_vm_find(all[k]->state, "a"));
		assert_int_equal(state_version(all[k]->state), state_version(r1->state));
	}
	replica_free(r1);
	replica_free(r2);
	replica_free(r3);
}

static void test_repl_cold_start_highest_version(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1), *r2 = replica_new(&b, 2);
	struct replica *both[] = { r1, r2 };
	struct op_ctx ctx = { .sender = 2, .leader = 2 };
	json_t *op = parse(VM_OP("x", "00000000-0000-4000-8000-000000000009", "9"));
	char err[256];

	/* r2 changed the state alone before (it was the quorate side of a past configuration) */
	assert_int_equal(state_apply(r2->state, op, &ctx, err, sizeof(err)), 0);
	json_decref(op);
	confchg(&b, both, 2); /* nobody quorate: the highest version wins */
	assert_non_null(state_vm_find(r1->state, "x"));
	assert_int_equal(state_version(r1->state), state_version(r2->state));
	replica_free(r1);
	replica_free(r2);
}

static void test_repl_garbage(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1), *r2 = replica_new(&b, 2);
	struct replica *both[] = { r1, r2 };
	uint8_t junk[64];
	size_t len;
	void *msg;
	json_t *j;
	uint64_t v;

	repl_quorum(r1->repl, true);
	repl_quorum(r2->repl, true);
	confchg(&b, both, 2);
	v = state_version(r1->state);
	memset(junk, 0xa5, sizeof(junk));
	repl_deliver(r1->repl, 2, 102, junk, sizeof(junk));	/* bad magic */
	repl_deliver(r1->repl, 2, 102, junk, 3);		/* short */
	j = parse("{\"op\":\"vm.delete\"}");
	msg = repl_encode(REPL_MSG_OP, j, &len);
	((uint8_t *)msg)[4] = 9; /* format 9 */
	repl_deliver(r1->repl, 2, 102, msg, len);
	((uint8_t *)msg)[4] = REPL_FORMAT;
	((uint8_t *)msg)[8] ^= 1; /* length mismatch */
	repl_deliver(r1->repl, 2, 102, msg, len);
	free(msg);
	json_decref(j);
	j = json_array(); /* a body that is not an object */
	msg = repl_encode(REPL_MSG_OP, j, &len);
	repl_deliver(r1->repl, 2, 102, msg, len);
	free(msg);
	json_decref(j);
	j = parse("{\"op\":\"vm.create\",\"def\":{\"name\":7}}");
	msg = repl_encode(REPL_MSG_OP, j, &len);
	repl_deliver(r1->repl, 2, 102, msg, len);
	repl_deliver(r1->repl, 9, 109, msg, len); /* not a member */
	repl_deliver(r1->repl, 2, 666, msg, len); /* another process on a member node */
	free(msg);
	json_decref(j);
	assert_int_equal(state_version(r1->state), v);
	assert_int_equal(r1->warnings, 7);
	assert_int_equal(r1->refused, 1);
	replica_free(r1);
	replica_free(r2);
}

/* A member in the group that never sends its state must not hold the cluster up forever. */
static void test_repl_silent_member_round_closes(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1), *r2 = replica_new(&b, 2);
	struct replica *two[] = { r1, r2 };
	uint32_t ids[] = { 1, 2, 3 }; /* node 3: a process that never syncs */

	for (size_t k = 0; k < 2; k++)
		repl_confchg(two[k]->repl, ids, NULL, 3);
	bus_pump(&b, two, 2);
	assert_false(repl_is_synced(r1->repl));
	repl_tick(r2->repl, 1000);
	repl_tick(r2->repl, 1000 + REPL_ROUND_TIMEOUT_MS);
	assert_int_equal(b.n, 0); /* node 2 is not the lowest that synced: it does not close */
	repl_tick(r1->repl, 1000);
	repl_tick(r1->repl, 1000 + REPL_ROUND_TIMEOUT_MS - 1);
	assert_int_equal(b.n, 0);
	repl_tick(r1->repl, 1000 + REPL_ROUND_TIMEOUT_MS);
	assert_int_equal(b.n, 1);
	bus_pump(&b, two, 2);
	assert_true(repl_is_synced(r1->repl));
	assert_true(repl_is_synced(r2->repl));
	/* node 3 speaks for nothing: its op is ignored */
	{
		json_t *j = parse(VM_OP("z", "00000000-0000-4000-8000-000000000005", "5"));
		size_t len;
		void *msg = repl_encode(REPL_MSG_OP, j, &len);

		repl_deliver(r1->repl, 3, 103, msg, len);
		free(msg);
		json_decref(j);
	}
	assert_null(state_vm_find(r1->state, "z"));
	replica_free(r1);
	replica_free(r2);
}

/* A node whose state file was corrupt starts empty: it syncs only from a node that has a state. */
static void test_repl_needs_state_adopts_a_peers(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1), *r2 = replica_new(&b, 2);
	struct replica *alone[] = { r1 }, *both[] = { r1, r2 };
	struct op_ctx ctx = { .sender = 2, .leader = 2 };
	json_t *op = parse(VM_OP("x", "00000000-0000-4000-8000-000000000009", "9"));
	char err[256];

	assert_int_equal(state_apply(r2->state, op, &ctx, err, sizeof(err)), 0);
	json_decref(op);
	repl_set_needs_state(r1->repl);
	assert_true(repl_needs_state(r1->repl));

	/* alone, even quorate (a two-node cluster): its empty state is no one's */
	repl_quorum(r1->repl, true);
	confchg(&b, alone, 1);
	assert_false(repl_is_synced(r1->repl));
	assert_true(repl_needs_state(r1->repl));
	assert_int_equal(r1->persisted, 0);
	op = json_object();
	assert_int_equal(repl_submit(r1->repl, op), -EAGAIN);
	json_decref(op);

	/* with a node that has a state (cold start, nobody quorate): that state, whatever the ids */
	repl_quorum(r1->repl, false);
	confchg(&b, both, 2);
	assert_true(repl_is_synced(r1->repl));
	assert_true(repl_is_synced(r2->repl));
	assert_false(repl_needs_state(r1->repl));
	assert_non_null(state_vm_find(r1->state, "x"));
	assert_int_equal(state_version(r1->state), state_version(r2->state));
	assert_int_equal(r1->persisted, 1);
	replica_free(r1);
	replica_free(r2);
}

static void test_repl_needs_state_never_wins(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1), *r2 = replica_new(&b, 2), *r3 = replica_new(&b, 3);
	struct replica *two[] = { r1, r2 }, *all[] = { r1, r2, r3 };
	struct op_ctx ctx = { .sender = 3, .leader = 3 };
	json_t *op = parse(VM_OP("good", "00000000-0000-4000-8000-000000000007", "7"));
	char err[256];

	assert_int_equal(state_apply(r3->state, op, &ctx, err, sizeof(err)), 0);
	json_decref(op);
	/* what r1 holds is no one's, however high its version: it must lose to any real state */
	for (int i = 0; i < 5; i++)
		state_bump(r1->state);
	repl_set_needs_state(r1->repl);
	repl_set_needs_state(r2->repl);

	/* both need the state, quorate or not: nobody is synced, nothing is persisted */
	repl_quorum(r1->repl, true);
	repl_quorum(r2->repl, true);
	confchg(&b, two, 2);
	for (size_t k = 0; k < 2; k++) {
		assert_false(repl_is_synced(two[k]->repl));
		assert_true(repl_needs_state(two[k]->repl));
		assert_int_equal(two[k]->persisted, 0);
	}
	assert_null(state_vm_find(r2->state, "good"));

	/* a node with a state joins: everyone takes its state, not r1's higher version */
	repl_quorum(r3->repl, true);
	confchg(&b, all, 3);
	for (size_t k = 0; k < 3; k++) {
		assert_true(repl_is_synced(all[k]->repl));
		assert_false(repl_needs_state(all[k]->repl));
		assert_non_null(state_vm_find(all[k]->state, "good"));
		assert_int_equal(state_version(all[k]->state), state_version(r3->state));
	}
	/* and the cluster goes on: an op applies everywhere */
	submit(r2, VM_OP("more", "00000000-0000-4000-8000-000000000008", "8"));
	bus_pump(&b, all, 3);
	for (size_t k = 0; k < 3; k++)
		assert_non_null(state_vm_find(all[k]->state, "more"));
	replica_free(r1);
	replica_free(r2);
	replica_free(r3);
}

static void test_rule_contradictions(void **unused)
{
	struct bus b = { 0 };
	struct replica *r1 = replica_new(&b, 1);
	struct replica *one[] = { r1 };

	repl_quorum(r1->repl, true);
	confchg(&b, one, 1);
	submit(r1, VM_OP("a", "00000000-0000-4000-8000-000000000001", "1"));
	submit(r1, VM_OP("b", "00000000-0000-4000-8000-000000000002", "2"));
	submit(r1, VM_OP("c", "00000000-0000-4000-8000-000000000003", "1")); /* a's LUN */
	bus_pump(&b, one, 1);
	assert_null(state_vm_find(r1->state, "c"));
	assert_string_equal(r1->last_err, "vm c: LUN iscsi://10.0.0.2/iqn.2026-11.org.example:t/1 "
					  "is already disk 0 of vm a");
	submit(r1, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"apart\",\"type\":\"anti-affinity\",\"vms\":[\"a\",\"b\"]}}");
	bus_pump(&b, one, 1);
	assert_int_equal(state_rule_count(r1->state), 1);
	submit(r1, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"together\",\"type\":\"affinity\",\"vms\":[\"b\",\"a\"],\"hard\":false}}");
	bus_pump(&b, one, 1);
	assert_int_equal(state_rule_count(r1->state), 1);
	assert_string_equal(r1->last_err, "rule together (affinity) contradicts rule apart "
					  "(anti-affinity): both name b and a");
	submit(r1, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"ghost\",\"type\":\"affinity\",\"vms\":[\"a\",\"zz\"]}}");
	bus_pump(&b, one, 1);
	assert_string_equal(r1->last_err, "rule ghost names vm zz, which does not exist");
	replica_free(r1);
}

/*
 * Found by tests/fuzz/fuzz_repl: a vm.create whose NIC had no MAC was applied, and the
 * state was then written with "mac":"", which the state file loader refuses: no node
 * could have read its state back. A VM in the state has its identity, or is refused.
 */
static void test_vm_without_identity_refused(void **unused)
{
	static const char *const op_text =
		"{\"op\":\"vm.create\",\"def\":{\"name\":\"d\","
		"\"uuid\":\"00000000-0000-4000-8000-000000000004\",\"vcpus\":1,\"memory\":64,"
		"\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/4\"],\"nics\":[{\"bridge\":\"br0\"}]}}";
	cluster_state_t *s = state_create(), *t = state_create();
	struct op_ctx ctx = { .sender = 1, .leader = 1 };
	char err[256];
	json_t *op = parse(op_text), *j;

	assert_int_equal(state_apply(s, op, &ctx, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "vm d: nics[0]: mac missing");
	assert_int_equal(state_vm_count(s), 0);
	assert_int_equal(state_version(s), 0);
	json_decref(op);

	/* nor does a state file bring one in */
	j = parse("{\"format\":2,\"version\":1,\"vms\":[{\"name\":\"d\","
		  "\"uuid\":\"00000000-0000-4000-8000-000000000004\",\"vcpus\":1,"
		  "\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/4\"],"
		  "\"nics\":[{\"bridge\":\"br0\"}]}]}");
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state: vms[0]: vm d: nics[0]: mac missing");
	json_decref(j);

	/* with its MAC, it is applied and the state reads back */
	op = parse("{\"op\":\"vm.create\",\"def\":{\"name\":\"d\","
		   "\"uuid\":\"00000000-0000-4000-8000-000000000004\",\"vcpus\":1,"
		   "\"memory\":64,\"disks\":[\"iscsi://h/iqn.2026-11.org.example:i/4\"],"
		   "\"nics\":[{\"bridge\":\"br0\",\"mac\":\"52:54:00:00:00:04\"}]}}");
	assert_int_equal(state_apply(s, op, &ctx, err, sizeof(err)), 0);
	json_decref(op);
	j = state_to_json(s);
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), 0);
	assert_int_equal(state_vm_count(t), 1);
	json_decref(j);
	state_destroy(s);
	state_destroy(t);
}

/* --- migrations ----------------------------------------------------------------------- */

static int apply_text(cluster_state_t *s, uint32_t sender, const char *text, char *err,
		      size_t errlen)
{
	struct op_ctx ctx = { .sender = sender, .leader = 1 };
	json_t *op = parse(text);
	int rc = state_apply(s, op, &ctx, err, errlen);

	json_decref(op);
	return rc;
}

#define APPLY_OK(s, sender, text)                                                               \
	do {                                                                                    \
		char e_[512] = "";                                                              \
		int rc_ = apply_text(s, sender, text, e_, sizeof(e_));                          \
		if (rc_)                                                                        \
			fail_msg("%s: %d %s", text, rc_, e_);                                   \
	} while (0)

/* Three online nodes with migration servers, VM m running on node 1 in epoch 1. */
static cluster_state_t *mig_cluster(void)
{
	cluster_state_t *s = state_create();
	char op[512];

	for (int id = 1; id <= 3; id++) {
		snprintf(op, sizeof(op),
			 "{\"op\":\"node.hello\",\"id\":%d,\"name\":\"n%d\",\"vcpus\":4,"
			 "\"memory\":4096,\"domain\":\"\",\"clearance\":\"secret\",\"watchdog_s\":0,"
			 "\"mig_endpoint\":\"tcp://10.0.0.%d:7790\","
			 "\"mig_key\":\"%040d\"}",
			 id, id, id, id);
		APPLY_OK(s, (uint32_t)id, op);
		snprintf(op, sizeof(op),
			 "{\"op\":\"mgr.node\",\"id\":%d,\"expect\":\"joining\","
			 "\"status\":\"online\",\"at_ms\":1}",
			 id);
		APPLY_OK(s, 1, op);
	}
	add_vm(s, "m", "00000000-0000-4000-8000-000000000011", 0);
	add_vm(s, "o", "00000000-0000-4000-8000-000000000012", 0);
	APPLY_OK(s, 2, "{\"op\":\"vm.want\",\"name\":\"m\",\"running\":true}");
	APPLY_OK(s, 1, "{\"op\":\"mgr.vm\",\"name\":\"m\",\"expect_epoch\":0,"
		       "\"state\":\"started\",\"node\":1,\"epoch\":1}");
	return s;
}

static void test_migration_ops(void **unused)
{
	cluster_state_t *s = mig_cluster();
	const struct vm_status *st;
	char err[512];
	json_t *j;
	cluster_state_t *t = state_create();

	/* refused: to its own node, an unknown node, a stopped VM, a bad mode, with the reason */
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n1\"}",
				    err, sizeof(err)),
			 -EALREADY);
	assert_string_equal(err, "vm m already runs on node n1");
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n9\"}",
				    err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "vm m: node n9 is not a node of the cluster");
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"o\",\"to\":\"n2\"}",
				    err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "vm o is not running (stopped): there is nothing to migrate");
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"mode\":\"warp\"}",
				    err, sizeof(err)),
			 -EINVAL);

	/* refused: to a node in maintenance, to one that is offline or not back yet */
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n2\"}");
	assert_int_equal(apply_text(s, 3, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n2\"}",
				    err, sizeof(err)),
			 -EBUSY);
	assert_string_equal(err, "vm m: node n2 is in maintenance");
	APPLY_OK(s, 2, "{\"op\":\"node.resume\",\"node\":\"n2\"}");
	APPLY_OK(s, 1, "{\"op\":\"mgr.node\",\"id\":3,\"expect\":\"online\","
		       "\"status\":\"offline\",\"at_ms\":2}");
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n3\"}",
				    err, sizeof(err)),
			 -EHOSTDOWN);
	assert_string_equal(err, "vm m: node n3 is not online (offline)");
	APPLY_OK(s, 1, "{\"op\":\"mgr.node\",\"id\":3,\"expect\":\"offline\","
		       "\"status\":\"online\",\"at_ms\":3}");
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n3\"}",
				    err, sizeof(err)),
			 -EHOSTDOWN);
	assert_string_equal(err, "vm m: node n3 is not online (joining)");
	assert_int_equal(state_vm_status(s, "m")->mig.id, 0);

	/* queued; a second one is refused; the placement engine chose (no --to) */
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"mode\":\"quick\",\"ms\":5}");
	st = state_vm_status(s, "m");
	assert_int_equal(st->mig.phase, MIG_QUEUED);
	assert_int_equal(st->mig.mode, MIG_QUICK);
	assert_int_equal(st->mig.from, 1);
	assert_int_equal(st->mig.to, 2); /* n3 is not back */
	assert_int_equal(apply_text(s, 3, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n3\"}",
				    err, sizeof(err)),
			 -EBUSY);

	/* only the leader starts it; only the source hands it off */
	char op[512];
	uint64_t id = st->mig.id;
	uint32_t to = st->mig.to;

	snprintf(op, sizeof(op), "{\"op\":\"mgr.mig\",\"name\":\"m\",\"id\":%llu}",
		 (unsigned long long)id);
	assert_int_equal(apply_text(s, 2, op, err, sizeof(err)), -EPERM);
	APPLY_OK(s, 1, op);
	assert_int_equal(state_vm_status(s, "m")->mig.phase, MIG_RUNNING);
	snprintf(op, sizeof(op), "{\"op\":\"mig.handoff\",\"name\":\"m\",\"id\":%llu}",
		 (unsigned long long)id);
	assert_int_equal(apply_text(s, to, op, err, sizeof(err)), -ESTALE);

	/* the stored form reads back, migration and all */
	j = state_to_json(s);
	assert_int_equal(state_from_json(t, j, err, sizeof(err)), 0);
	assert_int_equal(state_vm_status(t, "m")->mig.id, id);
	assert_int_equal(state_vm_status(t, "m")->mig.phase, MIG_RUNNING);
	json_decref(j);

	/* handoff: the target's now, in a new epoch; completed once it runs there */
	APPLY_OK(s, 1, op);
	st = state_vm_status(s, "m");
	assert_int_equal(st->node, to);
	assert_int_equal(st->epoch, 2);
	assert_int_equal(st->state, VM_HA_STARTING);
	assert_int_equal(st->mig.phase, MIG_HANDOFF);
	assert_int_equal(apply_text(s, 1, "{\"op\":\"vm.migrate-cancel\",\"name\":\"m\"}", err,
				    sizeof(err)),
			 -EBUSY);
	/* quick: the target's part of the downtime (loaded to resumed) adds once, resent or not */
	st = state_vm_status(s, "m");
	assert_int_equal(st->mig.progress.downtime_ms, 0);
	snprintf(op, sizeof(op), "{\"op\":\"vm.report\",\"name\":\"m\",\"epoch\":2,"
				 "\"event\":\"running\",\"resume_ms\":40}");
	APPLY_OK(s, to, op);
	APPLY_OK(s, to, op);
	assert_int_equal(state_vm_status(s, "m")->mig.progress.downtime_ms, 40);
	snprintf(op, sizeof(op), "{\"op\":\"mgr.vm\",\"name\":\"m\",\"expect_epoch\":2,"
				 "\"state\":\"started\",\"node\":%u,\"epoch\":2}",
		 to);
	APPLY_OK(s, 1, op);
	st = state_vm_status(s, "m");
	assert_int_equal(st->mig.id, 0);
	assert_int_equal(st->mig_last.id, id);
	assert_int_equal(st->mig_last.result, MIG_COMPLETED);
	assert_int_equal(st->mig_last.progress.downtime_ms, 40);
	state_destroy(s);
	state_destroy(t);
}

static void test_migration_ends_before_handoff(void **unused)
{
	cluster_state_t *s = mig_cluster();
	const struct vm_status *st;
	char err[512], op[512];
	uint64_t id;

	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n3\"}");
	id = state_vm_status(s, "m")->mig.id;
	/* cancelled while queued: over at once */
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate-cancel\",\"name\":\"m\"}");
	st = state_vm_status(s, "m");
	assert_int_equal(st->mig.id, 0);
	assert_int_equal(st->mig_last.result, MIG_CANCELLED);

	/* running, then the source says it failed: the VM stays, epoch unchanged */
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n3\"}");
	id = state_vm_status(s, "m")->mig.id;
	snprintf(op, sizeof(op), "{\"op\":\"mgr.mig\",\"name\":\"m\",\"id\":%llu}",
		 (unsigned long long)id);
	APPLY_OK(s, 1, op);
	snprintf(op, sizeof(op),
		 "{\"op\":\"mig.end\",\"name\":\"m\",\"id\":%llu,\"result\":\"failed\","
		 "\"reason\":\"block 2: checksum mismatch\"}",
		 (unsigned long long)id);
	/* not from the target */
	assert_int_equal(apply_text(s, 3, op, err, sizeof(err)), -ESTALE);
	APPLY_OK(s, 1, op);
	st = state_vm_status(s, "m");
	assert_int_equal(st->mig.id, 0);
	assert_int_equal(st->mig_last.result, MIG_FAILED);
	assert_string_equal(st->mig_last.reason, "block 2: checksum mismatch");
	assert_int_equal(st->node, 1);
	assert_int_equal(st->epoch, 1);

	/* the VM stops while migrating: the migration ends with it */
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n2\"}");
	APPLY_OK(s, 2, "{\"op\":\"vm.want\",\"name\":\"m\",\"running\":false}");
	st = state_vm_status(s, "m");
	assert_int_equal(st->mig.id, 0);
	assert_int_equal(st->mig_last.result, MIG_FAILED);
	state_destroy(s);
}

static void test_save_restore_ops(void **unused)
{
	cluster_state_t *s = mig_cluster();
	const struct vm_status *st;
	char err[512], op[512];
	struct vm_def def = *state_vm_find(s, "m");
	uint64_t id;

	/* no state LUN: refused */
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.save\",\"name\":\"m\"}", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "vm m has no state LUN to save to (vm create --state-lun URL)");
	/* a save is not a migration mode */
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"mode\":\"save\"}",
				    err, sizeof(err)),
			 -EINVAL);
	snprintf(def.state_lun, sizeof(def.state_lun), "iscsi://h/iqn.2026-11.org.example:i/9");
	*(struct vm_def *)state_vm_find(s, "m") = def;

	APPLY_OK(s, 2, "{\"op\":\"vm.save\",\"name\":\"m\",\"ms\":1}");
	st = state_vm_status(s, "m");
	id = st->mig.id;
	assert_int_equal(st->mig.mode, MIG_SAVE);
	assert_int_equal(st->mig.to, 0);
	snprintf(op, sizeof(op), "{\"op\":\"mgr.mig\",\"name\":\"m\",\"id\":%llu}",
		 (unsigned long long)id);
	APPLY_OK(s, 1, op);
	/* only its node says it is saved */
	snprintf(op, sizeof(op), "{\"op\":\"mig.saved\",\"name\":\"m\",\"id\":%llu}",
		 (unsigned long long)id);
	assert_int_equal(apply_text(s, 2, op, err, sizeof(err)), -ESTALE);
	APPLY_OK(s, 1, op);
	st = state_vm_status(s, "m");
	assert_true(st->saved);
	assert_int_equal(st->state, VM_HA_STOPPED);
	assert_int_equal(st->node, 0);
	assert_false(st->want_running);
	assert_int_equal(st->mig_last.result, MIG_COMPLETED);

	/* restore on n3: assigned there at once, in a new epoch */
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.restore\",\"name\":\"m\",\"on\":\"n7\"}", err,
				    sizeof(err)),
			 -ENOENT);
	APPLY_OK(s, 2, "{\"op\":\"vm.restore\",\"name\":\"m\",\"on\":\"n3\"}");
	st = state_vm_status(s, "m");
	assert_int_equal(st->node, 3);
	assert_int_equal(st->state, VM_HA_STARTING);
	assert_true(st->want_running);
	assert_true(st->saved); /* until it runs */
	snprintf(op, sizeof(op), "{\"op\":\"mgr.vm\",\"name\":\"m\",\"expect_epoch\":%llu,"
				 "\"state\":\"started\",\"node\":3,\"epoch\":%llu}",
		 (unsigned long long)st->epoch, (unsigned long long)st->epoch);
	APPLY_OK(s, 1, op);
	assert_false(state_vm_status(s, "m")->saved);
	assert_int_equal(apply_text(s, 2, "{\"op\":\"vm.restore\",\"name\":\"m\"}", err, sizeof(err)),
			 -ENOENT);
	state_destroy(s);
}

/* --- maintenance: drain, fallback, hold, force, resume, failback, freeze ------------------- */

static void add_def(cluster_state_t *s, const char *name, int n, const char *extra)
{
	char op[1024];

	snprintf(op, sizeof(op),
		 "{\"op\":\"vm.create\",\"def\":{\"name\":\"%s\",\"uuid\":"
		 "\"00000000-0000-4000-8000-0000000001%02d\",\"vcpus\":1,\"memory\":64,"
		 "\"disks\":[\"iscsi://h/iqn.2026-11.org.example:d/%d\"]%s}}",
		 name, n, n, extra);
	APPLY_OK(s, 2, op);
	snprintf(op, sizeof(op), "{\"op\":\"vm.want\",\"name\":\"%s\",\"running\":true}", name);
	APPLY_OK(s, 2, op);
}

static void run_on(cluster_state_t *s, const char *name, uint32_t node)
{
	const struct vm_status *st = state_vm_status(s, name);
	char op[512];

	snprintf(op, sizeof(op),
		 "{\"op\":\"mgr.vm\",\"name\":\"%s\",\"expect_epoch\":%llu,\"state\":\"started\","
		 "\"node\":%u,\"epoch\":%llu}",
		 name, (unsigned long long)st->epoch, node, (unsigned long long)st->epoch + 1);
	APPLY_OK(s, 1, op);
}

static char mgr_log[8192];

static void log_line(void *arg, const char *line)
{
	size_t n = strlen(mgr_log);

	snprintf(mgr_log + n, sizeof(mgr_log) - n, "%s\n", line);
}

/* One decision of the leader (node 1, or the lowest member) at @now_ms, applied. */
static size_t decide(cluster_state_t *s, const uint32_t *members, size_t n, uint64_t now_ms)
{
	struct mgr_env env = { .now_ms = now_ms, .members = members, .nmembers = n };
	struct mgr_result res;
	struct op_ctx ctx = { .sender = members[0], .leader = members[0] };
	char err[512];
	json_t *op;
	size_t i, applied = 0;

	mgr_log[0] = '\0';
	assert_int_equal(manager_step(s, &env, &res, log_line, NULL), 0);
	json_array_foreach(res.ops, i, op)
		applied += state_apply(s, op, &ctx, err, sizeof(err)) == 0;
	json_decref(res.ops);
	return applied;
}

static void end_mig(cluster_state_t *s, const char *name, const char *result)
{
	char op[512];

	snprintf(op, sizeof(op),
		 "{\"op\":\"mig.end\",\"name\":\"%s\",\"id\":%llu,\"result\":\"%s\",\"reason\":\"boom\"}",
		 name, (unsigned long long)state_vm_status(s, name)->mig.id, result);
	APPLY_OK(s, state_vm_status(s, name)->mig.from, op);
}

/* The migration queued or running for @name completes on its target. */
static void complete_mig(cluster_state_t *s, const char *name)
{
	const struct vm_status *st = state_vm_status(s, name);
	uint64_t id = st->mig.id;
	uint32_t from = st->mig.from, to = st->mig.to;
	char op[512];

	assert_true(id != 0);
	snprintf(op, sizeof(op), "{\"op\":\"mgr.mig\",\"name\":\"%s\",\"id\":%llu}", name,
		 (unsigned long long)id);
	if (st->mig.phase == MIG_QUEUED)
		APPLY_OK(s, 1, op);
	snprintf(op, sizeof(op), "{\"op\":\"mig.handoff\",\"name\":\"%s\",\"id\":%llu}", name,
		 (unsigned long long)id);
	APPLY_OK(s, from, op);
	st = state_vm_status(s, name);
	snprintf(op, sizeof(op),
		 "{\"op\":\"mgr.vm\",\"name\":\"%s\",\"expect_epoch\":%llu,\"state\":\"started\","
		 "\"node\":%u,\"epoch\":%llu}",
		 name, (unsigned long long)st->epoch, to, (unsigned long long)st->epoch);
	APPLY_OK(s, 1, op);
	assert_int_equal(state_vm_status(s, name)->mig_last.result, MIG_COMPLETED);
}

static const uint32_t all3[] = { 1, 2, 3 };

static void test_drain(void **unused)
{
	cluster_state_t *s = mig_cluster(); /* m (medium) started on n1 */
	const struct vm_status *st;
	char err[512];

	add_def(s, "hi", 1, ",\"priority\":\"high\",\"failback\":\"immediate\"");
	add_def(s, "lo", 2, ",\"priority\":\"low\"");
	add_def(s, "pin", 3, ",\"possible\":[\"n1\"]");
	run_on(s, "hi", 1);
	run_on(s, "lo", 1);
	run_on(s, "pin", 1);
	APPLY_OK(s, 2, "{\"op\":\"settings.set\",\"settings\":{\"migrate_max_per_node\":2}}");

	/* only the node itself drains itself for its shutdown */
	assert_int_equal(apply_text(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\",\"auto\":true}",
				    err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(apply_text(s, 2, "{\"op\":\"node.drain\",\"node\":\"n9\"}", err,
				    sizeof(err)),
			 -ENOENT);
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	assert_true(state_node_find(s, 1)->maintenance);

	/* high and medium live, low quick, pin held with the reason; n1 gets no placement */
	decide(s, all3, 3, 1000);
	assert_int_equal(state_vm_status(s, "hi")->mig.mode, MIG_LIVE);
	assert_int_equal(state_vm_status(s, "hi")->mig.cause, MIG_BY_DRAIN);
	assert_int_equal(state_vm_status(s, "hi")->home, 1);
	assert_int_equal(state_vm_status(s, "m")->mig.mode, MIG_LIVE);
	assert_int_equal(state_vm_status(s, "lo")->mig.mode, MIG_QUICK);
	st = state_vm_status(s, "pin");
	assert_int_equal(st->mig.id, 0);
	assert_non_null(strstr(st->held, "cannot be placed"));
	/* n1 is named as the node it leaves, not as one it may not run on */
	assert_non_null(strstr(st->held, "n1: the node it leaves; n2, n3: not among its possible"));
	assert_non_null(strstr(mgr_log, "vm pin: drain of node n1: stays there"));
	/* at most migrate_max_per_node start at once on n1 */
	decide(s, all3, 3, 1100);
	assert_int_equal(state_migrations_on(s, 1), 2);

	/* a failed live migration falls back to quick; a failed quick one holds */
	end_mig(s, "hi", "failed");
	decide(s, all3, 3, 1200);
	assert_int_equal(state_vm_status(s, "hi")->mig.mode, MIG_QUICK);
	assert_non_null(strstr(mgr_log, "quick migration to"));
	assert_non_null(strstr(mgr_log, "(its live migration failed)"));
	end_mig(s, "hi", "failed");
	decide(s, all3, 3, 1300);
	st = state_vm_status(s, "hi");
	assert_int_equal(st->mig.id, 0);
	assert_non_null(strstr(st->held, "quick migration to"));
	assert_non_null(strstr(st->held, "failed: boom"));

	/* the others complete; again with --force: pin stops, still wanted; hi is tried anew */
	complete_mig(s, "m");
	complete_mig(s, "lo");
	assert_int_not_equal(state_vm_status(s, "lo")->node, 1);
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\",\"force\":true}");
	decide(s, all3, 3, 1400);
	st = state_vm_status(s, "pin");
	assert_int_equal(st->state, VM_HA_STOPPING);
	assert_true(st->want_running);
	assert_int_equal(state_vm_status(s, "hi")->mig.mode, MIG_LIVE);
	complete_mig(s, "hi");
	assert_int_equal(state_vm_status(s, "hi")->home, 1);

	/* resume: hi (immediate) fails back live; lo (none) stays and forgets its home */
	assert_int_equal(apply_text(s, 2, "{\"op\":\"node.resume\",\"node\":\"n2\"}", err,
				    sizeof(err)),
			 -EALREADY);
	APPLY_OK(s, 2, "{\"op\":\"node.resume\",\"node\":\"n1\"}");
	assert_false(state_node_find(s, 1)->maintenance);
	assert_int_equal(state_vm_status(s, "lo")->home, 0);
	decide(s, all3, 3, 1500);
	st = state_vm_status(s, "hi");
	assert_int_equal(st->mig.to, 1);
	assert_int_equal(st->mig.cause, MIG_BY_FAILBACK);
	complete_mig(s, "hi");
	st = state_vm_status(s, "hi");
	assert_int_equal(st->node, 1);
	assert_int_equal(st->home, 0);
	assert_int_not_equal(state_vm_status(s, "lo")->node, 1);
	state_destroy(s);
}

/* A held VM whose node leaves is no longer held there (hvctl vm show said "stays"). */
static void test_held_cleared_off_node(void **unused)
{
	static const uint32_t two[] = { 2, 3 };
	cluster_state_t *s = mig_cluster();

	add_def(s, "pin", 3, ",\"possible\":[\"n1\"]");
	run_on(s, "pin", 1);
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	decide(s, all3, 3, 1000);
	assert_non_null(strstr(state_vm_status(s, "pin")->held, "cannot be placed"));
	decide(s, two, 2, 1100);
	decide(s, two, 2, 1200);
	assert_int_equal(state_vm_status(s, "pin")->state, VM_HA_FENCE);
	assert_string_equal(state_vm_status(s, "pin")->held, "");
	state_destroy(s);
}

/* The timeout counts from a migration's start: a long wait in the queue is no failure. */
static void test_migration_timeout_from_start(void **unused)
{
	cluster_state_t *s = mig_cluster(); /* m started on n1 */
	const struct vm_status *q;

	add_def(s, "q", 1, "");
	run_on(s, "q", 1);
	APPLY_OK(s, 2, "{\"op\":\"settings.set\",\"settings\":{\"migrate_max_per_node\":1,"
		       "\"migrate_timeout_s\":10}}");
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n2\",\"ms\":1000}");
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"q\",\"to\":\"n3\",\"ms\":1000}");
	decide(s, all3, 3, 1000);
	assert_int_equal(state_vm_status(s, "m")->mig.phase, MIG_RUNNING);
	assert_int_equal(state_vm_status(s, "m")->mig.started_ms, 1000);
	assert_int_equal(state_vm_status(s, "q")->mig.phase, MIG_QUEUED);
	/* m takes 9 s; q waited 19 s in the queue when its slot frees: it starts */
	decide(s, all3, 3, 10000);
	assert_int_equal(state_vm_status(s, "m")->mig.phase, MIG_RUNNING);
	complete_mig(s, "m");
	decide(s, all3, 3, 20000);
	q = state_vm_status(s, "q");
	assert_int_equal(q->mig.phase, MIG_RUNNING);
	assert_int_equal(q->mig.started_ms, 20000);
	assert_null(strstr(mgr_log, "timed out"));
	/* 10 s after its start it is still in time; past that it is cancelled (its source stops it) */
	decide(s, all3, 3, 30000);
	assert_int_equal(state_vm_status(s, "q")->mig.phase, MIG_RUNNING);
	assert_false(state_vm_status(s, "q")->mig.cancel);
	decide(s, all3, 3, 30001);
	q = state_vm_status(s, "q");
	assert_int_equal(q->mig.phase, MIG_RUNNING);
	assert_true(q->mig.cancel);
	assert_string_equal(q->mig.cancel_why, "timed out after 10 s (settings: migrate_timeout_s)");
	/* not ended under its source's feet (it may be handing the VM over right now)... */
	decide(s, all3, 3, 60000);
	assert_int_equal(state_vm_status(s, "q")->mig.phase, MIG_RUNNING);
	/* ...unless the source does not stop it within a minute */
	decide(s, all3, 3, 90002);
	q = state_vm_status(s, "q");
	assert_int_equal(q->mig.id, 0);
	assert_int_equal(q->mig_last.result, MIG_FAILED);
	assert_non_null(strstr(q->mig_last.reason, "timed out after 10 s, and its source did not"));
	state_destroy(s);
}

/* A source that hands the VM over as the timeout's cancel arrives: the handoff wins. */
static void test_timeout_cancel_then_handoff(void **unused)
{
	cluster_state_t *s = mig_cluster(); /* m started on n1 */
	char op[256];

	APPLY_OK(s, 2, "{\"op\":\"settings.set\",\"settings\":{\"migrate_timeout_s\":10}}");
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n2\",\"ms\":1000}");
	decide(s, all3, 3, 1000);
	decide(s, all3, 3, 11001);
	assert_true(state_vm_status(s, "m")->mig.cancel);
	snprintf(op, sizeof(op), "{\"op\":\"mig.handoff\",\"name\":\"m\",\"id\":%llu}",
		 (unsigned long long)state_vm_status(s, "m")->mig.id);
	APPLY_OK(s, 1, op);
	assert_int_equal(state_vm_status(s, "m")->node, 2);
	assert_int_equal(state_vm_status(s, "m")->state, VM_HA_STARTING);
	state_destroy(s);
}

static void test_failback_window(void **unused)
{
	cluster_state_t *s = mig_cluster();
	uint64_t day = 86400000ULL * 20000, h = 3600000;

	add_def(s, "w", 1, ",\"failback\":\"22:30-01:00\"");
	run_on(s, "w", 1);
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	decide(s, all3, 3, day);
	complete_mig(s, "w");
	APPLY_OK(s, 2, "{\"op\":\"node.resume\",\"node\":\"n1\"}");
	/* 21:00 and 01:30 are outside its window; 23:00 is in (it wraps midnight) */
	decide(s, all3, 3, day + 21 * h);
	assert_int_equal(state_vm_status(s, "w")->mig.id, 0);
	decide(s, all3, 3, day + 25 * h + h / 2);
	assert_int_equal(state_vm_status(s, "w")->mig.id, 0);
	decide(s, all3, 3, day + 23 * h);
	assert_int_equal(state_vm_status(s, "w")->mig.to, 1);
	assert_int_equal(state_vm_status(s, "w")->mig.cause, MIG_BY_FAILBACK);
	state_destroy(s);
}

static void test_freeze_and_shutdown_drain(void **unused)
{
	static const uint32_t two[] = { 2, 3 };
	cluster_state_t *s = mig_cluster();
	const struct node_info *n1;
	const struct vm_status *st;
	char err[512];

	add_def(s, "f", 1, "");
	run_on(s, "f", 1);
	run_on(s, "o", 2);
	/* only n1 freezes its own VMs */
	assert_int_equal(apply_text(s, 2, "{\"op\":\"node.freeze\",\"node\":\"n1\"}", err,
				    sizeof(err)),
			 -EINVAL);
	APPLY_OK(s, 1, "{\"op\":\"node.freeze\",\"node\":\"n1\"}");
	assert_true(state_vm_status(s, "f")->frozen);
	assert_true(state_vm_status(s, "m")->frozen);
	assert_false(state_vm_status(s, "o")->frozen);
	/* n1 leaves: fenced like any node, but its frozen VMs wait for it */
	decide(s, two, 2, 1000);
	decide(s, two, 2, 1100);
	assert_int_equal(state_vm_status(s, "f")->state, VM_HA_FENCE);
	{
		struct op_ctx ctx = { .sender = 2, .leader = 2 };
		json_t *op = parse("{\"op\":\"mgr.fenced\",\"id\":1,\"ok\":true,\"detail\":\"x\","
				   "\"at_ms\":1200}");

		assert_int_equal(state_apply(s, op, &ctx, err, sizeof(err)), 0);
		json_decref(op);
	}
	decide(s, two, 2, 1300);
	decide(s, two, 2, 1400);
	st = state_vm_status(s, "f");
	assert_int_equal(st->state, VM_HA_FENCE);
	assert_non_null(strstr(st->reason, "frozen"));
	/* back and clean: they start on n1 again */
	APPLY_OK(s, 1, "{\"op\":\"node.hello\",\"id\":1,\"name\":\"n1\",\"vcpus\":4,\"memory\":4096,"
		       "\"domain\":\"\",\"clearance\":\"secret\",\"watchdog_s\":0,"
		       "\"mig_endpoint\":\"tcp://10.0.0.1:7790\","
		       "\"mig_key\":\"0000000000000000000000000000000000000001\"}");
	decide(s, all3, 3, 1500);
	assert_int_equal(state_node_find(s, 1)->status, NODE_ONLINE);
	decide(s, all3, 3, 1600);
	st = state_vm_status(s, "f");
	assert_int_equal(st->state, VM_HA_STARTING);
	assert_int_equal(st->node, 1);
	assert_true(st->takeover);
	assert_false(st->frozen);

	/* shutdown_policy migrate: the node drains itself; back after it left, it resumes */
	run_on(s, "f", 1);
	APPLY_OK(s, 1, "{\"op\":\"node.drain\",\"node\":\"n1\",\"auto\":true}");
	n1 = state_node_find(s, 1);
	assert_int_equal(n1->maint_auto, MAINT_BY_SHUTDOWN);
	decide(s, all3, 3, 1700);
	assert_false(state_node_find(s, 1)->maintenance == false);
	decide(s, two, 2, 1800);
	assert_int_equal(state_node_find(s, 1)->maint_auto, MAINT_NODE_LEFT);
	/* back (fenced meanwhile), clean: online, then its maintenance ends by itself */
	{
		struct op_ctx ctx = { .sender = 2, .leader = 2 };
		json_t *op = parse("{\"op\":\"mgr.fenced\",\"id\":1,\"ok\":true,\"detail\":\"x\","
				   "\"at_ms\":1900}");

		assert_int_equal(state_apply(s, op, &ctx, err, sizeof(err)), 0);
		json_decref(op);
	}
	APPLY_OK(s, 1, "{\"op\":\"node.hello\",\"id\":1,\"name\":\"n1\",\"vcpus\":4,\"memory\":4096,"
		       "\"domain\":\"\",\"clearance\":\"secret\",\"watchdog_s\":0,"
		       "\"mig_endpoint\":\"tcp://10.0.0.1:7790\","
		       "\"mig_key\":\"0000000000000000000000000000000000000001\"}");
	decide(s, all3, 3, 2000);
	assert_true(state_node_find(s, 1)->maintenance);
	decide(s, all3, 3, 2100);
	assert_false(state_node_find(s, 1)->maintenance);
	assert_non_null(strstr(mgr_log, "back after its shutdown drain"));
	state_destroy(s);
}


/* --- review tests ------------------------------------------------------------------------ */

/* One manager step; the ops' names joined in @names; the ops applied as the leader. */
static void step_names(cluster_state_t *s, const uint32_t *members, size_t n, uint64_t now_ms,
		       char *names, size_t len)
{
	struct mgr_env env = { .now_ms = now_ms, .members = members, .nmembers = n };
	struct mgr_result res;
	struct op_ctx ctx = { .sender = members[0], .leader = members[0] };
	char err[512];
	json_t *op;
	size_t i;

	names[0] = '\0';
	mgr_log[0] = '\0';
	assert_int_equal(manager_step(s, &env, &res, log_line, NULL), 0);
	json_array_foreach(res.ops, i, op) {
		size_t l = strlen(names);

		snprintf(names + l, len - l, "%s ", json_string_value(json_object_get(op, "op")));
		state_apply(s, op, &ctx, err, sizeof(err));
	}
	json_decref(res.ops);
}

/*
 * node/cluster.c counts the leader's ops in flight and decrements only for
 * names starting "mgr.": every op manager_step emits must be one.
 */
static void test_maint_every_manager_op_is_mgr(void **unused)
{
	static const uint32_t n12[] = { 1, 2 };
	cluster_state_t *s = mig_cluster(); /* m started on n1 */
	char names[512];

	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	step_names(s, all3, 3, 1000, names, sizeof(names)); /* mgr.move */
	assert_int_equal(state_vm_status(s, "m")->mig.phase, MIG_QUEUED);
	/* the drain's target leaves before its migration starts */
	if (state_vm_status(s, "m")->mig.to == 3) {
		step_names(s, n12, 2, 1100, names, sizeof(names));
	} else {
		static const uint32_t n13[] = { 1, 3 };
		step_names(s, n13, 2, 1100, names, sizeof(names));
	}
	print_message("ops of the step after the target left: %s\n", names);
	for (char *tok = strtok(names, " "); tok; tok = strtok(NULL, " "))
		if (strncmp(tok, "mgr.", 4))
			fail_msg("the manager emitted '%s': node/cluster.c never decrements "
				 "mgr_inflight for it", tok);
	state_destroy(s);
}

/* Same, for a drain's queued migration that times out (migrate_timeout_s, counted from the queue). */
static void test_maint_queued_drain_migration_timeout(void **unused)
{
	cluster_state_t *s = mig_cluster();
	char names[512];

	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	step_names(s, all3, 3, 1000, names, sizeof(names));
	step_names(s, all3, 3, 1000 + 601000, names, sizeof(names));
	print_message("ops after migrate_timeout_s: %s\n", names);
	assert_null(strstr(names, "mig.end"));
	state_destroy(s);
}

static void add_big(cluster_state_t *s, const char *name, int n, unsigned int mb, const char *extra)
{
	char op[1024];

	snprintf(op, sizeof(op),
		 "{\"op\":\"vm.create\",\"def\":{\"name\":\"%s\",\"uuid\":"
		 "\"00000000-0000-4000-8000-0000000002%02d\",\"vcpus\":1,\"memory\":%u,"
		 "\"disks\":[\"iscsi://h/iqn.2026-11.org.example:b/%d\"]%s}}",
		 name, n, mb, n, extra);
	APPLY_OK(s, 2, op);
	snprintf(op, sizeof(op), "{\"op\":\"vm.want\",\"name\":\"%s\",\"running\":true}", name);
	APPLY_OK(s, 2, op);
}

/* Memory the VMs assigned to @node, or migrating to it, need. */
static uint64_t mem_bound_for(cluster_state_t *s, uint32_t node)
{
	uint64_t mb = 0;

	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_def *d = state_vm_at(s, i);
		const struct vm_status *st = state_vm_status(s, d->name);
		uint32_t where = st->mig.id ? st->mig.to : st->node;

		if (where == node && (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED))
			mb += d->memory_mb;
	}
	return mb;
}

/* Hard anti-affinity: a drain's fallback is placed where a VM it must avoid is going. */
static void test_maint_fallback_ignores_inflight_target(void **unused)
{
	cluster_state_t *s = mig_cluster();
	const struct vm_status *a, *c;

	add_def(s, "a", 1, "");
	add_def(s, "c", 2, "");
	run_on(s, "a", 1);
	run_on(s, "c", 1);
	APPLY_OK(s, 2, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"apart\",\"type\":\"anti-affinity\","
		       "\"vms\":[\"a\",\"c\"],\"hard\":true}}");
	APPLY_OK(s, 2, "{\"op\":\"settings.set\",\"settings\":{\"migrate_max_per_node\":2}}");
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	decide(s, all3, 3, 1000);
	a = state_vm_status(s, "a");
	c = state_vm_status(s, "c");
	print_message("plan: a -> n%u, c -> n%u\n", a->mig.to, c->mig.to);
	assert_int_not_equal(a->mig.to, c->mig.to);
	decide(s, all3, 3, 1100); /* both start */
	/* c's live migration fails: quick fallback, while a is still on its way */
	end_mig(s, "c", "failed");
	decide(s, all3, 3, 1200);
	a = state_vm_status(s, "a");
	c = state_vm_status(s, "c");
	print_message("fallback: a -> n%u (in flight), c -> n%u (%s)\n", a->mig.to, c->mig.to,
		      mig_mode_name(c->mig.mode));
	assert_int_not_equal(a->mig.to, c->mig.to);
	state_destroy(s);
}

/* Capacity: failbacks and a start in the same step each see the resumed node empty. */
static void test_maint_failback_overbooks(void **unused)
{
	cluster_state_t *s = mig_cluster(); /* nodes of 4096 MB, mem_overcommit 100% */

	APPLY_OK(s, 2, "{\"op\":\"vm.want\",\"name\":\"m\",\"running\":false}");
	decide(s, all3, 3, 500);
	decide(s, all3, 3, 600);
	add_big(s, "f1", 1, 2000, ",\"failback\":\"immediate\"");
	add_big(s, "f2", 2, 2000, ",\"failback\":\"immediate\"");
	run_on(s, "f1", 1);
	run_on(s, "f2", 1);
	APPLY_OK(s, 2, "{\"op\":\"settings.set\",\"settings\":{\"migrate_max_per_node\":2}}");
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	decide(s, all3, 3, 1000);
	complete_mig(s, "f1");
	complete_mig(s, "f2");
	/* while n1 is away, x (3000 MB) finds no room: n2 and n3 have 2096 MB free */
	add_big(s, "x", 3, 3000, "");
	decide(s, all3, 3, 1100);
	assert_int_equal(state_vm_status(s, "x")->state, VM_HA_STOPPED);
	APPLY_OK(s, 2, "{\"op\":\"node.resume\",\"node\":\"n1\"}");
	decide(s, all3, 3, 1200);
	print_message("%s", mgr_log);
	print_message("n1 gets %llu MB of 4096\n", (unsigned long long)mem_bound_for(s, 1));
	assert_true(mem_bound_for(s, 1) <= 4096);
	state_destroy(s);
}

/* A freeze that is not followed by the node leaving (say a quick restart) is never undone. */
/* A freeze its node never followed by leaving does not hold the VM after a crash days later. */
static void test_maint_frozen_sticks(void **unused)
{
	static const uint32_t two[] = { 2, 3 };
	cluster_state_t *s = mig_cluster(); /* m started on n1 */
	char err[512];

	APPLY_OK(s, 1, "{\"op\":\"node.freeze\",\"node\":\"n1\",\"ms\":1000}");
	/* n1 stays (its shutdown went another way); days later it crashes */
	decide(s, all3, 3, 1000);
	assert_true(state_vm_status(s, "m")->frozen);
	decide(s, two, 2, 86400000);
	{
		struct op_ctx ctx = { .sender = 2, .leader = 2 };
		json_t *op = parse("{\"op\":\"mgr.fenced\",\"id\":1,\"ok\":true,\"detail\":\"x\","
				   "\"at_ms\":86400100}");

		assert_int_equal(state_apply(s, op, &ctx, err, sizeof(err)), 0);
		json_decref(op);
	}
	decide(s, two, 2, 86400200);
	decide(s, two, 2, 86400300);
	print_message("m: %s: %s\n", vm_ha_state_name(state_vm_status(s, "m")->state),
		      state_vm_status(s, "m")->reason);
	assert_int_not_equal(state_vm_status(s, "m")->state, VM_HA_FENCE);
	state_destroy(s);
}

/* Forged or malformed maintenance ops change nothing. */
static void test_maint_bad_input(void **unused)
{
	static const char *const bad[][2] = {
		{ "2", "{\"op\":\"node.drain\",\"node\":\"n1\",\"force\":\"yes\"}" },
		{ "2", "{\"op\":\"node.drain\",\"node\":1}" },
		{ "2", "{\"op\":\"node.drain\"}" },
		{ "2", "{\"op\":\"node.drain\",\"node\":\"n1\",\"x\":1}" },
		{ "2", "{\"op\":\"node.drain\",\"node\":\"n1\",\"auto\":true}" },
		{ "2", "{\"op\":\"node.freeze\",\"node\":\"n1\"}" },
		{ "1", "{\"op\":\"node.freeze\",\"node\":\"n9\"}" },
		{ "2", "{\"op\":\"node.resume\",\"node\":\"n1\"}" },
		{ "2", "{\"op\":\"mgr.resume\",\"node\":\"n1\"}" },
		{ "2", "{\"op\":\"mgr.held\",\"name\":\"m\",\"held\":\"x\"}" },
		{ "1", "{\"op\":\"mgr.held\",\"name\":\"m\",\"held\":\"x\",\"home\":9}" },
		{ "1", "{\"op\":\"mgr.held\",\"name\":\"m\",\"held\":5}" },
		{ "1", "{\"op\":\"mgr.held\",\"name\":\"m\",\"held\":\"a\\nb\"}" },
		{ "1", "{\"op\":\"mgr.held\",\"name\":\"zz\",\"held\":\"x\"}" },
		{ "2", "{\"op\":\"mgr.move\",\"name\":\"m\",\"to\":\"n2\",\"mode\":\"live\",\"cause\":\"drain\"}" },
		{ "1", "{\"op\":\"mgr.move\",\"name\":\"m\",\"to\":\"n2\",\"mode\":\"save\",\"cause\":\"drain\"}" },
		{ "1", "{\"op\":\"mgr.move\",\"name\":\"m\",\"to\":\"n2\",\"mode\":\"live\",\"cause\":\"admin\"}" },
		{ "1", "{\"op\":\"mgr.move\",\"name\":\"m\",\"to\":\"n1\",\"mode\":\"live\",\"cause\":\"drain\"}" },
		{ "1", "{\"op\":\"mgr.move\",\"name\":\"m\",\"to\":\"n9\",\"mode\":\"live\",\"cause\":\"drain\"}" },
		{ "1", "{\"op\":\"mgr.move\",\"name\":\"m\",\"mode\":\"live\",\"cause\":\"drain\"}" },
		{ "1", "{\"op\":\"mgr.move\",\"name\":\"m\",\"to\":\"n2\",\"mode\":\"live\",\"cause\":\"drain\",\"ms\":-1}" },
		{ "1", "{\"op\":\"mgr.move\",\"name\":\"m\",\"to\":\"n2\",\"cause\":\"drain\"}" },
	};
	cluster_state_t *s = mig_cluster();
	json_t *before = state_to_json(s), *after;
	uint64_t v = state_version(s);
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = apply_text(s, (uint32_t)atoi(bad[i][0]), bad[i][1], err, sizeof(err));

		print_message("%-100.100s -> %d %s\n", bad[i][1], rc, err);
		if (!rc)
			fail_msg("applied: %s", bad[i][1]);
	}
	after = state_to_json(s);
	assert_int_equal(state_version(s), v);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	state_destroy(s);
}

/* The new state fields read strictly. */
static void test_maint_state_json_strict(void **unused)
{
	static const char *const muts[][2] = {
		{ "vm", "\"frozen\":\"yes\"" },  { "vm", "\"held\":5" },
		{ "vm", "\"home\":-1" },	 { "vm", "\"home\":\"n1\"" },
		{ "node", "\"maint_auto\":9" }, { "node", "\"drain_force\":1" },
		{ "node", "\"drain_id\":-3" },	 { "settings", "\"drain_low\":\"warp\"" },
		{ "settings", "\"drain_low\":5" },
	};
	cluster_state_t *s = mig_cluster();
	json_t *base = state_to_json(s);
	char err[512];

	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		json_t *j = json_deep_copy(base), *obj, *kv;
		cluster_state_t *t = state_create();
		char text[128];
		const char *k;
		json_t *v;

		if (!strcmp(muts[i][0], "vm"))
			obj = json_object_get(json_array_get(json_object_get(j, "vms"), 0), "status");
		else if (!strcmp(muts[i][0], "node"))
			obj = json_array_get(json_object_get(j, "nodes"), 0);
		else
			obj = json_object_get(j, "settings");
		if (!obj) {
			print_message("no %s object in the state JSON; keys:", muts[i][0]);
			json_object_foreach(j, k, v) print_message(" %s", k);
			print_message("\n");
			fail();
		}
		snprintf(text, sizeof(text), "{%s}", muts[i][1]);
		kv = parse(text);
		json_object_update(obj, kv);
		json_decref(kv);
		print_message("%-10s %-28s -> %d %s\n", muts[i][0], muts[i][1],
			      state_from_json(t, j, err, sizeof(err)), err);
		err[0] = '\0';
		assert_int_not_equal(state_from_json(t, j, err, sizeof(err)), 0);
		json_decref(j);
		state_destroy(t);
	}
	json_decref(base);
	state_destroy(s);
}

/* mig.cause of a wrong type reads as "admin" instead of being refused. */
static void test_maint_mig_cause_type(void **unused)
{
	cluster_state_t *s = mig_cluster(), *t = state_create();
	json_t *j, *mig;
	char err[512];

	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n3\"}");
	j = state_to_json(s);
	mig = json_object_get(json_object_get(json_array_get(json_object_get(j, "vms"), 0),
					      "status"), "mig");
	assert_non_null(mig);
	json_object_set_new(mig, "cause", json_integer(7));
	print_message("cause 7 -> %d %s\n", state_from_json(t, j, err, sizeof(err)), err);
	assert_int_not_equal(state_from_json(t, j, err, sizeof(err)), 0);
	json_decref(j);
	state_destroy(s);
	state_destroy(t);
}

static void fenced_by_2(cluster_state_t *s, uint32_t id, uint64_t at)
{
	struct op_ctx ctx = { .sender = 2, .leader = 2 };
	char text[256], err[512];
	json_t *op;

	snprintf(text, sizeof(text),
		 "{\"op\":\"mgr.fenced\",\"id\":%u,\"ok\":true,\"detail\":\"x\",\"at_ms\":%llu}", id,
		 (unsigned long long)at);
	op = parse(text);
	assert_int_equal(state_apply(s, op, &ctx, err, sizeof(err)), 0);
	json_decref(op);
}

#define HELLO_N1                                                                                 \
	"{\"op\":\"node.hello\",\"id\":1,\"name\":\"n1\",\"vcpus\":4,\"memory\":4096,"           \
	"\"domain\":\"\",\"clearance\":\"secret\",\"watchdog_s\":0,"                             \
	"\"mig_endpoint\":\"tcp://10.0.0.1:7790\","                                              \
	"\"mig_key\":\"0000000000000000000000000000000000000001\"}"

/* Back from a shutdown drain, n1 is stopped again before mgr.resume: its new drain is undone. */
static void test_maint_auto_resume_undoes_new_shutdown_drain(void **unused)
{
	static const uint32_t two[] = { 2, 3 };
	cluster_state_t *s = mig_cluster(); /* m on n1 */

	APPLY_OK(s, 1, "{\"op\":\"node.drain\",\"node\":\"n1\",\"auto\":true}");
	decide(s, all3, 3, 1000);
	complete_mig(s, "m");
	decide(s, two, 2, 1100); /* n1 left: fence pending, NODE_LEFT */
	fenced_by_2(s, 1, 1200);
	APPLY_OK(s, 1, HELLO_N1);
	decide(s, all3, 3, 1300); /* online */
	assert_int_equal(state_node_find(s, 1)->status, NODE_ONLINE);
	/* m fails back (say failback immediate) or anything lands on it ... then n1 is stopped
	 * again: its hvnoded sends node.drain auto before the leader's mgr.resume is applied */
	APPLY_OK(s, 1, "{\"op\":\"node.drain\",\"node\":\"n1\",\"auto\":true}");
	print_message("maint_auto after the second shutdown drain: %d\n",
		      state_node_find(s, 1)->maint_auto);
	decide(s, all3, 3, 1400);
	print_message("%s", mgr_log);
	assert_true(state_node_find(s, 1)->maintenance);
	state_destroy(s);
}

/* A stale frozen flag travels with the VM: after a drain moves it, it waits for n2 instead of recovering. */
static void test_maint_frozen_follows_migration(void **unused)
{
	static const uint32_t n13[] = { 1, 3 };
	cluster_state_t *s = mig_cluster(); /* m on n1 */
	const struct vm_status *st;

	APPLY_OK(s, 1, "{\"op\":\"node.freeze\",\"node\":\"n1\"}");
	/* n1 does not leave (the shutdown was SIGINT'd, or hvnoded restarted within a token) */
	APPLY_OK(s, 2, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n2\"}");
	complete_mig(s, "m");
	st = state_vm_status(s, "m");
	print_message("m on n%u, frozen=%d\n", st->node, st->frozen);
	assert_false(st->frozen);
	(void)n13;
	state_destroy(s);
}

/* A migration error text with a multibyte character at byte 400: the hold reason is cut inside it. */
static void test_maint_hold_reason_utf8_cut(void **unused)
{
	cluster_state_t *s = mig_cluster(); /* m on n1 */
	struct mgr_env env = { .now_ms = 2000, .members = all3, .nmembers = 3 };
	struct mgr_result res;
	char reason[512], op[1024];
	int rc;

	APPLY_OK(s, 2, "{\"op\":\"settings.set\",\"settings\":{\"drain_medium\":\"quick\"}}");
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	decide(s, all3, 3, 1000);
	memset(reason, 'a', 399);
	strcpy(reason + 399, "\xc3\xa9"); /* é, bytes 400 and 401 */
	snprintf(op, sizeof(op),
		 "{\"op\":\"mig.end\",\"name\":\"m\",\"id\":%llu,\"result\":\"failed\",\"reason\":\"%s\"}",
		 (unsigned long long)state_vm_status(s, "m")->mig.id, reason);
	APPLY_OK(s, 1, op);
	rc = manager_step(s, &env, &res, NULL, NULL);
	print_message("manager_step: %d\n", rc);
	assert_int_equal(rc, 0);
	json_decref(res.ops);
	state_destroy(s);
}

/* Capacity: a drain's quick fallback goes where another VM of the drain is already headed. */
static void test_maint_fallback_overbooks(void **unused)
{
	cluster_state_t *s = mig_cluster(); /* n1..n3, 4096 MB */
	const struct vm_status *a, *b;

	APPLY_OK(s, 1, "{\"op\":\"node.hello\",\"id\":1,\"name\":\"n1\",\"vcpus\":8,\"memory\":8192,"
		       "\"domain\":\"\",\"clearance\":\"secret\",\"watchdog_s\":0,"
		       "\"mig_endpoint\":\"tcp://10.0.0.1:7790\","
		       "\"mig_key\":\"0000000000000000000000000000000000000001\"}");
	APPLY_OK(s, 2, "{\"op\":\"vm.want\",\"name\":\"m\",\"running\":false}");
	decide(s, all3, 3, 500);
	decide(s, all3, 3, 600);
	add_big(s, "A", 1, 3000, "");
	add_big(s, "B", 2, 3000, "");
	run_on(s, "A", 1);
	run_on(s, "B", 1);
	APPLY_OK(s, 2, "{\"op\":\"node.drain\",\"node\":\"n1\"}");
	decide(s, all3, 3, 1000);
	decide(s, all3, 3, 1100);
	end_mig(s, "B", "failed");
	decide(s, all3, 3, 1200);
	a = state_vm_status(s, "A");
	b = state_vm_status(s, "B");
	print_message("A -> n%u (in flight), B -> n%u (%s); n%u would need %llu MB of 4096\n",
		      a->mig.to, b->mig.to, mig_mode_name(b->mig.mode), a->mig.to,
		      (unsigned long long)mem_bound_for(s, a->mig.to));
	assert_true(mem_bound_for(s, a->mig.to) <= 4096);
	state_destroy(s);
}

/* A node that stops cleanly running nothing (node.leave) is offline when it leaves: no fence. */
static void test_node_leave(void **unused)
{
	static const uint32_t two[] = { 1, 3 };
	cluster_state_t *s = mig_cluster(); /* m started on n1 */
	struct mgr_env env = { .now_ms = 2000, .members = two, .nmembers = 2 };
	struct mgr_result res;
	char err[512];

	/* only the node itself, and only when nothing is assigned to it */
	assert_int_equal(apply_text(s, 1, "{\"op\":\"node.leave\",\"node\":\"n2\"}", err,
				    sizeof(err)),
			 -EINVAL);
	assert_int_equal(apply_text(s, 1, "{\"op\":\"node.leave\",\"node\":\"n1\"}", err,
				    sizeof(err)),
			 -EBUSY);
	assert_string_equal(err, "node n1 still has VMs: it is fenced when it leaves");
	APPLY_OK(s, 2, "{\"op\":\"node.leave\",\"node\":\"n2\"}");
	assert_true(state_node_find(s, 2)->leaving);
	/* it takes nothing now */
	assert_int_equal(apply_text(s, 3, "{\"op\":\"vm.migrate\",\"name\":\"m\",\"to\":\"n2\"}", err,
				    sizeof(err)),
			 -EOPNOTSUPP);
	/* gone: offline, and nothing to fence */
	decide(s, two, 2, 1000);
	assert_int_equal(state_node_find(s, 2)->status, NODE_OFFLINE);
	assert_non_null(strstr(mgr_log, "left cleanly, running nothing: offline"));
	assert_int_equal(manager_step(s, &env, &res, NULL, NULL), 0);
	assert_int_equal(res.nfence, 0);
	json_decref(res.ops);
	/* back and clean: online again, leaving forgotten */
	APPLY_OK(s, 2, "{\"op\":\"node.hello\",\"id\":2,\"name\":\"n2\",\"vcpus\":4,\"memory\":4096,"
		       "\"domain\":\"\",\"clearance\":\"secret\",\"watchdog_s\":0,"
		       "\"mig_endpoint\":\"tcp://10.0.0.2:7790\","
		       "\"mig_key\":\"0000000000000000000000000000000000000002\"}");
	assert_false(state_node_find(s, 2)->leaving);
	decide(s, all3, 3, 3000);
	assert_int_equal(state_node_find(s, 2)->status, NODE_ONLINE);

	/* a leaving node that got a VM after all is fenced like any other */
	APPLY_OK(s, 2, "{\"op\":\"node.leave\",\"node\":\"n2\"}");
	APPLY_OK(s, 1, "{\"op\":\"mgr.vm\",\"name\":\"o\",\"expect_epoch\":0,\"state\":\"started\","
		       "\"node\":2,\"epoch\":1}");
	decide(s, two, 2, 4000);
	assert_int_equal(state_node_find(s, 2)->status, NODE_FENCE_PENDING);
	state_destroy(s);
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
		cmocka_unit_test(test_repl_sync_and_ops),
		cmocka_unit_test(test_repl_joiner_adopts_quorate_side),
		cmocka_unit_test(test_repl_cold_start_highest_version),
		cmocka_unit_test(test_repl_garbage),
		cmocka_unit_test(test_repl_silent_member_round_closes),
		cmocka_unit_test(test_repl_needs_state_adopts_a_peers),
		cmocka_unit_test(test_repl_needs_state_never_wins),
		cmocka_unit_test(test_rule_contradictions),
		cmocka_unit_test(test_vm_without_identity_refused),
		cmocka_unit_test(test_migration_ops),
		cmocka_unit_test(test_migration_ends_before_handoff),
		cmocka_unit_test(test_save_restore_ops),
		cmocka_unit_test(test_drain),
		cmocka_unit_test(test_held_cleared_off_node),
		cmocka_unit_test(test_migration_timeout_from_start),
		cmocka_unit_test(test_failback_window),
		cmocka_unit_test(test_freeze_and_shutdown_drain),
		cmocka_unit_test(test_node_leave),
		cmocka_unit_test(test_timeout_cancel_then_handoff),
		cmocka_unit_test(test_maint_every_manager_op_is_mgr),
		cmocka_unit_test(test_maint_queued_drain_migration_timeout),
		cmocka_unit_test(test_maint_fallback_ignores_inflight_target),
		cmocka_unit_test(test_maint_failback_overbooks),
		cmocka_unit_test(test_maint_frozen_sticks),
		cmocka_unit_test(test_maint_bad_input),
		cmocka_unit_test(test_maint_state_json_strict),
		cmocka_unit_test(test_maint_mig_cause_type),
		cmocka_unit_test(test_maint_auto_resume_undoes_new_shutdown_drain),
		cmocka_unit_test(test_maint_frozen_follows_migration),
		cmocka_unit_test(test_maint_hold_reason_utf8_cut),
		cmocka_unit_test(test_maint_fallback_overbooks),
	};

	return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
