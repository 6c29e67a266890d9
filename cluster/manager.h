/*
 * The manager: the leader's decisions, as a pure function of the cluster
 * state and the membership at a given time. No I/O, no clock of its own: the
 * caller gives the time, sends the ops it returns through CPG (they are
 * applied like any other op, so every node sees the decision), and carries
 * out the fencing it asks for. A new leader calls the same function on the
 * same state, so it picks up whatever the old one left half done.
 *
 * Decisions, per node: gone from the quorate membership -> fence-pending
 * (its VMs -> fence); fenced or joining, back in the membership and clean ->
 * online. Per VM: fence -> recovery once its node is fenced; recovery and
 * wanted-but-stopped VMs are placed in priority order (placement.c) and
 * assigned with a new epoch; reports of the assigned node move starting ->
 * started, stopping -> stopped; a failed QEMU restarts on its node up to
 * restart_max times in restart_window_s, then moves once, then -> error.
 */
#ifndef HV_CLUSTER_MANAGER_H
#define HV_CLUSTER_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "state.h"

struct mgr_env {
	uint64_t now_ms;	 /* the leader's clock */
	const uint32_t *members; /* the quorate membership, node ids */
	size_t nmembers;
};

/* One line per decision, naming the VM or node, the epoch and why. */
typedef void (*mgr_log_fn)(void *arg, const char *line);

struct mgr_result {
	json_t *ops;		   /* array of ops to send, in order (new reference) */
	uint32_t fence[STATE_MAX_NODES]; /* nodes to fence now (fence-pending) */
	size_t nfence;
};

/*
 * Decide. @res->ops is a new array the caller owns (json_decref). Returns 0,
 * or -ENOMEM. Deterministic: the same state, members and time give the same
 * ops and the same log.
 */
int manager_step(const cluster_state_t *s, const struct mgr_env *env, struct mgr_result *res,
		 mgr_log_fn log, void *arg);

#endif
