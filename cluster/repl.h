/*
 * Replication of the cluster state over CPG: ops in agreed order, applied by
 * every member alike, and a sync round at every configuration change.
 *
 * Wire format (every message, every type): a 16-byte header, all little
 * endian: magic "HVC1" (0x31435648), u16 format (REPL_FORMAT), u16 type,
 * u32 body length, u32 zero; then the body, a JSON object. Anything else -
 * a short or long message, an unknown format or type, a body that is not a
 * JSON object - is refused and logged, never applied.
 *
 * Sync: at a configuration change every member multicasts its whole state
 * with its version and whether it was a synced member of a quorate
 * configuration until then. When the messages of all members are in, each
 * member adopts the same winner: a quorate side's state first (a joiner
 * adopts the quorate side's), then the highest version (after a cold start
 * of every node), then the lowest node id. Ops delivered meanwhile wait and
 * are applied after the winner's state, in their order.
 *
 * A node that lost its own copy (a corrupt state file: it starts empty) says
 * so in its sync ("needs_state": true, only then): such a state ranks below
 * every other, and that node stays unsynced - it decides, persists and
 * submits nothing - until it adopted the state of a node that has one. When
 * every member of a round needs the state, nobody is synced.
 *
 * No I/O here: sending, persisting and logging go through the ops table.
 */
#ifndef HV_CLUSTER_REPL_H
#define HV_CLUSTER_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "state.h"

#define REPL_MAGIC 0x31435648u /* "HVC1" */
#define REPL_FORMAT 1
#define REPL_HDR_LEN 16
#define REPL_BODY_MAX (32u << 20)

enum repl_msg_type {
	REPL_MSG_OP = 1,
	REPL_MSG_SYNC = 2,
	REPL_MSG_CLOSE = 3, /* end a sync round that a silent member holds up */
};

typedef struct repl repl_t;

struct repl_ops {
	/* Multicast @len bytes in agreed order. 0 or -errno. */
	int (*send)(void *arg, const void *buf, size_t len);
	/*
	 * @op was delivered from @sender and applied (@rc 0) or refused (@rc
	 * -errno, @err why). Valid only during the call.
	 */
	void (*applied)(void *arg, const json_t *op, uint32_t sender, int rc, const char *err);
	/* A sync round ended: the state may have been replaced as a whole. */
	void (*synced)(void *arg, uint32_t winner, uint64_t version);
	/* The state changed: persist it. */
	void (*persist)(void *arg);
	/* A line for the log; @level is a syslog priority. */
	void (*log)(void *arg, int level, const char *msg);
};

/* @state is borrowed and changed in place. NULL on allocation failure. */
repl_t *repl_create(cluster_state_t *state, const struct repl_ops *ops, void *arg);
void repl_destroy(repl_t *r);

/*
 * This node has no trustworthy state (its file was corrupt): it must get one
 * from another node before it counts as synced. Set before the first round;
 * cleared by the round that adopts a peer's state.
 */
void repl_set_needs_state(repl_t *r);
bool repl_needs_state(const repl_t *r);

/* This node's id (known once corosync answered). */
void repl_set_local(repl_t *r, uint32_t id);
/* The quorum flag changed; a node that loses quorum stops counting as a quorate side. */
void repl_quorum(repl_t *r, bool quorate);
/*
 * A CPG configuration change (in order with the messages): start a sync
 * round. @members may list a node twice (two processes, @pids): it counts
 * once, and the process that spoke for it before keeps doing so (a process
 * joining beside the agent cannot take its place); @pids may be NULL.
 */
void repl_confchg(repl_t *r, const uint32_t *members, const uint32_t *pids, size_t n);
/*
 * A CPG message from process @pid of node @sender, in agreed order; from the
 * network: validated here. Only the process of each node that took part in
 * the current sync round speaks for that node: another process joined to the
 * group (even on a member node) is ignored.
 */
void repl_deliver(repl_t *r, uint32_t sender, uint32_t pid, const void *msg, size_t len);
/* Lost the group (corosync went away): nothing is synced until the next confchg. */
void repl_reset(repl_t *r);

/*
 * Time passes (call about every second). A sync round still waiting for a
 * member after REPL_ROUND_TIMEOUT_MS is closed: the lowest member that synced
 * multicasts a close, and every node, at that same point of the agreed order,
 * ends the round with the states it has; the silent member speaks for nothing.
 */
#define REPL_ROUND_TIMEOUT_MS 10000
void repl_tick(repl_t *r, uint64_t now_ms);

bool repl_is_synced(const repl_t *r);
/* Lowest node id of the current configuration (0 none): who may send mgr.* ops. */
uint32_t repl_leader(const repl_t *r);

/*
 * Multicast @op (borrowed). -EAGAIN while a sync round runs or before the
 * first; a message corosync cannot take yet waits for repl_flush() (0).
 */
int repl_submit(repl_t *r, const json_t *op);

/*
 * Messages corosync refused with "try again" wait in order; send them now.
 * 0 when none is left, -EAGAIN when some still wait (call again soon).
 */
int repl_flush(repl_t *r);
bool repl_has_unsent(const repl_t *r);

/* Encode a message (header + body) into a new buffer; NULL on failure. */
void *repl_encode(enum repl_msg_type type, const json_t *body, size_t *len);
/*
 * Decode and validate a message: 0 with *type and *body (new reference), or
 * -EPROTO/-EINVAL with @err naming what is wrong.
 */
int repl_decode(const void *msg, size_t len, enum repl_msg_type *type, json_t **body, char *err,
		size_t errlen);

#endif
