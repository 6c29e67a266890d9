/* The daemon's context, passed to every part of node/. Private to node/. */
#ifndef HV_NODE_HVNODED_H
#define HV_NODE_HVNODED_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>
#include <qb/qbloop.h>

#include "config.h"
#include "../cluster/membership.h"

struct ipc_server;

struct hvnoded {
	struct hv_config cfg;
	qb_loop_t *loop;
	membership_t *membership;
	struct ipc_server *ipc;
	char last_membership[512]; /* last logged membership line */
};

/* Who asks: the peer credentials libqb IPC gives for a connection. */
struct ipc_client {
	uid_t uid;
	gid_t gid;
	pid_t pid;
};

/* Start serving hvctl on the IPC service cfg.ipc_name. 0 or -errno. */
int ipc_server_start(struct hvnoded *d);
void ipc_server_stop(struct hvnoded *d);

/*
 * Run one request. Returns the result object (new reference) with *status 0,
 * or an error object {"error": "..."} with *status -errno.
 */
json_t *command_run(struct hvnoded *d, const struct ipc_client *cl, const char *cmd,
		    json_t *args, int *status);

/* Helper for command handlers: an {"error": msg} object and *status = err. */
json_t *command_error(int *status, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
