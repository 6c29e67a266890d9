/*
 * storage: iSCSI LUNs and SCSI-3 persistent reservations, with libiscsi.
 *
 * A node owns a LUN when every session of that node on it is registered with
 * the node's reservation key and the LUN holds a Write Exclusive - Registrants
 * Only (WERO) reservation of that key: no other node is registered, so no other
 * node can write. Takeover PREEMPTs the old owner's key, which unregisters every
 * I_T nexus of the old owner at once (its disk servers too).
 *
 * Every lun_* call that talks to the target is blocking, bounded by the
 * session's timeout per SCSI command, and meant for a worker thread. There is
 * no global state: each session has its own libiscsi context and a mutex, so
 * one session may be shared by threads (calls are serialized) and different
 * sessions run in parallel. UNIT ATTENTION is retried transparently.
 *
 * Errors: 0 or -errno; lun_open returns NULL with errno set. Every call that
 * can fail takes @err/@errlen and writes one line there naming the LUN (its URL)
 * and the cause, e.g. "lun iscsi://10.77.0.2:3260/iqn.2026-11.lab.hvcluster:x/1:
 * PREEMPT of key 0x8c1f2a3b00000002 failed: RESERVATION CONFLICT".
 * SCSI outcomes map to errno values once, here:
 *   RESERVATION CONFLICT (a status, not sense)	-EBADE (as the Linux block layer)
 *   ILLEGAL REQUEST, invalid operation code	-EOPNOTSUPP
 *   ILLEGAL REQUEST, LUN not supported		-ENXIO
 *   ILLEGAL REQUEST, other			-EINVAL
 *   DATA PROTECT				-EROFS
 *   BUSY / TASK SET FULL (after retries)	-EBUSY
 *   other CHECK CONDITION, UA after retries	-EIO
 *   no answer within the timeout		-ETIMEDOUT
 *   connection lost and not re-established	-ECONNRESET (or the reconnect's error)
 */
#ifndef HV_STORAGE_H
#define HV_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lun_session lun_session_t;

/* --- LUN URLs ---------------------------------------------------------------- */

#define LUN_HOST_MAX	255	/* DNS name limit */
#define LUN_TARGET_MAX	223	/* iSCSI name limit (RFC 7143) */
#define LUN_MAX		16383	/* flat space addressing; 0..255 use peripheral addressing */
#define LUN_PORT_DEFAULT 3260

struct lun_url {
	char host[LUN_HOST_MAX + 1];	     /* name, IPv4, or IPv6 without brackets */
	uint16_t port;			     /* LUN_PORT_DEFAULT when the URL has none */
	char target[LUN_TARGET_MAX + 1];     /* iqn./eui./naa. name */
	uint16_t lun;			     /* 0..LUN_MAX */
	char portal[LUN_HOST_MAX + 10];	     /* "host:port" or "[v6]:port", for the login */
};

/*
 * Parse @s, which must be iscsi://HOST[:PORT]/TARGET/LUN (no credentials, no
 * query): HOST a DNS name, IPv4 address or [IPv6] address; TARGET an iSCSI name
 * iqn.YYYY-MM.reverse.domain[:anything], eui.<16 hex> or naa.<16|32 hex>; LUN
 * 0..16383. On error -EINVAL and @err says which part is wrong and why.
 */
int lun_url_parse(const char *s, struct lun_url *u, char *err, size_t errlen);

/* --- identity: reservation keys, initiator names, ISIDs --------------------- */

/*
 * The reservation key of node @nodeid in cluster @cluster_name: the node id in
 * the low 32 bits and the FNV-1a hash of the cluster name in the high 32 bits
 * (never 0), so sg_persist's "0x8c1f2a3b00000002" reads "node 2 of cluster
 * 0x8c1f2a3b". Deterministic, nonzero, distinct per node id within a cluster.
 */
uint64_t storage_node_key(const char *cluster_name, uint32_t nodeid);

/* "0x" and 1 to 16 hex digits, nothing else (a key is never read as decimal). 0 or -EINVAL. */
int storage_key_parse(const char *s, uint64_t *key);

/* The node id a key encodes (its low 32 bits). */
static inline uint32_t storage_key_nodeid(uint64_t key)
{
	return (uint32_t)key;
}

/* True when @a and @b are keys of the same cluster (same high 32 bits). */
static inline bool storage_key_same_cluster(uint64_t a, uint64_t b)
{
	return (a >> 32) == (b >> 32);
}

/*
 * This node's iSCSI initiator name, "iqn.2026-11.org.hvcluster:<cluster>:<node>"
 * with both names lower-cased and any character outside [a-z0-9.-] turned into
 * '-' (iSCSI names allow no more); truncated to LUN_TARGET_MAX. @len >= 1.
 */
void storage_initiator_name(char *buf, size_t len, const char *cluster_name,
			    const char *node_name);

/*
 * The ISID of the sessions of @initiator for @purpose ("mgmt" for hvnoded,
 * "vm:<uuid>:<disk>" for a disk server), as the 48-bit value sent at login:
 * type 0x80 (random) in the top byte, then 24 + 16 bits of an FNV-1a hash of
 * (initiator, purpose). The same on every login, so a re-login is the same
 * I_T nexus to a target that follows SPC; different for different purposes.
 * One session per (initiator, purpose) at a time: a second login with the same
 * ISID makes the target drop the first (session reinstatement).
 */
uint64_t storage_isid(const char *initiator, const char *purpose);

/* --- SCSI status and sense, for messages ------------------------------------ */

/* "GOOD", "CHECK CONDITION", "RESERVATION CONFLICT", ...; "status 0x.." otherwise. */
const char *scsi_status_name(int status, char *buf, size_t len);

/* "ILLEGAL_REQUEST", "UNIT_ATTENTION", ...; "sense key 0x.." otherwise. */
const char *scsi_sense_key_name(int key, char *buf, size_t len);

/* "INVALID FIELD IN CDB" for 0x24/0x00 ...; NULL when unknown. */
const char *scsi_asc_name(int asc, int ascq);

/*
 * "sense ILLEGAL_REQUEST asc/ascq 0x24/0x00 (INVALID FIELD IN CDB)" into @buf
 * (the parenthesis only when the code is known); returns @buf.
 */
char *scsi_sense_describe(char *buf, size_t len, int key, int asc, int ascq);

/* -errno for a CHECK CONDITION with this sense (see the table at the top). */
int scsi_sense_errno(int key, int asc, int ascq);

/* "Write Exclusive - Registrants Only" for 5, ...; "type N" otherwise. */
const char *lun_pr_type_name(int type, char *buf, size_t len);

/* --- persistent reservation state and its parsing (pure) ------------------- */

#define LUN_PR_TYPE_WE		1	/* Write Exclusive */
#define LUN_PR_TYPE_EA		3	/* Exclusive Access */
#define LUN_PR_TYPE_WERO	5	/* Write Exclusive - Registrants Only: ours */
#define LUN_PR_TYPE_EARO	6	/* Exclusive Access - Registrants Only */
#define LUN_PR_TYPE_WEAR	7	/* Write Exclusive - All Registrants */
#define LUN_PR_TYPE_EAAR	8	/* Exclusive Access - All Registrants */

#define LUN_PR_MAX_KEYS 128

struct lun_pr_state {
	uint32_t generation;		/* PRgeneration of READ RESERVATION */
	unsigned int nkeys;		/* registrations (one per I_T nexus; keys repeat) */
	bool keys_truncated;		/* more than LUN_PR_MAX_KEYS registrations */
	uint64_t keys[LUN_PR_MAX_KEYS];
	bool reserved;
	uint64_t holder;		/* reservation key of the holder (0 for all-registrants types) */
	uint8_t type;			/* LUN_PR_TYPE_*, when reserved */
	uint8_t scope;			/* 0 = LU scope */
};

struct lun_pr_caps {
	bool pr_supported;		/* PERSISTENT RESERVE IN works at all */
	bool report_caps;		/* REPORT CAPABILITIES answered (else: probed with READ KEYS) */
	bool type_mask_valid;		/* the target listed the types it supports */
	uint16_t type_mask;		/* SPC's PERSISTENT RESERVATION TYPE MASK, when valid */
	bool wero_supported;		/* Write Exclusive - Registrants Only usable */
	bool ptpl_capable;		/* Persist Through Power Loss capable */
	bool preempt_abort;		/* PREEMPT AND ABORT listed by REPORT SUPPORTED OPCODES */
};

/* Decode READ KEYS / READ RESERVATION parameter data into @st. 0 or -EPROTO. */
int lun_pr_parse_keys(const uint8_t *buf, size_t len, struct lun_pr_state *st);
int lun_pr_parse_reservation(const uint8_t *buf, size_t len, struct lun_pr_state *st);

/* Decode REPORT CAPABILITIES parameter data into @caps. 0 or -EPROTO. */
int lun_pr_parse_caps(const uint8_t *buf, size_t len, struct lun_pr_caps *caps);

/*
 * Whether REPORT SUPPORTED OPERATION CODES data (all commands, reporting
 * option 0) lists PERSISTENT RESERVE OUT with service action PREEMPT AND ABORT.
 * Unparsable data counts as not listed.
 */
bool lun_opcodes_list_preempt_abort(const uint8_t *buf, size_t len);

/* How many registrations carry @key. */
unsigned int lun_pr_count_key(const struct lun_pr_state *st, uint64_t key);

/*
 * "0x8c1f2a3b00000002 (node 2)", or "(not a key of this cluster)" when its
 * high half differs from @ours'. Returns @buf.
 */
char *lun_key_describe(char *buf, size_t len, uint64_t key, uint64_t ours);

/* --- the acquire decision (pure) ------------------------------------------- */

enum lun_acq_action {
	LUN_ACQ_DONE,		/* we hold a WERO reservation and only our key is registered */
	LUN_ACQ_RESERVE,	/* nobody else is here: RESERVE WERO */
	LUN_ACQ_PREEMPT,	/* PREEMPT @preempt_key (takeover only) */
	LUN_ACQ_REFUSE,		/* stop with @err and @reason */
};

struct lun_acq_step {
	enum lun_acq_action action;
	uint64_t preempt_key;	/* PREEMPT: the key; 0 = every other registrant of an
				   all-registrants reservation */
	bool abort;		/* PREEMPT: use PREEMPT AND ABORT */
	int err;		/* REFUSE: -EBUSY (another node is there), -EAGAIN (our key
				   vanished under us), -EPERM (a reservation of ours of
				   another type), -EPROTO (too many registrations to
				   verify that no other node is one) */
	char reason[512];	/* REFUSE: why, naming the keys; PREEMPT: what and why */
};

/*
 * One step towards "we own the LUN", from the state read after registering
 * @key on our nexus. lun_acquire runs it in a loop: read state, decide, act,
 * until DONE or REFUSE; the DONE test is the verification. Order: our key must
 * be registered; a foreign reservation holder is preempted first (so the
 * reservation moves to us), then every other foreign key; then RESERVE.
 */
void lun_acquire_decide(const struct lun_pr_state *st, uint64_t key, bool takeover,
			const struct lun_pr_caps *caps, struct lun_acq_step *step);

/* --- sessions ---------------------------------------------------------------- */

/*
 * Log sink for a session: @level is a syslog priority (LOG_DEBUG: every PR
 * step and retry; LOG_INFO; LOG_WARNING). Optional; without one, messages only
 * come back through @err. The plugin routes them to nbdkit_debug, hvnoded to
 * qb_log. @msg is valid only during the call.
 */
typedef void (*lun_log_fn)(void *opaque, int level, const char *msg);

/*
 * Connect and log in to @url as @initiator with the ISID of @purpose, and check
 * that the LUN answers (TEST UNIT READY). Header digest: CRC32C or none, as the
 * target prefers. @timeout_s (<= 0: 10) bounds each step and every later SCSI
 * command. NULL with errno (ECONNREFUSED, ETIMEDOUT, EACCES for a refused login,
 * ENXIO for no such LUN, EINVAL for a bad URL...) and @err on failure.
 */
lun_session_t *lun_open(const char *url, const char *initiator, const char *purpose,
			int timeout_s, char *err, size_t errlen);

/* Log out (bounded by the timeout) and free. NULL is fine. */
void lun_close(lun_session_t *s);

/* Route the session's log messages to @fn (NULL: none). */
void lun_set_log(lun_session_t *s, lun_log_fn fn, void *opaque);

/* The URL the session was opened with; valid until lun_close. */
const char *lun_session_url(const lun_session_t *s);

/*
 * Drop the TCP connection and log in again with the same ISID (tests use it to
 * show what a re-login keeps). A session registered by lun_register or
 * lun_acquire re-registers after a re-login only when its key still holds the
 * reservation or no one's does (see lun.c: never after being preempted).
 */
int lun_reconnect(lun_session_t *s, char *err, size_t errlen);

/* READ CAPACITY (16): size in bytes and logical block size. Either may be NULL. */
int lun_capacity(lun_session_t *s, uint64_t *bytes, uint32_t *block_size, char *err,
		 size_t errlen);

/* PERSISTENT RESERVE IN, READ KEYS then READ RESERVATION, into @st. */
int lun_read_pr(lun_session_t *s, struct lun_pr_state *st, char *err, size_t errlen);

/*
 * REPORT CAPABILITIES (falling back to probing READ KEYS) and REPORT SUPPORTED
 * OPERATION CODES for PREEMPT AND ABORT (unknown counts as unsupported).
 * -EOPNOTSUPP when the LUN has no persistent reservations or no WERO type.
 */
int lun_pr_capabilities(lun_session_t *s, struct lun_pr_caps *caps, char *err, size_t errlen);

/*
 * Make this node the owner with @key: REGISTER AND IGNORE EXISTING KEY on this
 * nexus, then lun_acquire_decide steps until we hold WERO and only @key is
 * registered. Idempotent. Another node's key present: -EBUSY naming it unless
 * @takeover, which PREEMPTs it (PREEMPT AND ABORT when the target lists it).
 */
int lun_acquire(lun_session_t *s, uint64_t key, bool takeover, char *err, size_t errlen);

/* REGISTER AND IGNORE EXISTING KEY with @key on this nexus only (the disk server). */
int lun_register(lun_session_t *s, uint64_t key, char *err, size_t errlen);

/* Unregister this nexus (REGISTER with service action key 0). Not registered: 0. */
int lun_unregister(lun_session_t *s, uint64_t key, char *err, size_t errlen);

/*
 * Give the LUN up: afterwards no registration of @key is left and no
 * reservation of it. Registrations of @key from other nexuses (a disk server
 * that did not unregister, or sessions a target keeps after their logout) are
 * removed by PREEMPTing our own key from this nexus first, then RELEASE and
 * unregister. Idempotent: @key not registered is 0.
 */
int lun_release(lun_session_t *s, uint64_t key, char *err, size_t errlen);

/*
 * READ (16) / WRITE (16) of @len bytes at byte @offset; both must be multiples
 * of the block size. @fua: force unit access. Large requests are split.
 */
int lun_read(lun_session_t *s, void *buf, size_t len, uint64_t offset, char *err,
	     size_t errlen);
int lun_write(lun_session_t *s, const void *buf, size_t len, uint64_t offset, bool fua,
	      char *err, size_t errlen);

/* SYNCHRONIZE CACHE (16), falling back to (10) when the target lacks 16. */
int lun_flush(lun_session_t *s, char *err, size_t errlen);

/* Logical block size learned at open (READ CAPACITY), and the size in bytes. */
uint32_t lun_block_size(const lun_session_t *s);
uint64_t lun_size(const lun_session_t *s);

#endif
