#include "drain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "plan.h"

const char *drain_action_name(enum drain_action a)
{
	static const char *const names[] = { "live", "quick", "stop", "hold", "wait" };

	return (unsigned)a < 5 ? names[a] : "?";
}

static const char *name_of(const cluster_state_t *s, uint32_t id)
{
	const struct node_info *n = state_node_find(s, id);

	return n ? n->name : "?";
}

/* What a started VM needs, before placement; true when it needs a node. */
static bool decide(const cluster_state_t *s, const struct node_info *node, const struct vm_def *def,
		   const struct vm_status *st, bool force, struct drain_item *it)
{
	const struct cluster_settings *cs = state_settings(s);
	const struct vm_mig_last *l = &st->mig_last;
	/* before a drain began (impact), no earlier migration counts */
	uint64_t since = node->maintenance ? node->drain_id : UINT64_MAX;

	if (st->mig.id) {
		it->action = st->mig.mode == MIG_LIVE ? DRAIN_ACT_LIVE :
			     st->mig.mode == MIG_QUICK ? DRAIN_ACT_QUICK : DRAIN_ACT_WAIT;
		it->to = st->mig.to;
		it->under_way = true;
		snprintf(it->why, sizeof(it->why), "migrating now (%s, migration %" PRIu64 ")",
			 mig_phase_name(st->mig.phase), st->mig.id);
		return false;
	}
	if (st->state != VM_HA_STARTED || !st->want_running) {
		it->action = DRAIN_ACT_WAIT;
		snprintf(it->why, sizeof(it->why), "%s",
			 st->want_running ? vm_ha_state_name(st->state) : "stopping");
		return false;
	}
	if (l->id > since && l->cause == MIG_BY_DRAIN && l->from == node->id &&
	    l->result != MIG_COMPLETED) {
		if (l->mode == MIG_LIVE && l->result == MIG_FAILED) {
			it->action = DRAIN_ACT_QUICK;
			it->fallback = true;
			return true;
		}
		it->action = force ? DRAIN_ACT_STOP : DRAIN_ACT_HOLD;
		it->forced = force;
		snprintf(it->why, sizeof(it->why), "its %s migration to %s %s: %.400s",
			 mig_mode_name(l->mode), name_of(s, l->to),
			 l->result == MIG_CANCELLED ? "was cancelled" : "failed", l->reason);
		jv_utf8_trim(it->why);
		return false;
	}
	switch (cs->drain[def->priority]) {
	case DRAIN_STOP:
		it->action = DRAIN_ACT_STOP;
		snprintf(it->why, sizeof(it->why),
			 "drain_%s = stop: it stops and starts on another node (the guest boots again)",
			 vm_priority_name(def->priority));
		return false;
	case DRAIN_QUICK:
		it->action = DRAIN_ACT_QUICK;
		return true;
	case DRAIN_LIVE:
		break;
	}
	it->action = DRAIN_ACT_LIVE;
	return true;
}

int drain_plan(const cluster_state_t *s, uint32_t node, const bool *usable, bool force,
	       struct drain_item *out, size_t *n)
{
	const struct node_info *nd = state_node_find(s, node);
	size_t nv = state_vm_count(s);
	struct plan_vm_req *reqs;
	struct plan_entry *plan;
	bool any = false, use[STATE_MAX_NODES];
	int rc = 0;

	*n = 0;
	if (!nd)
		return -EINVAL;
	reqs = calloc(nv ? nv : 1, sizeof(*reqs));
	plan = calloc(nv ? nv : 1, sizeof(*plan));
	if (!reqs || !plan) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nv; i++) {
		const struct vm_def *def = state_vm_at(s, i);
		const struct vm_status *st = state_vm_status(s, def->name);
		struct drain_item *it;

		reqs[i].need = vm_holds_node(st) ? PLAN_STAY : PLAN_IGNORE;
		if (st->node != node || !vm_holds_node(st))
			continue;
		it = &out[(*n)++];
		memset(it, 0, sizeof(*it));
		it->vm = i;
		if (decide(s, nd, def, st, force, it)) {
			reqs[i] = (struct plan_vm_req){ .need = PLAN_PLACE, .avoid = node };
			any = true;
		}
	}
	if (!any)
		goto out;
	/* the node's other VMs stay there (avoid keeps the moving ones off it) */
	for (size_t i = 0; i < state_node_count(s); i++)
		use[i] = usable[i] || state_node_at(s, i)->id == node;
	/* every VM of the node placed at once: together they must fit where they go */
	rc = plan_compute(s, use, reqs, plan);
	if (rc)
		goto out;
	for (size_t k = 0; k < *n; k++) {
		struct drain_item *it = &out[k];
		const struct plan_entry *pe = &plan[it->vm];

		if (reqs[it->vm].need != PLAN_PLACE)
			continue;
		if (pe->node) {
			it->to = pe->node;
			snprintf(it->why, sizeof(it->why), "%s%s%.200s", pe->why,
				 pe->broken[0] ? "; breaks " : "", pe->broken);
			continue;
		}
		it->action = force ? DRAIN_ACT_STOP : DRAIN_ACT_HOLD;
		it->forced = force;
		it->fallback = false;
		snprintf(it->why, sizeof(it->why), "cannot be placed: %.480s",
			 pe->reason[0] ? pe->reason : "no node can take it");
		jv_utf8_trim(it->why);
	}
out:
	free(reqs);
	free(plan);
	return rc;
}
