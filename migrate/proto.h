/*
 * The messages of the migration protocol, private to migrate/. Each ZeroMQ message
 * (after the ROUTER's routing-id frame on the target) is one frame: a type byte, then
 * the body of that type. Integers are little-endian.
 *
 *	source -> target
 *	  HELLO  u8 protocol version (1), text: JSON for the target's caller
 *	  BLOCK  a frame of frame.c
 *	  END    u64 blocks, u64 raw bytes: the totals of the whole stream
 *	  ABORT  text: why
 *	  PING   empty: every MIG_PING_MS, answered by PONG
 *	target -> source
 *	  ACCEPT text: JSON reply of the target's caller
 *	  REJECT text: why
 *	  ACK    u64: blocks written to the target's fd so far (cumulative; the next seq)
 *	  DONE   u8 ok (0 or 1), text: why (empty when ok)
 *	  ABORT  text: why
 *	  PONG   empty
 *
 * A text is UTF-8 without NUL, at most MIG_TEXT_MAX bytes; HELLO and ACCEPT are not
 * empty. mig_msg_decode() is pure (fuzzed): anything else is refused with a message.
 *
 * Also the few helpers both ends share (clocks, eventfds, ZeroMQ sends and monitor
 * events), at the end.
 */
#ifndef HV_MIGRATE_PROTO_H
#define HV_MIGRATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "migrate.h"

#define MIG_PROTO_VERSION 1
#define MIG_TEXT_MAX (64u * 1024)
/* The largest message either side ever sends (a BLOCK of MIG_BLOCK_MAX raw bytes). */
#define MIG_MSG_MAX (1 + MIG_FRAME_HDR + MIG_BLOCK_MAX + MIG_BLOCK_MAX / 255 + 16)

#define MIG_PING_MS 1000    /* the source pings this often, whatever it is doing */
#define MIG_SILENT_MS 15000 /* the target drops a source silent this long */
/*
 * 32 blocks, 8 MiB raw. 8 was tried: no faster or slower on loopback (bench_migpipe), and
 * in the lab the 128 MiB-dirtying guest's migration varied from 8 to 58 s with either, so
 * nothing showed that the smaller window's quicker drain after QEMU stops the guest pays.
 */
#define MIG_WINDOW_DEFAULT 32
#define MIG_WINDOW_MAX 128 /* the sender's window is clamped to this */
#define MIG_QUEUE_MAX 256  /* blocks a target queues for its writer before it aborts */

enum mig_msg_type {
	MIG_MSG_HELLO = 1,
	MIG_MSG_ACCEPT = 2,
	MIG_MSG_REJECT = 3,
	MIG_MSG_BLOCK = 4,
	MIG_MSG_END = 5,
	MIG_MSG_ACK = 6,
	MIG_MSG_DONE = 7,
	MIG_MSG_ABORT = 8,
	MIG_MSG_PING = 9,
	MIG_MSG_PONG = 10,
};

/* A decoded message: pointers into the buffer it was decoded from. */
struct mig_msg {
	enum mig_msg_type type;
	const char *text; /* HELLO, ACCEPT, REJECT, DONE, ABORT: not NUL-terminated */
	size_t text_len;
	const void *frame; /* BLOCK: the frame (checked by mig_frame_decode(), not here) */
	size_t frame_len;
	uint64_t blocks;    /* END; ACK */
	uint64_t raw_bytes; /* END */
	bool ok;	    /* DONE */
};

const char *mig_msg_name(int type);

/* Decode one message: 0, or -EBADMSG with a message. */
int mig_msg_decode(const void *buf, size_t len, struct mig_msg *m, char *err, size_t errlen);

/*
 * Encode a message other than BLOCK (which is a type byte and a frame written in
 * place by the sender) into @out: its length, or -ENOSPC / -EINVAL (a text too long).
 * mig_msg_size() is the room it needs.
 */
size_t mig_msg_size(const struct mig_msg *m);
ssize_t mig_msg_encode(const struct mig_msg *m, void *out, size_t outcap);

/* A heap copy of a message's text, made a C string; NULL when out of memory. */
char *mig_msg_strdup(const struct mig_msg *m);

/*
 * Copy @src into @dst (@cap > 0) as a text the decoder accepts: bytes that are not
 * UTF-8 become '?', cut at a character boundary to fit. For reasons sent to the peer.
 */
void mig_text_clean(char *dst, size_t cap, const char *src);

/* --- shared by send.c and server.c (not pure: clocks, eventfds, ZeroMQ) ------------- */

/*
 * At the start of each of our threads: name it (top -H, perf) and block the
 * asynchronous signals, which are the main thread's (SIGPIPE becomes EPIPE).
 */
void mig_thread_init(const char *name);
uint64_t mig_now_ms(void);
/* CPU time of the calling thread. */
uint64_t mig_thread_cpu_ns(void);
/* A non-blocking, close-on-exec eventfd; -errno. */
int mig_eventfd(void);
void mig_eventfd_signal(int fd);
void mig_eventfd_drain(int fd);
/* zmq_setsockopt() of an int: 0 or -errno. */
int mig_zmq_setint(void *sock, int opt, int val);
/*
 * Send @m (not a BLOCK) without blocking, after the routing id @rid when @rid_len (a
 * ROUTER): 0, or -errno (-EAGAIN: the peer's queue is full; -EHOSTUNREACH: no such peer).
 */
int mig_zmq_send(void *sock, const void *rid, size_t rid_len, const struct mig_msg *m);
/* Receive one monitor event without blocking: 1 with @ev and @val, 0 when none, -errno. */
int mig_zmq_monitor_event(void *mon, uint16_t *ev, uint32_t *val);
/* What a ZMQ_PROTOCOL_ERROR_* code of a HANDSHAKE_FAILED_PROTOCOL event means, in words. */
const char *mig_zmq_protocol_error(uint32_t code);

#endif
