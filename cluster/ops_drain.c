/*
 * Maintenance ops (see ops.h): node.drain puts a node in maintenance (the
 * manager then moves its VMs off, drain.c), node.resume ends it, node.freeze
 * (a node about to stop, shutdown_policy freeze) keeps its VMs for its
 * return, mgr.held records what the manager found for a VM of a drain.
 */
#include "ops_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jsonv.h"

static struct node_info *named_node(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	const char *name = ops_str_arg(op, "node");
	const struct node_info *n = name ? state_node_by_name(s, name) : NULL;

	if (!name) {
		jv_fail(err, errlen, "%s: \"node\" must be a node name", ops_op_name(op));
		return NULL;
	}
	if (!n) {
		jv_fail(err, errlen, "%s: node %.64s is not a node of the cluster", ops_op_name(op),
			name);
		return NULL;
	}
	return state_node_mut(s, n->id);
}

/* The node an op that only a node sends of itself names, after checking @keys; NULL with *@rc. */
static struct node_info *own_node(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx,
				  const char *const *keys, int *rc, char *err, size_t errlen)
{
	struct node_info *n;

	*rc = jv_check_keys(op, keys, ops_op_name(op), err, errlen);
	if (*rc)
		return NULL;
	*rc = -ENOENT;
	n = named_node(s, op, err, errlen);
	if (n && ctx->sender != n->id) {
		*rc = jv_fail(err, errlen, "%s of node %s sent by node %u: only a node sends it of "
					   "itself",
			      ops_op_name(op), n->name, ctx->sender);
		return NULL;
	}
	return n;
}

/*
 * node.drain {node, force, auto}: an admin, or the node itself as it stops
 * (auto: its maintenance ends when it is back). Draining again (say with
 * force) starts over: VMs that were held are tried again.
 */
int op_node_drain(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		  size_t errlen)
{
	static const char *const keys[] = { "op", "req", "node", "force", "auto", NULL };
	bool force = false, self = false;
	struct node_info *n;
	int rc;

	rc = jv_check_keys(op, keys, "node.drain", err, errlen);
	rc = rc ?: jv_bool(op, "force", &force, err, errlen);
	rc = rc ?: jv_bool(op, "auto", &self, err, errlen);
	if (rc)
		return rc;
	n = named_node(s, op, err, errlen);
	if (!n)
		return -ENOENT;
	if (self && ctx->sender != n->id)
		return jv_fail(err, errlen,
			       "node.drain of node %s on its shutdown, sent by node %u", n->name,
			       ctx->sender);
	/* whoever drains last decides how it ends: an admin's drain ends with node resume */
	n->maint_auto = self ? MAINT_BY_SHUTDOWN : MAINT_BY_ADMIN;
	n->maintenance = true;
	n->drain_force = n->drain_force || force;
	n->drain_id = state_version(s);
	for (size_t i = 0; i < state_vm_count(s); i++) {
		struct vm_status *st = state_vm_status_mut(s, state_vm_at(s, i)->name);

		if (st->node == n->id)
			st->held[0] = '\0';
		/* nothing moves in any more: a migration to it still waiting for a slot ends */
		if (st->mig.phase == MIG_QUEUED && st->mig.to == n->id)
			mig_cancel_queued(st, "its target went into maintenance (node drain) before it began");
	}
	state_bump(s);
	return 0;
}

/*
 * node.resume {node}: an admin; mgr.resume {node, drain_id}: the leader, for
 * a node back from the shutdown it drained itself for (that drain, not a
 * later one).
 */
int op_node_resume(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "node", "drain_id", NULL };
	bool leader = !strcmp(ops_op_name(op), "mgr.resume");
	uint64_t drain_id = 0;
	struct node_info *n;
	int rc;

	rc = jv_check_keys(op, keys, ops_op_name(op), err, errlen);
	rc = rc ?: jv_u64(op, "drain_id", &drain_id, err, errlen);
	if (rc)
		return rc;
	if (!leader && json_object_get(op, "drain_id"))
		return jv_fail(err, errlen, "node.resume: drain_id is the leader's (mgr.resume)");
	n = named_node(s, op, err, errlen);
	if (!n)
		return -ENOENT;
	if (!n->maintenance) {
		jv_fail(err, errlen, "node %s is not in maintenance", n->name);
		return -EALREADY;
	}
	if (leader && (n->maint_auto != MAINT_NODE_LEFT || n->drain_id != drain_id)) {
		jv_fail(err, errlen, "node %s: decision to end the maintenance of drain %llu is stale",
			n->name, (unsigned long long)drain_id);
		return -ESTALE;
	}
	n->maintenance = false;
	n->drain_force = false;
	n->maint_auto = MAINT_BY_ADMIN;
	n->drain_id = 0;
	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);
		struct vm_status *st = state_vm_status_mut(s, def->name);

		if (st->node == n->id)
			st->held[0] = '\0';
		/* no failback: the drain's placement is where it lives now */
		if (st->home == n->id && def->failback == VM_FAILBACK_NONE)
			st->home = 0;
		/* a drain migration still waiting for a slot is not needed any more */
		if (st->mig.phase == MIG_QUEUED && st->mig.cause == MIG_BY_DRAIN &&
		    st->mig.from == n->id) {
			mig_cancel_queued(
				st, "the node left maintenance (node resume) before it began");
			if (st->home == n->id)
				st->home = 0;
		}
	}
	state_bump(s);
	return 0;
}

/* node.freeze {node, ms}: the node itself, about to stop its VMs and leave; they wait for it. */
int op_node_freeze(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		   size_t errlen)
{
	static const char *const keys[] = { "op", "req", "node", "ms", NULL };
	struct node_info *n;
	uint64_t ms = 0;
	int rc;

	rc = jv_u64(op, "ms", &ms, err, errlen);
	n = rc ? NULL : own_node(s, op, ctx, keys, &rc, err, errlen);
	if (!n)
		return rc;
	for (size_t i = 0; i < state_vm_count(s); i++) {
		struct vm_status *st = state_vm_status_mut(s, state_vm_at(s, i)->name);

		if (st->node == n->id && st->want_running &&
		    (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED)) {
			st->frozen = true;
			st->frozen_ms = ms;
		}
	}
	state_bump(s);
	return 0;
}

/* Is any VM assigned to node @id, or migrating to or from it? */
static bool runs_any(const cluster_state_t *s, uint32_t id)
{
	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_status *st = state_vm_status(s, state_vm_at(s, i)->name);

		if ((st->node == id && st->state != VM_HA_STOPPED && st->state != VM_HA_ERROR) ||
		    (st->mig.id && (st->mig.from == id || st->mig.to == id)))
			return true;
	}
	return false;
}

bool state_node_runs_any(const cluster_state_t *s, uint32_t id)
{
	return runs_any(s, id);
}

/*
 * node.leave {node}: the node itself, about to stop cleanly, runs nothing (no
 * VM assigned, none migrating to or from it, no QEMU left). From now on it
 * takes nothing, and when it leaves it is offline: nothing to fence. Refused
 * while anything is assigned to it: then its departure is a failure's.
 */
int op_node_leave(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		  size_t errlen)
{
	static const char *const keys[] = { "op", "req", "node", NULL };
	struct node_info *n;
	int rc;

	n = own_node(s, op, ctx, keys, &rc, err, errlen);
	if (!n)
		return rc;
	if (runs_any(s, n->id)) {
		jv_fail(err, errlen, "node %s still has VMs: it is fenced when it leaves", n->name);
		return -EBUSY;
	}
	n->leaving = true;
	state_bump(s);
	return 0;
}

/* mgr.held {name, held, home}: why a drain leaves the VM where it is; where failback goes. */
int op_mgr_held(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "held", "home", NULL };
	const struct vm_def *def;
	struct vm_status *st, n;
	int rc;

	rc = jv_check_keys(op, keys, "mgr.held", err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	n = *st;
	rc = jv_str(op, "held", n.held, sizeof(n.held), err, errlen);
	rc = rc ?: jv_u32(op, "home", &n.home, err, errlen);
	if (rc)
		return rc;
	if (n.home && !state_node_find(s, n.home))
		return jv_fail(err, errlen, "vm %s: home node %u unknown", def->name, n.home);
	*st = n;
	state_bump(s);
	return 0;
}
