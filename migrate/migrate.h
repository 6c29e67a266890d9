/*
 * The migration stream: QEMU's migration stream cut into blocks, each
 * LZ4-compressed (kept raw when it does not shrink) with a checksum, sent
 * over ZeroMQ secured with CURVE, fed to the target QEMU.
 *
 * It knows nothing of the cluster, of QEMU or of LUNs: the caller (hvnoded)
 * hands it file descriptors and JSON texts and decides what they mean. The
 * bulk data moves in threads of this module; everything the caller sees
 * comes through a notify fd that it adds to its own loop, and the ops are
 * then called from mig_*_dispatch() in the caller's thread.
 */
#ifndef HV_MIGRATE_H
#define HV_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* --- framing (frame.c): pure ---------------------------------------------------- */

#define MIG_BLOCK_SIZE (256u * 1024) /* raw bytes per block read from QEMU */
#define MIG_BLOCK_MAX (4u << 20)     /* the largest raw block a decoder accepts */
#define MIG_FRAME_HDR 32	     /* bytes of header before the payload */

struct mig_frame_info {
	uint64_t seq;	   /* 0, 1, 2... in stream order */
	uint32_t raw_len;  /* bytes after decoding, 1..MIG_BLOCK_MAX */
	uint32_t wire_len; /* payload bytes after the header */
	bool compressed;   /* payload is LZ4 (else raw) */
};

/* The largest frame mig_frame_encode() may produce for @raw_len bytes. */
size_t mig_frame_bound(size_t raw_len);

/*
 * Encode block @seq: header (magic, version, flags, seq, lengths, checksum
 * of the raw bytes) + payload, LZ4 when @compress and it shrinks, raw
 * otherwise. The frame's length, or -EINVAL (raw_len 0 or > MIG_BLOCK_MAX)
 * / -ENOSPC (@outcap < mig_frame_bound(raw_len)).
 */
ssize_t mig_frame_encode(uint64_t seq, const void *raw, size_t raw_len, bool compress, void *out,
			 size_t outcap);

/*
 * The length of the frame whose header starts @hdr (@len >= MIG_FRAME_HDR
 * bytes there), for reading frames off a byte stream: -EBADMSG with a message
 * when it is no frame header or claims more than any block needs. The rest is
 * checked by mig_frame_decode().
 */
ssize_t mig_frame_size(const void *hdr, size_t len, char *err, size_t errlen);

/* Check the header of a frame of @len bytes: 0, or -EBADMSG with a message. */
int mig_frame_peek(const void *frame, size_t len, struct mig_frame_info *fi, char *err,
		   size_t errlen);

/*
 * Decode a whole frame into @raw (@rawcap >= fi.raw_len): verifies magic,
 * version, lengths (the frame is exactly header + wire_len), decompression
 * and the checksum. The raw length, or -EBADMSG / -EMSGSIZE with a message
 * that says which check failed.
 */
ssize_t mig_frame_decode(const void *frame, size_t len, void *raw, size_t rawcap,
			 struct mig_frame_info *fi, char *err, size_t errlen);

/* --- CURVE keys (keys.c) ------------------------------------------------------------- */

#define MIG_KEY_Z85 41 /* a Z85 CURVE key, 40 characters and its NUL */

struct mig_keys {
	char pub[MIG_KEY_Z85];
	char sec[MIG_KEY_Z85];
};

/*
 * Load this node's keypair from @dir/migrate.key (the secret, mode 0600,
 * owned by us) and @dir/migrate.pub; make and store a new pair when neither
 * exists. A file with a wrong mode, owner, length or content, or a public
 * key that does not belong to the secret one, is refused (-EINVAL / -EPERM
 * with a message naming the file): never silently replaced.
 */
int mig_keys_load(const char *dir, struct mig_keys *k, char *err, size_t errlen);

/* A well-formed Z85 CURVE key (40 characters of the Z85 alphabet). */
bool mig_key_is_valid(const char *z85);

/* --- statistics --------------------------------------------------------------------- */

struct mig_stats {
	uint64_t raw_bytes;  /* of QEMU's stream, read (source) or fed (target) */
	uint64_t wire_bytes; /* frame bytes sent or received */
	uint64_t blocks;
	uint64_t raw_blocks; /* sent raw: did not shrink */
	uint64_t cpu_ns;     /* CPU time of this migration's threads */
};

/* --- the source: one sender per outgoing migration (send.c, send_net.c) ---------------- */

typedef struct mig_sender mig_sender_t;

struct mig_send_cfg {
	const char *endpoint;	     /* "tcp://ADDR:PORT" of the target's server */
	const char *server_key;	     /* the target's public key (Z85) */
	const struct mig_keys *keys; /* ours */
	const char *hello;	     /* JSON text: what the target must know to accept */
	int fd;			     /* QEMU's stream, read to EOF; the sender owns it (once
				      * started: it is closed when the stream ends or fails) */
	unsigned int nthreads;	     /* compression threads, 1.. */
	bool compress;		     /* false: every block raw */
	unsigned int window;	     /* frames sent and not yet acknowledged; 0: 32; at most 128 */
	unsigned int timeout_ms;     /* no answer from the target this long: failed; 0: 10000.
				      * The source pings every second, the target's server
				      * answers: a target whose caller takes long to accept
				      * or whose QEMU loads slowly is not a timeout. */
	uint64_t corrupt_seq;	     /* test hook: damage block N-1's payload on the wire (that
				      * block is sent raw, so the target finds a checksum
				      * mismatch); 0 none */
};

struct mig_send_ops {
	/* The target accepted (@reply its JSON text): the stream may start (QEMU may write). */
	void (*accepted)(void *arg, const char *reply);
	/*
	 * The end: @ok when every block was acknowledged and the target confirmed that
	 * its QEMU loaded the stream (mig_server_finish(ok)); else @why (refused, timeout,
	 * target's error, cancelled). Once; then nothing more is called.
	 */
	void (*finished)(void *arg, bool ok, const char *why);
};

/*
 * Connect and say hello; NULL with a message (and errno) when it cannot even start: the
 * fd is then still the caller's. Checks the keys, the hello (UTF-8, at most 64 KiB).
 */
mig_sender_t *mig_send_start(const struct mig_send_cfg *cfg, const struct mig_send_ops *ops,
			     void *arg, char *err, size_t errlen);
/* Readable when mig_send_dispatch() has something to report. */
int mig_send_notify_fd(mig_sender_t *s);
void mig_send_dispatch(mig_sender_t *s);
/*
 * Counters so far (safe at any time). cpu_ns includes the sender's ZeroMQ I/O thread,
 * where CURVE encrypts (from /proc, at clock-tick resolution, sampled every second).
 */
void mig_send_stats(mig_sender_t *s, struct mig_stats *st);
/* Stop now (the target is told, when it can be): finished(false, @why) follows. */
void mig_send_abort(mig_sender_t *s, const char *why);
/*
 * Join the threads and free; closes the fd. No callback after it. Safe from within a
 * callback (the free then happens when mig_send_dispatch() returns). While still
 * running, the target is told (ABORT "cancelled"); that may hold this call up to 250 ms.
 */
void mig_send_free(mig_sender_t *s);

/* --- the target: one server per node (server.c, server_conn.c) ------------------------- */

typedef struct mig_server mig_server_t;

struct mig_server_ops {
	/*
	 * A source asks (@hello its JSON text, @client_key its public key, which the
	 * ZAP handler already found among the allowed ones). Answer later, once, with
	 * mig_server_accept() or mig_server_reject().
	 */
	void (*incoming)(void *arg, uint64_t conn, const char *hello, const char *client_key);
	/*
	 * The stream of @conn ended: @ok: the source sent its end mark and every block
	 * was checked and written to the fd (the caller now checks QEMU and answers with
	 * mig_server_finish()); else @why (checksum mismatch, source gone, aborted, a
	 * write error). Once per accepted conn.
	 */
	void (*ended)(void *arg, uint64_t conn, bool ok, const char *why);
	/* Optional: something was refused or dropped (unknown key, garbage): for the log. */
	void (*rejected)(void *arg, const char *why);
};

/*
 * Bind @endpoint ("tcp://0.0.0.0:7790") as a CURVE server with @keys; only
 * clients whose key is in the allowed set get through (none until
 * mig_server_set_allowed()). NULL with a message. The port may be "*" (any free
 * one: see mig_server_port()). A source silent for 15 s (it pings every second)
 * is dropped: ended(false) when it was streaming.
 */
mig_server_t *mig_server_start(const char *endpoint, const struct mig_keys *keys,
			       const struct mig_server_ops *ops, void *arg, char *err,
			       size_t errlen);
/* The TCP port the server is bound to (useful after binding port "*"); 0 if unknown. */
int mig_server_port(mig_server_t *srv);
int mig_server_notify_fd(mig_server_t *srv);
void mig_server_dispatch(mig_server_t *srv);
/* Replace the set of client keys the ZAP handler lets in (copied); -EINVAL for a bad key. */
int mig_server_set_allowed(mig_server_t *srv, const char (*keys)[MIG_KEY_Z85], size_t n);
/*
 * Accept @conn: its blocks, checked and decoded, are written to @fd (owned by the server
 * now, even when this fails: closed; made O_NONBLOCK so a stuck QEMU cannot hold the
 * server: pass an fd of your own, e.g. your end of a pipe or socketpair). The fd is
 * closed when the stream ends, before ended(). @reply: non-empty UTF-8, at most 64 KiB.
 * 0: ended() follows, also if the source left meanwhile; -ENOENT (no such conn, or it
 * left), -EALREADY (answered already), -EINVAL.
 */
int mig_server_accept(mig_server_t *srv, uint64_t conn, const char *reply, int fd);
/* Refuse @conn with @why for the source: 0, -ENOENT, -EALREADY. */
int mig_server_reject(mig_server_t *srv, uint64_t conn, const char *why);
/* After ended(ok): tell the source whether the target QEMU loaded the stream. -ENOENT/-EINVAL. */
int mig_server_finish(mig_server_t *srv, uint64_t conn, bool ok, const char *why);
/* Drop @conn (the source is told): ended() follows if it was accepted and not yet ended. */
void mig_server_abort(mig_server_t *srv, uint64_t conn, const char *why);
/*
 * Counters of @conn: -ENOENT once it is gone, which is after ended() returns for a
 * failed stream, after mig_server_finish() for a good one. cpu_ns: its writer thread.
 */
int mig_server_stats(mig_server_t *srv, uint64_t conn, struct mig_stats *st);
/* Stop and join everything, close every fd. No callback after it; safe from one. */
void mig_server_free(mig_server_t *srv);

#endif
