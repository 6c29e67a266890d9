/*
 * The cluster state: what every node holds and agrees on. VM definitions,
 * nodes, placement rules, settings, and the manager's view (per VM: desired
 * state, manager state, assigned node, assignment epoch; per node: online,
 * fence-pending, fenced...). Pure data with strict (de)serialization.
 *
 * It changes only through state_apply() (ops.c), fed with the same ops in
 * the same (CPG agreed) order on every node; every applied op bumps the
 * version. How ops travel is repl.c's business, not this module's.
 */
#ifndef HV_CLUSTER_STATE_H
#define HV_CLUSTER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "acl.h"
#include "fenceconf.h"
#include "vm.h"

/* 3: maintenance (drain, failback, freeze, offline); 1 and 2 are still read */
#define STATE_FORMAT_VERSION 3
#define STATE_MAX_VMS 4096
#define STATE_MAX_NODES 64
#define STATE_MAX_RULES 1024
#define RULE_MAX_VMS 32
#define STATE_REASON_MAX 512
#define STATE_FENCE_HISTORY 32

typedef struct cluster_state cluster_state_t;

/* --- the manager's view of a VM --------------------------------------------- */

enum vm_ha_state {
	VM_HA_STOPPED,	/* not assigned to any node */
	VM_HA_STARTING, /* assigned: the node starts it (or restarts it) */
	VM_HA_STARTED,	/* the node reported it running in this epoch */
	VM_HA_STOPPING, /* the node stops it */
	VM_HA_FENCE,	/* its node is gone: wait until that node is fenced */
	VM_HA_RECOVERY, /* its node is fenced: to be placed elsewhere */
	VM_HA_ERROR,	/* given up (restart limit, ...): see reason; stop to clear */
};

/* What the node running a VM last reported (vm.report); the manager acts on it. */
enum vm_event {
	VM_EVENT_NONE,
	VM_EVENT_RUNNING,  /* started (or found running) in event_epoch */
	VM_EVENT_STOPPED,  /* stopped as asked */
	VM_EVENT_FAILED,   /* could not start, or QEMU died: event_reason */
	VM_EVENT_POWEROFF, /* the guest powered itself off */
};

/* --- migrations ---------------------------------------------------------------- */

enum mig_mode {
	MIG_LIVE,  /* pre-copy while the guest runs, then a short stop-and-copy */
	MIG_QUICK, /* pause, copy everything, resume on the target */
	MIG_SAVE,  /* pause, copy everything to the state LUN, stop (to 0) */
};

/* Why a migration was asked: by an admin, by a drain, or to fail back after one. */
enum mig_cause {
	MIG_BY_ADMIN,
	MIG_BY_DRAIN,
	MIG_BY_FAILBACK,
};

enum mig_phase {
	MIG_NONE,
	MIG_QUEUED,  /* asked; the leader starts it when both nodes have a free slot */
	MIG_RUNNING, /* the source streams to the target; the VM runs on the source */
	MIG_HANDOFF, /* the source stopped and released its LUNs: the target resumes it */
};

enum mig_result {
	MIG_RESULT_NONE,
	MIG_COMPLETED,
	MIG_FAILED,
	MIG_CANCELLED,
};

struct mig_progress {
	uint64_t elapsed_ms;
	uint64_t raw_bytes;	  /* of QEMU's stream */
	uint64_t wire_bytes;	  /* after compression and framing */
	uint64_t rate_bps;	  /* raw bytes per second, recent */
	uint64_t remaining_bytes; /* QEMU's estimate of what is left */
	uint64_t dirty_rate_pps;  /* pages dirtied per second */
	uint64_t iteration;	  /* QEMU's dirty sync count */
	uint64_t downtime_ms;	  /* QEMU's figure, once completed */
	char qemu_status[24];
};

/* A migration in flight (id != 0). */
struct vm_migration {
	uint64_t id;
	enum mig_mode mode;
	enum mig_phase phase;
	uint32_t from, to;
	bool cancel;		/* an admin (or the leader's timeout) asked to cancel: the source stops it */
	char cancel_why[128];	/* the leader's reason ("" an admin's) */
	uint64_t asked_ms;	/* the requester's clock */
	uint64_t started_ms;	/* the leader's clock when it started (mgr.mig); 0 queued */
	enum mig_cause cause;
	struct mig_progress progress;
};

/* How the last migration of a VM ended. */
struct vm_mig_last {
	uint64_t id;
	enum mig_mode mode;
	enum mig_result result;
	uint32_t from, to;
	uint64_t total_ms;
	enum mig_cause cause;
	struct mig_progress progress;
	char reason[STATE_REASON_MAX];
};

struct vm_status {
	bool want_running;   /* desired: started (true) or stopped */
	enum vm_ha_state state;
	uint32_t node;	     /* assigned node id, 0 none */
	uint64_t epoch;	     /* bumped at every assignment; reports of older epochs are stale */
	bool takeover;	     /* the start may PREEMPT keys of a fenced node */
	uint32_t restarts;   /* restarts on @node within the window */
	uint64_t window_ms;  /* start of the restart window (leader's clock) */
	uint32_t failed_node; /* the node it was moved away from after too many restarts */
	char reason[STATE_REASON_MAX]; /* why it is where it is, or why not running */
	enum vm_event event;
	uint64_t event_epoch;
	uint32_t event_node;
	char event_reason[STATE_REASON_MAX];
	struct vm_migration mig;
	struct vm_mig_last mig_last;
	bool saved;	      /* its state LUN holds its saved state: a start restores it */
	uint64_t saved_bytes; /* of that state */
	uint32_t home;	      /* the node a drain moved it off: failback goes there; 0 none */
	bool frozen;	      /* its node stopped it on shutdown (freeze): it waits for that node */
	uint64_t frozen_ms;   /* when (that node's clock): only a node leaving soon after counts */
	char held[STATE_REASON_MAX]; /* why a drain leaves it on its node ("" not held) */
};

/* --- nodes ------------------------------------------------------------------ */

/* What a drain does with a VM of a priority (settings drain_low/medium/high). */
enum drain_policy {
	DRAIN_LIVE,
	DRAIN_QUICK,
	DRAIN_STOP,
};

/* A maintenance that hvnoded's shutdown (shutdown_policy migrate) began ends by itself. */
enum maint_auto {
	MAINT_BY_ADMIN,	    /* ends with node resume */
	MAINT_BY_SHUTDOWN,  /* the node drains itself before it stops */
	MAINT_NODE_LEFT,    /* ... and has left: back online, its maintenance ends */
};

enum node_status {
	NODE_JOINING,	    /* seen, not yet reported clean: gets nothing */
	NODE_ONLINE,
	NODE_FENCE_PENDING, /* gone; its VMs stay down until it is fenced */
	NODE_FENCED,	    /* gone and fenced */
	NODE_OFFLINE,	    /* left cleanly, running nothing (node.leave): nothing to fence */
};

struct node_info {
	uint32_t id;
	char name[VM_NAME_MAX + 1];
	unsigned int vcpus;
	uint64_t memory_mb;
	char domain[VM_NAME_MAX + 1]; /* failure domain; "" = its own */
	enum vm_class clearance;
	bool maintenance;      /* no placement; a drain moves its VMs off while it is online */
	bool drain_force;      /* VMs the drain cannot place are stopped, not left running */
	enum maint_auto maint_auto;
	uint64_t drain_id;     /* the state version of the drain: its migrations have higher ids */
	enum node_status status;
	bool ready;	       /* reported clean (no leftover VM, keys re-registered) since it joined */
	bool leaving;	       /* said it stops cleanly and runs nothing (node.leave): takes nothing */
	uint64_t fenced_ms;    /* when the last fence of it was confirmed */
	uint64_t left_ms;      /* when the leader saw it leave (fence-pending since) */
	unsigned int watchdog_s; /* its watchdog timeout (0: none): self-fenced after it */
	char mig_endpoint[64];	 /* "tcp://ADDR:PORT" of its migration server, "" none */
	char mig_key[41];	 /* its CURVE public key (Z85), "" none */
};

/* --- rules ------------------------------------------------------------------ */

enum rule_type {
	RULE_ANTI_AFFINITY,
	RULE_AFFINITY,
	RULE_TIER_SEPARATION,
};

enum rule_scope {
	RULE_SCOPE_NODE,
	RULE_SCOPE_DOMAIN,
};

struct rule {
	char name[VM_NAME_MAX + 1];
	enum rule_type type;
	bool hard;
	enum rule_scope scope;
	char vms[RULE_MAX_VMS][VM_NAME_MAX + 1];
	size_t nvms;
	char app[VM_NAME_MAX + 1]; /* tier separation */
};

/* --- settings ------------------------------------------------------------------ */

struct cluster_settings {
	unsigned int cpu_overcommit_pct; /* 100 = none */
	unsigned int mem_overcommit_pct;
	unsigned int restart_max;	 /* restarts on one node within the window, then move */
	unsigned int restart_window_s;
	unsigned int mig_max_per_node;	/* migrations in flight per node, as source or target */
	unsigned int mig_downtime_ms;	/* QEMU's downtime-limit for live migrations */
	unsigned int mig_bandwidth_mbps; /* MiB/s, 0: no limit */
	bool mig_compress;		/* LZ4 on the wire */
	unsigned int mig_threads;	/* compression threads on the source */
	unsigned int mig_timeout_s;	/* a migration taking longer is cancelled */
	enum drain_policy drain[3];	/* per vm_priority: low, medium, high */
};

/* One fence of a node, as the leader recorded it. */
struct fence_record {
	uint32_t node;
	bool ok;
	uint64_t at_ms;
	uint32_t by;	       /* the leader that fenced */
	char detail[STATE_REASON_MAX];
};

cluster_state_t *state_create(void);
void state_destroy(cluster_state_t *s);
/* Deep copy (for what-if planning); NULL on allocation failure. */
cluster_state_t *state_dup(const cluster_state_t *s);

uint64_t state_version(const cluster_state_t *s);
void state_bump(cluster_state_t *s);

/* Lookups; pointers stay valid until the next change of the state. */
const struct vm_def *state_vm_find(const cluster_state_t *s, const char *name);
size_t state_vm_count(const cluster_state_t *s);
const struct vm_def *state_vm_at(const cluster_state_t *s, size_t i);
const struct vm_status *state_vm_status(const cluster_state_t *s, const char *name);
struct vm_status *state_vm_status_mut(cluster_state_t *s, const char *name);

/* Add a validated definition (stopped, not wanted): -EEXIST or -ENOSPC, with a message. */
int state_vm_add(cluster_state_t *s, const struct vm_def *def, char *err, size_t errlen);
/* Remove by name: -ENOENT if there is none. Rules keep naming it (a rule may outlive a VM). */
int state_vm_del(cluster_state_t *s, const char *name);

size_t state_node_count(const cluster_state_t *s);
const struct node_info *state_node_at(const cluster_state_t *s, size_t i);
const struct node_info *state_node_find(const cluster_state_t *s, uint32_t id);
const struct node_info *state_node_by_name(const cluster_state_t *s, const char *name);
struct node_info *state_node_mut(cluster_state_t *s, uint32_t id);
/* Insert or find node @id; NULL when the table is full. */
struct node_info *state_node_upsert(cluster_state_t *s, uint32_t id);

size_t state_rule_count(const cluster_state_t *s);
const struct rule *state_rule_at(const cluster_state_t *s, size_t i);
const struct rule *state_rule_find(const cluster_state_t *s, const char *name);
int state_rule_add(cluster_state_t *s, const struct rule *r, char *err, size_t errlen);
int state_rule_del(cluster_state_t *s, const char *name);

size_t state_acl_count(const cluster_state_t *s);
const struct acl_binding *state_acl(const cluster_state_t *s); /* the array */
int state_acl_add(cluster_state_t *s, const struct acl_binding *b, char *err, size_t errlen);
int state_acl_del(cluster_state_t *s, const char *name);

const fence_conf_t *state_fence_conf(const cluster_state_t *s);
fence_conf_t *state_fence_conf_mut(cluster_state_t *s);

const struct cluster_settings *state_settings(const cluster_state_t *s);
struct cluster_settings *state_settings_mut(cluster_state_t *s);

void state_fence_record(cluster_state_t *s, const struct fence_record *f);
size_t state_fence_count(const cluster_state_t *s);
const struct fence_record *state_fence_at(const cluster_state_t *s, size_t i); /* oldest first */

const char *vm_ha_state_name(enum vm_ha_state st);
int vm_ha_state_parse(const char *s, enum vm_ha_state *st);
const char *node_status_name(enum node_status st);
int node_status_parse(const char *s, enum node_status *st);
const char *vm_event_name(enum vm_event ev);
int vm_event_parse(const char *s, enum vm_event *ev);
const char *rule_type_name(enum rule_type t);
const char *mig_mode_name(enum mig_mode m);
int mig_mode_parse(const char *s, enum mig_mode *m);
const char *mig_phase_name(enum mig_phase p);
const char *mig_result_name(enum mig_result r);
const char *mig_cause_name(enum mig_cause c);
int mig_cause_parse(const char *s, enum mig_cause *c);
const char *drain_policy_name(enum drain_policy p);
int drain_policy_parse(const char *s, enum drain_policy *p);
/* The migration (in flight, or the last one) as the JSON hvctl shows; node names from @s. */
json_t *mig_to_json(const cluster_state_t *s, const struct vm_migration *m);
json_t *mig_last_to_json(const cluster_state_t *s, const struct vm_mig_last *l);
/* A migration's progress as ops carry it (mig.progress, mig.handoff, mig.end). */
json_t *mig_progress_to_json(const struct mig_progress *p);
int rule_type_parse(const char *s, enum rule_type *t);

/* The VM holds its node: assigned and starting, started or stopping there. */
bool vm_holds_node(const struct vm_status *st);
/* Node @n may take VMs (placement, migrations): online, ready, not in maintenance, not
 * leaving, with a migration server. */
bool state_node_takes_vms(const struct node_info *n);

/* Is a VM assigned to node @id (not stopped), or migrating to or from it? */
bool state_node_runs_any(const cluster_state_t *s, uint32_t id);

/* Migrations in flight on node @id, as source or target (queued ones not counted). */
unsigned int state_migrations_on(const cluster_state_t *s, uint32_t id);

/* Rules and node infos as JSON and back (strict: unknown keys, bad types refused). */
json_t *rule_to_json(const struct rule *r);
int rule_from_json(const json_t *j, struct rule *r, char *err, size_t errlen);
json_t *vm_status_to_json(const struct vm_status *st);
json_t *node_info_to_json(const struct node_info *n);

/* Settings as JSON and back: the keys given change, others keep @c's values; ranges checked. */
json_t *settings_to_json(const struct cluster_settings *c);
int settings_from_json(const json_t *j, struct cluster_settings *c, char *err, size_t errlen);

/* The whole state as {"format": 2, "version": N, ...} (new reference). */
json_t *state_to_json(const cluster_state_t *s);
/*
 * Replace @s by the state in @j, all or nothing: on any error (unknown
 * format, a bad VM, duplicates) @s is unchanged and @err says what and where.
 * Format 1 files (VM definitions only) are read too.
 */
int state_from_json(cluster_state_t *s, const json_t *j, char *err, size_t errlen);

#endif
