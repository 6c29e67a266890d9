/*
 * The cluster state seen through the placement engine: which node each VM
 * would run on, given which nodes are usable and which VMs need a node. Pure,
 * like placement.c; used by the manager, `hvctl plan --fail` and
 * `hvctl vm explain`.
 */
#ifndef HV_CLUSTER_PLAN_H
#define HV_CLUSTER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

enum plan_need {
	PLAN_IGNORE, /* not running and not to be started: uses nothing */
	PLAN_STAY,   /* runs on its assigned node, which stays if the rules allow */
	PLAN_PLACE,  /* needs a node */
};

struct plan_vm_req {
	enum plan_need need;
	uint32_t avoid; /* PLAN_PLACE: a node it must not go to (0 none) */
	uint32_t only;	/* PLAN_PLACE: the one node it may go to (0 any) */
};

struct plan_entry {
	uint32_t node;	   /* 0: none */
	bool moved;	   /* PLAN_STAY but placed elsewhere (a hard rule said so) */
	char reason[512];  /* no node: why, naming the rule or resource */
	char broken[256];  /* soft rules this placement breaks */
	char why[256];	   /* why this node */
};

/*
 * Place: @usable has one entry per state_node_at() index, @vms one per
 * state_vm_at() index, @out as many. 0 or -errno (-ENOMEM, -EINVAL).
 */
int plan_compute(const cluster_state_t *s, const bool *usable, const struct plan_vm_req *vms,
		 struct plan_entry *out);

#endif
