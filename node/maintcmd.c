/*
 * Planned maintenance on the daemon side: node.drain, node.resume and
 * node.impact for hvctl, and what a clean stop of hvnoded does with the VMs
 * of this node (shutdown_policy): migrate drains the node first, freeze
 * leaves them assigned here for its return, failover just stops.
 */
#include "hvnoded.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <qb/qblog.h>
#include <qb/qbloop.h>

#include "../cluster/drain.h"

#define SHUTDOWN_POLL_MS 250
#define FREEZE_WAIT_MS 5000
#define LEAVE_WAIT_MS 3000

/* node.drain {node, force} */
json_t *cmd_node_drain(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const json_t *force = json_object_get(args, "force");
	const struct node_info *n;
	char what[VM_NAME_MAX + 8];
	json_t *res = NULL;

	n = command_node(d, args, &res, status);
	if (!n)
		return res;
	if (force && !json_is_boolean(force))
		return command_error(status, -EINVAL, "node drain: force must be true or false");
	if (n->status == NODE_FENCE_PENDING)
		return command_error(status, -EBUSY,
				     "node %s is fence-pending: its VMs are recovered once it is "
				     "fenced; drain it when it is back",
				     n->name);
	snprintf(what, sizeof(what), "node %s", n->name);
	qb_log(LOG_NOTICE, "node %s: drain asked%s", n->name,
	       json_is_true(force) ? " (force: VMs that cannot be placed are stopped)" : "");
	return command_submit(d, req,
			      json_pack("{s:s,s:s,s:b}", "op", "node.drain", "node", n->name,
					"force", json_is_true(force)),
			      what, "drained", status);
}

/* node.resume {node} */
json_t *cmd_node_resume(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct node_info *n;
	char what[VM_NAME_MAX + 8];
	json_t *res = NULL;

	n = command_node(d, args, &res, status);
	if (!n)
		return res;
	if (!n->maintenance)
		return command_error(status, -EALREADY, "node %s is not in maintenance", n->name);
	snprintf(what, sizeof(what), "node %s", n->name);
	qb_log(LOG_NOTICE, "node %s: resume asked: maintenance ends", n->name);
	return command_submit(d, req, json_pack("{s:s,s:s}", "op", "node.resume", "node", n->name),
			      what, "resumed", status);
}

static json_t *impact_item(struct hvnoded *d, const struct drain_item *it)
{
	const struct vm_def *def = state_vm_at(d->state, it->vm);
	const struct vm_status *st = state_vm_status(d->state, def->name);
	const struct node_info *to = state_node_find(d->state, it->to);
	const char *action = drain_action_name(it->action);

	if (it->action == DRAIN_ACT_HOLD)
		action = "stays";
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:o,s:s,s:b,s:s}", "name", def->name,
			 "owner", def->owner, "contact", def->contact, "app", def->app, "tier",
			 def->tier, "priority", vm_priority_name(def->priority), "classification",
			 vm_class_name(def->classification), "ha", def->ha, "action", action, "to",
			 to ? json_string(to->name) : json_null(), "why", it->why, "fallback",
			 it->fallback, "state", vm_ha_state_name(st->state));
}

/*
 * node.impact {node}: what a drain of the node would do now (or does, when it
 * is in maintenance), VM by VM, for the owners to know before the window.
 */
json_t *cmd_node_impact(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const cluster_state_t *s = d->state;
	bool usable[STATE_MAX_NODES];
	const struct node_info *n;
	struct drain_item *items;
	json_t *res = NULL, *vms;
	size_t count = 0;
	int rc;

	n = command_node(d, args, &res, status);
	if (!n)
		return res;
	for (size_t i = 0; i < state_node_count(s); i++) {
		const struct node_info *o = state_node_at(s, i);

		usable[i] = o->id != n->id && state_node_takes_vms(o) && command_is_member(d, o->id);
	}
	items = calloc(state_vm_count(s) ? state_vm_count(s) : 1, sizeof(*items));
	if (!items)
		return command_error(status, -ENOMEM, "out of memory");
	rc = drain_plan(s, n->id, usable, n->drain_force, items, &count);
	if (rc) {
		free(items);
		return command_error(status, rc, "node %s: the drain plan failed: %s", n->name,
				     strerror(-rc));
	}
	vms = json_array();
	for (size_t k = 0; vms && k < count; k++)
		json_array_append_new(vms, impact_item(d, &items[k]));
	free(items);
	res = vms
		? json_pack("{s:s,s:s,s:b,s:o}", "node", n->name, "state",
			    node_status_name(n->status), "maintenance", n->maintenance, "vms", vms)
		: NULL;
	return res ? res : command_error(status, -ENOMEM, "out of memory");
}

/* --- a clean stop of hvnoded ------------------------------------------------------------ */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* VMs of this node still to go (assigned here, or a migration to or from here in flight). */
static size_t left_here(struct hvnoded *d, size_t *held)
{
	uint32_t me = membership_local_id(d->membership);
	size_t n = 0;

	*held = 0;
	for (size_t i = 0; i < state_vm_count(d->state); i++) {
		const struct vm_status *st =
			state_vm_status(d->state, state_vm_at(d->state, i)->name);
		bool here = st->node == me && vm_holds_node(st);

		if (st->mig.id && (st->mig.from == me || st->mig.to == me))
			here = true;
		if (!here)
			continue;
		n++;
		if (st->held[0] && !st->mig.id)
			(*held)++;
	}
	return n;
}

static bool frozen_all(struct hvnoded *d)
{
	uint32_t me = membership_local_id(d->membership);

	for (size_t i = 0; i < state_vm_count(d->state); i++) {
		const struct vm_status *st =
			state_vm_status(d->state, state_vm_at(d->state, i)->name);

		if (st->node == me && st->want_running && !st->frozen &&
		    (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED))
			return false;
	}
	return true;
}

static void shutdown_poll(void *data);

static void poll_again(struct hvnoded *d)
{
	qb_loop_timer_add(d->loop, QB_LOOP_MED, SHUTDOWN_POLL_MS * QB_TIME_NS_IN_MSEC, d,
			  shutdown_poll, &d->shutdown_timer);
}

/*
 * Nothing runs here: say so (node.leave) and stop once it is applied. The
 * cluster then counts this node offline when it leaves, with nothing to
 * fence (a power fence would switch off a host that is rebooting).
 */
static bool leave_cleanly(struct hvnoded *d, const struct node_info *self)
{
	json_t *op = json_pack("{s:s,s:s}", "op", "node.leave", "node", self->name);
	int rc = op ? cluster_send(d, op) : -ENOMEM;

	json_decref(op);
	if (rc) {
		qb_log(LOG_WARNING, "shutdown: cannot say it leaves cleanly (%s): it will be fenced",
		       strerror(-rc));
		return false;
	}
	d->shutdown_phase = SHUTDOWN_LEAVING;
	d->shutdown_deadline_ms = mono_ms() + LEAVE_WAIT_MS;
	poll_again(d);
	return true;
}

static void shutdown_poll(void *data)
{
	struct hvnoded *d = data;
	const struct node_info *self =
		state_node_find(d->state, membership_local_id(d->membership));
	size_t held = 0, left;

	if (!membership_is_quorate(d->membership) || !self) {
		qb_log(LOG_WARNING, "shutdown: quorum lost: stopping now");
		goto stop;
	}
	switch (d->shutdown_phase) {
	case SHUTDOWN_LEAVING:
		if (self->leaving) {
			qb_log(LOG_NOTICE, "shutdown: the cluster knows this node leaves running "
					   "nothing (offline, no fence): stopping");
			goto stop;
		}
		if (mono_ms() >= d->shutdown_deadline_ms) {
			qb_log(LOG_WARNING, "shutdown: node.leave not applied within %d ms: stopping; "
					    "the cluster fences this node",
			       LEAVE_WAIT_MS);
			goto stop;
		}
		goto again;
	case SHUTDOWN_FREEZING:
		if (frozen_all(d)) {
			qb_log(LOG_NOTICE,
			       "shutdown: this node's VMs are frozen (they wait for its return): "
			       "stopping");
			goto stop;
		}
		if (mono_ms() >= d->shutdown_deadline_ms) {
			qb_log(LOG_WARNING,
			       "shutdown: the freeze was not applied within %d ms: stopping; the "
			       "cluster recovers the VMs elsewhere",
			       FREEZE_WAIT_MS);
			goto stop;
		}
		goto again;
	case SHUTDOWN_DRAINING:
		break;
	}
	left = left_here(d, &held);
	if (!left) {
		qb_log(LOG_NOTICE, "shutdown: drained, no VM left here");
		if (leave_cleanly(d, self))
			return;
		goto stop;
	}
	if (held == left) {
		qb_log(LOG_WARNING,
		       "shutdown: %zu VM(s) cannot leave this node (see hvctl node impact): "
		       "stopping; they are recovered like after a failure",
		       held);
		goto stop;
	}
	if (mono_ms() >= d->shutdown_deadline_ms) {
		qb_log(LOG_WARNING,
		       "shutdown: %zu VM(s) still here after shutdown_timeout_s = %u: stopping",
		       left, d->cfg.shutdown_timeout_s);
		goto stop;
	}
again:
	poll_again(d);
	return;
stop:
	qb_loop_stop(d->loop);
}

bool maint_shutdown(struct hvnoded *d)
{
	const char *policy = d->cfg.shutdown_policy;
	uint32_t me = membership_local_id(d->membership);
	const struct node_info *self = state_node_find(d->state, me);
	size_t held = 0;
	json_t *op;
	int rc;

	if (d->shutting_down) {
		qb_log(LOG_WARNING, "shutdown: asked again: stopping now");
		return false;
	}
	d->shutting_down = true;
	if (!self || !membership_is_quorate(d->membership)) {
		qb_log(LOG_NOTICE, "shutdown (policy %s): %s: stopping now", policy,
		       !self ? "this node is not in the cluster state" : "not quorate");
		return false;
	}
	if (!left_here(d, &held) && !d->runs) {
		qb_log(LOG_NOTICE, "shutdown (policy %s): no VM here", policy);
		return leave_cleanly(d, self);
	}
	if (!strcmp(policy, "failover")) {
		qb_log(LOG_NOTICE, "shutdown (policy failover): stopping this node's VMs now; the "
				   "cluster fences it and recovers them elsewhere");
		return false;
	}
	if (!strcmp(policy, "freeze")) {
		op = json_pack("{s:s,s:s,s:I}", "op", "node.freeze", "node", self->name, "ms",
			       (json_int_t)command_wall_ms());
		d->shutdown_phase = SHUTDOWN_FREEZING;
		d->shutdown_deadline_ms = mono_ms() + FREEZE_WAIT_MS;
	} else {
		op = json_pack("{s:s,s:s,s:b,s:b}", "op", "node.drain", "node", self->name, "force",
			       false, "auto", true);
		d->shutdown_phase = SHUTDOWN_DRAINING;
		d->shutdown_deadline_ms = mono_ms() + (uint64_t)d->cfg.shutdown_timeout_s * 1000;
	}
	rc = op ? cluster_send(d, op) : -ENOMEM;
	json_decref(op);
	if (rc) {
		qb_log(LOG_ERR, "shutdown (policy %s): cannot tell the cluster: %s: stopping now",
		       policy, strerror(-rc));
		return false;
	}
	qb_log(LOG_NOTICE,
	       "shutdown (policy %s): %s first (at most %u s; a second signal stops at once)",
	       policy,
	       d->shutdown_phase == SHUTDOWN_FREEZING ? "freezing this node's VMs" :
							"draining this node",
	       d->shutdown_phase == SHUTDOWN_FREEZING ? FREEZE_WAIT_MS / 1000 :
							d->cfg.shutdown_timeout_s);
	poll_again(d);
	return true;
}
