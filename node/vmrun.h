/*
 * The VMs running on this node: their LUNs, disk servers and QEMU, from
 * start to stop. Everything here runs on the loop; blocking iSCSI work goes
 * to workers. Private to node/.
 */
#ifndef HV_NODE_VMRUN_H
#define HV_NODE_VMRUN_H

#include <stdbool.h>
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
 * Start @def here for assignment @epoch. Its LUNs may be taken from the keys
 * in @preempt (fenced or gone nodes, the fencer) and from no other: a LUN
 * another live node holds is refused. Asynchronous: agent_vm_running() when QEMU runs, or
 * agent_vm_gone(VM_GONE_FAILED) when the start failed. 0, or -errno with @err
 * when nothing was started.
 */
int vmrun_start(struct hvnoded *d, const struct vm_def *def, uint64_t epoch,
		const uint64_t *preempt, size_t npreempt, char *err, size_t errlen);
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

/* Walk the local runs that are not stopped: start with a zeroed @it. */
struct vm_run_iter {
	const struct vm_run *pos;
	const char *name;
	uint64_t epoch;
	bool stopping;
};
bool vmrun_next(struct hvnoded *d, struct vm_run_iter *it);

/* A child exited (from the SIGCHLD reaper); false if it was none of ours. */
bool vmrun_child_exited(struct hvnoded *d, pid_t pid, int wstatus);

/* The VM's private directory: run_dir/vms/NAME. */
void vmrun_dir(struct hvnoded *d, const char *name, char *buf, size_t len);

#endif
