/*
 * The target's server, its router thread (see server.c): the ROUTER socket, each
 * connection's state machine, and the writers that check, decode and write an accepted
 * connection's blocks to its fd.
 *
 * A connection: PENDING (HELLO seen, the caller asked) -> STREAM (accepted: BLOCKs go to
 * the writer, ACKs say what it wrote) -> ENDED (END checked, fd closed, ended(ok) told;
 * waiting for mig_server_finish()) -> GONE. Any failure: ABORT to the source, ended(false)
 * when it was streaming, GONE. GONE connections are freed by reap_conns() once no event
 * or command refers to them.
 */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <qb/qbdefs.h>
#include <qb/qblog.h>
#include <zmq.h>

#define POLL_MS 200
#define RECV_BURST 256 /* messages read before looking at commands again */

/* --- connections ------------------------------------------------------------------- */

void srv_conn_free(struct conn *c)
{
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* The router frees the gone connections nothing refers to any more. */
static void reap_conns(struct mig_server *srv)
{
	struct conn **pp = &srv->conns;

	pthread_mutex_lock(&srv->lock);
	while (*pp) {
		struct conn *c = *pp;

		if (c->state == C_GONE && !c->refs) {
			*pp = c->next;
			srv_conn_free(c);
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&srv->lock);
}

static struct conn *find_rid(struct mig_server *srv, const void *rid, size_t len)
{
	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->state != C_GONE && c->rid_len == len && !memcmp(c->rid, rid, len))
			return c;
	return NULL;
}

struct conn *srv_find_id(struct mig_server *srv, uint64_t id)
{
	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static int send_to(struct conn *c, const struct mig_msg *m)
{
	int rc = mig_zmq_send(c->srv->router, c->rid, c->rid_len, m);

	if (rc)
		qb_log(LOG_DEBUG, "migration server: conn %" PRIu64 ": send %s: %s", c->id,
		       mig_msg_name(m->type), zmq_strerror(-rc));
	return rc;
}

static int send_text(struct conn *c, enum mig_msg_type type, bool ok, const char *text)
{
	char clean[WHY_MAX];
	struct mig_msg m = {.type = type, .ok = ok};

	mig_text_clean(clean, sizeof(clean), text);
	m.text = clean;
	m.text_len = strlen(clean);
	return send_to(c, &m);
}

static void free_items(struct item *it)
{
	while (it) {
		struct item *next = it->next;

		if (!it->end)
			zmq_msg_close(&it->msg);
		free(it);
		it = next;
	}
}

/* Stop and join the writer, close the fd, drop what is queued. */
static void conn_release(struct conn *c)
{
	struct mig_server *srv = c->srv;
	struct item *items;

	if (c->writer_started) {
		pthread_mutex_lock(&srv->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&srv->lock);
		mig_eventfd_signal(c->stop_fd);
		pthread_join(c->writer, NULL);
		c->writer_started = false;
	}
	pthread_mutex_lock(&srv->lock);
	items = c->q_head;
	c->q_head = c->q_tail = NULL;
	c->qlen = 0;
	pthread_mutex_unlock(&srv->lock);
	free_items(items);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	c->stop_fd = -1;
}

/* Only the router changes a state, under the lock (the caller's side reads it). */
static void set_state(struct conn *c, enum conn_state state)
{
	pthread_mutex_lock(&c->srv->lock);
	c->state = state;
	pthread_mutex_unlock(&c->srv->lock);
}

/* The router is done with @c; it stays in the list until reap_conns(). */
static void conn_gone(struct conn *c)
{
	conn_release(c);
	set_state(c, C_GONE);
}

/*
 * End @c for @why: the source is told when @tell, the caller gets ended(false) when
 * the stream was running.
 */
static void conn_drop(struct conn *c, const char *why, bool tell)
{
	bool streaming = c->state == C_STREAM;

	qb_log(LOG_WARNING, "migration server: conn %" PRIu64 " (%s): %s", c->id, c->peer, why);
	/*
	 * Gone (the fd closed) before the source or the caller hears of it, so that what
	 * they do next finds it gone; still ours till reap_conns().
	 */
	conn_gone(c);
	if (tell)
		send_text(c, MIG_MSG_ABORT, false, why);
	if (streaming)
		srv_post_event(c->srv, EV_ENDED, c, false, why);
}

__attribute__((format(printf, 3, 4))) static void conn_dropf(struct conn *c, bool tell,
							     const char *fmt, ...)
{
	char why[WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	conn_drop(c, why, tell);
}

/* --- the writer -------------------------------------------------------------------- */

static int write_all(struct conn *c, const uint8_t *buf, size_t len)
{
	struct pollfd pfd[2] = {
		{.fd = c->fd, .events = POLLOUT},
		{.fd = c->stop_fd, .events = POLLIN},
	};
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(c->fd, buf + off, len - off);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (pfd[1].revents)
			return -ECANCELED;
	}
	return 0;
}

__attribute__((format(printf, 2, 3))) static void writer_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->srv->lock);
	if (c->wstate == WR_RUNNING) {
		va_start(ap, fmt);
		vsnprintf(c->werr, sizeof(c->werr), fmt, ap);
		va_end(ap);
		c->wstate = WR_FAILED;
	}
	pthread_mutex_unlock(&c->srv->lock);
	mig_eventfd_signal(c->srv->wake_fd);
}

/* The end mark: totals must match, then the fd is closed (QEMU sees the end). */
static void writer_end(struct conn *c, const struct item *it, uint64_t blocks, uint64_t raw)
{
	if (it->blocks != blocks || it->raw_bytes != raw) {
		writer_fail(c,
			    "end mark says %" PRIu64 " blocks, %" PRIu64 " bytes; received %" PRIu64
			    " blocks, %" PRIu64 " bytes",
			    it->blocks, it->raw_bytes, blocks, raw);
		return;
	}
	if (close(c->fd) < 0 && errno != EINTR) {
		c->fd = -1;
		writer_fail(c, "close the target's stream: %s", strerror(errno));
		return;
	}
	c->fd = -1;
	pthread_mutex_lock(&c->srv->lock);
	c->wstate = WR_OK;
	pthread_mutex_unlock(&c->srv->lock);
	mig_eventfd_signal(c->srv->wake_fd);
}

/* Check, decode and write one block; false when the stream failed. */
static bool writer_block(struct conn *c, struct item *it, uint8_t *raw, uint64_t *expect,
			 uint64_t *rawsum)
{
	const uint8_t *data = zmq_msg_data(&it->msg);
	size_t len = zmq_msg_size(&it->msg) - 1;
	struct mig_frame_info fi;
	char err[256];
	ssize_t n;
	int rc;

	if (mig_frame_peek(data + 1, len, &fi, err, sizeof(err)) == 0 && fi.seq != *expect) {
		writer_fail(c, "block %" PRIu64 ": out of order, expected block %" PRIu64, fi.seq,
			    *expect);
		return false;
	}
	n = mig_frame_decode(data + 1, len, raw, MIG_BLOCK_MAX, &fi, err, sizeof(err));
	if (n < 0) {
		writer_fail(c, "%s", err);
		return false;
	}
	rc = write_all(c, raw, (size_t)n);
	if (rc == -ECANCELED)
		return false;
	if (rc) {
		writer_fail(c, "write to the target's stream: %s", strerror(-rc));
		return false;
	}
	(*expect)++;
	*rawsum += (uint64_t)n;
	pthread_mutex_lock(&c->srv->lock);
	c->written = *expect;
	c->st.raw_bytes += (uint64_t)n;
	c->st.wire_bytes += len;
	c->st.blocks++;
	c->st.raw_blocks += !fi.compressed;
	pthread_mutex_unlock(&c->srv->lock);
	mig_eventfd_signal(c->srv->wake_fd);
	return true;
}

static void *writer_main(void *arg)
{
	struct conn *c = arg;
	struct mig_server *srv = c->srv;
	uint64_t expect = 0, rawsum = 0, cpu0 = mig_thread_cpu_ns(), cpu = cpu0;
	uint8_t *raw;

	mig_thread_init("mig-srv-write");
	raw = malloc(MIG_BLOCK_MAX);
	if (!raw) {
		writer_fail(c, "out of memory");
		return NULL;
	}
	for (;;) {
		struct item *it;
		bool go_on;

		pthread_mutex_lock(&srv->lock);
		while (!c->q_head && !c->stop)
			pthread_cond_wait(&c->cond, &srv->lock);
		if (c->stop) {
			pthread_mutex_unlock(&srv->lock);
			break;
		}
		it = c->q_head;
		c->q_head = it->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->qlen--;
		pthread_mutex_unlock(&srv->lock);

		if (it->end) {
			writer_end(c, it, expect, rawsum);
			free(it);
			break;
		}
		go_on = writer_block(c, it, raw, &expect, &rawsum);
		it->next = NULL;
		free_items(it);

		cpu = mig_thread_cpu_ns();
		pthread_mutex_lock(&srv->lock);
		c->st.cpu_ns += cpu - cpu0;
		pthread_mutex_unlock(&srv->lock);
		cpu0 = cpu;
		if (!go_on)
			break;
	}
	free(raw);
	cpu = mig_thread_cpu_ns();
	pthread_mutex_lock(&srv->lock);
	c->st.cpu_ns += cpu - cpu0;
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* --- the router: connections that never speak (garbage) ------------------------------ */

static struct sock *sock_find(struct mig_server *srv, int fd)
{
	for (size_t i = 0; i < srv->nsocks; i++)
		if (srv->socks[i].fd == fd)
			return &srv->socks[i];
	return NULL;
}

/* A message came over connection @fd (ZMQ_SRCFD; -1 unknown): it spoke ZMTP with CURVE. */
static void sock_spoke(struct mig_server *srv, int fd)
{
	struct sock *k = fd >= 0 ? sock_find(srv, fd) : NULL;

	if (k)
		k->spoke = true;
}

static void sock_accepted(struct mig_server *srv, int fd)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	char host[48], port[8];
	struct sock *k = sock_find(srv, fd);

	if (!k && srv->nsocks < SOCKS_MAX)
		k = &srv->socks[srv->nsocks++];
	if (!k)
		return; /* too many at once: their ends go unreported */
	*k = (struct sock){ .fd = fd };
	/* it may be closed (and its number reused) already: then the peer is unknown */
	if (getpeername(fd, (struct sockaddr *)&sa, &salen) == 0 &&
	    getnameinfo((struct sockaddr *)&sa, salen, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(k->peer, sizeof(k->peer), " from %s:%s", host, port);
}

/*
 * Connection @fd closed. One that never delivered a message and whose handshake failure
 * was not reported already sent garbage: not ZMTP, or junk in place of its handshake.
 */
static void sock_closed(struct mig_server *srv, int fd)
{
	struct sock *k = sock_find(srv, fd);
	char peer[64] = "";
	bool spoke = false;

	if (k) {
		spoke = k->spoke;
		memcpy(peer, k->peer, sizeof(peer));
		*k = srv->socks[--srv->nsocks];
	}
	if (spoke)
		return;
	if (srv->failed_handshakes) {
		srv->failed_handshakes--;
		return;
	}
	if (k)
		srv_post_rejected(srv, "garbage: a connection%s closed before a valid ZMTP "
				       "handshake",
				  peer);
}

/* --- the router: messages from the sources ------------------------------------------ */

static void new_conn(struct mig_server *srv, zmq_msg_t *rid, zmq_msg_t *body,
		     const struct mig_msg *m)
{
	const char *key = zmq_msg_gets(body, "User-Id");
	const char *peer = zmq_msg_gets(body, "Peer-Address");
	struct conn *c = calloc(1, sizeof(*c));
	char *hello = mig_msg_strdup(m);

	if (!c || !hello) {
		qb_log(LOG_ERR, "migration server: out of memory for a new connection");
		free(c);
		free(hello);
		return;
	}
	c->srv = srv;
	c->fd = c->stop_fd = -1;
	c->rid_len = zmq_msg_size(rid);
	memcpy(c->rid, zmq_msg_data(rid), c->rid_len);
	snprintf(c->key, sizeof(c->key), "%s", key && mig_key_is_valid(key) ? key : "");
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "?");
	c->last_rx = mig_now_ms();
	pthread_cond_init(&c->cond, NULL);

	pthread_mutex_lock(&srv->lock);
	c->id = ++srv->next_id;
	c->next = srv->conns;
	srv->conns = c;
	pthread_mutex_unlock(&srv->lock);

	qb_log(LOG_INFO, "migration server: conn %" PRIu64 ": hello from %s, key %s", c->id,
	       c->peer, c->key);
	srv_post_event(srv, EV_INCOMING, c, true, hello);
	free(hello);
}

/* A message from a routing id we have no connection for. */
static void from_stranger(struct mig_server *srv, zmq_msg_t *rid, zmq_msg_t *body, int rc,
			  const struct mig_msg *m, const char *err)
{
	const char *peer = zmq_msg_gets(body, "Peer-Address");
	struct mig_msg abort_msg = {
		.type = MIG_MSG_ABORT, .text = "no migration on this connection", .text_len = 31};

	if (rc) {
		srv_post_rejected(srv, "garbage from %s: %s", peer ? peer : "?", err);
		return;
	}
	switch (m->type) {
	case MIG_MSG_HELLO:
		new_conn(srv, rid, body, m);
		return;
	case MIG_MSG_PING:
	case MIG_MSG_ABORT:
		return; /* late, from a source we already dropped */
	default:
		mig_zmq_send(srv->router, zmq_msg_data(rid), zmq_msg_size(rid), &abort_msg);
		srv_post_rejected(srv, "%s from %s, which has no migration here",
				  mig_msg_name(m->type), peer ? peer : "?");
	}
}

/* Hand @it to the writer: false when its queue is full (the source ignores the window). */
static bool queue_item(struct conn *c, struct item *it)
{
	bool ok;

	pthread_mutex_lock(&c->srv->lock);
	ok = c->qlen < MIG_QUEUE_MAX;
	if (ok) {
		if (c->q_tail)
			c->q_tail->next = it;
		else
			c->q_head = it;
		c->q_tail = it;
		c->qlen++;
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&c->srv->lock);
	return ok;
}

static void stream_msg(struct conn *c, zmq_msg_t *body, const struct mig_msg *m)
{
	struct item *it;

	if (c->end_queued) {
		conn_dropf(c, true, "protocol error from the source: %s after END",
			   mig_msg_name(m->type));
		return;
	}
	it = calloc(1, sizeof(*it));
	if (!it) {
		conn_drop(c, "out of memory", true);
		return;
	}
	if (m->type == MIG_MSG_END) {
		it->end = true;
		it->blocks = m->blocks;
		it->raw_bytes = m->raw_bytes;
		c->end_queued = true;
	} else if (zmq_msg_init(&it->msg) < 0 || zmq_msg_move(&it->msg, body) < 0) {
		free(it);
		conn_dropf(c, true, "zmq_msg_move: %s", zmq_strerror(zmq_errno()));
		return;
	}
	if (!queue_item(c, it)) {
		it->next = NULL;
		free_items(it);
		conn_drop(c, "protocol error from the source: it ignores the window", true);
	}
}

static void conn_msg(struct conn *c, zmq_msg_t *body, int rc, const struct mig_msg *m,
		     const char *err)
{
	struct mig_msg pong = {.type = MIG_MSG_PONG};

	c->last_rx = mig_now_ms();
	if (rc) {
		conn_dropf(c, true, "protocol error from the source: %s", err);
		return;
	}
	switch (m->type) {
	case MIG_MSG_PING:
		send_to(c, &pong);
		return;
	case MIG_MSG_HELLO:
		send_text(c, MIG_MSG_REJECT, false,
			  "a migration is already active on this connection");
		return;
	case MIG_MSG_ABORT: {
		char why[WHY_MAX];

		snprintf(why, sizeof(why), "aborted by the source: %.*s",
			 (int)(m->text_len > 400 ? 400 : m->text_len), m->text ? m->text : "");
		conn_drop(c, why, false);
		return;
	}
	case MIG_MSG_BLOCK:
	case MIG_MSG_END:
		if (c->state == C_STREAM) {
			stream_msg(c, body, m);
			return;
		}
		break;
	default:
		break;
	}
	conn_dropf(c, true, "protocol error from the source: unexpected %s", mig_msg_name(m->type));
}

/* Read one message: false when there was none (or the socket failed). */
static bool router_recv(struct mig_server *srv)
{
	zmq_msg_t rid, body;
	struct mig_msg m;
	struct conn *c;
	char err[256];
	bool more;
	int rc;

	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&rid, srv->router, ZMQ_DONTWAIT) < 0) {
		rc = zmq_errno();
		if (rc != EAGAIN && rc != EINTR)
			qb_log(LOG_ERR, "migration server: receive: %s", zmq_strerror(rc));
		zmq_msg_close(&rid);
		zmq_msg_close(&body);
		return false;
	}
	more = zmq_msg_more(&rid);
	if (more && zmq_msg_recv(&body, srv->router, 0) < 0) {
		qb_log(LOG_ERR, "migration server: receive: %s", zmq_strerror(zmq_errno()));
		goto out;
	}
	if (more)
		sock_spoke(srv, zmq_msg_get(&body, ZMQ_SRCFD));
	if (!more || zmq_msg_more(&body)) {
		/* not one frame after the routing id: drain it */
		while (zmq_msg_more(&body) && zmq_msg_recv(&body, srv->router, 0) >= 0)
			;
		srv_post_rejected(srv, "garbage: a message of other than one frame");
		goto out;
	}
	rc = mig_msg_decode(zmq_msg_data(&body), zmq_msg_size(&body), &m, err, sizeof(err));
	c = find_rid(srv, zmq_msg_data(&rid), zmq_msg_size(&rid));
	if (!c)
		from_stranger(srv, &rid, &body, rc, &m, err);
	else
		conn_msg(c, &body, rc, &m, err);
out:
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
	return true;
}

/* --- the router: commands from the caller ------------------------------------------- */

static void do_accept(struct mig_server *srv, struct conn *c, struct cmd *cmd)
{
	struct mig_msg m = {.type = MIG_MSG_ACCEPT, .text = cmd->text};
	int fl, rc;

	if (c->state != C_PENDING) {
		/* gone before the accept: the caller still gets its ended() */
		close(cmd->fd);
		srv_post_event(srv, EV_ENDED, c, false, "the source left before the accept");
		return;
	}
	c->fd = cmd->fd;
	cmd->fd = -1;
	fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		set_state(c, C_STREAM);
		conn_dropf(c, true, "target: fd %d: %s", c->fd, strerror(errno));
		return;
	}
	rc = c->stop_fd = mig_eventfd();
	if (rc >= 0) {
		rc = -pthread_create(&c->writer, NULL, writer_main, c);
		c->writer_started = rc == 0;
	}
	if (rc < 0) {
		set_state(c, C_STREAM);
		conn_dropf(c, true, "target: cannot start a writer: %s", strerror(-rc));
		return;
	}
	set_state(c, C_STREAM);
	m.text_len = strlen(cmd->text);
	rc = send_to(c, &m);
	if (rc) {
		conn_dropf(c, false, "cannot answer the source: %s", zmq_strerror(-rc));
		return;
	}
	qb_log(LOG_INFO, "migration server: conn %" PRIu64 ": accepted", c->id);
}

static void do_cmd(struct mig_server *srv, struct cmd *cmd)
{
	struct conn *c = cmd->conn;

	switch (cmd->kind) {
	case CMD_ACCEPT:
		do_accept(srv, c, cmd);
		break;
	case CMD_REJECT:
		if (c->state != C_PENDING)
			break;
		qb_log(LOG_INFO, "migration server: conn %" PRIu64 ": rejected: %s", c->id,
		       cmd->text);
		conn_gone(c); /* first: what the source does next finds it gone */
		send_text(c, MIG_MSG_REJECT, false, cmd->text);
		break;
	case CMD_FINISH:
		if (c->state != C_ENDED)
			break;
		qb_log(LOG_INFO, "migration server: conn %" PRIu64 ": finished, %s%s", c->id,
		       cmd->ok ? "ok" : "failed: ", cmd->ok ? "" : cmd->text);
		conn_gone(c);
		send_text(c, MIG_MSG_DONE, cmd->ok, cmd->text);
		break;
	case CMD_ABORT:
		if (c->state != C_GONE)
			conn_drop(c, cmd->text, true);
		break;
	}
}

static void run_cmds(struct mig_server *srv)
{
	for (;;) {
		struct cmd *cmd;

		pthread_mutex_lock(&srv->lock);
		cmd = srv->cmd_head;
		if (cmd) {
			srv->cmd_head = cmd->next;
			if (!srv->cmd_head)
				srv->cmd_tail = NULL;
		}
		pthread_mutex_unlock(&srv->lock);
		if (!cmd)
			return;
		do_cmd(srv, cmd);
		if (cmd->fd >= 0)
			close(cmd->fd);
		pthread_mutex_lock(&srv->lock);
		cmd->conn->refs--;
		pthread_mutex_unlock(&srv->lock);
		free(cmd->text);
		free(cmd);
	}
}

/* --- the router: writers' progress, silence -------------------------------------------- */

static void check_stream(struct mig_server *srv, struct conn *c)
{
	struct mig_msg ack = {.type = MIG_MSG_ACK};
	enum writer_state ws;
	char why[WHY_MAX];
	uint64_t written;
	int rc;

	pthread_mutex_lock(&srv->lock);
	written = c->written;
	ws = c->wstate;
	memcpy(why, c->werr, sizeof(why));
	pthread_mutex_unlock(&srv->lock);

	if (written > c->acked) {
		ack.blocks = written;
		rc = send_to(c, &ack);
		if (rc == -EHOSTUNREACH) {
			conn_drop(c, "the source is gone", false);
			return;
		}
		if (rc == 0)
			c->acked = written;
	}
	if (ws == WR_FAILED) {
		conn_drop(c, why, true);
	} else if (ws == WR_OK && c->acked == written) {
		conn_release(c);
		set_state(c, C_ENDED);
		qb_log(LOG_INFO,
		       "migration server: conn %" PRIu64 ": stream complete, %" PRIu64 " blocks",
		       c->id, written);
		srv_post_event(srv, EV_ENDED, c, true, "");
	}
}

static void check_conns(struct mig_server *srv)
{
	uint64_t now = mig_now_ms();
	struct conn *c, *next;

	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (c->state == C_GONE)
			continue;
		if (now - c->last_rx > MIG_SILENT_MS) {
			conn_dropf(c, true, "the source was silent for %u s", MIG_SILENT_MS / 1000);
			continue;
		}
		if (c->state == C_STREAM)
			check_stream(srv, c);
	}
	reap_conns(srv);
}

static void handle_monitor(struct mig_server *srv)
{
	uint16_t ev;
	uint32_t val;

	while (mig_zmq_monitor_event(srv->mon, &ev, &val) > 0) {
		switch (ev) {
		case ZMQ_EVENT_ACCEPTED:
			sock_accepted(srv, (int)val);
			break;
		case ZMQ_EVENT_DISCONNECTED:
			sock_closed(srv, (int)val);
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
			srv->failed_handshakes++; /* the ZAP handler reported it */
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
			srv->failed_handshakes++;
			srv_post_rejected(srv, "a connection failed its handshake: %s (0x%x)",
					  mig_zmq_protocol_error(val), val);
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			srv->failed_handshakes++;
			srv_post_rejected(srv, "a connection failed its handshake: %s",
					  zmq_strerror((int)val));
			break;
		}
	}
}

/* mig_server_free(): every connection goes, nothing is reported. */
static void router_stop_all(struct mig_server *srv)
{
	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->state != C_GONE)
			conn_gone(c);
}

void *srv_router_main(void *arg)
{
	struct mig_server *srv = arg;

	mig_thread_init("mig-srv-router");
	for (;;) {
		zmq_pollitem_t items[3] = {
			{.socket = srv->router, .events = ZMQ_POLLIN},
			{.fd = srv->wake_fd, .events = ZMQ_POLLIN},
			{.socket = srv->mon, .events = ZMQ_POLLIN},
		};
		bool stopping;
		int n;

		if (zmq_poll(items, 3, POLL_MS) < 0 && zmq_errno() != EINTR) {
			qb_log(LOG_ERR, "migration server: zmq_poll: %s",
			       zmq_strerror(zmq_errno()));
			break;
		}
		if (items[1].revents)
			mig_eventfd_drain(srv->wake_fd);
		pthread_mutex_lock(&srv->lock);
		stopping = srv->stopping;
		pthread_mutex_unlock(&srv->lock);
		if (stopping)
			break;
		handle_monitor(srv);
		for (n = 0; n < RECV_BURST && router_recv(srv); n++)
			;
		run_cmds(srv);
		check_conns(srv);
		srv_rate_limit(srv, false);
		/* more to read: come back at once, after the commands */
		if (n == RECV_BURST)
			mig_eventfd_signal(srv->wake_fd);
	}
	router_stop_all(srv);
	zmq_socket_monitor(srv->router, NULL, 0);
	zmq_close(srv->mon);
	srv->mon = NULL;
	zmq_close(srv->router);
	srv->router = NULL;
	return NULL;
}
