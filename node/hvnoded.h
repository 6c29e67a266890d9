/* The daemon's context, passed to every part of node/. Private to node/. */
#ifndef HV_NODE_HVNODED_H
#define HV_NODE_HVNODED_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>
#include <qb/qbloop.h>

#include "config.h"
#include "../cluster/membership.h"
#include "../cluster/acl.h"
#include "../cluster/state.h"

struct ipc_server;
struct vm_run;
struct agent;

struct hvnoded {
	struct hv_config cfg;
	qb_loop_t *loop;
	membership_t *membership;
	struct ipc_server *ipc;
	cluster_state_t *state;	   /* the replicated cluster state (cluster.c keeps it in sync) */
	struct agent *agent;	   /* cluster.c */
	struct vmmig *mig;	   /* vmmig.c: keys, migration server, migrations in flight */
	char state_path[4096];
	/* the state file was corrupt: moved to state_moved; wait for the cluster's state */
	bool state_needed;
	char state_moved[4200];
	struct vm_run *runs;	   /* VMs of this node with a runtime, see vmrun.c */
	char last_membership[512]; /* last logged membership line */
	int work_pipe[2];	   /* workers -> loop: finished jobs */
	int wd_fd;		   /* watchdog.c: the device, -1 when none */
	qb_loop_timer_handle wd_timer;
	uint64_t wd_lost_ms;	   /* when quorum was lost (monotonic), 0 while quorate */
	bool wd_warned, wd_starving;
	unsigned int work_running;
	/* maintcmd.c: a clean stop that drains (or freezes) this node first */
	bool shutting_down;
	enum { SHUTDOWN_DRAINING, SHUTDOWN_FREEZING, SHUTDOWN_LEAVING } shutdown_phase;
	uint64_t shutdown_deadline_ms; /* monotonic */
	qb_loop_timer_handle shutdown_timer;
};

/* How a VM's run on this node ended. */
enum vm_gone {
	VM_GONE_ASKED,	  /* stopped as asked */
	VM_GONE_POWEROFF, /* the guest powered off (by itself, or by vm shutdown) */
	VM_GONE_FAILED,	  /* the start failed or QEMU died; see the reason */
};

/* The agent (cluster.c) learns what the local runs do. */
void agent_vm_running(struct hvnoded *d, const char *name, uint64_t epoch);
/* The same for the target of a migration: resumed @resume_ms after its stream was loaded. */
void agent_vm_resumed(struct hvnoded *d, const char *name, uint64_t epoch, uint64_t resume_ms);
/* A start of @name for @epoch is under way that the agent did not issue (a migration's handoff). */
void agent_vm_starting(struct hvnoded *d, const char *name, uint64_t epoch);
void agent_vm_gone(struct hvnoded *d, const char *name, uint64_t epoch, enum vm_gone how,
		   const char *reason);

/* Who asks: the peer credentials libqb IPC gives for a connection. */
struct ipc_client {
	uid_t uid;
	gid_t gid;
	pid_t pid;
};

/* One request in flight; its reply may come later (after a worker or QEMU answered). */
struct ipc_request;

const struct ipc_client *ipc_request_client(const struct ipc_request *req);
/* Send the reply (@body borrowed) and free @req. The client may be gone: then it is dropped. */
void ipc_request_reply(struct ipc_request *req, int status, json_t *body);
/*
 * The change @req asks for as the audit log names it, {who, cmd, object}
 * (borrowed), or NULL for a read. authz_check() sets it (@rec consumed).
 * Unless ipc_request_audited() says an op carried the record to the cluster,
 * the reply is audited with its result (audit_reply()).
 */
json_t *ipc_request_audit(const struct ipc_request *req);
void ipc_request_set_audit(struct ipc_request *req, json_t *rec);
void ipc_request_audited(struct ipc_request *req);
/* Reply {"error": msg} with @status (-errno) and free @req. */
void ipc_request_fail(struct ipc_request *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Start serving hvctl on the IPC service cfg.ipc_name. 0 or -errno. */
int ipc_server_start(struct hvnoded *d);
void ipc_server_stop(struct hvnoded *d);

/*
 * Run one request. Returns the result object (new reference) with *status 0,
 * or an error object {"error": "..."} with *status -errno; or NULL when the
 * command keeps @req and replies later with ipc_request_reply().
 */
json_t *command_run(struct hvnoded *d, struct ipc_request *req, const char *cmd, json_t *args,
		    int *status);

/* Command handlers (commands.c, vmcmd.c), with command_run's contract. */
#define COMMAND(name) \
	json_t *name(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
COMMAND(cmd_vm_create);
COMMAND(cmd_vm_delete);
COMMAND(cmd_vm_list);
COMMAND(cmd_vm_show);
COMMAND(cmd_vm_console);
COMMAND(cmd_vm_start);
COMMAND(cmd_vm_stop);
COMMAND(cmd_vm_shutdown);
COMMAND(cmd_vm_pause);
COMMAND(cmd_vm_resume);
COMMAND(cmd_vm_migrate);
COMMAND(cmd_vm_migrate_cancel);
COMMAND(cmd_vm_save);
COMMAND(cmd_vm_restore);
/* rulecmd.c */
COMMAND(cmd_vm_explain);
COMMAND(cmd_rule_add);
COMMAND(cmd_rule_list);
COMMAND(cmd_rule_show);
COMMAND(cmd_rule_del);
COMMAND(cmd_plan);
/* fencecmd.c */
COMMAND(cmd_fence_device_add);
COMMAND(cmd_fence_device_list);
COMMAND(cmd_fence_device_del);
COMMAND(cmd_fence_level_add);
COMMAND(cmd_fence_level_list);
COMMAND(cmd_fence_level_del);
COMMAND(cmd_fence_history);
COMMAND(cmd_node_list);
COMMAND(cmd_node_fence);
COMMAND(cmd_node_confirm);
/* seccmd.c */
COMMAND(cmd_security_report);
/* maintcmd.c */
COMMAND(cmd_node_drain);
COMMAND(cmd_node_resume);
COMMAND(cmd_node_impact);
/*
 * SIGTERM: per shutdown_policy, drain (or freeze) this node before the loop
 * stops. true: under way, the loop stops when it is done; false: stop now.
 */
bool maint_shutdown(struct hvnoded *d);

/*
 * Check that every disk of @def can be used: a valid iSCSI URL, reachable,
 * and (unless def->fence_storage is off) supporting persistent
 * reservations. Blocking: runs in a worker. 0 or -errno with a message.
 */
int vm_disks_probe(struct hvnoded *d, const struct vm_def *def, char *err, size_t errlen);

/*
 * Run @fn(@arg) in a worker thread (blocking work: iSCSI), then @done(@arg,
 * rc) on the loop. 0 or -errno (then neither runs).
 */
int work_submit(struct hvnoded *d, int (*fn)(void *arg), void (*done)(void *arg, int rc),
		void *arg);
int work_init(struct hvnoded *d);
/* Wait for every job, running their completions (which may submit more). */
void work_drain(struct hvnoded *d);
void work_fini(struct hvnoded *d);

/* --- authz.c: roles and the audit log ---------------------------------------------- */

/*
 * May the client of @req run @cmd (with @args) needing role @need? A read of
 * @guest_data (a console) needs the VM in the caller's scope; other reads do
 * not. 0, or -EACCES with @err saying who lacks what (and a refused change is
 * audited). An allowed change gets its audit record (ipc_request_audit()).
 */
int authz_check(struct hvnoded *d, struct ipc_request *req, const char *cmd, enum acl_role need,
		bool guest_data, json_t *args, char *err, size_t errlen);
/*
 * The reply to a change that no op carried (@rec: ipc_request_audit()): refused
 * before it was sent (bad arguments, no quorum, not on this node), or done
 * here (pause, resume): an audit.record to every node, or this node's log alone
 * when the cluster cannot take it.
 */
void audit_reply(struct hvnoded *d, const json_t *rec, int status, const json_t *body);
/* Append what @op (from node @node) did to this node's audit log, if it carries "who". */
void audit_append(struct hvnoded *d, const json_t *op, const char *node, int rc,
		  const char *err);
/* Send @op (borrowed) to the cluster as it is, with no waiter (an audit record, a
 * migration's progress). 0, or -errno when it cannot go out. */
int cluster_send(struct hvnoded *d, json_t *op);
COMMAND(cmd_audit);
COMMAND(cmd_acl_list);
COMMAND(cmd_acl_add);
COMMAND(cmd_acl_del);

/* --- watchdog.c ---------------------------------------------------------------- */

/* Open and arm [watchdog] device if configured, and pet it while healthy. 0 or -errno. */
int watchdog_start(struct hvnoded *d);
/* Disarm (magic close) on a clean stop. */
void watchdog_stop(struct hvnoded *d);
/* Its timeout when armed, 0 otherwise (told to the cluster in the node's hello). */
unsigned int watchdog_timeout(struct hvnoded *d);

/* --- cluster.c: this node's part of the cluster ---------------------------------- */

int cluster_init(struct hvnoded *d);
void cluster_fini(struct hvnoded *d);
void cluster_confchg(struct hvnoded *d, const uint32_t *ids, const uint32_t *pids, size_t n);
void cluster_deliver(struct hvnoded *d, uint32_t nodeid, uint32_t pid, const void *msg,
		     size_t len);
void cluster_changed(struct hvnoded *d);
/* Where this node's copy of the state stands, for status: "synced", "syncing", "waiting". */
const char *cluster_state_sync(struct hvnoded *d);

/* What hvctl waits for after its change was applied. */
#define CLUSTER_WAIT_APPLIED 0
#define CLUSTER_WAIT_STARTED 1
#define CLUSTER_WAIT_STOPPED 2

/*
 * Send @op (borrowed; a "req" id is added) to the cluster for @req, which is
 * answered when the op was applied (or refused), or, with WAIT_STARTED or
 * WAIT_STOPPED, when VM @vm got there (or could not), within @timeout_s (0:
 * default). The op carries, for the audit log, who asked and with which hvctl
 * command ("who", "cmd": see ipc_request_audit()). 0, or -errno with @err (not
 * quorate, syncing) and @req untouched.
 */
int cluster_submit(struct hvnoded *d, json_t *op, struct ipc_request *req, int wait,
		   const char *vm, unsigned int timeout_s, char *err, size_t errlen);

/* The VM as `vm show` presents it: definition, manager state, local runtime facts. */
json_t *cluster_vm_json(struct hvnoded *d, const struct vm_def *def);

/* Helper for command handlers: an {"error": msg} object and *status = err. */
json_t *command_error(int *status, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The node @args' "node" names, or NULL with an error reply (naming it) in *res. */
const struct node_info *command_node(struct hvnoded *d, json_t *args, json_t **res, int *status);
/* The wall clock in ms (what ops carry as a time: at_ms, ms). */
uint64_t command_wall_ms(void);
/* Is node @id in the CPG membership now? */
bool command_is_member(struct hvnoded *d, uint32_t id);
/*
 * Submit @op (consumed) and reply when it is applied: NULL (the reply comes
 * later), or the error reply "@what not @verb: why".
 */
json_t *command_submit(struct hvnoded *d, struct ipc_request *req, json_t *op, const char *what,
		       const char *verb, int *status);

#endif
