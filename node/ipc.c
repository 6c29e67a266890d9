/*
 * The local IPC server for hvctl, on libqb IPC.
 *
 * libqb's poll handler table has no user pointer, so the loop the server
 * runs on is kept in one file-static variable; there is one server per
 * process.
 */
#include "hvnoded.h"
#include "ipcproto.h"
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <qb/qbipcs.h>
#include <qb/qblog.h>

struct ipc_server {
	qb_ipcs_service_t *service;
	struct hvnoded *d;
};

struct ipc_request {
	qb_ipcs_connection_t *c; /* referenced while the request lives */
	const struct ipc_client *cl;
	json_t *audit; /* a change asked for: {who, cmd, object}; NULL for a read */
	bool audited;  /* its record went out on the op that makes the change */
};

static qb_loop_t *ipc_loop;
static struct hvnoded *ipc_daemon;

static int32_t job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(ipc_loop, p, data, fn);
}

static int32_t dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(ipc_loop, p, fd, events, data, fn);
}

static int32_t dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t events, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(ipc_loop, p, fd, events, data, fn);
}

static int32_t dispatch_del(int32_t fd)
{
	return qb_loop_poll_del(ipc_loop, fd);
}

static int32_t conn_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	struct ipc_client *cl = calloc(1, sizeof(*cl));
	struct qb_ipcs_connection_stats st;

	if (!cl)
		return -ENOMEM;
	cl->uid = uid;
	cl->gid = gid;
	if (qb_ipcs_connection_stats_get(c, &st, QB_FALSE) == 0)
		cl->pid = st.client_pid;
	qb_ipcs_context_set(c, cl);
	qb_log(LOG_DEBUG, "client pid %d uid %u gid %u connected", (int)cl->pid, (unsigned)uid,
	       (unsigned)gid);
	return 0;
}

static void conn_destroyed(qb_ipcs_connection_t *c)
{
	free(qb_ipcs_context_get(c));
	qb_ipcs_context_set(c, NULL);
}

static int32_t conn_closed(qb_ipcs_connection_t *c)
{
	return 0;
}

static void send_json(qb_ipcs_connection_t *c, int32_t id, int status, json_t *body)
{
	struct qb_ipc_response_header hdr;
	struct iovec iov[2];
	char *text = json_dumps(body, JSON_COMPACT);
	ssize_t rc;

	if (!text) {
		qb_log(LOG_ERR, "cannot encode a response");
		return;
	}
	memset(&hdr, 0, sizeof(hdr)); /* its padding goes on the wire */
	hdr.id = id;
	hdr.error = status;
	hdr.size = sizeof(hdr) + strlen(text);
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = text;
	iov[1].iov_len = strlen(text);
	if (hdr.size > HV_IPC_MAX_MSG) {
		qb_log(LOG_ERR, "response of %d bytes exceeds the IPC limit", hdr.size);
		free(text);
		text = strdup("{\"error\":\"response too large\"}");
		if (!text)
			return;
		hdr.error = -EMSGSIZE;
		iov[1].iov_base = text;
		iov[1].iov_len = strlen(text);
		hdr.size = sizeof(hdr) + iov[1].iov_len;
	}
	rc = qb_ipcs_response_sendv(c, iov, 2);
	if (rc < 0)
		qb_log(LOG_WARNING, "cannot send response: %s", strerror((int)-rc));
	free(text);
}

static void drop_job(void *data)
{
	qb_ipcs_connection_t *c = data;

	qb_ipcs_disconnect(c);
	qb_ipcs_connection_unref(c);
}

/* A client that sends garbage gets one error reply and loses its connection. */
static void reject(qb_ipcs_connection_t *c, const struct ipc_client *cl, char *why)
{
	json_t *body;

	/* the reason may quote the client's bytes: keep the log line printable */
	for (char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	body = json_pack("{s:s}", "error", why);

	qb_log(LOG_WARNING, "dropping client pid %d uid %u: %s", cl ? (int)cl->pid : -1,
	       cl ? (unsigned)cl->uid : 0, why);
	if (body) {
		send_json(c, HV_IPC_RESPONSE, -EPROTO, body);
		json_decref(body);
	}
	/* not from inside msg_process: libqb is still using the connection */
	qb_ipcs_connection_ref(c);
	if (qb_loop_job_add(ipc_loop, QB_LOOP_HIGH, c, drop_job) != 0)
		qb_ipcs_connection_unref(c);
}

const struct ipc_client *ipc_request_client(const struct ipc_request *req)
{
	return req->cl;
}

json_t *ipc_request_audit(const struct ipc_request *req)
{
	return req->audit;
}

void ipc_request_set_audit(struct ipc_request *req, json_t *rec)
{
	json_decref(req->audit);
	req->audit = rec;
}

void ipc_request_audited(struct ipc_request *req)
{
	req->audited = true;
}

void ipc_request_reply(struct ipc_request *req, int status, json_t *body)
{
	/* a change that no op carried (refused before it was sent, or done locally) */
	if (req->audit && !req->audited)
		audit_reply(ipc_daemon, req->audit, status, body);
	json_decref(req->audit);
	send_json(req->c, HV_IPC_RESPONSE, status, body);
	qb_ipcs_connection_unref(req->c);
	free(req);
}

void ipc_request_fail(struct ipc_request *req, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *body;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	body = json_pack("{s:s}", "error", msg);
	ipc_request_reply(req, status, body);
	json_decref(body);
}

static int32_t msg_process(qb_ipcs_connection_t *c, void *data, size_t size)
{
	const struct ipc_client *cl = qb_ipcs_context_get(c);
	char cmd[HV_IPC_CMD_MAX];
	json_t *args, *res;
	struct ipc_request *r;
	char why[256];
	int status = 0;

	if (ipc_request_decode(data, size, cmd, sizeof(cmd), &args, why, sizeof(why)) != 0) {
		reject(c, cl, why);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(args);
		snprintf(why, sizeof(why), "out of memory");
		reject(c, cl, why);
		return 0;
	}
	qb_ipcs_connection_ref(c);
	r->c = c;
	r->cl = cl;
	res = command_run(ipc_daemon, r, cmd, args, &status);
	if (res) {
		ipc_request_reply(r, status, res);
		json_decref(res);
	}
	json_decref(args);
	return 0;
}

int ipc_server_start(struct hvnoded *d)
{
	static struct qb_ipcs_service_handlers handlers = {
		.connection_accept = conn_accept,
		.msg_process = msg_process,
		.connection_closed = conn_closed,
		.connection_destroyed = conn_destroyed,
	};
	static struct qb_ipcs_poll_handlers poll_handlers = {
		.job_add = job_add,
		.dispatch_add = dispatch_add,
		.dispatch_mod = dispatch_mod,
		.dispatch_del = dispatch_del,
	};
	struct ipc_server *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ipc_loop = d->loop;
	ipc_daemon = d;
	s->d = d;
	s->service = qb_ipcs_create(d->cfg.ipc_name, 0, QB_IPC_SOCKET, &handlers);
	if (!s->service) {
		rc = -errno;
		goto err_free;
	}
	qb_ipcs_enforce_buffer_size(s->service, HV_IPC_MAX_MSG);
	qb_ipcs_poll_handlers_set(s->service, &poll_handlers);
	rc = qb_ipcs_run(s->service);
	if (rc < 0)
		goto err_destroy;
	d->ipc = s;
	qb_log(LOG_INFO, "serving hvctl on IPC service '%s'", d->cfg.ipc_name);
	return 0;
err_destroy:
	qb_ipcs_destroy(s->service);
err_free:
	free(s);
	return rc;
}

void ipc_server_stop(struct hvnoded *d)
{
	if (!d->ipc)
		return;
	qb_ipcs_destroy(d->ipc->service);
	free(d->ipc);
	d->ipc = NULL;
}
