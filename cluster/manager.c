#include "manager.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain.h"
#include "jsonv.h"
#include "plan.h"

struct step {
	const cluster_state_t *s;
	const struct mgr_env *env;
	struct mgr_result *res;
	mgr_log_fn log;
	void *arg;
	int err;
};

__attribute__((format(printf, 2, 3))) static void say(struct step *x, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!x->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	x->log(x->arg, line);
}

static bool is_member(const struct mgr_env *env, uint32_t id)
{
	for (size_t i = 0; i < env->nmembers; i++)
		if (env->members[i] == id)
			return true;
	return false;
}

static const char *node_name(const cluster_state_t *s, uint32_t id)
{
	const struct node_info *n = state_node_find(s, id);

	return n ? n->name : "none";
}

static void emit(struct step *x, json_t *op)
{
	if (!op || json_array_append_new(x->res->ops, op))
		x->err = -ENOMEM;
}

/* --- migrations ------------------------------------------------------------------ */

static bool node_up(const struct step *x, uint32_t id)
{
	const struct node_info *n = state_node_find(x->s, id);

	return n && n->status == NODE_ONLINE && is_member(x->env, id);
}

static void mig_end(struct step *x, const struct vm_def *def, const struct vm_migration *m,
		    const char *why)
{
	say(x, "vm %s: migration %" PRIu64 " (%s -> %s) failed: %s", def->name, m->id,
	    node_name(x->s, m->from), node_name(x->s, m->to), why);
	/* a leader op (mgr.*): the leader counts its decisions in flight by that prefix */
	emit(x, json_pack("{s:s,s:s,s:I,s:s,s:s}", "op", "mgr.mig-end", "name", def->name, "id",
			  (json_int_t)m->id, "result", "failed", "reason", why));
}

static unsigned int slots_used(const struct step *x, uint32_t id, const uint32_t *started,
			       size_t nstarted)
{
	unsigned int n = state_migrations_on(x->s, id);

	for (size_t i = 0; i < nstarted; i++)
		n += started[i] == id;
	return n;
}

static bool was_started(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * A running migration takes too long: counted from its start, not from when
 * it was asked, since a queued one may wait long for a slot (a drain of many
 * VMs). A state from before started_ms counts from the request.
 */
/* A cancelled migration's source has this long to stop it before the leader ends it. */
#define MIG_CANCEL_GRACE_MS 60000

/* Running longer than migrate_timeout_s (plus @grace_ms), from its start. */
static bool timed_out(const struct step *x, const struct vm_migration *m, uint64_t grace_ms)
{
	uint64_t since = m->started_ms ? m->started_ms : m->asked_ms;

	return m->phase == MIG_RUNNING && since && x->env->now_ms > since &&
	       x->env->now_ms - since >
		       (uint64_t)state_settings(x->s)->mig_timeout_s * 1000 + grace_ms;
}

/*
 * Queued migrations start when both nodes have a free slot (oldest first: the
 * lowest id); one whose node left, or that runs too long, ends failed (the
 * source then cancels and the VM goes on running there).
 */
static void decide_migrations(struct step *x)
{
	const struct cluster_settings *cs = state_settings(x->s);
	uint32_t started[2 * STATE_MAX_NODES];
	uint64_t ids[STATE_MAX_NODES];
	size_t nstarted = 0;
	char why[256];

	for (;;) {
		const struct vm_def *best = NULL;
		const struct vm_migration *bm = NULL;

		for (size_t i = 0; i < state_vm_count(x->s); i++) {
			const struct vm_def *def = state_vm_at(x->s, i);
			const struct vm_migration *m = &state_vm_status(x->s, def->name)->mig;

			if (m->phase != MIG_QUEUED || !node_up(x, m->from) ||
			    (m->mode != MIG_SAVE && !node_up(x, m->to)) ||
			    was_started(ids, nstarted / 2, m->id))
				continue;
			if (slots_used(x, m->from, started, nstarted) >= cs->mig_max_per_node ||
			    (m->to && slots_used(x, m->to, started, nstarted) >= cs->mig_max_per_node))
				continue;
			if (!bm || m->id < bm->id) {
				best = def;
				bm = m;
			}
		}
		if (!bm || nstarted + 2 > sizeof(started) / sizeof(started[0]))
			break;
		say(x, "vm %s: migration %" PRIu64 " (%s, %s -> %s) starts", best->name, bm->id,
		    mig_mode_name(bm->mode), node_name(x->s, bm->from), node_name(x->s, bm->to));
		emit(x, json_pack("{s:s,s:s,s:I,s:I}", "op", "mgr.mig", "name", best->name, "id",
				  (json_int_t)bm->id, "ms", (json_int_t)x->env->now_ms));
		ids[nstarted / 2] = bm->id;
		started[nstarted++] = bm->from;
		started[nstarted++] = bm->to;
	}
	for (size_t i = 0; i < state_vm_count(x->s); i++) {
		const struct vm_def *def = state_vm_at(x->s, i);
		const struct vm_migration *m = &state_vm_status(x->s, def->name)->mig;

		if (m->phase != MIG_QUEUED && m->phase != MIG_RUNNING)
			continue;
		if ((m->mode != MIG_SAVE && !node_up(x, m->to)) || !node_up(x, m->from)) {
			snprintf(why, sizeof(why), "node %s is not online",
				 node_name(x->s, !m->to || node_up(x, m->to) ? m->from : m->to));
			mig_end(x, def, m, why);
		} else if (timed_out(x, m, 0) && !m->cancel) {
			/*
			 * Not ended here: its source may be past the point of no return
			 * (QEMU completed, the handoff on its way). Cancelled, the source
			 * stops it if it still can, or hands the VM over.
			 */
			snprintf(why, sizeof(why), "timed out after %u s (settings: migrate_timeout_s)",
				 cs->mig_timeout_s);
			say(x, "vm %s: migration %" PRIu64 " (%s -> %s): %s: cancel", def->name, m->id,
			    node_name(x->s, m->from), node_name(x->s, m->to), why);
			emit(x, json_pack("{s:s,s:s,s:I,s:s}", "op", "mgr.mig-cancel", "name",
					  def->name, "id", (json_int_t)m->id, "reason", why));
		} else if (timed_out(x, m, MIG_CANCEL_GRACE_MS)) {
			snprintf(why, sizeof(why), "timed out after %u s, and its source did not stop "
						   "it within %d s of the cancel",
				 cs->mig_timeout_s, MIG_CANCEL_GRACE_MS / 1000);
			mig_end(x, def, m, why);
		}
	}
}

/* --- nodes ------------------------------------------------------------------ */

static void node_to(struct step *x, const struct node_info *n, enum node_status to)
{
	emit(x, json_pack("{s:s,s:I,s:s,s:s,s:I}", "op", "mgr.node", "id", (json_int_t)n->id,
			  "expect", node_status_name(n->status), "status", node_status_name(to),
			  "at_ms", (json_int_t)x->env->now_ms));
}

static void decide_nodes(struct step *x)
{
	for (size_t i = 0; i < state_node_count(x->s); i++) {
		const struct node_info *n = state_node_at(x->s, i);
		bool in = is_member(x->env, n->id);

		switch (n->status) {
		case NODE_ONLINE:
		case NODE_JOINING:
			if (in)
				break;
			if (n->leaving && !state_node_runs_any(x->s, n->id)) {
				say(x, "node %s (id %u): left cleanly, running nothing: offline, "
				       "nothing to fence", n->name, n->id);
				node_to(x, n, NODE_OFFLINE);
				break;
			}
			say(x, "node %s (id %u): left the quorate membership: fence pending", n->name,
			    n->id);
			node_to(x, n, NODE_FENCE_PENDING);
			break;
		case NODE_FENCE_PENDING:
			if (x->res->nfence < STATE_MAX_NODES)
				x->res->fence[x->res->nfence++] = n->id;
			break;
		case NODE_FENCED:
		case NODE_OFFLINE:
			break;
		}
		if (in && n->ready && (n->status == NODE_FENCED || n->status == NODE_JOINING ||
				       n->status == NODE_OFFLINE)) {
			say(x, "node %s (id %u): back and clean: online", n->name, n->id);
			node_to(x, n, NODE_ONLINE);
		}
	}
}

/* --- VMs ------------------------------------------------------------------------ */

/* A decision for @def: its new status, sent with the epoch and the want it was based on. */
static void vm_to(struct step *x, const struct vm_def *def, const struct vm_status *old,
		  const struct vm_status *n)
{
	char reason[STATE_REASON_MAX];

	/* a reason cut with %.Ns may end inside a UTF-8 character: JSON would refuse it */
	snprintf(reason, sizeof(reason), "%s", n->reason);
	jv_utf8_trim(reason);
	emit(x, json_pack("{s:s,s:s,s:I,s:b,s:s,s:I,s:I,s:b,s:I,s:I,s:I,s:s,s:b}", "op", "mgr.vm",
			  "name", def->name, "expect_epoch", (json_int_t)old->epoch, "expect_want",
			  old->want_running, "state", vm_ha_state_name(n->state), "node",
			  (json_int_t)n->node, "epoch", (json_int_t)n->epoch, "takeover", n->takeover,
			  "restarts", (json_int_t)n->restarts, "window_ms", (json_int_t)n->window_ms,
			  "failed_node", (json_int_t)n->failed_node, "reason", reason,
			  "want_running", n->want_running));
}

/* What the assigned node reported for the current epoch, if anything. */
static enum vm_event current_event(const struct vm_status *st)
{
	if (st->event_epoch != st->epoch || st->event_node != st->node)
		return VM_EVENT_NONE;
	return st->event;
}

static void to_stopped(struct step *x, const struct vm_def *def, const struct vm_status *st,
		       const char *why, bool want)
{
	struct vm_status n = *st;

	n.state = VM_HA_STOPPED;
	n.node = 0;
	n.takeover = false;
	n.want_running = want;
	snprintf(n.reason, sizeof(n.reason), "%s", why);
	say(x, "vm %s: stopped (was %s on %s, epoch %" PRIu64 "): %s", def->name,
	    vm_ha_state_name(st->state), node_name(x->s, st->node), st->epoch, why);
	vm_to(x, def, st, &n);
}

static void to_state(struct step *x, const struct vm_def *def, const struct vm_status *st,
		     enum vm_ha_state to, const char *why)
{
	struct vm_status n = *st;

	n.state = to;
	snprintf(n.reason, sizeof(n.reason), "%s", why);
	say(x, "vm %s: %s -> %s on %s (epoch %" PRIu64 "): %s", def->name,
	    vm_ha_state_name(st->state), vm_ha_state_name(to), node_name(x->s, st->node),
	    st->epoch, why);
	vm_to(x, def, st, &n);
}

/* Running as asked: the reason keeps saying why here (placement, broken soft rules, restarts). */
static void to_started(struct step *x, const struct vm_def *def, const struct vm_status *st)
{
	struct vm_status n = *st;

	n.state = VM_HA_STARTED;
	say(x, "vm %s: starting -> started on %s (epoch %" PRIu64 "): running", def->name,
	    node_name(x->s, st->node), st->epoch);
	vm_to(x, def, st, &n);
}

/* QEMU failed on its node: restart there, move once, or give up. Returns true when it needs a node. */
static bool on_failure(struct step *x, const struct vm_def *def, const struct vm_status *st,
		       struct plan_vm_req *req)
{
	const struct cluster_settings *cs = state_settings(x->s);
	struct vm_status n = *st;
	char why[STATE_REASON_MAX];

	if (x->env->now_ms - st->window_ms > (uint64_t)cs->restart_window_s * 1000) {
		n.restarts = 0;
		n.window_ms = x->env->now_ms;
		n.failed_node = 0; /* a move in an earlier window is history */
	}
	if (n.restarts < cs->restart_max) {
		n.restarts++;
		n.epoch = st->epoch + 1;
		n.state = VM_HA_STARTING;
		n.takeover = false;
		snprintf(n.reason, sizeof(n.reason), "restart %u/%u on %s after: %.400s", n.restarts,
			 cs->restart_max, node_name(x->s, st->node), st->event_reason);
		say(x, "vm %s: failed on %s (epoch %" PRIu64 "): %s; restart %u/%u there (epoch %" PRIu64 ")",
		    def->name, node_name(x->s, st->node), st->epoch, st->event_reason, n.restarts,
		    cs->restart_max, n.epoch);
		vm_to(x, def, st, &n);
		return false;
	}
	/* moved once in this window already: give up rather than move back and forth */
	if (!n.failed_node) {
		req->need = PLAN_PLACE;
		req->avoid = st->node;
		return true;
	}
	snprintf(why, sizeof(why), "failed %u times on %s within %u s, also after moving: %.300s",
		 cs->restart_max + 1, node_name(x->s, st->node), cs->restart_window_s,
		 st->event_reason);
	n.state = VM_HA_ERROR;
	n.node = 0;
	snprintf(n.reason, sizeof(n.reason), "%s", why);
	say(x, "vm %s: error: %s", def->name, why);
	vm_to(x, def, st, &n);
	return false;
}

/*
 * A freeze counts when its node left right after it (the stop it announced),
 * not when the node crashes days later; FROZEN_LEAVE_MS allows for the clocks.
 */
#define FROZEN_LEAVE_MS 60000

static bool frozen_now(const struct vm_status *st, const struct node_info *n)
{
	return n && (n->left_ms <= st->frozen_ms || n->left_ms - st->frozen_ms <= FROZEN_LEAVE_MS);
}

/*
 * Its node stopped it on shutdown (shutdown_policy freeze): it waits for that
 * node, fenced meanwhile like any node that left, and starts there again once
 * the node is back online and clean. A stop asked meanwhile ends the wait.
 */
static void on_frozen(struct step *x, const struct vm_def *def, const struct vm_status *st,
		      const struct node_info *n)
{
	struct vm_status to = *st;
	char why[STATE_REASON_MAX];

	if (!n || n->status != NODE_ONLINE || !n->ready || !is_member(x->env, n->id)) {
		snprintf(why, sizeof(why), "frozen: its node %s stopped it on shutdown; it starts "
					   "there again when the node is back",
			 node_name(x->s, st->node));
		if (strcmp(why, st->reason))
			to_state(x, def, st, VM_HA_FENCE, why);
		return;
	}
	to.state = VM_HA_STARTING;
	to.epoch = st->epoch + 1;
	to.takeover = true; /* the node was fenced while away: its own keys may be gone */
	to.restarts = 0;
	to.window_ms = x->env->now_ms;
	snprintf(to.reason, sizeof(to.reason), "frozen on shutdown: node %s is back", n->name);
	say(x, "vm %s: frozen: node %s is back: start there (epoch %" PRIu64 ")", def->name,
	    n->name, to.epoch);
	vm_to(x, def, st, &to);
}

/* Decide for one VM; sets @req when it must be placed (decided after all VMs). */
static void decide_vm(struct step *x, const struct vm_def *def, const struct vm_status *st,
		      struct plan_vm_req *req)
{
	const struct node_info *n = state_node_find(x->s, st->node);
	enum vm_event ev = current_event(st);
	bool node_gone = n && (n->status == NODE_FENCE_PENDING || n->status == NODE_FENCED ||
			       n->status == NODE_OFFLINE);

	req->need = PLAN_IGNORE;
	req->avoid = 0;
	switch (st->state) {
	case VM_HA_STOPPED:
		if (st->want_running)
			req->need = PLAN_PLACE;
		return;
	case VM_HA_STARTING:
	case VM_HA_STARTED:
	case VM_HA_STOPPING:
		if (node_gone) {
			to_state(x, def, st, VM_HA_FENCE, "its node left the cluster: waiting for the fence");
			return;
		}
		break;
	case VM_HA_FENCE:
		if (n && n->status != NODE_FENCED && n->status != NODE_ONLINE)
			return;
		if (st->frozen && st->want_running && frozen_now(st, n)) {
			on_frozen(x, def, st, n);
			return;
		}
		if (st->want_running && def->ha) {
			to_state(x, def, st, VM_HA_RECOVERY, "its node is fenced: recovering it");
			return;
		}
		/* not HA: it stays down (wanting it would start it again elsewhere) */
		to_stopped(x, def, st, "its node was fenced (not HA, or not wanted)", false);
		return;
	case VM_HA_RECOVERY:
		/* its node is fenced: a stop asked meanwhile ends it here */
		if (!st->want_running) {
			to_stopped(x, def, st, "stopped by the admin before it was recovered", false);
			return;
		}
		req->need = PLAN_PLACE;
		return;
	case VM_HA_ERROR:
		if (!st->want_running)
			to_stopped(x, def, st, "stopped by the admin (error cleared)", false);
		return;
	}
	/* starting, started, stopping on a live node */
	req->need = PLAN_STAY;
	if (st->state == VM_HA_STOPPING) {
		if (ev == VM_EVENT_STOPPED || ev == VM_EVENT_POWEROFF || ev == VM_EVENT_FAILED)
			to_stopped(x, def, st, "stopped as asked", st->want_running);
		return;
	}
	if (ev == VM_EVENT_FAILED && !st->want_running) {
		char why[STATE_REASON_MAX];

		/* a stop was asked meanwhile: no restart, no move */
		snprintf(why, sizeof(why), "failed while a stop was asked: %.400s", st->event_reason);
		to_stopped(x, def, st, why, false);
		req->need = PLAN_IGNORE;
		return;
	}
	if (ev == VM_EVENT_FAILED) {
		if (on_failure(x, def, st, req))
			return;
		req->need = PLAN_STAY;
		return;
	}
	if (ev == VM_EVENT_POWEROFF) {
		to_stopped(x, def, st, "the guest powered itself off", false);
		req->need = PLAN_IGNORE;
		return;
	}
	if (!st->want_running) {
		to_state(x, def, st, VM_HA_STOPPING, "stop requested");
		return;
	}
	if (st->state == VM_HA_STARTING && ev == VM_EVENT_RUNNING)
		to_started(x, def, st);
}

static void assign(struct step *x, const struct vm_def *def, const struct vm_status *st,
		   const struct plan_vm_req *req, const struct plan_entry *pe)
{
	const struct cluster_settings *cs = state_settings(x->s);
	struct vm_status n = *st;
	char failed[STATE_REASON_MAX] = "";

	if (req->avoid)
		snprintf(failed, sizeof(failed), "failed %u times on %s within %u s (last: %.200s); ",
			 cs->restart_max + 1, node_name(x->s, req->avoid), cs->restart_window_s,
			 st->event_reason);
	if (!pe->node && failed[0]) {
		/* it does not run, and has nowhere to go: give up, with the reason */
		n.state = VM_HA_ERROR;
		n.node = 0;
		snprintf(n.reason, sizeof(n.reason), "%.250scannot be moved: %.240s", failed,
			 pe->reason);
		say(x, "vm %s: error: %s", def->name, n.reason);
		vm_to(x, def, st, &n);
		return;
	}
	if (!pe->node) {
		char why[STATE_REASON_MAX];

		snprintf(why, sizeof(why), "cannot be placed: %.480s", pe->reason);
		if (!strcmp(why, st->reason))
			return;
		say(x, "vm %s: %s", def->name, why);
		snprintf(n.reason, sizeof(n.reason), "%s", why);
		vm_to(x, def, st, &n);
		return;
	}
	n.takeover = st->state == VM_HA_RECOVERY;
	n.state = VM_HA_STARTING;
	n.node = pe->node;
	n.epoch = st->epoch + 1;
	/*
	 * Restarts count on one node, so a new node starts from zero; failed_node
	 * remembers a move after failures, which allows no second one (a recovery
	 * or a fresh start is not such a move).
	 */
	n.restarts = 0;
	n.window_ms = x->env->now_ms;
	n.failed_node = req->avoid;
	if (failed[0])
		snprintf(n.reason, sizeof(n.reason), "%.250s%.200s%s%.50s", failed, pe->why,
			 pe->broken[0] ? "; breaks " : "", pe->broken);
	else
		snprintf(n.reason, sizeof(n.reason), "%s%s%.200s", pe->why,
			 pe->broken[0] ? "; breaks " : "", pe->broken);
	say(x, "vm %s: %s %s (epoch %" PRIu64 "%s): %s%s%s%s", def->name,
	    st->state == VM_HA_RECOVERY ? "recover on" : req->avoid ? "move to" : "start on",
	    node_name(x->s, pe->node), n.epoch, n.takeover ? ", takeover" : "", failed, pe->why,
	    pe->broken[0] ? "; breaks " : "", pe->broken);
	vm_to(x, def, st, &n);
}

/* --- maintenance: drains and failback -------------------------------------------------- */

static void move(struct step *x, const struct vm_def *def, const struct vm_status *st, uint32_t to,
		 enum mig_mode mode, enum mig_cause cause)
{
	emit(x, json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "op", "mgr.move", "name", def->name, "to",
			  node_name(x->s, to), "mode", mig_mode_name(mode), "cause",
			  mig_cause_name(cause), "epoch", (json_int_t)st->epoch, "ms",
			  (json_int_t)x->env->now_ms));
}

static void held(struct step *x, const struct vm_def *def, const char *why, uint32_t home)
{
	char text[STATE_REASON_MAX];

	snprintf(text, sizeof(text), "%s", why);
	jv_utf8_trim(text);
	emit(x, json_pack("{s:s,s:s,s:s,s:I}", "op", "mgr.held", "name", def->name, "held", text,
			  "home", (json_int_t)home));
}

/* The drain of @n, one decision per VM; how many migrations or stops it decided. */
static size_t drain_node(struct step *x, const struct node_info *n, const bool *usable,
			 struct drain_item *items)
{
	size_t count = 0, moves = 0;
	int rc;

	rc = drain_plan(x->s, n->id, usable, n->drain_force, items, &count);
	if (rc) {
		x->err = rc;
		return 0;
	}
	for (size_t k = 0; k < count; k++) {
		const struct drain_item *it = &items[k];
		const struct vm_def *def = state_vm_at(x->s, it->vm);
		const struct vm_status *st = state_vm_status(x->s, def->name);
		struct vm_status to;

		if (it->under_way)
			continue;
		switch (it->action) {
		case DRAIN_ACT_LIVE:
		case DRAIN_ACT_QUICK:
			say(x, "vm %s: drain of node %s: %s migration to %s%s (epoch %" PRIu64 "): %s",
			    def->name, n->name, it->action == DRAIN_ACT_LIVE ? "live" : "quick",
			    node_name(x->s, it->to),
			    it->fallback ? " (its live migration failed)" : "", st->epoch, it->why);
			move(x, def, st, it->to, it->action == DRAIN_ACT_LIVE ? MIG_LIVE : MIG_QUICK,
			     MIG_BY_DRAIN);
			moves++;
			break;
		case DRAIN_ACT_STOP:
			/*
			 * Still wanted: it starts again where a node can take it (a cold
			 * move, Hyper-V's "shutdown" move type), or after the resume.
			 */
			to = *st;
			to.state = VM_HA_STOPPING;
			snprintf(to.reason, sizeof(to.reason), "stopped by the drain of node %s: %.400s",
				 n->name, it->why);
			say(x, "vm %s: drain of node %s: stop (epoch %" PRIu64 "), to start elsewhere: %s",
			    def->name, n->name, st->epoch, it->why);
			vm_to(x, def, st, &to);
			if (!st->home)
				held(x, def, "", n->id);
			moves++;
			break;
		case DRAIN_ACT_HOLD:
			if (!strcmp(st->held, it->why))
				break;
			say(x, "vm %s: drain of node %s: stays there (epoch %" PRIu64 "): %s",
			    def->name, n->name, st->epoch, it->why);
			held(x, def, it->why, st->home);
			break;
		case DRAIN_ACT_WAIT:
			break;
		}
	}
	return moves;
}

static bool failback_candidate(const struct step *x, const struct vm_def *def,
			       const struct vm_status *st, const bool *usable)
{
	const struct node_info *h = state_node_find(x->s, st->home);
	unsigned int minute = (unsigned int)((x->env->now_ms / 60000) % 1440);

	for (size_t i = 0; h && i < state_node_count(x->s); i++)
		if (state_node_at(x->s, i) == h && !usable[i])
			return false;
	return h && st->state == VM_HA_STARTED && st->want_running && !st->mig.id &&
	       st->node != st->home && vm_failback_now(def, minute);
}

/*
 * Failback: VMs a drain moved go back (live) to their home once it is out of
 * maintenance and their failback says now; all of them placed together. A
 * failed failback migration gives up (home forgotten, logged); a home that
 * cannot take the VM now is waited for, with the reason.
 */
static void decide_failback(struct step *x, const bool *usable)
{
	size_t nv = state_vm_count(x->s);
	struct plan_vm_req *reqs;
	struct plan_entry *plan;
	bool any = false;
	char why[STATE_REASON_MAX];

	reqs = calloc(nv ? nv : 1, sizeof(*reqs));
	plan = calloc(nv ? nv : 1, sizeof(*plan));
	if (!reqs || !plan) {
		x->err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nv; i++) {
		const struct vm_def *def = state_vm_at(x->s, i);
		const struct vm_status *st = state_vm_status(x->s, def->name);
		const struct vm_mig_last *l = &st->mig_last;

		reqs[i].need = vm_holds_node(st) ? PLAN_STAY : PLAN_IGNORE;
		if (!st->home || !failback_candidate(x, def, st, usable))
			continue;
		if (l->cause == MIG_BY_FAILBACK && l->to == st->home && l->result != MIG_COMPLETED) {
			say(x, "vm %s: failback to %s ended %s (%s): it stays on %s", def->name,
			    node_name(x->s, st->home), mig_result_name(l->result), l->reason,
			    node_name(x->s, st->node));
			held(x, def, "", 0);
			continue;
		}
		reqs[i] = (struct plan_vm_req){ .need = PLAN_PLACE, .only = st->home };
		any = true;
	}
	if (!any)
		goto out;
	x->err = plan_compute(x->s, usable, reqs, plan);
	for (size_t i = 0; i < nv && !x->err; i++) {
		const struct vm_def *def = state_vm_at(x->s, i);
		const struct vm_status *st = state_vm_status(x->s, def->name);

		if (reqs[i].need != PLAN_PLACE)
			continue;
		if (plan[i].node == st->home) {
			say(x, "vm %s: failback to %s (live, epoch %" PRIu64 ")", def->name,
			    node_name(x->s, st->home), st->epoch);
			move(x, def, st, st->home, MIG_LIVE, MIG_BY_FAILBACK);
			continue;
		}
		snprintf(why, sizeof(why), "failback to %s waits: %.400s", node_name(x->s, st->home),
			 plan[i].reason[0] ? plan[i].reason : "it does not fit there now");
		jv_utf8_trim(why);
		if (strcmp(why, st->held)) {
			say(x, "vm %s: %s", def->name, why);
			held(x, def, why, st->home);
		}
	}
out:
	free(reqs);
	free(plan);
}

/*
 * Drains and failbacks, when the step placed nothing else (@placing): each
 * decision of a step is made on the state as it was, so two plans in one step
 * would not see each other's VMs. One drain per step; failbacks when no drain
 * moved anything. The next step sees the migrations queued (plan.c counts a
 * VM on its way on its target).
 */
static void decide_maintenance(struct step *x, bool placing)
{
	size_t nn = state_node_count(x->s), nv = state_vm_count(x->s), moves = 0;
	bool usable[STATE_MAX_NODES], any = false;
	struct drain_item *items;

	for (size_t i = 0; i < nn; i++) {
		const struct node_info *n = state_node_at(x->s, i);

		usable[i] = state_node_takes_vms(n) && is_member(x->env, n->id);
		any |= n->maintenance;
		/* back from the shutdown it drained itself for: its maintenance ends */
		if (n->maintenance && n->maint_auto == MAINT_NODE_LEFT && n->status == NODE_ONLINE &&
		    n->ready && is_member(x->env, n->id)) {
			say(x, "node %s: back after its shutdown drain: maintenance ends", n->name);
			emit(x, json_pack("{s:s,s:s,s:I}", "op", "mgr.resume", "node", n->name,
					  "drain_id", (json_int_t)n->drain_id));
		}
	}
	if (placing || !nv)
		return;
	items = any ? calloc(nv, sizeof(*items)) : NULL;
	if (any && !items) {
		x->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; any && i < nn && !moves && !x->err; i++) {
		const struct node_info *n = state_node_at(x->s, i);

		if (n->maintenance && node_up(x, n->id))
			moves = drain_node(x, n, usable, items);
	}
	free(items);
	if (!moves && !x->err)
		decide_failback(x, usable);
}

int manager_step(const cluster_state_t *s, const struct mgr_env *env, struct mgr_result *res,
		 mgr_log_fn log, void *arg)
{
	struct step x = { .s = s, .env = env, .res = res, .log = log, .arg = arg };
	size_t nvms = state_vm_count(s), nnodes = state_node_count(s);
	struct plan_vm_req *reqs = NULL;
	struct plan_entry *plan = NULL;
	bool usable[STATE_MAX_NODES], any = false;
	int rc;

	memset(res, 0, sizeof(*res));
	res->ops = json_array();
	if (!res->ops)
		return -ENOMEM;
	decide_nodes(&x);
	decide_migrations(&x);
	reqs = calloc(nvms ? nvms : 1, sizeof(*reqs));
	plan = calloc(nvms ? nvms : 1, sizeof(*plan));
	if (!reqs || !plan) {
		x.err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nvms; i++) {
		const struct vm_def *def = state_vm_at(s, i);

		decide_vm(&x, def, state_vm_status(s, def->name), &reqs[i]);
		any |= reqs[i].need == PLAN_PLACE;
	}
	decide_maintenance(&x, any);
	if (!any || x.err)
		goto out;
	for (size_t i = 0; i < nnodes; i++) {
		const struct node_info *n = state_node_at(s, i);

		usable[i] = n->status == NODE_ONLINE && !n->maintenance && !n->leaving &&
			    is_member(env, n->id);
	}
	rc = plan_compute(s, usable, reqs, plan);
	if (rc) {
		x.err = rc;
		goto out;
	}
	for (size_t i = 0; i < nvms; i++) {
		const struct vm_def *def = state_vm_at(s, i);

		if (reqs[i].need == PLAN_PLACE)
			assign(&x, def, state_vm_status(s, def->name), &reqs[i], &plan[i]);
	}
out:
	free(reqs);
	free(plan);
	if (x.err) {
		json_decref(res->ops);
		res->ops = NULL;
	}
	return x.err;
}
