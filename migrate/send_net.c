/*
 * The source of a migration, its net thread (see send.c): the only user of the DEALER
 * socket and its monitor. It says HELLO once the CURVE handshake is through, waits for
 * ACCEPT (and lets the reader start), sends the compressed frames in seq order while
 * fewer than the window are unacknowledged, then END, and waits for DONE; it pings the
 * target every MIG_PING_MS and gives up when nothing came back for timeout_ms.
 */
#include "send_int.h"

#include <dirent.h>
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

/* utime + stime of task @tid if its name starts with @want; false if it is not that. */
static bool task_cpu_ns(int tid, const char *want, uint64_t *ns)
{
	char path[64], buf[512];
	unsigned long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	char *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* "tid (comm) state ...": comm may hold spaces and parentheses: from the last ')' */
	if (!p || !(p = strchr(buf, '(')) || strncmp(p + 1, want, strlen(want)))
		return false;
	p = strrchr(buf, ')');
	if (!p || hz <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return false;
	*ns = (uint64_t)(ut + st) * (1000000000u / (uint64_t)hz);
	return true;
}

/*
 * CPU time of this sender's ZeroMQ I/O thread (where CURVE encrypts), found once by the
 * name ZeroMQ gives it with our ZMQ_THREAD_NAME_PREFIX, from /proc (clock ticks).
 */
static uint64_t io_thread_cpu_ns(struct mig_sender *s)
{
	char want[32];
	struct dirent *de;
	uint64_t ns = 0;
	DIR *d;

	snprintf(want, sizeof(want), "%d/ZMQbg/IO/", s->ctx_tag);
	if (s->io_tid && task_cpu_ns(s->io_tid, want, &ns))
		return ns;
	s->io_tid = 0;
	d = opendir("/proc/self/task");
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (atoi(de->d_name) > 0 && task_cpu_ns(atoi(de->d_name), want, &ns)) {
			s->io_tid = atoi(de->d_name);
			break;
		}
	closedir(d);
	return ns;
}

/* --- net thread ---------------------------------------------------------------- */

struct net {
	struct mig_sender *s;
	enum net_state state;
	uint64_t next_send, acked;
	uint64_t last_rx, last_ping;
	bool need_ping, blocked;
	bool connected; /* a handshake succeeded */
	bool have_pending;
	zmq_msg_t pending;
	char detail[128]; /* what the monitor last said, for a timeout message */
	bool done;
	bool abort_sent;
};

/* The end of this migration, as far as the net thread is concerned. */
static void net_finish(struct net *n, bool ok, const char *why)
{
	if (!ok)
		qb_log(LOG_WARNING, "migration send: failed: %s", why);
	else
		qb_log(LOG_INFO, "migration send: done, %" PRIu64 " blocks", n->acked);
	atomic_store(&n->s->st_io_cpu, io_thread_cpu_ns(n->s));
	snd_post_finished(n->s, ok, why);
	n->done = true;
}

/* Fail, telling the target (best effort) when a connection exists. */
static void net_fail(struct net *n, const char *why)
{
	char text[WHY_MAX];
	struct mig_msg m = {.type = MIG_MSG_ABORT};

	if (n->connected && !n->abort_sent) {
		mig_text_clean(text, sizeof(text), why);
		m.text = text;
		m.text_len = strlen(text);
		n->abort_sent = mig_zmq_send(n->s->sock, NULL, 0, &m) == 0;
	}
	net_finish(n, false, why);
}

__attribute__((format(printf, 2, 3))) static void net_failf(struct net *n, const char *fmt, ...)
{
	char why[WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	net_fail(n, why);
}

static void handle_monitor(struct net *n)
{
	uint16_t ev;
	uint32_t val;
	int rc;

	while ((rc = mig_zmq_monitor_event(n->s->mon, &ev, &val)) > 0 && !n->done) {
		switch (ev) {
		case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
			n->connected = true;
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
			net_finish(n, false, "refused by the target (unknown key?)");
			return;
		case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
			snprintf(n->detail, sizeof(n->detail), "handshake failed: %s (0x%x)",
				 mig_zmq_protocol_error(val), val);
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			snprintf(n->detail, sizeof(n->detail), "handshake failed: %s%s",
				 zmq_strerror((int)val),
				 val == EPIPE || val == ECONNRESET ? ", wrong server key?" : "");
			break;
		case ZMQ_EVENT_CONNECT_RETRIED:
			if (!n->connected && !n->detail[0])
				snprintf(n->detail, sizeof(n->detail), "cannot connect");
			break;
		case ZMQ_EVENT_DISCONNECTED:
			if (n->connected) {
				net_finish(n, false, "connection to the target lost");
				return;
			}
			if (!n->detail[0])
				snprintf(n->detail, sizeof(n->detail),
					 "disconnected during the handshake");
			break;
		default:
			break;
		}
	}
	if (rc < 0 && !n->done)
		net_failf(n, "monitor: %s", zmq_strerror(-rc));
}

/* The target's reason, as finished()'s text: "refused by the target: ...". */
static void finish_with_text(struct net *n, const struct mig_msg *m)
{
	const char *what = "the target failed";
	char why[WHY_MAX];

	if (m->type == MIG_MSG_REJECT)
		what = "refused by the target";
	else if (m->type == MIG_MSG_ABORT)
		what = "aborted by the target";

	snprintf(why, sizeof(why), "%s: %.*s", what, (int)(m->text_len > 400 ? 400 : m->text_len),
		 m->text ? m->text : "");
	net_finish(n, false, why);
}

static void handle_msg(struct net *n, const struct mig_msg *m)
{
	struct mig_sender *s = n->s;
	char *text;

	switch (m->type) {
	case MIG_MSG_ACCEPT:
		if (n->state != S_WAIT_ACCEPT)
			goto unexpected;
		text = mig_msg_strdup(m);
		n->state = S_STREAM;
		pthread_mutex_lock(&s->lock);
		s->go = true;
		pthread_cond_broadcast(&s->free_cond);
		pthread_mutex_unlock(&s->lock);
		qb_log(LOG_INFO, "migration send: accepted by the target");
		snd_post_accepted(s, text ? text : "");
		free(text);
		return;
	case MIG_MSG_REJECT:
	case MIG_MSG_ABORT:
		finish_with_text(n, m);
		return;
	case MIG_MSG_ACK:
		if (n->state != S_STREAM && n->state != S_WAIT_DONE)
			goto unexpected;
		if (m->blocks < n->acked || m->blocks > n->next_send) {
			net_failf(n,
				  "protocol error from the target: ACK %" PRIu64 " outside %" PRIu64
				  "..%" PRIu64,
				  m->blocks, n->acked, n->next_send);
			return;
		}
		n->acked = m->blocks;
		return;
	case MIG_MSG_DONE:
		if (!m->ok) {
			finish_with_text(n, m);
			return;
		}
		if (n->state != S_WAIT_DONE || n->acked != n->next_send) {
			net_failf(n,
				  "protocol error from the target: DONE with %" PRIu64
				  " of %" PRIu64 " blocks acknowledged",
				  n->acked, n->next_send);
			return;
		}
		net_finish(n, true, "");
		return;
	case MIG_MSG_PONG:
	case MIG_MSG_PING:
		return;
	default:
		break;
	}
unexpected:
	net_failf(n, "protocol error from the target: unexpected %s", mig_msg_name(m->type));
}

static void handle_input(struct net *n)
{
	struct mig_sender *s = n->s;

	while (!n->done) {
		struct mig_msg m;
		char err[256];
		zmq_msg_t msg;
		int rc;

		if (zmq_msg_init(&msg) < 0) {
			net_failf(n, "zmq_msg_init: %s", zmq_strerror(zmq_errno()));
			return;
		}
		if (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) < 0) {
			rc = zmq_errno();
			zmq_msg_close(&msg);
			if (rc != EAGAIN && rc != EINTR)
				net_failf(n, "receive: %s", zmq_strerror(rc));
			return;
		}
		n->last_rx = mig_now_ms();
		if (zmq_msg_more(&msg)) {
			zmq_msg_close(&msg);
			net_failf(n, "protocol error from the target: a multipart message");
			return;
		}
		rc = mig_msg_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &m, err, sizeof(err));
		if (rc) {
			zmq_msg_close(&msg);
			net_failf(n, "protocol error from the target: %s", err);
			return;
		}
		handle_msg(n, &m);
		zmq_msg_close(&msg);
	}
}

/* Send a control message: true when sent, false when it must wait (or failed). */
static bool send_ctl(struct net *n, const struct mig_msg *m)
{
	int rc = mig_zmq_send(n->s->sock, NULL, 0, m);

	if (rc == -EAGAIN) {
		n->blocked = true;
		return false;
	}
	if (rc) {
		net_failf(n, "send %s: %s", mig_msg_name(m->type), zmq_strerror(-rc));
		return false;
	}
	return true;
}

/* Send the pending frame: true when it went. */
static bool send_pending(struct net *n)
{
	struct mig_sender *s = n->s;
	size_t size = zmq_msg_size(&n->pending);
	int rc;

	if (zmq_msg_send(&n->pending, s->sock, ZMQ_DONTWAIT) < 0) {
		rc = zmq_errno();
		if (rc == EAGAIN) {
			n->blocked = true;
			return false;
		}
		net_failf(n, "send block %" PRIu64 ": %s", n->next_send, zmq_strerror(rc));
		return false;
	}
	n->have_pending = false;
	atomic_fetch_add(&s->st_wire, size - 1);
	atomic_fetch_add(&s->st_blocks, 1);
	n->next_send++;
	return true;
}

static void send_frames(struct net *n)
{
	struct mig_sender *s = n->s;

	while (!n->done) {
		struct slot *sl;

		if (!n->have_pending) {
			if (n->next_send >= n->acked + s->window)
				return;
			pthread_mutex_lock(&s->lock);
			sl = s->ready[n->next_send % s->nslots];
			if (sl && sl->seq == n->next_send)
				s->ready[n->next_send % s->nslots] = NULL;
			else
				sl = NULL;
			pthread_mutex_unlock(&s->lock);
			if (!sl)
				return;
			if (sl->raw_frame)
				atomic_fetch_add(&s->st_raw_blocks, 1);
			if (zmq_msg_init_data(&n->pending, sl->wire, sl->wire_len, snd_slot_release,
					      sl) < 0) {
				snd_slot_release(sl->wire, sl);
				net_failf(n, "zmq_msg_init_data: %s", zmq_strerror(zmq_errno()));
				return;
			}
			n->have_pending = true;
		}
		if (!send_pending(n))
			return;
	}
}

static void net_send(struct net *n)
{
	struct mig_sender *s = n->s;
	bool eof;
	uint64_t total_blocks, total_raw;

	n->blocked = false;
	if (n->state == S_HELLO) {
		struct mig_msg m = {
			.type = MIG_MSG_HELLO, .text = s->hello, .text_len = strlen(s->hello)};

		if (!send_ctl(n, &m))
			return;
		n->state = S_WAIT_ACCEPT;
		n->last_ping = mig_now_ms();
		return;
	}
	if (n->need_ping) {
		struct mig_msg m = {.type = MIG_MSG_PING};

		if (!send_ctl(n, &m))
			return;
		n->need_ping = false;
	}
	if (n->state != S_STREAM)
		return;
	send_frames(n);
	if (n->done || n->blocked)
		return;

	pthread_mutex_lock(&s->lock);
	eof = s->eof;
	total_blocks = s->total_blocks;
	total_raw = s->total_raw;
	pthread_mutex_unlock(&s->lock);
	if (eof && n->next_send == total_blocks && !n->have_pending) {
		struct mig_msg m = {
			.type = MIG_MSG_END, .blocks = total_blocks, .raw_bytes = total_raw};

		if (!send_ctl(n, &m))
			return;
		n->state = S_WAIT_DONE;
		qb_log(LOG_DEBUG,
		       "migration send: end of the stream, %" PRIu64 " blocks, %" PRIu64 " bytes",
		       total_blocks, total_raw);
	}
}

/* What the caller or the reader asked for: true when the loop must end. */
static bool check_requests(struct net *n)
{
	struct mig_sender *s = n->s;
	char why[WHY_MAX];
	bool stopping, abort_req;
	int read_err;

	pthread_mutex_lock(&s->lock);
	stopping = s->stopping;
	abort_req = s->abort_req;
	read_err = s->read_err;
	snprintf(why, sizeof(why), "%s", s->abort_why);
	pthread_mutex_unlock(&s->lock);

	if (stopping && !n->done) {
		/* mig_send_free() while running: tell the target, report nothing */
		if (n->connected) {
			struct mig_msg m = {
				.type = MIG_MSG_ABORT, .text = "cancelled", .text_len = 9};

			n->abort_sent = mig_zmq_send(s->sock, NULL, 0, &m) == 0;
		}
		n->done = true;
		return true;
	}
	if (abort_req) {
		net_fail(n, why[0] ? why : "cancelled");
		return true;
	}
	if (read_err) {
		net_failf(n, "read from the source's stream: %s", strerror(-read_err));
		return true;
	}
	return n->done;
}

static int poll_timeout(struct net *n, uint64_t now)
{
	uint64_t deadline = n->last_rx + n->s->timeout_ms;
	uint64_t ping = n->last_ping + MIG_PING_MS;
	uint64_t next = deadline < ping ? deadline : ping;

	if (n->state == S_HELLO)
		next = deadline;
	return next <= now ? 0 : (int)(next - now);
}

static void net_loop(struct net *n)
{
	struct mig_sender *s = n->s;
	uint64_t cpu = mig_thread_cpu_ns(), last_io = 0;

	while (!n->done) {
		zmq_pollitem_t items[3] = {
			{.socket = s->sock, .events = ZMQ_POLLIN | (n->blocked ? ZMQ_POLLOUT : 0)},
			{.fd = s->wake_fd, .events = ZMQ_POLLIN},
			{.socket = s->mon, .events = ZMQ_POLLIN},
		};
		uint64_t now = mig_now_ms();
		int rc;

		/* HELLO waits for a connection: ask for POLLOUT until it went */
		if (n->state == S_HELLO)
			items[0].events |= ZMQ_POLLOUT;
		rc = zmq_poll(items, 3, poll_timeout(n, now));
		if (rc < 0 && zmq_errno() != EINTR) {
			net_failf(n, "zmq_poll: %s", zmq_strerror(zmq_errno()));
			break;
		}
		if (items[1].revents)
			mig_eventfd_drain(s->wake_fd);
		handle_monitor(n);
		if (!n->done)
			handle_input(n);
		if (check_requests(n))
			break;

		now = mig_now_ms();
		if (n->state != S_HELLO && now - n->last_ping >= MIG_PING_MS) {
			n->need_ping = true;
			n->last_ping = now;
		}
		net_send(n);
		if (n->done)
			break;
		if (now - n->last_rx >= s->timeout_ms) {
			net_failf(n, "target did not answer for %g s%s%s%s", s->timeout_ms / 1000.0,
				  n->detail[0] ? " (" : "", n->detail, n->detail[0] ? ")" : "");
			break;
		}
		if (now - last_io >= 1000) {
			atomic_store(&s->st_io_cpu, io_thread_cpu_ns(s));
			last_io = now;
		}
		snd_cpu_account(s, &cpu);
	}
	snd_cpu_account(s, &cpu);
}

void *snd_net_main(void *arg)
{
	struct mig_sender *s = arg;
	struct net n = {.s = s, .state = S_HELLO};

	mig_thread_init("mig-send-net");
	n.last_rx = n.last_ping = mig_now_ms();
	net_loop(&n);
	snd_stop_all(s);

	if (n.have_pending)
		zmq_msg_close(&n.pending);
	if (n.abort_sent)
		mig_zmq_setint(s->sock, ZMQ_LINGER, ABORT_LINGER_MS);
	zmq_socket_monitor(s->sock, NULL, 0);
	zmq_close(s->mon);
	s->mon = NULL;
	zmq_close(s->sock);
	s->sock = NULL;
	return NULL;
}

/* --- setup (in mig_send_start(), before the net thread takes the socket over) ----- */

/* ZeroMQ's own liveness check, in case our pings cannot get through: 3 s..10 min. */
static int heartbeat_ms(unsigned int timeout_ms)
{
	if (timeout_ms < 3000)
		return 3000;
	return timeout_ms > 600000 ? 600000 : (int)timeout_ms;
}

int snd_setup_socket(struct mig_sender *s, const struct mig_send_cfg *cfg, char *err, size_t errlen)
{
	int hb_timeout = heartbeat_ms(s->timeout_ms);
	char monep[64];
	struct {
		int opt;
		int val;
		const char *name;
	} opts[] = {
		{ZMQ_LINGER, 0, "ZMQ_LINGER"},
		{ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE"},
		{ZMQ_SNDHWM, (int)s->window + 16, "ZMQ_SNDHWM"},
		{ZMQ_RCVHWM, 1000, "ZMQ_RCVHWM"},
		{ZMQ_HEARTBEAT_IVL, 1000, "ZMQ_HEARTBEAT_IVL"},
		{ZMQ_HEARTBEAT_TIMEOUT, hb_timeout, "ZMQ_HEARTBEAT_TIMEOUT"},
		{ZMQ_HEARTBEAT_TTL, hb_timeout, "ZMQ_HEARTBEAT_TTL"},
		{ZMQ_RECONNECT_IVL, 200, "ZMQ_RECONNECT_IVL"},
		{ZMQ_CONNECT_TIMEOUT, (int)s->timeout_ms, "ZMQ_CONNECT_TIMEOUT"},
	};
	int64_t maxmsg = 2 + MIG_TEXT_MAX + 64;
	int rc;

	rc = zmq_ctx_set(s->ctx, ZMQ_THREAD_NAME_PREFIX, s->ctx_tag) < 0 ? -zmq_errno() : 0;
	if (rc)
		qb_log(LOG_DEBUG, "migration send: ZMQ_THREAD_NAME_PREFIX: %s", zmq_strerror(-rc));
	s->sock = zmq_socket(s->ctx, ZMQ_DEALER);
	if (!s->sock) {
		rc = -zmq_errno();
		snd_set_err(err, errlen, "zmq_socket: %s", zmq_strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		rc = mig_zmq_setint(s->sock, opts[i].opt, opts[i].val);
		if (rc) {
			snd_set_err(err, errlen, "%s: %s", opts[i].name, zmq_strerror(-rc));
			return rc;
		}
	}
	if (zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
	    zmq_setsockopt(s->sock, ZMQ_CURVE_SERVERKEY, cfg->server_key, MIG_KEY_Z85 - 1) < 0 ||
	    zmq_setsockopt(s->sock, ZMQ_CURVE_PUBLICKEY, cfg->keys->pub, MIG_KEY_Z85 - 1) < 0 ||
	    zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, cfg->keys->sec, MIG_KEY_Z85 - 1) < 0) {
		rc = -zmq_errno();
		snd_set_err(err, errlen, "CURVE client options: %s", zmq_strerror(-rc));
		return rc;
	}

	snprintf(monep, sizeof(monep), "inproc://mig-send-monitor");
	if (zmq_socket_monitor(s->sock, monep,
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				       ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED) < 0) {
		rc = -zmq_errno();
		snd_set_err(err, errlen, "zmq_socket_monitor: %s", zmq_strerror(-rc));
		return rc;
	}
	s->mon = zmq_socket(s->ctx, ZMQ_PAIR);
	if (!s->mon || zmq_connect(s->mon, monep) < 0) {
		rc = -zmq_errno();
		snd_set_err(err, errlen, "monitor socket: %s", zmq_strerror(-rc));
		return rc;
	}
	if (zmq_connect(s->sock, cfg->endpoint) < 0) {
		rc = -zmq_errno();
		snd_set_err(err, errlen, "connect to %s: %s", cfg->endpoint, zmq_strerror(-rc));
		return rc;
	}
	return 0;
}
