/*
 * Migration ops (see ops.h). A migration of a VM goes queued -> running ->
 * handoff -> (the target reports it running) completed; or it ends failed or
 * cancelled before the handoff, and the VM keeps running on the source. The
 * VM's assignment (node, epoch) changes only at the handoff, which the source
 * sends once its QEMU is gone and its LUNs are released: the target resumes
 * the VM only for that new epoch, so the VM never runs on two nodes.
 */
#include "ops_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "migstate.h"
#include "plan.h"

static const char *name_of(const cluster_state_t *s, uint32_t id)
{
	const struct node_info *n = state_node_find(s, id);

	return n ? n->name : "?";
}

/*
 * Where @def may go from its node: @to (0: the placement engine chooses). The
 * node, or 0 with @err naming the rule or resource that forbids it.
 */
static uint32_t mig_target(const cluster_state_t *s, const struct vm_def *def, uint32_t to,
			   char *err, size_t errlen)
{
	size_t nv = state_vm_count(s), nn = state_node_count(s), self = 0;
	const struct vm_status *st = state_vm_status(s, def->name);
	bool usable[STATE_MAX_NODES];
	struct plan_vm_req *reqs;
	struct plan_entry *plan;
	uint32_t node = 0;
	int rc;

	for (size_t i = 0; i < nn; i++) {
		const struct node_info *n = state_node_at(s, i);

		/* the others stay where they are; only @to (or any) may take this one */
		usable[i] = n->status == NODE_ONLINE && (n->id == st->node || !n->maintenance);
	}
	reqs = calloc(nv ? nv : 1, sizeof(*reqs));
	plan = calloc(nv ? nv : 1, sizeof(*plan));
	if (!reqs || !plan) {
		jv_fail(err, errlen, "vm %s: out of memory", def->name);
		goto out;
	}
	for (size_t i = 0; i < nv; i++) {
		const struct vm_def *o = state_vm_at(s, i);

		if (o == def) {
			self = i;
			reqs[i] = (struct plan_vm_req){ .need = PLAN_PLACE, .avoid = st->node,
							.only = to };
		} else {
			reqs[i].need = vm_holds_node(state_vm_status(s, o->name)) ? PLAN_STAY : PLAN_IGNORE;
		}
	}
	rc = plan_compute(s, usable, reqs, plan);
	if (rc) {
		jv_fail(err, errlen, "vm %s: the placement engine failed: %s", def->name,
			strerror(-rc));
		goto out;
	}
	node = plan[self].node;
	if (!node && to)
		jv_fail(err, errlen, "vm %s cannot go to node %s: %s", def->name, name_of(s, to),
			plan[self].reason[0] ? plan[self].reason : "the placement engine refused it");
	else if (!node)
		jv_fail(err, errlen, "vm %s: no other node can take it: %s", def->name,
			plan[self].reason[0] ? plan[self].reason : "the placement engine found none");
out:
	free(plan);
	free(reqs);
	return node;
}

static int check_target(const cluster_state_t *s, const struct vm_def *def,
			const struct vm_status *st, const char *to, uint32_t *id, char *err,
			size_t errlen)
{
	const struct node_info *n = state_node_by_name(s, to);

	if (!n) {
		jv_fail(err, errlen, "vm %s: node %.64s is not a node of the cluster", def->name, to);
		return -ENOENT;
	}
	if (n->id == st->node) {
		jv_fail(err, errlen, "vm %s already runs on node %s", def->name, n->name);
		return -EALREADY;
	}
	if (n->status != NODE_ONLINE || !n->ready) {
		jv_fail(err, errlen, "vm %s: node %s is not online (%s)", def->name, n->name,
			n->status == NODE_ONLINE ? "joining" : node_status_name(n->status));
		return -EHOSTDOWN;
	}
	if (n->maintenance) {
		jv_fail(err, errlen, "vm %s: node %s is in maintenance", def->name, n->name);
		return -EBUSY;
	}
	if (!state_node_takes_vms(n)) {
		jv_fail(err, errlen, "vm %s: node %s has no migration server", def->name, n->name);
		return -EOPNOTSUPP;
	}
	*id = n->id;
	return 0;
}

/* vm.migrate {name, to, mode, ms}: any node, for hvctl. */
int op_vm_migrate(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "to", "mode", "ms", NULL };
	const char *to = ops_str_arg(op, "to"), *mode = ops_str_arg(op, "mode");
	const struct node_info *src;
	const struct vm_def *def;
	struct vm_status *st;
	struct vm_migration m = { 0 };
	uint32_t target = 0;
	int rc;

	rc = jv_check_keys(op, keys, "vm.migrate", err, errlen);
	rc = rc ?: jv_u64(op, "ms", &m.asked_ms, err, errlen);
	if (rc)
		return rc;
	if (mig_mode_parse(mode ? mode : "live", &m.mode) || m.mode == MIG_SAVE)
		return jv_fail(err, errlen, "vm.migrate: mode '%.32s' unknown (live or quick)", mode);
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (st->mig.id) {
		jv_fail(err, errlen, "vm %s is already migrating (migration %" PRIu64 " to node %s, %s)",
			def->name, st->mig.id, name_of(s, st->mig.to), mig_phase_name(st->mig.phase));
		return -EBUSY;
	}
	if (!st->want_running || st->state != VM_HA_STARTED || !st->node) {
		jv_fail(err, errlen, "vm %s is not running (%s): there is nothing to migrate",
			def->name, vm_ha_state_name(st->state));
		return -EINVAL;
	}
	src = state_node_find(s, st->node);
	if (!src || !src->mig_endpoint[0] || !src->mig_key[0]) {
		jv_fail(err, errlen, "vm %s: its node %s has no migration server", def->name,
			name_of(s, st->node));
		return -EOPNOTSUPP;
	}
	if (to && to[0]) {
		rc = check_target(s, def, st, to, &target, err, errlen);
		if (rc)
			return rc;
	}
	target = mig_target(s, def, target, err, errlen);
	if (!target)
		return -ENOSPC;
	if (!state_node_takes_vms(state_node_find(s, target))) {
		jv_fail(err, errlen, "vm %s: node %s cannot take a migration now", def->name,
			name_of(s, target));
		return -EHOSTDOWN;
	}
	m.id = state_version(s) + 1;
	m.phase = MIG_QUEUED;
	m.from = st->node;
	m.to = target;
	st->mig = m;
	state_bump(s);
	return 0;
}

static void mig_finish(struct vm_status *st, enum mig_result result, uint64_t total_ms,
		       const char *reason)
{
	struct vm_mig_last *l = &st->mig_last;

	*l = (struct vm_mig_last){ .id = st->mig.id, .mode = st->mig.mode, .result = result,
				   .from = st->mig.from, .to = st->mig.to, .total_ms = total_ms,
				   .cause = st->mig.cause, .progress = st->mig.progress };
	snprintf(l->reason, sizeof(l->reason), "%s", reason);
	memset(&st->mig, 0, sizeof(st->mig));
}

void mig_cancel_queued(struct vm_status *st, const char *reason)
{
	mig_finish(st, MIG_CANCELLED, 0, reason);
}

/*
 * A quick migration's guest stands still from the source's pause until the target resumes
 * it. The source's figure ends when it heard that the target had loaded the stream; the
 * target's starts then and ends at its resume. Once per report (a report sent again is
 * not counted again: the caller checks).
 */
void mig_target_resumed(struct vm_status *st, uint32_t node, uint64_t resume_ms)
{
	if (st->mig.phase == MIG_HANDOFF && st->mig.to == node && st->mig.mode == MIG_QUICK)
		st->mig.progress.downtime_ms += resume_ms;
}

/*
 * mgr.move {name, to, mode, cause, epoch, ms}: the leader queues a migration
 * for a drain or a failback, decided in @epoch; the checks of an admin's
 * vm.migrate to @to, and a drain's source must still be in maintenance.
 */
int op_mgr_move(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op",    "req",   "name", "to", "mode",
					     "cause", "epoch", "ms",   NULL };
	const char *to = ops_str_arg(op, "to"), *mode = ops_str_arg(op, "mode");
	const char *cause = ops_str_arg(op, "cause");
	const struct node_info *src;
	const struct vm_def *def;
	struct vm_status *st;
	struct vm_migration m = { 0 };
	uint64_t epoch = 0;
	uint32_t target = 0;
	int rc;

	rc = jv_check_keys(op, keys, "mgr.move", err, errlen);
	rc = rc ?: jv_u64(op, "ms", &m.asked_ms, err, errlen);
	rc = rc ?: jv_u64(op, "epoch", &epoch, err, errlen);
	if (rc)
		return rc;
	if (mig_mode_parse(mode, &m.mode) || m.mode == MIG_SAVE ||
	    mig_cause_parse(cause, &m.cause) || m.cause == MIG_BY_ADMIN || !to)
		return jv_fail(err, errlen,
			       "mgr.move: a target node, mode live or quick, cause drain or failback");
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (st->epoch != epoch) {
		jv_fail(err, errlen, "vm %s: move decided in epoch %" PRIu64 " is stale (now %" PRIu64 ")",
			def->name, epoch, st->epoch);
		return -ESTALE;
	}
	if (st->mig.id) {
		jv_fail(err, errlen, "vm %s is already migrating (migration %" PRIu64 ")", def->name,
			st->mig.id);
		return -EBUSY;
	}
	if (!st->want_running || st->state != VM_HA_STARTED || !st->node) {
		jv_fail(err, errlen, "vm %s is not running (%s)", def->name,
			vm_ha_state_name(st->state));
		return -ESTALE;
	}
	src = state_node_find(s, st->node);
	if (!src || !src->mig_endpoint[0] || !src->mig_key[0]) {
		jv_fail(err, errlen, "vm %s: its node %s has no migration server", def->name,
			name_of(s, st->node));
		return -EOPNOTSUPP;
	}
	if (m.cause == MIG_BY_DRAIN && !src->maintenance) {
		jv_fail(err, errlen, "vm %s: node %s is no longer in maintenance: no drain move",
			def->name, src->name);
		return -ESTALE;
	}
	rc = check_target(s, def, st, to, &target, err, errlen);
	if (rc)
		return rc;
	m.id = state_version(s) + 1;
	m.phase = MIG_QUEUED;
	m.from = st->node;
	m.to = target;
	st->mig = m;
	st->held[0] = '\0';
	if (m.cause == MIG_BY_DRAIN && !st->home)
		st->home = st->node;
	state_bump(s);
	return 0;
}

/* mgr.mig-cancel {name, id, reason}: the leader cancels a running migration (its timeout). */
int op_mgr_mig_cancel(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "id", "reason", NULL };
	const struct vm_def *def;
	struct vm_status *st;
	char why[sizeof(st->mig.cancel_why)] = "";
	uint64_t id = 0;
	int rc;

	rc = jv_check_keys(op, keys, "mgr.mig-cancel", err, errlen);
	rc = rc ?: jv_u64(op, "id", &id, err, errlen);
	rc = rc ?: jv_str(op, "reason", why, sizeof(why), err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (st->mig.id != id || st->mig.phase != MIG_RUNNING) {
		jv_fail(err, errlen, "vm %s: migration %" PRIu64 " is not running", def->name, id);
		return -ESTALE;
	}
	st->mig.cancel = true;
	memcpy(st->mig.cancel_why, why, sizeof(why));
	state_bump(s);
	return 0;
}

/* vm.migrate-cancel {name}: an admin; a running one is stopped by its source. */
int op_vm_migrate_cancel(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", NULL };
	const struct vm_def *def;
	struct vm_status *st;
	int rc;

	rc = jv_check_keys(op, keys, "vm.migrate-cancel", err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	switch (st->mig.phase) {
	case MIG_NONE:
		jv_fail(err, errlen, "vm %s has no migration in flight", def->name);
		return -ENOENT;
	case MIG_HANDOFF:
		jv_fail(err, errlen, "vm %s: too late to cancel: node %s is taking it over",
			def->name, name_of(s, st->mig.to));
		return -EBUSY;
	case MIG_QUEUED:
		mig_finish(st, MIG_CANCELLED, 0, "cancelled by an admin before it started");
		break;
	case MIG_RUNNING:
		st->mig.cancel = true;
		break;
	}
	state_bump(s);
	return 0;
}

/*
 * The migration an op of its source (or of the leader, @leader_too) names,
 * after checking the op's @keys; *p gets the op's "progress", or the one the
 * state has when it carries none. NULL with *rc and @err: nothing changed.
 */
static struct vm_status *source_mig(cluster_state_t *s, const json_t *op,
				    const struct op_ctx *ctx, const char *const *keys,
				    bool leader_too, struct mig_progress *p, int *rc, char *err,
				    size_t errlen)
{
	const struct vm_def *def;
	const json_t *pj = json_object_get(op, "progress");
	struct vm_status *st;
	uint64_t id = 0;

	*rc = jv_check_keys(op, keys, ops_op_name(op), err, errlen);
	if (*rc)
		return NULL;
	*rc = -ESTALE;
	def = ops_named_vm(s, op, err, errlen);
	if (!def || jv_u64(op, "id", &id, err, errlen))
		return NULL;
	st = state_vm_status_mut(s, def->name);
	if (!st->mig.id || st->mig.id != id) {
		jv_fail(err, errlen, "vm %s: migration %" PRIu64 " is not in flight", def->name, id);
		return NULL;
	}
	if (ctx->sender != st->mig.from && !(leader_too && ctx->sender == ctx->leader)) {
		jv_fail(err, errlen, "vm %s: %s from node %u, not the source of migration %" PRIu64,
			def->name, ops_op_name(op), ctx->sender, id);
		return NULL;
	}
	*p = st->mig.progress;
	*rc = pj ? mig_progress_from_json(pj, p, err, errlen) : 0;
	return *rc ? NULL : st;
}

/* vm.save {name, ms}: write the running VM's state to its state LUN, then stop it. */
int op_vm_save(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "ms", NULL };
	const struct vm_def *def;
	struct vm_status *st;
	uint64_t ms = 0;
	int rc;

	rc = jv_check_keys(op, keys, "vm.save", err, errlen);
	rc = rc ?: jv_u64(op, "ms", &ms, err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (!def->state_lun[0]) {
		jv_fail(err, errlen, "vm %s has no state LUN to save to (vm create --state-lun URL)",
			def->name);
		return -EINVAL;
	}
	if (st->mig.id) {
		jv_fail(err, errlen, "vm %s is migrating (migration %" PRIu64 "): save it afterwards",
			def->name, st->mig.id);
		return -EBUSY;
	}
	if (!st->want_running || st->state != VM_HA_STARTED || !st->node) {
		jv_fail(err, errlen, "vm %s is not running (%s): there is nothing to save", def->name,
			vm_ha_state_name(st->state));
		return -EINVAL;
	}
	st->mig = (struct vm_migration){ .id = state_version(s) + 1, .mode = MIG_SAVE,
					 .phase = MIG_QUEUED, .from = st->node, .asked_ms = ms };
	state_bump(s);
	return 0;
}

/*
 * vm.restore {name, on}: start a saved VM from its state (on that node, or
 * where the manager places it). A plain vm.want running does the same.
 */
int op_vm_restore(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "on", NULL };
	const char *on = ops_str_arg(op, "on");
	const struct vm_def *def;
	struct vm_status *st;
	uint32_t node = 0;
	int rc;

	rc = jv_check_keys(op, keys, "vm.restore", err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (!st->saved) {
		jv_fail(err, errlen, "vm %s has no saved state (vm save %s first)", def->name,
			def->name);
		return -ENOENT;
	}
	if (st->want_running || st->state != VM_HA_STOPPED) {
		jv_fail(err, errlen, "vm %s is %s: restore starts a stopped VM", def->name,
			vm_ha_state_name(st->state));
		return -EBUSY;
	}
	if (on && on[0]) {
		rc = check_target(s, def, st, on, &node, err, errlen);
		if (rc)
			return rc;
		node = mig_target(s, def, node, err, errlen);
		if (!node)
			return -ENOSPC;
		st->node = node;
		st->epoch++;
		st->state = VM_HA_STARTING;
		st->takeover = false;
		snprintf(st->reason, sizeof(st->reason), "restored on node %s, as asked",
			 name_of(s, node));
	}
	st->want_running = true;
	state_bump(s);
	return 0;
}

/* mig.progress {name, id, progress}: the source, about once a second. */
int op_mig_progress(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		    size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "id", "progress", NULL };
	struct mig_progress p;
	struct vm_status *st;
	int rc;

	st = source_mig(s, op, ctx, keys, false, &p, &rc, err, errlen);
	if (!st)
		return rc;
	if (st->mig.phase != MIG_RUNNING)
		return jv_fail(err, errlen, "migration %" PRIu64 " is %s, not running", st->mig.id,
			       mig_phase_name(st->mig.phase));
	st->mig.progress = p;
	state_bump(s);
	return 0;
}

/*
 * mig.handoff {name, id, progress}: the source's QEMU is gone and its LUNs
 * released: the VM is the target's now, in a new epoch.
 */
int op_mig_handoff(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		   size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "id", "progress", NULL };
	struct mig_progress p;
	struct vm_status *st;
	int rc;

	st = source_mig(s, op, ctx, keys, false, &p, &rc, err, errlen);
	if (!st)
		return rc;
	if (st->mig.phase != MIG_RUNNING || st->node != st->mig.from ||
	    st->state != VM_HA_STARTED)
		return jv_fail(err, errlen, "migration %" PRIu64 ": handoff while it is %s and the VM "
					    "%s on node %u: refused",
			       st->mig.id, mig_phase_name(st->mig.phase),
			       vm_ha_state_name(st->state), st->node);
	st->mig.progress = p;
	st->mig.phase = MIG_HANDOFF;
	st->node = st->mig.to;
	st->epoch++;
	st->state = VM_HA_STARTING;
	st->takeover = false;
	st->restarts = 0;
	st->failed_node = 0;
	st->frozen = false; /* it runs on the target now: nothing waits for the source */
	snprintf(st->reason, sizeof(st->reason), "%s migration %" PRIu64 " from node %s",
		 mig_mode_name(st->mig.mode), st->mig.id, name_of(s, st->mig.from));
	state_bump(s);
	return 0;
}

/* mig.saved {name, id, progress}: the state is on the LUN and the VM stopped; it is saved. */
int op_mig_saved(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		 size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "id", "progress", NULL };
	struct mig_progress p;
	struct vm_status *st;
	int rc;

	st = source_mig(s, op, ctx, keys, false, &p, &rc, err, errlen);
	if (!st)
		return rc;
	if (st->mig.mode != MIG_SAVE || st->mig.phase != MIG_RUNNING)
		return jv_fail(err, errlen, "migration %" PRIu64 " is no save in flight", st->mig.id);
	st->mig.progress = p;
	st->saved = true;
	st->saved_bytes = st->mig.progress.raw_bytes;
	st->want_running = false;
	st->state = VM_HA_STOPPED;
	st->node = 0;
	st->epoch++;
	snprintf(st->reason, sizeof(st->reason), "saved to its state LUN (%" PRIu64 " KiB of state)",
		 st->saved_bytes >> 10);
	mig_finish(st, MIG_COMPLETED, st->mig.progress.elapsed_ms, "");
	state_bump(s);
	return 0;
}

/*
 * mig.end {name, id, result, reason, progress}: the source before the
 * handoff; mgr.mig-end, the same from the leader (a node left, a timeout).
 */
int op_mig_end(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
	       size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "id", "result", "reason", "progress",
					     NULL };
	const char *result = ops_str_arg(op, "result");
	char reason[STATE_REASON_MAX] = "";
	struct mig_progress p;
	struct vm_status *st;
	int rc;

	st = source_mig(s, op, ctx, keys, true, &p, &rc, err, errlen);
	if (!st)
		return rc;
	rc = jv_str(op, "reason", reason, sizeof(reason), err, errlen);
	if (rc)
		return rc;
	if (!result || (strcmp(result, "failed") && strcmp(result, "cancelled")))
		return jv_fail(err, errlen, "mig.end: result must be failed or cancelled");
	if (st->mig.phase == MIG_HANDOFF)
		return jv_fail(err, errlen, "migration %" PRIu64 " is past its handoff: it cannot "
					    "end %s",
			       st->mig.id, result);
	st->mig.progress = p;
	mig_finish(st, result[0] == 'f' ? MIG_FAILED : MIG_CANCELLED, st->mig.progress.elapsed_ms,
		   reason);
	state_bump(s);
	return 0;
}

/*
 * mgr.mig {name, id, ms}: the leader starts a queued migration (both nodes
 * have a slot) at @ms on its clock; its timeout counts from then.
 */
int op_mgr_mig(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "id", "ms", NULL };
	const struct vm_def *def;
	struct vm_status *st;
	uint64_t id = 0, ms = 0;
	int rc;

	rc = jv_check_keys(op, keys, "mgr.mig", err, errlen);
	rc = rc ?: jv_u64(op, "id", &id, err, errlen);
	rc = rc ?: jv_u64(op, "ms", &ms, err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (st->mig.id != id || st->mig.phase != MIG_QUEUED)
		return jv_fail(err, errlen, "vm %s: migration %" PRIu64 " is not queued", def->name,
			       id);
	st->mig.phase = MIG_RUNNING;
	st->mig.started_ms = ms;
	state_bump(s);
	return 0;
}

/*
 * After any op: a migration whose VM is no longer where it must be for it
 * ends. Before the handoff the VM must stay started on the source; after it,
 * assigned to the target until the target reports it running (completed).
 */
void mig_settle(cluster_state_t *s)
{
	char why[STATE_REASON_MAX];

	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);
		struct vm_status *st = state_vm_status_mut(s, def->name);
		struct vm_migration *m = &st->mig;

		/* restored: the state on the LUN is spent */
		if (st->saved && st->state == VM_HA_STARTED)
			st->saved = false;
		/* back home (failback, or moved there otherwise): nothing to fail back */
		if (st->home && st->home == st->node && st->state == VM_HA_STARTED && !m->id)
			st->home = 0;
		if (!m->id)
			continue;
		if (m->phase == MIG_HANDOFF) {
			if (st->node == m->to && st->state == VM_HA_STARTED) {
				mig_finish(st, MIG_COMPLETED, m->progress.elapsed_ms, "");
				if (st->home == st->node)
					st->home = 0;
			} else if (st->node != m->to || st->state != VM_HA_STARTING) {
				snprintf(why, sizeof(why), "node %s could not resume it after the "
							   "handoff (%s): %.300s",
					 name_of(s, m->to), vm_ha_state_name(st->state),
					 st->event_reason[0] ? st->event_reason : st->reason);
				mig_finish(st, MIG_FAILED, m->progress.elapsed_ms, why);
			}
			continue;
		}
		if (st->want_running && st->state == VM_HA_STARTED && st->node == m->from)
			continue;
		snprintf(why, sizeof(why), "the VM is %s%s on node %s now",
			 st->want_running ? "" : "not wanted, ", vm_ha_state_name(st->state),
			 name_of(s, st->node));
		mig_finish(st, MIG_FAILED, m->progress.elapsed_ms, why);
	}
}
