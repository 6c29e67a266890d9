/*
 * The placement engine: which node each VM should run on, given the nodes,
 * the VMs, the rules and the overcommit settings. Pure: no I/O, no clock, no
 * globals, nothing kept between calls; the same input gives the same output,
 * whatever the order of nodes, VMs and rules (ties go by node name, then VM
 * name). The manager calls it; `hvctl vm explain` shows its why and reason.
 *
 * The structs below are plain descriptions of one question, built by the
 * caller from the cluster state and valid only during the call: they carry
 * no invariant of their own, so they are public. Strings are borrowed.
 */
#ifndef HV_CLUSTER_PLACEMENT_H
#define HV_CLUSTER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_REASON_MAX 512
#define PL_BROKEN_MAX 256
#define PL_WHY_MAX 256

enum pl_rule_type {
	PL_RULE_ANTI_AFFINITY,	 /* members pairwise on distinct nodes (or failure domains) */
	PL_RULE_AFFINITY,	 /* members all on one node */
	PL_RULE_TIER_SEPARATION, /* VMs of one app with different tiers never share a node */
};

enum pl_scope {
	PL_SCOPE_NODE,
	PL_SCOPE_DOMAIN, /* anti-affinity only: distinct failure domains */
};

struct pl_node {
	const char *name; /* unique, non-empty */
	uint32_t id;	  /* the caller's; not used for placement */
	unsigned int vcpus;
	uint64_t memory_mb; /* physical capacity */
	const char *domain; /* failure domain; NULL or "" = a domain of its own */
	int clearance;	    /* 0 public, 1 internal, 2 confidential, 3 secret */
	bool usable;	    /* online, not in maintenance, fenced or pending: may take VMs */
};

struct pl_vm {
	const char *name; /* unique, non-empty */
	unsigned int vcpus;
	uint64_t memory_mb;
	int priority;	    /* 2 high, 1 medium, 0 low: higher is placed first */
	int classification; /* 0..3, must be <= the node's clearance */
	const char *app;    /* NULL or "" when none */
	const char *tier;   /* NULL or "" when none */
	int current;	    /* index in nodes[] where it runs now, -1 none */
	bool wanted;	    /* false: uses nothing, gets node -1, rules ignore it */
	const char *const *preferred; /* node names, best first (soft); unknown names never match */
	size_t npreferred;
	const char *const *possible; /* node names (hard); none = any node */
	size_t npossible;
	/*
	 * NULL, or the node it moves away from (a drain, a move after failures),
	 * which the caller left out of possible: a reason names it so, not as
	 * "not among its possible nodes".
	 */
	const char *leaving;
};

struct pl_rule {
	const char *name; /* unique, non-empty */
	enum pl_rule_type type;
	bool hard;
	enum pl_scope scope; /* anti-affinity */
	/* anti-affinity, affinity; names not among the input's VMs are skipped */
	const char *const *vms;
	size_t nvms;
	const char *app; /* tier separation */
};

struct pl_params {
	/* 100 = none, 400 = 4 vcpus per core, 80 = keep 20% free; 0 means 100 */
	unsigned int cpu_overcommit_pct;
	unsigned int mem_overcommit_pct;
};

struct pl_input {
	const struct pl_node *nodes;
	size_t nnodes;
	const struct pl_vm *vms;
	size_t nvms;
	const struct pl_rule *rules;
	size_t nrules;
	struct pl_params params;
};

/* One per VM, at the VM's index in the input. */
struct pl_result {
	int node;   /* index in nodes[]; -1: not placed, or not wanted */
	bool moved; /* wanted, had a usable current node, and is placed on another one */
	char reason[PL_REASON_MAX]; /* wanted and not placed: why, naming the rule or resource */
	char broken[PL_BROKEN_MAX]; /* soft rules the final placement breaks around this VM */
	char why[PL_WHY_MAX];	    /* placed: why this node, for `hvctl vm explain` */
};

/*
 * Place every wanted VM: @out gets in->nvms entries. Running VMs stay unless a
 * hard constraint forbids it; the others go by priority. 0, or -EINVAL on bad
 * input (dangling index, duplicate or empty name, value out of range) or -ENOMEM;
 * on error @out is not written.
 */
int placement_solve(const struct pl_input *in, struct pl_result *out);

/*
 * May @rule join in->rules? 0, or -EINVAL with @err saying why: a bad or
 * duplicate name, an unknown VM, fewer than 2 VMs, or a contradiction with an
 * existing rule (affinity vs anti-affinity or tier separation), naming both.
 */
int placement_rule_check(const struct pl_input *in, const struct pl_rule *rule, char *err,
			 size_t errlen);

/* "anti-affinity", "affinity", "tier-separation" (as the cluster state spells them). */
const char *placement_rule_type_name(enum pl_rule_type t);

#endif
