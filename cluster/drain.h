/*
 * What a drain does with the VMs of a node, as a pure function of the state:
 * the manager acts on it (node in maintenance), `hvctl node impact` shows it
 * before a maintenance window. Per VM: live or quick migration to a node the
 * placement engine picks (rules and capacity), stop (the policy for its
 * priority says so, or it cannot go anywhere and the drain is forced), hold
 * (it cannot go anywhere: it stays, with the reason), or wait (it is
 * migrating, starting or stopping).
 */
#ifndef HV_CLUSTER_DRAIN_H
#define HV_CLUSTER_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

enum drain_action {
	DRAIN_ACT_LIVE,
	DRAIN_ACT_QUICK,
	DRAIN_ACT_STOP,
	DRAIN_ACT_HOLD,
	DRAIN_ACT_WAIT,
};

struct drain_item {
	size_t vm; /* its state_vm_at() index */
	enum drain_action action;
	uint32_t to;		    /* live, quick: the target */
	bool fallback;		    /* quick, because its live migration failed */
	bool forced;		    /* stop, because it cannot go anywhere (drain --force) */
	bool under_way;		    /* live, quick: that migration is already in flight */
	char why[STATE_REASON_MAX]; /* the target's reason, or why it stops, holds or waits */
};

/*
 * The drain of node @node now: one item per VM assigned to it, in the VMs'
 * order, into @out (room for state_vm_count() items); *@n their number.
 * @usable: per state_node_at() index, the nodes that may take VMs (the
 * caller's membership view and state_node_takes_vms()). @force: a VM that cannot
 * go anywhere stops instead of holding. Failed migrations of the node's
 * current drain (ids above its drain_id) are remembered: a failed live one
 * falls back to quick, a failed quick one holds. 0 or -ENOMEM/-EINVAL.
 */
int drain_plan(const cluster_state_t *s, uint32_t node, const bool *usable, bool force,
	       struct drain_item *out, size_t *n);

const char *drain_action_name(enum drain_action a);

#endif
