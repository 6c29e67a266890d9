/*
 * CPG messages: repl_decode() (cluster/repl.c) on any bytes, and what a node does with
 * a message it decoded: an op goes to state_apply() (cluster/ops.c), a sync message's
 * state to state_from_json(), on a small prepared state (three nodes, one of them
 * fence-pending, three VMs, one of them started, a rule, a fence device and level, an
 * ACL binding).
 *
 * Input: byte 0 chooses the context, the rest is the message.
 *   bit 7   set: the rest is only the body; the harness puts a valid header before it,
 *           so that mutations of a body reach the decoders behind repl_decode()
 *   bits 0-2  the sender node (0..7; 1..3 are nodes of the state)
 *   bits 3-5  the leader node of the configuration
 *   bit 6   set: the sender is the leader (mgr.* ops are then allowed)
 *
 * Checks: no crash; a refused op or state leaves the state unchanged (state_to_json
 * before and after equal); after an applied op, the state survives its own state file
 * round trip (to_json -> from_json -> to_json), so a node that applied it can restart.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../cluster/ops.h"
#include "../../cluster/repl.h"
#include "../../cluster/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "repl"
#include "check.h"

/* The ops that build the prepared state, each with the node that sends it (leader: 1). */
static const struct {
	uint32_t sender;
	const char *op;
} setup_ops[] = {
	{ 1, "{\"op\":\"node.hello\",\"id\":1,\"name\":\"n1\",\"vcpus\":8,\"memory\":16384,"
	     "\"domain\":\"rack1\",\"clearance\":\"secret\",\"watchdog_s\":10}" },
	{ 2, "{\"op\":\"node.hello\",\"id\":2,\"name\":\"n2\",\"vcpus\":8,\"memory\":16384,"
	     "\"domain\":\"rack2\"}" },
	{ 3, "{\"op\":\"node.hello\",\"id\":3,\"name\":\"n3\",\"vcpus\":4,\"memory\":8192}" },
	{ 1, "{\"op\":\"mgr.node\",\"id\":1,\"expect\":\"joining\",\"status\":\"online\"}" },
	{ 1, "{\"op\":\"mgr.node\",\"id\":2,\"expect\":\"joining\",\"status\":\"online\"}" },
	{ 1, "{\"op\":\"mgr.node\",\"id\":3,\"expect\":\"joining\",\"status\":\"fence-pending\","
	     "\"at_ms\":5000}" },
	{ 1, "{\"op\":\"vm.create\",\"req\":1,\"def\":{\"name\":\"a\","
	     "\"uuid\":\"00000000-0000-4000-8000-000000000001\",\"vcpus\":2,\"memory\":\"1G\","
	     "\"disks\":[\"iscsi://10.0.0.2/iqn.2026-11.org.example:t/1\"],"
	     "\"nics\":[{\"bridge\":\"br0\",\"mac\":\"52:54:00:12:34:56\"}],\"owner\":\"alice\",\"app\":\"shop\",\"tier\":\"web\","
	     "\"priority\":\"high\",\"possible\":[\"n1\",\"n2\"],\"preferred\":[\"n2\"]}}" },
	{ 1, "{\"op\":\"vm.create\",\"def\":{\"name\":\"b\","
	     "\"uuid\":\"00000000-0000-4000-8000-000000000002\",\"vcpus\":1,\"memory\":512,"
	     "\"disks\":[\"iscsi://[fd00::2]:3261/iqn.2026-11.org.example:t/2\"],"
	     "\"app\":\"shop\",\"tier\":\"db\",\"classification\":\"confidential\"}}" },
	{ 2, "{\"op\":\"vm.create\",\"def\":{\"name\":\"c\","
	     "\"uuid\":\"00000000-0000-4000-8000-000000000003\",\"vcpus\":1,\"memory\":256,"
	     "\"disks\":[{\"url\":\"iscsi://san/eui.0123456789abcdef/3\",\"bus\":\"ide\"}],"
	     "\"ha\":false}}" },
	{ 1, "{\"op\":\"rule.add\",\"rule\":{\"name\":\"apart\",\"type\":\"anti-affinity\","
	     "\"vms\":[\"a\",\"b\"]}}" },
	{ 1, "{\"op\":\"fence.device.add\",\"device\":{\"name\":\"ipmi2\","
	     "\"agent\":\"/usr/sbin/fence_ipmilan\",\"params\":{\"ip\":\"10.0.9.2\","
	     "\"username\":\"admin\"},\"secrets\":{\"password\":\"/etc/hvcluster/ipmi2.pw\"}}}" },
	{ 1, "{\"op\":\"fence.level.add\",\"level\":{\"node\":2,\"index\":1,"
	     "\"devices\":[\"ipmi2\"]}}" },
	{ 1, "{\"op\":\"fence.level.add\",\"level\":{\"node\":2,\"index\":2,"
	     "\"devices\":[\"storage\"]}}" },
	{ 1, "{\"op\":\"acl.add\",\"binding\":{\"name\":\"ops\",\"group\":\"ops\","
	     "\"role\":\"operator\",\"scope\":\"app\",\"value\":\"shop\"}}" },
	{ 1, "{\"op\":\"vm.want\",\"name\":\"a\",\"running\":true}" },
	{ 1, "{\"op\":\"mgr.vm\",\"name\":\"a\",\"expect_epoch\":0,\"state\":\"starting\","
	     "\"node\":2,\"epoch\":1,\"reason\":\"placed on n2\"}" },
	{ 2, "{\"op\":\"vm.report\",\"name\":\"a\",\"epoch\":1,\"event\":\"running\"}" },
	{ 1, "{\"op\":\"mgr.vm\",\"name\":\"a\",\"expect_epoch\":1,\"state\":\"started\"}" },
	{ 1, "{\"op\":\"mgr.fenced\",\"id\":3,\"ok\":false,\"detail\":\"ipmi timeout\","
	     "\"at_ms\":6000}" },
};

static cluster_state_t *prepared(void)
{
	static cluster_state_t *s;
	char err[512];

	if (s)
		return s;
	s = state_create();
	if (!s)
		fail("setup", "out of memory");
	for (size_t i = 0; i < sizeof(setup_ops) / sizeof(setup_ops[0]); i++) {
		struct op_ctx ctx = { .sender = setup_ops[i].sender, .leader = 1 };
		json_t *op = json_loads(setup_ops[i].op, 0, NULL);

		if (!op)
			fail("setup op is not JSON", setup_ops[i].op);
		if (state_apply(s, op, &ctx, err, sizeof(err)))
			fail(setup_ops[i].op, err);
		json_decref(op);
	}
	return s;
}

static void check_round_trip(const cluster_state_t *s, const json_t *written)
{
	cluster_state_t *t = state_create();
	json_t *again;
	char err[512];

	if (!t)
		fail("round trip", "out of memory");
	if (state_from_json(t, written, err, sizeof(err))) {
		char *text = json_dumps(written, JSON_COMPACT);

		fprintf(stderr, "note: repl: state written as %s\n", text ? text : "?");
		fail("the state after an applied op does not load back", err);
	}
	again = state_to_json(t);
	expect_equal(written, again, "the state after an applied op changed in its round trip");
	json_decref(again);
	state_destroy(t);
}

static void on_op(const json_t *op, const struct op_ctx *ctx)
{
	cluster_state_t *s = state_dup(prepared());
	json_t *before, *after;
	char err[512];

	if (!s)
		fail("state_dup", "out of memory");
	before = state_to_json(s);
	if (state_apply(s, op, ctx, err, sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)))
			fail("refused op", "message not terminated");
		after = state_to_json(s);
		expect_equal(before, after, "an op was refused, yet the state changed");
	} else {
		after = state_to_json(s);
		check_round_trip(s, after);
	}
	json_decref(before);
	json_decref(after);
	state_destroy(s);
}

/* A sync message's state replaces the node's state whole, or not at all. */
static void on_sync(const json_t *body)
{
	const json_t *j = json_object_get(body, "state");
	cluster_state_t *s;
	json_t *before, *after;
	char err[512];

	if (!json_is_object(j))
		return;
	s = state_dup(prepared());
	if (!s)
		fail("state_dup", "out of memory");
	before = state_to_json(s);
	if (state_from_json(s, j, err, sizeof(err))) {
		after = state_to_json(s);
		expect_equal(before, after, "a sync state was refused, yet the state changed");
	} else {
		after = state_to_json(s);
		check_round_trip(s, after);
	}
	json_decref(before);
	json_decref(after);
	state_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum repl_msg_type type;
	struct op_ctx ctx;
	json_t *body = NULL;
	uint8_t *msg = NULL;
	const uint8_t *p;
	char err[512];
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	ctx.sender = data[0] & 7;
	ctx.leader = data[0] & 0x40 ? ctx.sender : (data[0] >> 3) & 7;
	p = data + 1;
	len = size - 1;
	if (data[0] & 0x80) {
		/* a valid header: type OP (even length) or SYNC (odd), then the body */
		uint16_t t = len & 1 ? REPL_MSG_SYNC : REPL_MSG_OP;
		uint8_t hdr[REPL_HDR_LEN] = { 'H', 'V', 'C', '1', REPL_FORMAT, 0, (uint8_t)t, 0,
					       (uint8_t)len, (uint8_t)(len >> 8),
					       (uint8_t)(len >> 16), (uint8_t)(len >> 24) };

		msg = malloc(REPL_HDR_LEN + len);
		if (!msg)
			return 0;
		memcpy(msg, hdr, REPL_HDR_LEN);
		memcpy(msg + REPL_HDR_LEN, p, len);
		p = msg;
		len += REPL_HDR_LEN;
	}
	memset(err, 0x55, sizeof(err));
	rc = repl_decode(p, len, &type, &body, err, sizeof(err));
	if (rc) {
		if (body)
			fail("refused", "a body is returned with an error");
		if (!memchr(err, '\0', sizeof(err)))
			fail("refused", "message not terminated");
	} else {
		if (!json_is_object(body))
			fail("decoded", "the body is not an object");
		if (type == REPL_MSG_OP)
			on_op(body, &ctx);
		else if (type == REPL_MSG_SYNC)
			on_sync(body);
		json_decref(body);
	}
	free(msg);
	return 0;
}
