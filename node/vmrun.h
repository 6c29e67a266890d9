/*
 * The VMs running on this node: their LUNs, disk servers and QEMU, from
 * start to stop. Everything here runs on the loop; blocking iSCSI work goes
 * to workers. Private to node/.
 */
#ifndef HV_NODE_VMRUN_H
#define HV_NODE_VMRUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "../cluster/vm.h"

struct hvnoded;
struct ipc_request;

int vmrun_init(struct hvnoded *d);
/* Stop every VM of this node hard and release its LUNs (daemon shutdown). */
void vmrun_fini(struct hvnoded *d);

/* Not stopped: starting, running, paused, stopping. */
bool vmrun_is_active(struct hvnoded *d, const char *name);
/* Runtime facts of @name merged into @obj: state, node, pid, reason, last_error. */
void vmrun_describe(struct hvnoded *d, const char *name, json_t *obj);

/*
 * Start @def here for assignment @epoch (@restore: from the state saved on
 * its state LUN, instead of booting). Its LUNs may be taken from the keys
 * in @preempt (fenced or gone nodes, the fencer) and from no other: a LUN
 * another live node holds is refused. Asynchronous: agent_vm_running() when QEMU runs, or
 * agent_vm_gone(VM_GONE_FAILED) when the start failed. 0, or -errno with @err
 * when nothing was started.
 */
int vmrun_start(struct hvnoded *d, const struct vm_def *def, uint64_t epoch,
		const uint64_t *preempt, size_t npreempt, bool restore, char *err, size_t errlen);
/* Hard stop (also while starting); agent_vm_gone(VM_GONE_ASKED) when done. -ENOENT: not here. */
int vmrun_stop(struct hvnoded *d, const char *name);
/* ACPI power button, hard stop after @timeout_s; agent_vm_gone(VM_GONE_POWEROFF). */
int vmrun_shutdown(struct hvnoded *d, const char *name, unsigned int timeout_s, char *err,
		   size_t errlen);
/* The epoch the local run of @name carries out; 0 when it does not run here. */
uint64_t vmrun_epoch(struct hvnoded *d, const char *name);
/* Each replies to @req when QEMU answered. */
void vmrun_pause(struct hvnoded *d, const char *name, struct ipc_request *req);
void vmrun_resume(struct hvnoded *d, const char *name, struct ipc_request *req);

/* --- migration ------------------------------------------------------------------- */

typedef struct qemu_vm qemu_vm_t;
/* @rc 0, or -errno with @err; @err valid only during the call. */
typedef void (*vmrun_ready_fn)(void *arg, int rc, const char *err);
typedef void (*vmrun_done_fn)(void *arg, int rc, const char *err);

/*
 * The target of migration @mig_id: disk servers that register at their first
 * write only, QEMU paused with -incoming, fed from @qemu_fd (taken, closed in
 * any case). @ready once QEMU waits for the stream (0) or could not (-errno).
 * No LUN is taken and nothing is reported to the agent: the VM is not
 * assigned here until vmrun_incoming_finish(). 0 or -errno with @err.
 */
int vmrun_incoming(struct hvnoded *d, const struct vm_def *def, uint64_t mig_id, int qemu_fd,
		   vmrun_ready_fn ready, void *arg, char *err, size_t errlen);
/* The incoming QEMU of @name loaded the whole stream: its downtime on this side starts. */
void vmrun_incoming_loaded(struct hvnoded *d, const char *name);
/*
 * The handoff: @name is assigned here now for @epoch. Take its LUNs (from
 * the keys in @preempt too), resume QEMU; agent_vm_running(), or
 * agent_vm_gone(FAILED) as for a start. -ENOENT: no incoming run of @name.
 */
int vmrun_incoming_finish(struct hvnoded *d, const char *name, uint64_t epoch,
			  const uint64_t *preempt, size_t npreempt);
/*
 * The source's side of the handoff: kill QEMU (it completed its migration),
 * stop the disk servers, release the LUNs; then @done (0, or -EIO with the
 * error: some LUN not released) instead of telling the agent.
 */
int vmrun_handoff(struct hvnoded *d, const char *name, vmrun_done_fn done, void *arg);
/* QEMU of @name when it runs here (for the migration's QMP), else NULL. */
qemu_vm_t *vmrun_qemu(struct hvnoded *d, const char *name);

/* Walk the local runs that are not stopped: start with a zeroed @it. */
struct vm_run_iter {
	const struct vm_run *pos;
	const char *name;
	uint64_t epoch;
	bool stopping;
	uint64_t incoming; /* the migration it is the target of, 0 none */
};
bool vmrun_next(struct hvnoded *d, struct vm_run_iter *it);

/* A child exited (from the SIGCHLD reaper); false if it was none of ours. */
bool vmrun_child_exited(struct hvnoded *d, pid_t pid, int wstatus);

/* The VM's private directory: run_dir/vms/NAME. */
void vmrun_dir(struct hvnoded *d, const char *name, char *buf, size_t len);

#endif
