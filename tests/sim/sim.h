/*
 * hvsim's world, shared by its parts (tests/sim): hvsim.c (nodes, agents,
 * the leader, corosync, the script) and simmaint.c (planned maintenance:
 * migrations as the agents carry them out, hvnoded's clean stop, the
 * maintenance commands and expectations). Not a library: one simulator.
 */
#ifndef HV_TESTS_SIM_SIM_H
#define HV_TESTS_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../../cluster/state.h"

struct fence_target;

#define STEP_MS 100
#define SIM_MAX_NODES 32
#define SIM_MAX_VMS 128

enum run_phase {
	RUN_STARTING, /* QEMU is up, the guest boots: it may already write */
	RUN_RUNNING,
};

/* One VM process on one node. */
struct run {
	bool used;
	enum run_phase phase;
	uint64_t epoch;
	uint64_t ready_ms;
	bool fenced; /* the node's key was preempted: it cannot write any more */
};

/* What the agent of a node remembers per VM (node/cluster.c's struct reported). */
struct agent_vm {
	uint64_t rep_epoch;
	enum vm_event rep_event;
	uint64_t start_epoch; /* the epoch a start was issued for */
	enum vm_event gone;   /* QEMU exited: to report (for gone_epoch) */
	uint64_t gone_epoch;
	char gone_reason[128];
	/* the migration this node streams as its source (node/vmmig.c's source context) */
	uint64_t mig_id;       /* 0: none */
	uint64_t mig_start_ms; /* the stream is complete migrate_ms later */
	bool mig_done;	       /* handed off or ended: waits for the state to move on */
	bool handed_off;       /* ... by a handoff of epoch mig_epoch: its QEMU is gone */
	uint64_t mig_epoch;
};

/* hvnoded's clean stop under way (node/maintcmd.c, shutdown_policy). */
enum sim_shutdown {
	SIM_SHUTDOWN_NONE,
	SIM_SHUTDOWN_MIGRATE, /* drains itself (node.drain auto), then stops */
	SIM_SHUTDOWN_FREEZE,  /* freezes its VMs (node.freeze), then stops */
};

struct simnode {
	uint32_t id;
	char name[16];
	unsigned int vcpus;
	uint64_t memory_mb;
	char domain[VM_NAME_MAX + 1];
	char clearance[16];
	bool power, connected;
	bool missed; /* powered off or cut off since the last membership */
	unsigned int fence_fail;
	unsigned int watchdog_s; /* sent in its hello */
	/* the agent */
	bool quorate;
	bool was_quorate; /* since it was powered on */
	uint64_t quorum_lost_ms;
	bool lost_quorum;
	bool hello_sent;
	enum sim_shutdown shutdown;
	bool leave_sent; /* its node.leave (nothing runs here: offline, no fence) is on its way */
	struct run runs[SIM_MAX_VMS];
	struct agent_vm av[SIM_MAX_VMS];
	/* a fence of this node by the leader */
	bool fencing;	     /* job running or its result not yet delivered */
	bool fence_reported; /* result sent */
	uint32_t fence_by;
	uint64_t fence_done_ms;
	uint64_t fence_retry_ms;
	uint64_t fence_backoff_ms; /* the delay after the last failure (levels model) */
	struct fence_target *ft;   /* the job's target, copied at its start */
	unsigned int mig_peak;	   /* the most migrations in flight on it at once */
};

struct simvm {
	char name[VM_NAME_MAX + 1];
	unsigned int fail_starts;
	unsigned int fail_migrations; /* its next N migrations fail at the source */
	uint32_t last_host; /* the node it last started on, until a report or a fence ends it */
};

struct qop {
	uint32_t sender;
	uint64_t due; /* delivered at the end of the step of this time */
	json_t *op;
};

struct sim {
	cluster_state_t *st;
	uint64_t now;
	bool stepped; /* a step ran: the clock may no longer be set */
	struct simnode nodes[SIM_MAX_NODES];
	size_t nnodes;
	struct simvm vms[SIM_MAX_VMS];
	size_t nvms;
	struct qop *queue;
	size_t nqueue, qcap;
	uint32_t members[SIM_MAX_NODES];
	size_t nmembers;
	bool quorate;
	uint32_t leader;
	char last_membership[256];
	unsigned int uuid_seq;
	/* settings of the simulated world (the cluster's own are in the state) */
	uint64_t start_ms, fence_ms, fence_retry_ms, fence_retry_max_ms, quorum_loss_ms, lag_ms;
	uint64_t migrate_ms; /* a migration's stream, live or quick */
	bool agent_reports_lost;
	/*
	 * The fencing-levels model: switched on by the first fencing command
	 * (device, level, ...). The fence log line then carries fence_run's
	 * detail and failed fences are retried with backoff, like node/cluster.c;
	 * without it the short line and constant retry of the former abstract
	 * model stay (fence_run decides in both).
	 */
	bool fence_levels;
	unsigned int ok, failed;
	const char *script;
	unsigned int line;
};

/* --- hvsim.c ---------------------------------------------------------------------- */

/* A log line at the virtual time. */
__attribute__((format(printf, 2, 3))) void sim_say(struct sim *s, const char *fmt, ...);
/* A bad script: the line and why on stderr, exit 2. */
__attribute__((format(printf, 2, 3), noreturn)) void sim_script_error(struct sim *s,
								      const char *fmt, ...);
/* A broken invariant: into the log, exit 1. */
__attribute__((format(printf, 2, 3), noreturn)) void sim_violated(struct sim *s, const char *fmt,
								  ...);
/* An expectation's outcome, counted and logged. */
__attribute__((format(printf, 3, 4))) void sim_verdict(struct sim *s, bool ok, const char *fmt,
						       ...);

struct simnode *sim_node_by_id(struct sim *s, uint32_t id);
/* The node named @name, or a script error. */
struct simnode *sim_node_arg(struct sim *s, const char *name);
/* The name of node @id, "none" for 0. */
const char *sim_id_name(struct sim *s, uint32_t id);
/* The index of the VM named @name, or a script error. */
int sim_vm_arg(struct sim *s, const char *name);
bool sim_is_member(struct sim *s, uint32_t id);
uint64_t sim_num_arg(struct sim *s, const char *tok);
/* "count N" after a name (1 without it). */
unsigned int sim_opt_count(struct sim *s, char **tok, int ntok);

/* Queue @op (consumed) from node @sender, applied at the end of the step. */
void sim_send_op(struct sim *s, uint32_t sender, json_t *op);
/* An op as hvctl on node @from (NULL: the lowest of the quorate side) sends it. */
void sim_client_op(struct sim *s, const char *from, json_t *op);
/* The agent of @n reports @ev of VM @v for @epoch (once per epoch and event). */
void sim_report(struct sim *s, struct simnode *n, int v, uint64_t epoch, enum vm_event ev,
		const char *reason);
/* The process of VM @v on @n ends, logged with @why. */
void sim_run_stop(struct sim *s, struct simnode *n, int v, const char *why);
void sim_power_set(struct sim *s, struct simnode *n, bool on);
/* The reservation key of node @id. */
uint64_t sim_node_key(uint32_t id);

/* --- simmaint.c --------------------------------------------------------------------- */

/* The source's side of the migrations of VMs on @n: stream, then handoff or end. */
void sim_agent_migrate(struct sim *s, struct simnode *n);
/* Whether @v's start on @n resumes it after a migration's handoff (its log says so). */
bool sim_agent_resumes(struct sim *s, struct simnode *n, int v, uint64_t *id, uint32_t *from);
/* A clean stop under way on @n: true when the node stopped now (it did nothing else). */
bool sim_agent_shutdown(struct sim *s, struct simnode *n);
/* After every step: migrations in flight per node within migrate_max_per_node. */
void sim_check_migrations(struct sim *s);

/* Script: drain, resume, migrate, migrate-cancel, migrate-fail, shutdown; false: not one. */
bool sim_cmd_maint(struct sim *s, char **tok, int ntok);
/* set KEY VALUE of maintenance (drain-*, migrate-*, clock-ms); false: not one of them. */
bool sim_set_maint(struct sim *s, const char *key, const char *value);
/* expect VM migrated|migration|held|home ..., expect node NODE maintenance|active|...; false: not one. */
bool sim_expect_maint(struct sim *s, char **tok, int ntok);
/* `show`: the maintenance lines of node @n / VM @name ("" when nothing to say). */
void sim_show_node_maint(struct sim *s, const struct node_info *n, char *buf, size_t len);
void sim_show_vm_maint(struct sim *s, const struct vm_status *st, char *buf, size_t len);

#endif
