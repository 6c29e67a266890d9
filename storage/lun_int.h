/*
 * Inside a LUN session: shared by lun.c (connection, commands, I/O) and
 * lun_pr.c (persistent reservations). Not for other modules.
 */
#ifndef HV_STORAGE_LUN_INT_H
#define HV_STORAGE_LUN_INT_H

#include "storage.h"

#include <pthread.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define LUN_TIMEOUT_DEFAULT 10	/* s, per step and per SCSI command */
#define LUN_UA_RETRIES 8	/* a PR change can queue several UAs per nexus */
#define LUN_BUSY_RETRIES 5
#define LUN_MAX_XFER (1u << 20) /* bytes per READ/WRITE command */

/* The completion of the one command in flight; lives in the session, not on a stack. */
struct lun_wait {
	bool done;
	int status;
};

struct lun_session {
	pthread_mutex_t lock;
	struct iscsi_context *iscsi;	/* NULL while disconnected */
	struct lun_url url;
	char *url_str;
	char *initiator;
	char *purpose;
	uint64_t isid;
	int timeout_s;
	int lun_wire;			/* the LUN as libiscsi puts it in the PDU */
	uint32_t block_size;
	uint64_t nblocks;
	uint64_t reg_key;		/* registered by lun_register/lun_acquire: kept over re-logins */
	bool no_sync16;			/* SYNCHRONIZE CACHE (16) unsupported: use (10) */
	bool reestablishing;		/* no reconnect while restoring the registration */
	struct lun_wait wait;
	lun_log_fn log;
	void *log_opaque;
};

enum lun_cmd_op {
	CMD_TUR,
	CMD_READCAP16,
	CMD_PR_IN,
	CMD_PR_OUT,
	CMD_READ16,
	CMD_WRITE16,
	CMD_SYNC16,
	CMD_SYNC10,
	CMD_OPCODES,
};

/* One SCSI command: what to send, and what came back. */
struct lun_cmd {
	enum lun_cmd_op op;
	char what[96];			/* "PREEMPT of key 0x...", for messages */
	int sa;				/* PR IN/OUT service action */
	int type;			/* PR OUT type */
	uint16_t alloc;			/* PR IN / opcodes allocation length */
	uint64_t res_key, sa_key;	/* PR OUT parameters */
	uint64_t lba;
	struct scsi_iovec iov;		/* READ/WRITE data */
	bool fua;
	/* results */
	struct scsi_task *task;		/* GOOD: the task (datain); freed by lun_cmd_free */
	int status;			/* SCSI status of the last try */
	int sense_key, asc, ascq;
};

__attribute__((format(printf, 3, 4))) void lun_log(struct lun_session *s, int level,
						   const char *fmt, ...);

/* "lun URL: " + fmt into @err; returns @rc. */
__attribute__((format(printf, 5, 6))) int lun_fail(struct lun_session *s, int rc, char *err,
						   size_t errlen, const char *fmt, ...);

/*
 * Run @c to completion: UNIT ATTENTION and BUSY retried, one re-login after a
 * lost connection. 0 with c->task set (free it with lun_cmd_free), or -errno
 * with @err written. Called with s->lock held.
 */
int lun_cmd_run(struct lun_session *s, struct lun_cmd *c, char *err, size_t errlen);
void lun_cmd_free(struct lun_cmd *c);

/* PERSISTENT RESERVE OUT / IN helpers, s->lock held (lun_pr.c). */
int lun_pr_out(struct lun_session *s, int sa, int type, uint64_t res_key, uint64_t sa_key,
	       const char *what, char *err, size_t errlen);
int lun_read_pr_locked(struct lun_session *s, struct lun_pr_state *st, char *err,
		       size_t errlen);

/*
 * After a re-login: register s->reg_key again if, and only if, it still holds
 * the reservation or no one's does (lun_pr.c). Never after being preempted.
 */
int lun_reestablish_registration(struct lun_session *s, char *err, size_t errlen);

#endif
