/*
 * The source of a migration: QEMU's stream from an fd, cut into blocks, compressed and
 * sent to the target's server over a CURVE-secured DEALER socket.
 *
 * Threads, and what each owns:
 *   reader      the fd: fills free slots with up to MIG_BLOCK_SIZE bytes, in order, once
 *               the target accepted; a partial block goes when the fd is idle or at EOF
 *   compressors frame.c on a slot's raw bytes into its wire buffer
 *   net         the ZeroMQ socket and its monitor: sends the frames in seq order within
 *               the window, the control messages, and reads the target's answers
 * A slot (raw + wire buffers) goes free list -> reader -> work queue -> compressor ->
 * ready ring -> ZeroMQ (zero copy) -> back to the free list when ZeroMQ releases it.
 * window + 2 * nthreads + 2 slots bound the memory; the reader waits for a free one.
 *
 * The caller's thread sees only the notify eventfd and the event queue behind it;
 * mig_send_dispatch() calls the ops there.
 *
 * This file: setup and teardown, the reader, the compressors, the caller's side. The
 * net thread: send_net.c.
 */
#include "send_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qb/qbdefs.h>
#include <qb/qblog.h>
#include <zmq.h>

#define FLUSH_MS 20 /* a partial block waits this long for more of the stream */

static atomic_uint ctx_tags;

/* --- small helpers ------------------------------------------------------------- */

void snd_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void snd_cpu_account(struct mig_sender *s, uint64_t *last)
{
	uint64_t now = mig_thread_cpu_ns();

	if (now > *last)
		atomic_fetch_add(&s->st_cpu, now - *last);
	*last = now;
}

void snd_post_accepted(struct mig_sender *s, const char *text)
{
	struct event *e = calloc(1, sizeof(*e));

	if (!e || !(e->text = strdup(text))) {
		free(e);
		qb_log(LOG_ERR, "migration send: out of memory for an event");
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (s->ev_tail)
		s->ev_tail->next = e;
	else
		s->ev_head = e;
	s->ev_tail = e;
	pthread_mutex_unlock(&s->lock);
	mig_eventfd_signal(s->notify_fd);
}

void snd_post_finished(struct mig_sender *s, bool ok, const char *why)
{
	pthread_mutex_lock(&s->lock);
	if (s->finished) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->finished = true;
	s->fin_posted = true;
	s->fin_ok = ok;
	snprintf(s->fin_why, sizeof(s->fin_why), "%s", why);
	pthread_mutex_unlock(&s->lock);
	mig_eventfd_signal(s->notify_fd);
}

/* Everyone stops: the reader, the compressors, the net thread. */
void snd_stop_all(struct mig_sender *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->free_cond);
	pthread_cond_broadcast(&s->work_cond);
	pthread_mutex_unlock(&s->lock);
	mig_eventfd_signal(s->stop_fd);
	mig_eventfd_signal(s->wake_fd);
}

/* ZeroMQ is done with a frame (called from its I/O thread, or ours). */
void snd_slot_release(void *data, void *hint)
{
	struct slot *sl = hint;
	struct mig_sender *s = sl->s;

	pthread_mutex_lock(&s->lock);
	sl->next = s->free_list;
	s->free_list = sl;
	pthread_cond_signal(&s->free_cond);
	pthread_mutex_unlock(&s->lock);
}

/* --- reader -------------------------------------------------------------------- */

/* Fill @sl from the fd: 1 with bytes (a full block, or a partial one at EOF or when
 * the fd went idle), 0 at EOF with nothing, -ECANCELED when stopped, -errno on a read
 * error. */
static int fill_slot(struct mig_sender *s, struct slot *sl, bool *eof)
{
	struct pollfd pfd[2] = {
		{.fd = s->fd, .events = POLLIN},
		{.fd = s->stop_fd, .events = POLLIN},
	};
	size_t len = 0;

	while (len < MIG_BLOCK_SIZE) {
		int n = poll(pfd, 2, len ? FLUSH_MS : -1);
		ssize_t r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (pfd[1].revents)
			return -ECANCELED;
		if (n == 0)
			break; /* idle: send what we have */
		r = read(s->fd, sl->raw + len, MIG_BLOCK_SIZE - len);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) {
			*eof = true;
			break;
		}
		len += (size_t)r;
	}
	sl->raw_len = len;
	return len ? 1 : 0;
}

static void *reader_main(void *arg)
{
	struct mig_sender *s = arg;
	uint64_t seq = 0, raw = 0, cpu = mig_thread_cpu_ns();
	size_t len;
	bool eof = false;
	int rc = 0;

	mig_thread_init("mig-send-read");
	pthread_mutex_lock(&s->lock);
	while (!s->go && !s->stopping)
		pthread_cond_wait(&s->free_cond, &s->lock);
	pthread_mutex_unlock(&s->lock);

	while (!eof) {
		struct slot *sl;

		pthread_mutex_lock(&s->lock);
		while (!s->free_list && !s->stopping)
			pthread_cond_wait(&s->free_cond, &s->lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		sl = s->free_list;
		s->free_list = sl->next;
		pthread_mutex_unlock(&s->lock);

		rc = fill_slot(s, sl, &eof);
		len = rc > 0 ? sl->raw_len : 0;
		pthread_mutex_lock(&s->lock);
		if (rc <= 0) {
			sl->next = s->free_list;
			s->free_list = sl;
		} else {
			sl->seq = seq++;
			sl->next = NULL;
			if (s->work_tail)
				s->work_tail->next = sl;
			else
				s->work_head = sl;
			s->work_tail = sl;
			pthread_cond_signal(&s->work_cond);
		}
		pthread_mutex_unlock(&s->lock);
		if (rc < 0)
			break;
		raw += len;
		atomic_fetch_add(&s->st_raw, len);
		snd_cpu_account(s, &cpu);
	}

	pthread_mutex_lock(&s->lock);
	if (eof) {
		s->eof = true;
		s->total_blocks = seq;
		s->total_raw = raw;
	} else if (rc < 0 && rc != -ECANCELED) {
		s->read_err = rc;
	}
	pthread_mutex_unlock(&s->lock);
	mig_eventfd_signal(s->wake_fd);
	/* At once, so that a QEMU still writing gets EPIPE when the migration failed. */
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	snd_cpu_account(s, &cpu);
	return NULL;
}

/* --- compressors --------------------------------------------------------------- */

static void *compress_main(void *arg)
{
	struct mig_sender *s = arg;
	size_t cap = mig_frame_bound(MIG_BLOCK_SIZE);
	uint64_t cpu = mig_thread_cpu_ns();

	mig_thread_init("mig-send-lz4");
	for (;;) {
		struct slot *sl;
		bool corrupt, compress;
		ssize_t n;

		pthread_mutex_lock(&s->lock);
		while (!s->work_head && !s->stopping)
			pthread_cond_wait(&s->work_cond, &s->lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		sl = s->work_head;
		s->work_head = sl->next;
		if (!s->work_head)
			s->work_tail = NULL;
		pthread_mutex_unlock(&s->lock);

		/* The test hook sends its block raw, so the damage shows as a checksum error. */
		corrupt = s->corrupt_seq && sl->seq == s->corrupt_seq - 1;
		compress = s->compress && !corrupt;
		n = mig_frame_encode(sl->seq, sl->raw, sl->raw_len, compress, sl->wire + 1, cap);
		if (n < 0) {
			/* cannot happen: raw_len is 1..MIG_BLOCK_SIZE, cap is its bound */
			qb_log(LOG_CRIT, "migration send: block %" PRIu64 ": encode: %s", sl->seq,
			       strerror((int)-n));
			n = 0;
		}
		sl->wire[0] = MIG_MSG_BLOCK;
		sl->wire_len = 1 + (size_t)n;
		sl->raw_frame = (size_t)n == MIG_FRAME_HDR + sl->raw_len; /* LZ4 is shorter */
		if (corrupt)
			sl->wire[1 + MIG_FRAME_HDR + sl->raw_len / 2] ^= 0x5a;

		pthread_mutex_lock(&s->lock);
		s->ready[sl->seq % s->nslots] = sl;
		pthread_mutex_unlock(&s->lock);
		mig_eventfd_signal(s->wake_fd);
		snd_cpu_account(s, &cpu);
	}
	snd_cpu_account(s, &cpu);
	return NULL;
}

/* --- setup --------------------------------------------------------------------- */

/* The hello must pass the target's decoder: checked with the same one. */
static int check_hello(const char *hello, char *err, size_t errlen)
{
	struct mig_msg m = {.type = MIG_MSG_HELLO, .text = hello, .text_len = strlen(hello)};
	size_t size = mig_msg_size(&m);
	char why[256];
	uint8_t *buf;
	int rc;

	if (m.text_len > MIG_TEXT_MAX) {
		snd_set_err(err, errlen, "hello of %zu bytes, more than %u", m.text_len,
			    MIG_TEXT_MAX);
		return -EINVAL;
	}
	buf = malloc(size);
	if (!buf) {
		snd_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = mig_msg_encode(&m, buf, size) < 0 ? -EINVAL : 0;
	if (!rc)
		rc = mig_msg_decode(buf, size, &m, why, sizeof(why));
	free(buf);
	if (rc) {
		snd_set_err(err, errlen, "hello refused: %s", why);
		return -EINVAL;
	}
	return 0;
}

static int check_cfg(const struct mig_send_cfg *cfg, char *err, size_t errlen)
{
	if (!cfg || !cfg->endpoint || !cfg->server_key || !cfg->keys || !cfg->hello) {
		snd_set_err(err, errlen, "incomplete configuration");
		return -EINVAL;
	}
	if (!mig_key_is_valid(cfg->server_key)) {
		snd_set_err(err, errlen, "server key \"%.48s\" is not a Z85 CURVE key",
			    cfg->server_key);
		return -EINVAL;
	}
	if (!mig_key_is_valid(cfg->keys->pub) || !mig_key_is_valid(cfg->keys->sec)) {
		snd_set_err(err, errlen, "our keypair is not made of Z85 CURVE keys");
		return -EINVAL;
	}
	if (cfg->fd < 0) {
		snd_set_err(err, errlen, "no stream fd");
		return -EBADF;
	}
	if (cfg->nthreads == 0 || cfg->nthreads > 64) {
		snd_set_err(err, errlen, "%u compression threads, must be 1..64", cfg->nthreads);
		return -EINVAL;
	}
	return check_hello(cfg->hello, err, errlen);
}

static int alloc_slots(struct mig_sender *s)
{
	size_t wcap = 1 + mig_frame_bound(MIG_BLOCK_SIZE);

	s->nslots = s->window + 2 * s->nthreads + 2;
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	s->ready = calloc(s->nslots, sizeof(*s->ready));
	if (!s->slots || !s->ready)
		return -ENOMEM;
	for (unsigned int i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		sl->s = s;
		sl->raw = malloc(MIG_BLOCK_SIZE);
		sl->wire = malloc(wcap);
		if (!sl->raw || !sl->wire)
			return -ENOMEM;
		sl->next = s->free_list;
		s->free_list = sl;
	}
	return 0;
}

static int start_threads(struct mig_sender *s, char *err, size_t errlen)
{
	int rc;

	s->comp_thr = calloc(s->nthreads, sizeof(*s->comp_thr));
	if (!s->comp_thr) {
		snd_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = pthread_create(&s->reader_thr, NULL, reader_main, s);
	if (rc)
		goto err;
	s->reader_started = true;
	for (; s->ncomp < s->nthreads; s->ncomp++) {
		rc = pthread_create(&s->comp_thr[s->ncomp], NULL, compress_main, s);
		if (rc)
			goto err;
	}
	rc = pthread_create(&s->net_thr, NULL, snd_net_main, s);
	if (rc)
		goto err;
	s->net_started = true;
	return 0;
err:
	snd_set_err(err, errlen, "cannot start a thread: %s", strerror(rc));
	return -rc;
}

/* Join what runs, then release everything. The caller stopped the threads. */
static void destroy(struct mig_sender *s)
{
	struct event *e, *next;

	if (s->net_started)
		pthread_join(s->net_thr, NULL);
	else {
		/* the net thread never took the sockets over */
		if (s->sock)
			zmq_socket_monitor(s->sock, NULL, 0);
		if (s->mon)
			zmq_close(s->mon);
		if (s->sock)
			zmq_close(s->sock);
	}
	if (s->reader_started)
		pthread_join(s->reader_thr, NULL);
	for (unsigned int i = 0; i < s->ncomp; i++)
		pthread_join(s->comp_thr[i], NULL);
	/* ZeroMQ releases the frames it still holds (snd_slot_release) before this returns */
	if (s->ctx)
		while (zmq_ctx_term(s->ctx) < 0 && zmq_errno() == EINTR)
			;
	for (e = s->ev_head; e; e = next) {
		next = e->next;
		free(e->text);
		free(e);
	}
	if (s->slots)
		for (unsigned int i = 0; i < s->nslots; i++) {
			free(s->slots[i].raw);
			free(s->slots[i].wire);
		}
	free(s->slots);
	free(s->ready);
	free(s->comp_thr);
	free(s->hello);
	if (s->fd >= 0)
		close(s->fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	pthread_cond_destroy(&s->free_cond);
	pthread_cond_destroy(&s->work_cond);
	pthread_mutex_destroy(&s->lock);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

mig_sender_t *mig_send_start(const struct mig_send_cfg *cfg, const struct mig_send_ops *ops,
			     void *arg, char *err, size_t errlen)
{
	struct mig_sender *s;
	int rc;

	rc = check_cfg(cfg, err, errlen);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snd_set_err(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->wake_fd = s->stop_fd = s->notify_fd = -1;
	s->fd = cfg->fd;
	if (ops)
		s->ops = *ops;
	s->arg = arg;
	s->nthreads = cfg->nthreads;
	s->compress = cfg->compress;
	s->window = cfg->window ? cfg->window : MIG_WINDOW_DEFAULT;
	if (s->window > MIG_WINDOW_MAX)
		s->window = MIG_WINDOW_MAX;
	s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	s->corrupt_seq = cfg->corrupt_seq;
	s->ctx_tag = (int)(atomic_fetch_add(&ctx_tags, 1) % 1000);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->free_cond, NULL);
	pthread_cond_init(&s->work_cond, NULL);

	s->hello = strdup(cfg->hello);
	if (!s->hello || alloc_slots(s)) {
		snd_set_err(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto err;
	}
	if ((rc = s->wake_fd = mig_eventfd()) < 0 || (rc = s->stop_fd = mig_eventfd()) < 0 ||
	    (rc = s->notify_fd = mig_eventfd()) < 0) {
		snd_set_err(err, errlen, "eventfd: %s", strerror(-rc));
		goto err;
	}
	s->ctx = zmq_ctx_new();
	if (!s->ctx) {
		rc = -zmq_errno();
		snd_set_err(err, errlen, "zmq_ctx_new: %s", zmq_strerror(-rc));
		goto err;
	}
	rc = snd_setup_socket(s, cfg, err, errlen);
	if (rc)
		goto err;
	rc = start_threads(s, err, errlen);
	if (rc)
		goto err;
	qb_log(LOG_INFO, "migration send: to %s, %u compression threads, window %u", cfg->endpoint,
	       s->nthreads, s->window);
	return s;

err:
	s->fd = -1; /* the caller keeps its fd when we could not start */
	snd_stop_all(s);
	destroy(s);
	errno = -rc;
	return NULL;
}

int mig_send_notify_fd(mig_sender_t *s)
{
	return s->notify_fd;
}

void mig_send_dispatch(mig_sender_t *s)
{
	mig_eventfd_drain(s->notify_fd);
	s->dispatching = true;
	while (!s->quiet) {
		struct event *e;
		char why[WHY_MAX];
		bool fin = false, ok = false;

		pthread_mutex_lock(&s->lock);
		e = s->ev_head;
		if (e) {
			s->ev_head = e->next;
			if (!s->ev_head)
				s->ev_tail = NULL;
		} else if (s->fin_posted) {
			/* after every accepted(), which was queued before it */
			s->fin_posted = false;
			fin = true;
			ok = s->fin_ok;
			memcpy(why, s->fin_why, sizeof(why));
		}
		pthread_mutex_unlock(&s->lock);
		if (e) {
			if (s->ops.accepted)
				s->ops.accepted(s->arg, e->text);
			free(e->text);
			free(e);
		} else if (fin) {
			s->quiet = true;
			if (s->ops.finished)
				s->ops.finished(s->arg, ok, why);
		} else {
			break;
		}
	}
	s->dispatching = false;
	if (s->free_pending)
		destroy(s);
}

void mig_send_stats(mig_sender_t *s, struct mig_stats *st)
{
	st->raw_bytes = atomic_load(&s->st_raw);
	st->wire_bytes = atomic_load(&s->st_wire);
	st->blocks = atomic_load(&s->st_blocks);
	st->raw_blocks = atomic_load(&s->st_raw_blocks);
	st->cpu_ns = atomic_load(&s->st_cpu) + atomic_load(&s->st_io_cpu);
}

void mig_send_abort(mig_sender_t *s, const char *why)
{
	pthread_mutex_lock(&s->lock);
	if (!s->finished && !s->abort_req) {
		s->abort_req = true;
		snprintf(s->abort_why, sizeof(s->abort_why), "%s", why ? why : "cancelled");
	}
	pthread_mutex_unlock(&s->lock);
	mig_eventfd_signal(s->wake_fd);
}

void mig_send_free(mig_sender_t *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->quiet = true;
	s->finished = true;
	pthread_mutex_unlock(&s->lock);
	snd_stop_all(s);
	if (s->dispatching) {
		s->free_pending = true;
		return;
	}
	destroy(s);
}
