/*
 * The sync rounds of cluster/repl.c: repl_confchg(), repl_deliver() of SYNC, CLOSE
 * and OP messages from peers (on_sync, on_close, the queue of ops held during a
 * round, finish_round), repl_tick() and repl_quorum(), driven on a repl_t of three
 * nodes. What this node multicasts comes back to it, in order, as CPG does.
 *
 * Input: byte 0: this node's id (1..3, bits 0-1; 0 counts as 1), bit 2: it needs the
 * state (a corrupt file), bit 3: quorate. Then records of 4 header bytes and a payload:
 *   ctl  bits 0-2: sender node (0..7; 1..3 may be members), bit 3: from a rogue
 *        process (pid 999) instead of the node's agent, bits 4-5: 0 the payload is
 *        the whole message, 1/2/3 it is the body of a SYNC/CLOSE/OP with a valid
 *        header, bit 6: a configuration change first, bit 7: time passes first
 *        (past REPL_ROUND_TIMEOUT_MS)
 *   aux  bits 0-2: the members of that configuration change (nodes 1..3; this node
 *        always), bit 3: the rogue process is in the group too, bit 4: quorum flips
 *   len  u16 little endian, the payload's length (cut to what is left)
 * At most MAX_RECORDS (64) records are run.
 *
 * HV_FUZZ_LOG=1 in the environment prints repl's log (what an input reaches).
 *
 * Checks: no crash, no leak; the state, whenever repl has it persisted, survives its
 * state file round trip;
 * a synced node never still needs the state; a message of a rogue process that
 * never joined the group, or of a node that is not a member, changes neither the
 * state nor whether the node is synced.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../cluster/repl.h"
#include "../../cluster/state.h"

#define ROGUE_PID 999
#define MAX_LOOPED 8
#define MAX_RECORDS 64 /* more make a slow input, not a new path */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "replsync"
#include "check.h"

/* What this node multicast, delivered back to it after the current step. */
struct harness {
	void *looped[MAX_LOOPED];
	size_t looped_len[MAX_LOOPED];
	size_t nlooped;
	bool persisted; /* repl said the state changed (persist it) */
};

static void h_persist(void *arg)
{
	((struct harness *)arg)->persisted = true;
}

static int h_send(void *arg, const void *buf, size_t len)
{
	struct harness *h = arg;
	void *copy;

	if (h->nlooped == MAX_LOOPED)
		return -EAGAIN; /* repl keeps it for repl_flush() */
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	h->looped[h->nlooped] = copy;
	h->looped_len[h->nlooped++] = len;
	return 0;
}

/* HV_FUZZ_LOG=1 shows repl's log: to see what a seed reaches */
static void h_log(void *arg, int level, const char *msg)
{
	static int show = -1;

	if (show < 0)
		show = getenv("HV_FUZZ_LOG") != NULL;
	if (show)
		fprintf(stderr, "repl: %d: %s\n", level, msg);
}

static const struct repl_ops h_ops = { .send = h_send, .persist = h_persist, .log = h_log };

static cluster_state_t *initial_state(void)
{
	static const char text[] =
		"{\"format\":2,\"version\":5,\"vms\":[{\"name\":\"keep\","
		"\"uuid\":\"00000000-0000-4000-8000-0000000000aa\",\"vcpus\":1,\"memory\":64,"
		"\"disks\":[\"iscsi://h/iqn.2026-01.org.example:k/1\"]}],"
		"\"nodes\":[{\"id\":1,\"name\":\"n1\",\"vcpus\":2,\"memory\":1024,"
		"\"state\":\"online\",\"ready\":true}]}";
	cluster_state_t *s = state_create();
	json_t *j = json_loads(text, 0, NULL);
	char err[512];

	if (!s || !j)
		fail("setup", "out of memory");
	if (state_from_json(s, j, err, sizeof(err)))
		fail("setup state refused", err);
	json_decref(j);
	return s;
}

static void check_round_trip(const cluster_state_t *s)
{
	json_t *written = state_to_json(s), *again;
	cluster_state_t *t = state_create();
	char err[512];

	if (!written || !t)
		fail("round trip", "out of memory");
	if (state_from_json(t, written, err, sizeof(err)))
		fail("the state does not load back", err);
	again = state_to_json(t);
	expect_equal(written, again, "the state changed in its round trip");
	json_decref(again);
	json_decref(written);
	state_destroy(t);
}

/* Deliver what this node sent, as from its own agent; what that sends comes next. */
static void loop_back(struct harness *h, repl_t *r, uint32_t local)
{
	for (int rounds = 0; h->nlooped && rounds < 4; rounds++) {
		struct harness now = *h;

		h->nlooped = 0;
		for (size_t i = 0; i < now.nlooped; i++) {
			repl_deliver(r, local, 100 + local, now.looped[i], now.looped_len[i]);
			free(now.looped[i]);
		}
		repl_flush(r);
	}
	for (size_t i = 0; i < h->nlooped; i++)
		free(h->looped[i]);
	h->nlooped = 0;
}

static void confchg(repl_t *r, uint32_t local, uint8_t aux, bool *rogue_joined)
{
	uint32_t members[5], pids[5];
	size_t n = 0;

	for (uint32_t id = 1; id <= 3; id++) {
		if (id != local && !(aux & (1u << (id - 1))))
			continue;
		members[n] = id;
		pids[n++] = 100 + id;
	}
	if (aux & 8) {
		/* a second process on the first member's node */
		members[n] = members[0];
		pids[n++] = ROGUE_PID;
		*rogue_joined = true;
	}
	repl_confchg(r, members, pids, n);
}

/* The whole message of a record: its payload, or a header and the payload as body. */
static uint8_t *message(unsigned int kind, const uint8_t *p, size_t len, size_t *mlen)
{
	static const uint16_t types[] = { 0, REPL_MSG_SYNC, REPL_MSG_CLOSE, REPL_MSG_OP };
	size_t hdr = kind ? REPL_HDR_LEN : 0;
	uint8_t *m = malloc(hdr + len + 1);

	if (!m)
		return NULL;
	if (kind) {
		uint8_t h[REPL_HDR_LEN] = { 'H', 'V', 'C', '1', REPL_FORMAT, 0, (uint8_t)types[kind], 0,
					    (uint8_t)len, (uint8_t)(len >> 8), 0, 0 };

		memcpy(m, h, REPL_HDR_LEN);
	}
	memcpy(m + hdr, p, len);
	*mlen = hdr + len;
	return m;
}

static bool is_member_now(uint32_t local, uint8_t members_aux, uint32_t id)
{
	return id >= 1 && id <= 3 && (id == local || (members_aux & (1u << (id - 1))));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h = { 0 };
	cluster_state_t *s;
	bool rogue_joined = false, quorate;
	uint8_t members_aux = 7;
	uint64_t now = 1000;
	uint32_t local;
	size_t pos = 1, nrec = 0;
	repl_t *r;

	if (size < 1)
		return 0;
	local = data[0] & 3 ? data[0] & 3 : 1;
	quorate = data[0] & 8;
	s = initial_state();
	r = repl_create(s, &h_ops, &h);
	if (!r)
		fail("setup", "out of memory");
	repl_set_local(r, local);
	if (data[0] & 4)
		repl_set_needs_state(r);
	repl_quorum(r, quorate);
	confchg(r, local, members_aux, &rogue_joined);
	loop_back(&h, r, local);

	while (pos + 4 <= size && nrec++ < MAX_RECORDS) {
		uint8_t ctl = data[pos], aux = data[pos + 1];
		size_t len = (size_t)data[pos + 2] | (size_t)data[pos + 3] << 8, mlen;
		uint32_t sender = ctl & 7, pid = ctl & 8 ? ROGUE_PID : 100 + sender;
		json_t *before = NULL, *after;
		bool was_synced;
		uint8_t *m;

		pos += 4;
		if (len > size - pos)
			len = size - pos;
		if (aux & 16) {
			quorate = !quorate;
			repl_quorum(r, quorate);
		}
		if (ctl & 0x40) {
			members_aux = aux & 7;
			confchg(r, local, aux, &rogue_joined);
			loop_back(&h, r, local);
		}
		if (ctl & 0x80) {
			repl_tick(r, now += 1);
			repl_tick(r, now += REPL_ROUND_TIMEOUT_MS + 1);
			loop_back(&h, r, local);
		}
		m = message((ctl >> 4) & 3, data + pos, len, &mlen);
		pos += len;
		if (!m)
			break;
		/* what must change nothing: a rogue that never joined, a node not a member */
		if ((pid == ROGUE_PID && !rogue_joined) || !is_member_now(local, members_aux, sender))
			before = state_to_json(s);
		was_synced = repl_is_synced(r);
		repl_deliver(r, sender, pid, m, mlen);
		free(m);
		if (before) {
			after = state_to_json(s);
			expect_equal(before, after, "a message of a rogue or a non-member changed "
						    "the state");
			if (repl_is_synced(r) != was_synced)
				fail("a message of a rogue or a non-member", "changed synced");
			json_decref(before);
			json_decref(after);
		}
		loop_back(&h, r, local);
		if (repl_is_synced(r) && repl_needs_state(r))
			fail("synced", "yet it still needs the state");
		if (h.persisted)
			check_round_trip(s);
		h.persisted = false;
	}
	repl_destroy(r);
	state_destroy(s);
	return 0;
}
