/*
 * The target's server: one ROUTER socket, CURVE server, bound to the node's migration
 * endpoint, for every incoming migration at once.
 *
 * Threads, and what each owns:
 *   router   the ROUTER socket and its monitor; every connection's state machine, the
 *            messages to the sources (ACCEPT, REJECT, ACK, DONE, ABORT, PONG)
 *   zap      the ZAP handler (a REP socket on inproc://zeromq.zap.01): lets in CURVE
 *            clients whose key is in the allowed set
 *   writer   one per accepted connection: checks and decodes its blocks in order and
 *            writes them to the connection's fd, which may block as long as QEMU wants
 * The router hands a connection's BLOCK messages to its writer without copying them, and
 * acknowledges only what the writer wrote: the source's window is the back-pressure.
 *
 * The caller's thread talks to the router through a command queue and the wake eventfd;
 * it hears back through the event queue, the notify eventfd and mig_server_dispatch().
 * A connection lives while the router uses it or an event or command refers to it;
 * only the router links and unlinks connections (so it walks the list without the
 * lock), the others find them under the lock.
 *
 * This file: setup and teardown, the ZAP handler, the caller's side (commands in,
 * events out). The router thread and the writers: server_conn.c.
 */
#include "server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qb/qbdefs.h>
#include <qb/qblog.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "hvcluster-migrate"
#define REJECT_PER_SEC 10 /* rejected() reports per second; the rest are counted */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
							  ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* --- events to the caller ---------------------------------------------------------- */

static void push_event(struct mig_server *srv, struct event *e)
{
	pthread_mutex_lock(&srv->lock);
	if (e->conn)
		e->conn->refs++;
	if (srv->ev_tail)
		srv->ev_tail->next = e;
	else
		srv->ev_head = e;
	srv->ev_tail = e;
	pthread_mutex_unlock(&srv->lock);
	mig_eventfd_signal(srv->notify_fd);
}

void srv_post_event(struct mig_server *srv, enum ev_kind kind, struct conn *c, bool ok,
		    const char *text)
{
	struct event *e = calloc(1, sizeof(*e));

	if (!e || !(e->text = strdup(text ? text : ""))) {
		free(e);
		qb_log(LOG_ERR, "migration server: out of memory: lost an event of conn %" PRIu64,
		       c ? c->id : 0);
		return;
	}
	e->kind = kind;
	e->conn = c;
	e->conn_id = c ? c->id : 0;
	e->ok = ok;
	if (c)
		memcpy(e->key, c->key, sizeof(e->key));
	push_event(srv, e);
}

/*
 * A new second of the refusal rate limit: reports how many the last one dropped.
 * @report: count one more refusal and say whether it may be reported.
 */
bool srv_rate_limit(struct mig_server *srv, bool report)
{
	uint64_t sec = mig_now_ms() / 1000;
	unsigned int dropped = 0;
	char why[WHY_MAX];
	bool ok = false;

	pthread_mutex_lock(&srv->lock);
	if (sec != srv->rl_sec) {
		dropped = srv->rl_dropped;
		srv->rl_sec = sec;
		srv->rl_count = 0;
		srv->rl_dropped = 0;
	}
	if (report) {
		ok = srv->rl_count < REJECT_PER_SEC;
		if (ok)
			srv->rl_count++;
		else
			srv->rl_dropped++;
	}
	pthread_mutex_unlock(&srv->lock);

	if (dropped) {
		qb_log(LOG_WARNING, "migration server: %u more refusals not reported", dropped);
		snprintf(why, sizeof(why), "%u more refusals not reported", dropped);
		srv_post_event(srv, EV_REJECTED, NULL, false, why);
	}
	return ok;
}

/* Refusals and garbage: logged and reported at most REJECT_PER_SEC times a second. */
void srv_post_rejected(struct mig_server *srv, const char *fmt, ...)
{
	char why[WHY_MAX];
	va_list ap;

	if (!srv_rate_limit(srv, true))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	qb_log(LOG_WARNING, "migration server: %s", why);
	srv_post_event(srv, EV_REJECTED, NULL, false, why);
}

/* --- the ZAP handler ------------------------------------------------------------------- */

static bool key_allowed(struct mig_server *srv, const char *key)
{
	bool ok = false;

	pthread_mutex_lock(&srv->lock);
	for (size_t i = 0; i < srv->nallowed && !ok; i++)
		ok = !strcmp(srv->allowed[i], key);
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

/* Answer one ZAP request (RFC 27): 200 for a CURVE client with an allowed key. */
static int zap_answer(struct mig_server *srv, zmq_msg_t *part, int nparts)
{
	char key[MIG_KEY_Z85] = "", addr[64] = "?";
	const char *code = "400", *text = "unknown key";
	bool curve;

	if (nparts < 6 || zmq_msg_size(&part[0]) != 3 || memcmp(zmq_msg_data(&part[0]), "1.0", 3))
		return -EPROTO;
	snprintf(addr, sizeof(addr), "%.*s",
		 (int)(zmq_msg_size(&part[3]) < 63 ? zmq_msg_size(&part[3]) : 63),
		 (const char *)zmq_msg_data(&part[3]));
	curve = zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5);
	if (!curve) {
		text = "CURVE only";
	} else if (nparts == 7 && zmq_msg_size(&part[6]) == 32) {
		zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
		if (key_allowed(srv, key)) {
			code = "200";
			text = "OK";
		}
	}
	if (zmq_send(srv->zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, code, 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, text, strlen(text), ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, key, code[0] == '2' ? strlen(key) : 0, ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, "", 0, 0) < 0)
		return -zmq_errno();
	if (code[0] != '2') {
		if (curve)
			srv_post_rejected(srv, "refused a connection from %s: unknown key %s", addr,
					  key[0] ? key : "(none)");
		else
			srv_post_rejected(srv, "refused a connection from %s: not CURVE", addr);
	}
	return 0;
}

/* A REP socket must answer: a 500 to a request we cannot read. */
static int zap_answer_bad(struct mig_server *srv)
{
	if (zmq_send(srv->zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, "", 0, ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, "500", 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, "bad request", 11, ZMQ_SNDMORE) < 0 ||
	    zmq_send(srv->zap, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(srv->zap, "", 0, 0) < 0)
		return -zmq_errno();
	return 0;
}

static void *zap_main(void *arg)
{
	struct mig_server *srv = arg;
	zmq_msg_t part[8];
	int rc = 0;

	mig_thread_init("mig-srv-zap");
	for (int i = 0; i < 8; i++)
		zmq_msg_init(&part[i]);
	while (rc == 0) {
		int n = 0, more = 1;

		/* a request: up to 8 frames kept, the rest read and dropped */
		while (more && rc == 0) {
			zmq_msg_t *p = &part[n < 8 ? n : 7];

			if (zmq_msg_recv(p, srv->zap, 0) < 0)
				rc = -zmq_errno();
			more = zmq_msg_more(p);
			n++;
		}
		if (rc == -EINTR) {
			rc = 0;
			continue;
		}
		if (rc)
			break;
		rc = zap_answer(srv, part, n > 8 ? 8 : n);
		if (rc == -EPROTO)
			rc = zap_answer_bad(srv);
	}
	/* ETERM: mig_server_free() shut the context down */
	if (rc != -ETERM)
		qb_log(LOG_ERR, "migration server: ZAP handler stops: %s", zmq_strerror(-rc));
	for (int i = 0; i < 8; i++)
		zmq_msg_close(&part[i]);
	zmq_close(srv->zap);
	srv->zap = NULL;
	return NULL;
}

/* --- setup ----------------------------------------------------------------------------- */

static int setup_router(struct mig_server *srv, const char *endpoint, const struct mig_keys *keys,
			char *err, size_t errlen)
{
	struct {
		int opt;
		int val;
		const char *name;
	} opts[] = {
		{ZMQ_LINGER, 0, "ZMQ_LINGER"},
		{ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER"},
		{ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY"},
		{ZMQ_SNDHWM, 1000, "ZMQ_SNDHWM"},
		{ZMQ_RCVHWM, 1000, "ZMQ_RCVHWM"},
		{ZMQ_HEARTBEAT_IVL, 1000, "ZMQ_HEARTBEAT_IVL"},
		{ZMQ_HEARTBEAT_TIMEOUT, 5000, "ZMQ_HEARTBEAT_TIMEOUT"},
		{ZMQ_HANDSHAKE_IVL, 5000, "ZMQ_HANDSHAKE_IVL"},
		{ZMQ_IPV6, strchr(endpoint, '[') != NULL, "ZMQ_IPV6"},
	};
	int64_t maxmsg = MIG_MSG_MAX;
	char last[256];
	size_t lastlen = sizeof(last);
	const char *colon;
	int rc;

	srv->router = zmq_socket(srv->ctx, ZMQ_ROUTER);
	if (!srv->router)
		goto err_zmq;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		rc = mig_zmq_setint(srv->router, opts[i].opt, opts[i].val);
		if (rc) {
			set_err(err, errlen, "%s: %s", opts[i].name, zmq_strerror(-rc));
			return rc;
		}
	}
	if (zmq_setsockopt(srv->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
	    zmq_setsockopt(srv->router, ZMQ_CURVE_SECRETKEY, keys->sec, MIG_KEY_Z85 - 1) < 0 ||
	    zmq_setsockopt(srv->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) < 0)
		goto err_zmq;
	if (zmq_socket_monitor(srv->router, MON_ENDPOINT,
			       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_ACCEPTED |
				       ZMQ_EVENT_DISCONNECTED) < 0)
		goto err_zmq;
	srv->mon = zmq_socket(srv->ctx, ZMQ_PAIR);
	if (!srv->mon || zmq_connect(srv->mon, MON_ENDPOINT) < 0)
		goto err_zmq;
	if (zmq_bind(srv->router, endpoint) < 0) {
		rc = -zmq_errno();
		set_err(err, errlen, "bind %s: %s", endpoint, zmq_strerror(-rc));
		return rc;
	}
	if (zmq_getsockopt(srv->router, ZMQ_LAST_ENDPOINT, last, &lastlen) == 0 &&
	    (colon = strrchr(last, ':')))
		srv->port = atoi(colon + 1);
	return 0;
err_zmq:
	rc = -zmq_errno();
	set_err(err, errlen, "server socket: %s", zmq_strerror(-rc));
	return rc;
}

static int setup_zap(struct mig_server *srv, char *err, size_t errlen)
{
	int rc;

	srv->zap = zmq_socket(srv->ctx, ZMQ_REP);
	if (!srv->zap || mig_zmq_setint(srv->zap, ZMQ_LINGER, 0) ||
	    zmq_bind(srv->zap, ZAP_ENDPOINT) < 0) {
		rc = -zmq_errno();
		set_err(err, errlen, "ZAP handler: %s", zmq_strerror(-rc));
		return rc;
	}
	return 0;
}

static void free_events(struct event *e)
{
	while (e) {
		struct event *next = e->next;

		free(e->text);
		free(e);
		e = next;
	}
}

static void destroy(struct mig_server *srv)
{
	struct conn *c, *cn;
	struct cmd *cmd, *next;

	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	pthread_mutex_unlock(&srv->lock);
	if (srv->router_started) {
		mig_eventfd_signal(srv->wake_fd);
		pthread_join(srv->router_thr, NULL);
	} else {
		if (srv->router)
			zmq_socket_monitor(srv->router, NULL, 0);
		if (srv->mon)
			zmq_close(srv->mon);
		if (srv->router)
			zmq_close(srv->router);
	}
	if (srv->ctx)
		zmq_ctx_shutdown(srv->ctx); /* the ZAP thread's recv returns ETERM */
	if (srv->zap_started)
		pthread_join(srv->zap_thr, NULL);
	else if (srv->zap)
		zmq_close(srv->zap);
	if (srv->ctx)
		while (zmq_ctx_term(srv->ctx) < 0 && zmq_errno() == EINTR)
			;

	for (cmd = srv->cmd_head; cmd; cmd = next) {
		next = cmd->next;
		if (cmd->fd >= 0)
			close(cmd->fd);
		free(cmd->text);
		free(cmd);
	}
	free_events(srv->ev_head);
	for (c = srv->conns; c; c = cn) {
		cn = c->next;
		srv_conn_free(c); /* released by the router when it stopped */
	}
	free(srv->allowed);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	if (srv->notify_fd >= 0)
		close(srv->notify_fd);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

mig_server_t *mig_server_start(const char *endpoint, const struct mig_keys *keys,
			       const struct mig_server_ops *ops, void *arg, char *err,
			       size_t errlen)
{
	struct mig_server *srv;
	int rc;

	if (!endpoint || !keys || !mig_key_is_valid(keys->sec) || !mig_key_is_valid(keys->pub)) {
		set_err(err, errlen, "no endpoint or no valid keypair");
		errno = EINVAL;
		return NULL;
	}
	if (!zmq_has("curve")) {
		set_err(err, errlen, "this libzmq has no CURVE support");
		errno = ENOTSUP;
		return NULL;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	if (ops)
		srv->ops = *ops;
	srv->arg = arg;
	srv->wake_fd = srv->notify_fd = -1;
	pthread_mutex_init(&srv->lock, NULL);

	if ((rc = srv->wake_fd = mig_eventfd()) < 0 || (rc = srv->notify_fd = mig_eventfd()) < 0) {
		set_err(err, errlen, "eventfd: %s", strerror(-rc));
		goto err;
	}
	srv->ctx = zmq_ctx_new();
	if (!srv->ctx) {
		rc = -zmq_errno();
		set_err(err, errlen, "zmq_ctx_new: %s", zmq_strerror(-rc));
		goto err;
	}
	if (zmq_ctx_set(srv->ctx, ZMQ_IO_THREADS, 2) < 0)
		qb_log(LOG_DEBUG, "migration server: ZMQ_IO_THREADS: %s",
		       zmq_strerror(zmq_errno()));
	/* the ZAP handler first: CURVE clients must never find it missing */
	rc = setup_zap(srv, err, errlen);
	if (rc)
		goto err;
	rc = setup_router(srv, endpoint, keys, err, errlen);
	if (rc)
		goto err;
	rc = -pthread_create(&srv->zap_thr, NULL, zap_main, srv);
	if (rc)
		goto err_thread;
	srv->zap_started = true;
	rc = -pthread_create(&srv->router_thr, NULL, srv_router_main, srv);
	if (rc)
		goto err_thread;
	srv->router_started = true;
	qb_log(LOG_INFO, "migration server: listening on %s (port %d)", endpoint, srv->port);
	return srv;

err_thread:
	set_err(err, errlen, "cannot start a thread: %s", strerror(-rc));
err:
	destroy(srv);
	errno = -rc;
	return NULL;
}

int mig_server_port(mig_server_t *srv)
{
	return srv->port;
}

int mig_server_notify_fd(mig_server_t *srv)
{
	return srv->notify_fd;
}

void mig_server_dispatch(mig_server_t *srv)
{
	mig_eventfd_drain(srv->notify_fd);
	srv->dispatching = true;
	while (!srv->quiet) {
		struct event *e;

		pthread_mutex_lock(&srv->lock);
		e = srv->ev_head;
		if (e) {
			srv->ev_head = e->next;
			if (!srv->ev_head)
				srv->ev_tail = NULL;
		}
		pthread_mutex_unlock(&srv->lock);
		if (!e)
			break;
		switch (e->kind) {
		case EV_INCOMING:
			if (srv->ops.incoming)
				srv->ops.incoming(srv->arg, e->conn_id, e->text, e->key);
			break;
		case EV_ENDED:
			if (srv->ops.ended)
				srv->ops.ended(srv->arg, e->conn_id, e->ok, e->text);
			break;
		case EV_REJECTED:
			if (srv->ops.rejected)
				srv->ops.rejected(srv->arg, e->text);
			break;
		}
		if (e->conn) {
			pthread_mutex_lock(&srv->lock);
			e->conn->refs--;
			pthread_mutex_unlock(&srv->lock);
		}
		free(e->text);
		free(e);
	}
	srv->dispatching = false;
	if (srv->free_pending)
		destroy(srv);
}

int mig_server_set_allowed(mig_server_t *srv, const char (*keys)[MIG_KEY_Z85], size_t n)
{
	char(*copy)[MIG_KEY_Z85] = NULL;

	for (size_t i = 0; i < n; i++)
		if (!mig_key_is_valid(keys[i]))
			return -EINVAL;
	if (n) {
		copy = calloc(n, sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, keys, n * sizeof(*copy));
	}
	pthread_mutex_lock(&srv->lock);
	free(srv->allowed);
	srv->allowed = copy;
	srv->nallowed = n;
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

/*
 * Queue a command for @conn when it is in a state where @kind makes sense: 0, -ENOENT
 * (no such connection, or gone), -EINVAL (not now), -EALREADY (answered already),
 * -ENOMEM.
 */
static int queue_cmd(struct mig_server *srv, uint64_t id, enum cmd_kind kind, bool ok,
		     const char *text, int fd)
{
	struct cmd *cmd = calloc(1, sizeof(*cmd));
	char clean[WHY_MAX];
	struct conn *c;
	int rc = 0;

	if (kind != CMD_ACCEPT) {
		mig_text_clean(clean, sizeof(clean), text ? text : "");
		text = clean;
	}
	if (!cmd || !(cmd->text = strdup(text ? text : ""))) {
		free(cmd);
		return -ENOMEM;
	}
	cmd->kind = kind;
	cmd->ok = ok;
	cmd->fd = fd;

	pthread_mutex_lock(&srv->lock);
	c = srv_find_id(srv, id);
	if (c && (kind == CMD_ACCEPT || kind == CMD_REJECT) && c->answered)
		rc = -EALREADY;
	else if (!c || c->state == C_GONE)
		rc = -ENOENT;
	else if ((kind == CMD_ACCEPT || kind == CMD_REJECT) && c->state != C_PENDING)
		rc = -EINVAL;
	else if (kind == CMD_FINISH && c->state != C_ENDED)
		rc = -EINVAL;
	if (!rc) {
		if (kind == CMD_ACCEPT || kind == CMD_REJECT)
			c->answered = true;
		c->refs++;
		cmd->conn = c;
		if (srv->cmd_tail)
			srv->cmd_tail->next = cmd;
		else
			srv->cmd_head = cmd;
		srv->cmd_tail = cmd;
	}
	pthread_mutex_unlock(&srv->lock);
	if (rc) {
		free(cmd->text);
		free(cmd);
		return rc;
	}
	mig_eventfd_signal(srv->wake_fd);
	return 0;
}

int mig_server_accept(mig_server_t *srv, uint64_t conn, const char *reply, int fd)
{
	struct mig_msg m = {.type = MIG_MSG_ACCEPT};
	uint8_t *buf;
	size_t len;
	int rc;

	if (fd < 0)
		return -EBADF;
	/* the reply must pass the source's decoder */
	len = reply ? strlen(reply) : 0;
	rc = len && len <= MIG_TEXT_MAX ? 0 : -EINVAL;
	if (!rc) {
		buf = malloc(len + 1);
		m.text = reply;
		m.text_len = len;
		if (!buf)
			rc = -ENOMEM;
		else if (mig_msg_encode(&m, buf, len + 1) < 0 ||
			 mig_msg_decode(buf, len + 1, &m, NULL, 0))
			rc = -EINVAL;
		free(buf);
	}
	if (!rc)
		rc = queue_cmd(srv, conn, CMD_ACCEPT, true, reply, fd);
	if (rc)
		close(fd);
	return rc;
}

int mig_server_reject(mig_server_t *srv, uint64_t conn, const char *why)
{
	return queue_cmd(srv, conn, CMD_REJECT, false, why, -1);
}

int mig_server_finish(mig_server_t *srv, uint64_t conn, bool ok, const char *why)
{
	return queue_cmd(srv, conn, CMD_FINISH, ok, ok ? "" : why, -1);
}

void mig_server_abort(mig_server_t *srv, uint64_t conn, const char *why)
{
	queue_cmd(srv, conn, CMD_ABORT, false, why ? why : "aborted by the target", -1);
}

int mig_server_stats(mig_server_t *srv, uint64_t conn, struct mig_stats *st)
{
	struct conn *c;
	int rc = -ENOENT;

	pthread_mutex_lock(&srv->lock);
	c = srv_find_id(srv, conn);
	if (c) {
		*st = c->st;
		rc = 0;
	}
	pthread_mutex_unlock(&srv->lock);
	return rc;
}

void mig_server_free(mig_server_t *srv)
{
	if (!srv)
		return;
	srv->quiet = true;
	if (srv->dispatching) {
		srv->free_pending = true;
		return;
	}
	destroy(srv);
}
