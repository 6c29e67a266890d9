/* The daemon's context, passed to every part of node/. Private to node/. */
#ifndef HV_NODE_HVNODED_H
#define HV_NODE_HVNODED_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>
#include <qb/qbloop.h>

#include "config.h"
#include "../cluster/membership.h"
#include "../cluster/state.h"

struct ipc_server;
struct vm_run;

struct hvnoded {
	struct hv_config cfg;
	qb_loop_t *loop;
	membership_t *membership;
	struct ipc_server *ipc;
	cluster_state_t *state;	   /* the VM definitions (replicated by a later change) */
	char state_path[4096];
	struct vm_run *runs;	   /* VMs of this node with a runtime, see vmrun.c */
	char last_membership[512]; /* last logged membership line */
	int work_pipe[2];	   /* workers -> loop: finished jobs */
	unsigned int work_running;
};

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
void work_fini(struct hvnoded *d);

/* Helper for command handlers: an {"error": msg} object and *status = err. */
json_t *command_error(int *status, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
