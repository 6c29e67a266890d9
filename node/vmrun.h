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

/* Each replies to @req when done (or failed). */
void vmrun_start(struct hvnoded *d, const struct vm_def *def, struct ipc_request *req);
void vmrun_stop(struct hvnoded *d, const char *name, struct ipc_request *req);
void vmrun_shutdown(struct hvnoded *d, const char *name, unsigned int timeout_s,
		    struct ipc_request *req);
void vmrun_pause(struct hvnoded *d, const char *name, struct ipc_request *req);
void vmrun_resume(struct hvnoded *d, const char *name, struct ipc_request *req);

/* A child exited (from the SIGCHLD reaper); false if it was none of ours. */
bool vmrun_child_exited(struct hvnoded *d, pid_t pid, int wstatus);

/* The VM's private directory: run_dir/vms/NAME. */
void vmrun_dir(struct hvnoded *d, const char *name, char *buf, size_t len);

#endif
