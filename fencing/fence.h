/*
 * Fencing a node, the way the leader does it: its levels in order until one
 * succeeds (a level succeeds when every device of it does); the built-in
 * "storage" device PREEMPTs the node's key on every LUN of its VMs and checks
 * with READ KEYS that it is gone; any other device is an external agent in
 * the fence-agents protocol (fencing/agent.c), asked to power the node off
 * and to confirm it is off. When every level failed, a node with a watchdog
 * counts as fenced once twice its watchdog timeout has passed since it left
 * (it reset itself, or stopped its VMs, by then).
 *
 * Blocking: run from a worker thread. Everything it needs is copied into the
 * target, so the cluster state may change meanwhile.
 */
#ifndef HV_FENCING_FENCE_H
#define HV_FENCING_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cluster/fenceconf.h"
#include "../cluster/state.h"
#include "../cluster/vm.h"

#define FENCE_TARGET_LEVELS 16
#define FENCE_TARGET_LUNS 256
#define FENCE_TARGET_DEVICES 16

struct fence_target {
	uint32_t node;
	char name[VM_NAME_MAX + 1]; /* also the plug the power agents are given */
	/* storage */
	uint64_t key;		    /* the node's reservation key */
	uint64_t mykey;		    /* the fencer's */
	char initiator[256];	    /* the fencer's initiator name */
	char urls[FENCE_TARGET_LUNS][VM_URL_MAX];
	size_t nluns;
	char nopr_vm[VM_NAME_MAX + 1]; /* a VM of the node without storage fencing, "" none */
	/* levels, with copies of the devices they name */
	struct fence_level levels[FENCE_TARGET_LEVELS];
	size_t nlevels;
	struct fence_device devices[FENCE_TARGET_DEVICES];
	size_t ndevices;
	/* watchdog */
	unsigned int watchdog_s;
	uint64_t left_ms, now_ms;
	unsigned int agent_timeout_s;
};

/*
 * Fill @t for fencing @node from the state: the LUNs of the VMs assigned to it
 * (and a VM of it without storage fencing), its levels with copies of the
 * devices they name, when it left, and its watchdog timeout unless it is
 * @still_member (a member pets its watchdog: the deadline proves nothing).
 * The keys, the initiator and the agent timeout are the caller's to set.
 * 0, or -E2BIG when it has more LUNs than a target holds.
 */
int fence_target_from_state(struct fence_target *t, const cluster_state_t *s, uint32_t node,
			    bool still_member, uint64_t now_ms);

/*
 * Fence @t. 0 when the node is fenced, -errno when not; @detail gets one line
 * per level tried ("level 1 (storage): ok", "level 2 (lab): fence_lab off n2:
 * exit 1: ..."). Secrets never appear in it.
 */
int fence_run(const struct fence_target *t, char *detail, size_t len);

/* Storage fencing alone (the "storage" device): 0 or -errno with @err. */
int fence_storage(const struct fence_target *t, char *err, size_t errlen);

#endif
