/*
 * The migration protocol's messages (see proto.h): a strict decoder and the encoder,
 * pure (no I/O, no logging; only mig_msg_strdup() allocates); then the helpers that
 * send.c and server.c share.
 */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

static const char *const names[] = {
	[MIG_MSG_HELLO] = "HELLO", [MIG_MSG_ACCEPT] = "ACCEPT", [MIG_MSG_REJECT] = "REJECT",
	[MIG_MSG_BLOCK] = "BLOCK", [MIG_MSG_END] = "END",	[MIG_MSG_ACK] = "ACK",
	[MIG_MSG_DONE] = "DONE",   [MIG_MSG_ABORT] = "ABORT",	[MIG_MSG_PING] = "PING",
	[MIG_MSG_PONG] = "PONG",
};

const char *mig_msg_name(int type)
{
	if (type <= 0 || (size_t)type >= sizeof(names) / sizeof(names[0]) || !names[type])
		return "unknown";
	return names[type];
}

__attribute__((format(printf, 4, 5))) static int fail(int rc, char *err, size_t errlen,
						      const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The offset of the first byte that is not part of valid UTF-8 (no NUL, no overlong
 * forms, no surrogates, nothing above U+10FFFF), or @len. */
static size_t utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (size_t j = 1; j <= n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

static int decode_text(const uint8_t *p, size_t len, bool need, struct mig_msg *m, char *err,
		       size_t errlen)
{
	size_t bad;

	if (need && len == 0)
		return fail(-EBADMSG, err, errlen, "%s: empty text", mig_msg_name(m->type));
	if (len > MIG_TEXT_MAX)
		return fail(-EBADMSG, err, errlen, "%s: text of %zu bytes, more than %u",
			    mig_msg_name(m->type), len, MIG_TEXT_MAX);
	bad = utf8_check(p, len);
	if (bad != len)
		return fail(-EBADMSG, err, errlen, "%s: text not UTF-8 (byte 0x%02x at %zu)",
			    mig_msg_name(m->type), p[bad], bad);
	m->text = (const char *)p;
	m->text_len = len;
	return 0;
}

static int want_len(const struct mig_msg *m, size_t got, size_t want, char *err, size_t errlen)
{
	if (got != want)
		return fail(-EBADMSG, err, errlen, "%s: %zu bytes, must be %zu",
			    mig_msg_name(m->type), got, want);
	return 0;
}

int mig_msg_decode(const void *buf, size_t len, struct mig_msg *m, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	size_t blen;
	int rc;

	if (!p || len == 0)
		return fail(-EBADMSG, err, errlen, "empty message");
	if (len > MIG_MSG_MAX)
		return fail(-EBADMSG, err, errlen, "message of %zu bytes, more than %u", len,
			    (unsigned int)MIG_MSG_MAX);
	memset(m, 0, sizeof(*m));
	m->type = p[0];
	p++;
	blen = len - 1;

	switch (p[-1]) {
	case MIG_MSG_HELLO:
		if (blen < 1)
			return fail(-EBADMSG, err, errlen, "HELLO: no protocol version");
		if (p[0] != MIG_PROTO_VERSION)
			return fail(-EBADMSG, err, errlen,
				    "HELLO: protocol version %u, this target speaks %u", p[0],
				    MIG_PROTO_VERSION);
		return decode_text(p + 1, blen - 1, true, m, err, errlen);
	case MIG_MSG_ACCEPT:
		return decode_text(p, blen, true, m, err, errlen);
	case MIG_MSG_REJECT:
	case MIG_MSG_ABORT:
		return decode_text(p, blen, false, m, err, errlen);
	case MIG_MSG_BLOCK:
		if (blen < MIG_FRAME_HDR)
			return fail(-EBADMSG, err, errlen,
				    "BLOCK: %zu bytes, shorter than a header", blen);
		m->frame = p;
		m->frame_len = blen;
		return 0;
	case MIG_MSG_END:
		rc = want_len(m, blen, 16, err, errlen);
		if (rc)
			return rc;
		m->blocks = get_le64(p);
		m->raw_bytes = get_le64(p + 8);
		return 0;
	case MIG_MSG_ACK:
		rc = want_len(m, blen, 8, err, errlen);
		if (rc)
			return rc;
		m->blocks = get_le64(p);
		return 0;
	case MIG_MSG_DONE:
		if (blen < 1)
			return fail(-EBADMSG, err, errlen, "DONE: no status byte");
		if (p[0] > 1)
			return fail(-EBADMSG, err, errlen, "DONE: status byte %u, must be 0 or 1",
				    p[0]);
		m->ok = p[0];
		return decode_text(p + 1, blen - 1, false, m, err, errlen);
	case MIG_MSG_PING:
	case MIG_MSG_PONG:
		return want_len(m, blen, 0, err, errlen);
	default:
		return fail(-EBADMSG, err, errlen, "unknown message type %u (%zu bytes)", p[-1],
			    len);
	}
}

size_t mig_msg_size(const struct mig_msg *m)
{
	switch (m->type) {
	case MIG_MSG_HELLO:
		return 2 + m->text_len;
	case MIG_MSG_DONE:
		return 2 + m->text_len;
	case MIG_MSG_ACCEPT:
	case MIG_MSG_REJECT:
	case MIG_MSG_ABORT:
		return 1 + m->text_len;
	case MIG_MSG_END:
		return 17;
	case MIG_MSG_ACK:
		return 9;
	default:
		return 1;
	}
}

ssize_t mig_msg_encode(const struct mig_msg *m, void *out, size_t outcap)
{
	uint8_t *o = out;
	size_t len = mig_msg_size(m);
	size_t at = 1;

	if (m->type == MIG_MSG_BLOCK || (size_t)m->type >= sizeof(names) / sizeof(names[0]) ||
	    !names[m->type] || m->text_len > MIG_TEXT_MAX || (m->text_len && !m->text))
		return -EINVAL;
	if (outcap < len)
		return -ENOSPC;
	o[0] = (uint8_t)m->type;
	switch (m->type) {
	case MIG_MSG_HELLO:
		o[at++] = MIG_PROTO_VERSION;
		break;
	case MIG_MSG_DONE:
		o[at++] = m->ok ? 1 : 0;
		break;
	case MIG_MSG_END:
		put_le64(o + 1, m->blocks);
		put_le64(o + 9, m->raw_bytes);
		return (ssize_t)len;
	case MIG_MSG_ACK:
		put_le64(o + 1, m->blocks);
		return (ssize_t)len;
	case MIG_MSG_PING:
	case MIG_MSG_PONG:
		return (ssize_t)len;
	default:
		break;
	}
	if (m->text_len)
		memcpy(o + at, m->text, m->text_len);
	return (ssize_t)len;
}

char *mig_msg_strdup(const struct mig_msg *m)
{
	char *s = malloc(m->text_len + 1);

	if (!s)
		return NULL;
	if (m->text_len)
		memcpy(s, m->text, m->text_len);
	s[m->text_len] = '\0';
	return s;
}

void mig_text_clean(char *dst, size_t cap, const char *src)
{
	const uint8_t *s = (const uint8_t *)(src ? src : "");
	size_t len = strlen((const char *)s), i = 0, o = 0;

	if (!cap)
		return;
	while (i < len) {
		size_t ok = utf8_check(s + i, len - i);

		if (ok == 0) {
			if (o + 1 >= cap)
				break;
			dst[o++] = '?';
			i++;
			continue;
		}
		/* copy whole characters only */
		while (ok && o + ok >= cap) {
			ok--;
			while (ok && (s[i + ok] & 0xc0) == 0x80)
				ok--;
		}
		if (!ok)
			break;
		memcpy(dst + o, s + i, ok);
		o += ok;
		i += ok;
		if (o + 1 >= cap)
			break;
	}
	dst[o] = '\0';
}

/* --- shared helpers ------------------------------------------------------------ */

void mig_thread_init(const char *name)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), name);
}

uint64_t mig_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t mig_thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mig_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

void mig_eventfd_signal(int fd)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is at its maximum, so the reader will wake anyway. */
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void mig_eventfd_drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

int mig_zmq_setint(void *sock, int opt, int val)
{
	return zmq_setsockopt(sock, opt, &val, sizeof(val)) < 0 ? -zmq_errno() : 0;
}

int mig_zmq_send(void *sock, const void *rid, size_t rid_len, const struct mig_msg *m)
{
	uint8_t small[256], *buf = small;
	size_t need = mig_msg_size(m);
	ssize_t len;
	int rc = 0;

	if (need > sizeof(small)) {
		buf = malloc(need);
		if (!buf)
			return -ENOMEM;
	}
	len = mig_msg_encode(m, buf, need);
	if (len < 0) {
		rc = (int)len;
		goto out;
	}
	if (rid_len && zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		rc = -zmq_errno();
		goto out;
	}
	if (zmq_send(sock, buf, (size_t)len, ZMQ_DONTWAIT) < 0)
		rc = -zmq_errno();
out:
	if (buf != small)
		free(buf);
	return rc;
}

int mig_zmq_monitor_event(void *mon, uint16_t *ev, uint32_t *val)
{
	zmq_msg_t part;
	int rc = 0, more;

	if (zmq_msg_init(&part) < 0)
		return -zmq_errno();
	if (zmq_msg_recv(&part, mon, ZMQ_DONTWAIT) < 0) {
		rc = zmq_errno() == EAGAIN ? 0 : -zmq_errno();
		goto out;
	}
	/* frame 1: u16 event, u32 value (native order); frame 2: the endpoint */
	if (zmq_msg_size(&part) == 6) {
		const uint8_t *d = zmq_msg_data(&part);

		memcpy(ev, d, 2);
		memcpy(val, d + 2, 4);
		rc = 1;
	}
	more = zmq_msg_more(&part);
	while (more) {
		if (zmq_msg_recv(&part, mon, 0) < 0) {
			rc = -zmq_errno();
			break;
		}
		more = zmq_msg_more(&part);
	}
out:
	zmq_msg_close(&part);
	return rc;
}

const char *mig_zmq_protocol_error(uint32_t code)
{
	switch (code) {
	case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
		return "cryptographic error (wrong server key?)";
	case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
		return "mechanism mismatch (a client without CURVE?)";
	case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
		return "key exchange failed";
	case ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND:
	case ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE:
		return "unexpected command";
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_INITIATE:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_WELCOME:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_READY:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_MESSAGE:
	case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_ERROR:
		return "malformed handshake command";
	default:
		if ((code & 0xf0000000u) == ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED)
			return "bad answer from the ZAP handler";
		return "protocol error";
	}
}
