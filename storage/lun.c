/*
 * LUN sessions: login with a stable ISID, SCSI commands with a deadline and
 * UNIT ATTENTION retries, re-login after a lost connection, and block I/O.
 *
 * libiscsi's own sync calls are not used: their event loop ignores timeouts in
 * some versions and crashes on a timed-out task in others, and its automatic
 * reconnect may log in again with a new ISID (a new I_T nexus, without our
 * registration). So: the async task API, our own poll loop with a deadline,
 * autoreconnect off, and our own re-login with the same ISID.
 */
#include "lun_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

void lun_log(struct lun_session *s, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (!s->log)
		return;
	n = snprintf(msg, sizeof(msg), "lun %s: ", s->url_str);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	s->log(s->log_opaque, level, msg);
}

int lun_fail(struct lun_session *s, int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errlen)
		return rc;
	n = snprintf(err, errlen, "lun %s: ", s->url_str);
	if (n < 0 || (size_t)n >= errlen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_cb(struct iscsi_context *iscsi, int status, void *command_data, void *pd)
{
	struct lun_wait *w = pd;

	/* command_data may be NULL (cancelled, timed out): only the status counts */
	w->status = status;
	w->done = true;
}

/*
 * A write to a socket the target closed raises SIGPIPE, which would kill a
 * process that did not ignore it. Block it in this thread while libiscsi
 * writes, and swallow one that we caused.
 */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_unblock(struct sigpipe_guard *g)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/*
 * Service the context until s->wait.done or @deadline. 0, -ETIMEDOUT, or
 * -ECONNRESET when libiscsi reports the connection broken.
 */
static int wait_done(struct lun_session *s, int64_t deadline)
{
	struct sigpipe_guard g;
	int rc = 0;

	sigpipe_block(&g);
	while (!s->wait.done) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd;
		int n;

		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		pfd.fd = iscsi_get_fd(s->iscsi);
		pfd.events = (short)iscsi_which_events(s->iscsi);
		pfd.revents = 0;
		if (pfd.fd < 0 || pfd.events == 0) {
			/* libiscsi asks to wait (reconnect backoff); it cannot with autoreconnect off */
			rc = -ECONNRESET;
			break;
		}
		n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (iscsi_service(s->iscsi, n > 0 ? pfd.revents : 0) < 0) {
			if (!s->wait.done)
				rc = -ECONNRESET;
			break;
		}
	}
	sigpipe_unblock(&g);
	return rc;
}

static void drop_connection(struct lun_session *s)
{
	if (!s->iscsi)
		return;
	iscsi_destroy_context(s->iscsi);
	s->iscsi = NULL;
}

/* Connect and log in; s->iscsi set on success. */
static int login(struct lun_session *s, char *err, size_t errlen)
{
	struct iscsi_context *iscsi;
	int64_t deadline = now_ms() + (int64_t)s->timeout_s * 1000;
	int rc;

	iscsi = iscsi_create_context(s->initiator);
	if (!iscsi)
		return lun_fail(s, -ENOMEM, err, errlen, "cannot create an iSCSI context");
	if (iscsi_set_targetname(iscsi, s->url.target) ||
	    iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL) ||
	    iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C) ||
	    iscsi_set_isid_random(iscsi, (uint32_t)(s->isid >> 16) & 0xffffff,
				  (uint32_t)s->isid & 0xffff)) {
		rc = lun_fail(s, -EINVAL, err, errlen, "cannot set up the iSCSI context: %s",
			      iscsi_get_error(iscsi));
		iscsi_destroy_context(iscsi);
		return rc;
	}
	iscsi_set_noautoreconnect(iscsi, 1);
	iscsi_set_tcp_user_timeout(iscsi, s->timeout_s * 1000);
	s->iscsi = iscsi;

	memset(&s->wait, 0, sizeof(s->wait));
	if (iscsi_connect_async(iscsi, s->url.portal, wait_cb, &s->wait) != 0) {
		rc = lun_fail(s, -ECONNREFUSED, err, errlen, "cannot connect to %s: %s",
			      s->url.portal, iscsi_get_error(iscsi));
		goto err_drop;
	}
	rc = wait_done(s, deadline);
	if (rc == -ETIMEDOUT) {
		lun_fail(s, rc, err, errlen, "connect to %s: no answer within %d s", s->url.portal,
			 s->timeout_s);
		goto err_drop;
	}
	if (rc || s->wait.status != SCSI_STATUS_GOOD) {
		const char *why = iscsi_get_error(iscsi);

		rc = strstr(why, "refused") ? -ECONNREFUSED : -EHOSTUNREACH;
		lun_fail(s, rc, err, errlen, "cannot connect to %s: %s", s->url.portal, why);
		goto err_drop;
	}

	memset(&s->wait, 0, sizeof(s->wait));
	if (iscsi_login_async(iscsi, wait_cb, &s->wait) != 0) {
		rc = lun_fail(s, -EIO, err, errlen, "cannot start the login: %s",
			      iscsi_get_error(iscsi));
		goto err_drop;
	}
	rc = wait_done(s, deadline);
	if (rc == -ETIMEDOUT) {
		lun_fail(s, rc, err, errlen, "login to %s: no answer within %d s", s->url.target,
			 s->timeout_s);
		goto err_drop;
	}
	if (rc || s->wait.status != SCSI_STATUS_GOOD || !iscsi_is_logged_in(iscsi)) {
		rc = lun_fail(s, -EACCES, err, errlen, "login to %s as %s failed: %s",
			      s->url.target, s->initiator, iscsi_get_error(iscsi));
		goto err_drop;
	}
	lun_log(s, LOG_DEBUG, "logged in as %s, ISID 0x%012" PRIx64 " (purpose %s)",
		s->initiator, s->isid, s->purpose);
	return 0;

err_drop:
	drop_connection(s);
	return rc;
}

static struct scsi_task *send_task(struct lun_session *s, struct lun_cmd *c)
{
	struct iscsi_context *i = s->iscsi;
	struct scsi_persistent_reserve_out_basic p;
	uint32_t bs = s->block_size ? s->block_size : 512;

	switch (c->op) {
	case CMD_TUR:
		return iscsi_testunitready_task(i, s->lun_wire, wait_cb, &s->wait);
	case CMD_READCAP16:
		return iscsi_readcapacity16_task(i, s->lun_wire, wait_cb, &s->wait);
	case CMD_PR_IN:
		return iscsi_persistent_reserve_in_task(i, s->lun_wire, c->sa, c->alloc, wait_cb,
							&s->wait);
	case CMD_PR_OUT:
		memset(&p, 0, sizeof(p));
		p.reservation_key = c->res_key;
		p.service_action_reservation_key = c->sa_key;
		return iscsi_persistent_reserve_out_task(i, s->lun_wire, c->sa,
							 SCSI_PERSISTENT_RESERVE_SCOPE_LU, c->type,
							 &p, wait_cb, &s->wait);
	case CMD_READ16:
		return iscsi_read16_iov_task(i, s->lun_wire, c->lba, (uint32_t)c->iov.iov_len,
					     (int)bs, 0, 0, 0, 0, 0, wait_cb, &s->wait, &c->iov, 1);
	case CMD_WRITE16:
		return iscsi_write16_iov_task(i, s->lun_wire, c->lba, NULL,
					      (uint32_t)c->iov.iov_len, (int)bs, 0, 0, c->fua, 0,
					      0, wait_cb, &s->wait, &c->iov, 1);
	case CMD_SYNC16:
		return iscsi_synchronizecache16_task(i, s->lun_wire, 0, 0, 0, 0, wait_cb,
						     &s->wait);
	case CMD_SYNC10:
		return iscsi_synchronizecache10_task(i, s->lun_wire, 0, 0, 0, 0, wait_cb,
						     &s->wait);
	case CMD_OPCODES:
		return iscsi_report_supported_opcodes_task(i, s->lun_wire, 0,
							   SCSI_REPORT_SUPPORTING_OPS_ALL, 0, 0,
							   c->alloc, wait_cb, &s->wait);
	}
	return NULL;
}

void lun_cmd_free(struct lun_cmd *c)
{
	if (c->task)
		scsi_free_scsi_task(c->task);
	c->task = NULL;
}

/*
 * Send @c once and wait. 0 (c->status set), -ETIMEDOUT or -ECONNRESET; on
 * those the connection is dropped: a timed-out session is in an unknown state.
 */
static int cmd_once(struct lun_session *s, struct lun_cmd *c, char *why, size_t whylen)
{
	int64_t deadline = now_ms() + (int64_t)s->timeout_s * 1000;
	struct scsi_task *task;
	int rc;

	lun_cmd_free(c);
	memset(&s->wait, 0, sizeof(s->wait));
	task = send_task(s, c);
	if (!task) {
		snprintf(why, whylen, "cannot send: %s", iscsi_get_error(s->iscsi));
		if (iscsi_is_logged_in(s->iscsi))
			return -EIO;
		drop_connection(s);
		return -ECONNRESET;
	}
	rc = wait_done(s, deadline);
	if (!rc && (s->wait.status == SCSI_STATUS_CANCELLED ||
		    (s->wait.status == SCSI_STATUS_ERROR && !iscsi_is_logged_in(s->iscsi))))
		rc = -ECONNRESET;
	if (!rc && s->wait.status == SCSI_STATUS_TIMEOUT)
		rc = -ETIMEDOUT;
	if (rc) {
		if (rc == -ETIMEDOUT)
			snprintf(why, whylen, "no answer within %d s", s->timeout_s);
		else
			snprintf(why, whylen, "connection lost: %s", iscsi_get_error(s->iscsi));
		/* tear down first: libiscsi may still call back about the task */
		drop_connection(s);
		scsi_free_scsi_task(task);
		return rc;
	}
	c->status = s->wait.status;
	c->sense_key = task->sense.key;
	c->asc = (task->sense.ascq >> 8) & 0xff;
	c->ascq = task->sense.ascq & 0xff;
	c->task = task;
	return 0;
}

/* Re-login after a lost connection, with the same ISID, and restore our registration. */
static int relogin(struct lun_session *s, char *err, size_t errlen)
{
	int rc;

	drop_connection(s);
	rc = login(s, err, errlen);
	if (rc)
		return rc;
	if (s->reg_key && !s->reestablishing) {
		s->reestablishing = true;
		rc = lun_reestablish_registration(s, err, errlen);
		s->reestablishing = false;
	}
	return rc;
}

static bool is_unit_attention(const struct lun_cmd *c)
{
	return c->status == SCSI_STATUS_CHECK_CONDITION && c->sense_key == SCSI_SENSE_UNIT_ATTENTION;
}

static int cmd_failed(struct lun_session *s, struct lun_cmd *c, char *err, size_t errlen)
{
	char sb[160], st[32];
	int rc;

	switch (c->status) {
	case SCSI_STATUS_RESERVATION_CONFLICT:
		rc = -EBADE;
		break;
	case SCSI_STATUS_CHECK_CONDITION:
		rc = scsi_sense_errno(c->sense_key, c->asc, c->ascq);
		lun_fail(s, rc, err, errlen, "%s failed: CHECK CONDITION %s", c->what,
			 scsi_sense_describe(sb, sizeof(sb), c->sense_key, c->asc, c->ascq));
		lun_cmd_free(c);
		return rc;
	case SCSI_STATUS_BUSY:
	case SCSI_STATUS_TASK_SET_FULL:
		rc = -EBUSY;
		break;
	case SCSI_STATUS_ERROR:
		rc = lun_fail(s, -EIO, err, errlen, "%s failed: %s", c->what,
			      iscsi_get_error(s->iscsi));
		lun_cmd_free(c);
		return rc;
	default:
		rc = -EIO;
		break;
	}
	lun_fail(s, rc, err, errlen, "%s failed: %s", c->what,
		 scsi_status_name(c->status, st, sizeof(st)));
	lun_cmd_free(c);
	return rc;
}

int lun_cmd_run(struct lun_session *s, struct lun_cmd *c, char *err, size_t errlen)
{
	char why[512], sb[160];
	int ua = 0, busy = 0, relogins = 0, rc;

	for (;;) {
		if (!s->iscsi) {
			if (relogins++ > 0 || s->reestablishing)
				return lun_fail(s, -ECONNRESET, err, errlen,
						"%s failed: not connected", c->what);
			rc = relogin(s, err, errlen);
			if (rc)
				return rc;
		}
		rc = cmd_once(s, c, why, sizeof(why));
		if (rc == -ECONNRESET && relogins == 0 && !s->reestablishing) {
			lun_log(s, LOG_WARNING, "%s: %s; logging in again", c->what, why);
			continue;
		}
		if (rc)
			return lun_fail(s, rc, err, errlen, "%s failed: %s", c->what, why);
		if (c->status == SCSI_STATUS_GOOD || c->status == SCSI_STATUS_CONDITION_MET)
			return 0;
		if (is_unit_attention(c) && ua++ < LUN_UA_RETRIES) {
			/* a command that meets a UA was not executed: resend as is */
			lun_log(s, LOG_DEBUG, "%s: UNIT ATTENTION %s, retrying", c->what,
				scsi_sense_describe(sb, sizeof(sb), c->sense_key, c->asc,
						    c->ascq));
			continue;
		}
		if ((c->status == SCSI_STATUS_BUSY || c->status == SCSI_STATUS_TASK_SET_FULL) &&
		    busy++ < LUN_BUSY_RETRIES) {
			lun_log(s, LOG_DEBUG, "%s: target busy, retrying", c->what);
			usleep(100 * 1000 * (unsigned)busy);
			continue;
		}
		return cmd_failed(s, c, err, errlen);
	}
}

static int read_capacity(struct lun_session *s, char *err, size_t errlen)
{
	struct lun_cmd c = { .op = CMD_READCAP16, .what = "READ CAPACITY (16)" };
	const uint8_t *d;
	int rc;

	rc = lun_cmd_run(s, &c, err, errlen);
	if (rc)
		return rc;
	d = c.task->datain.data;
	if (c.task->datain.size < 12) {
		lun_cmd_free(&c);
		return lun_fail(s, -EPROTO, err, errlen, "READ CAPACITY (16): short answer");
	}
	s->nblocks = ((uint64_t)scsi_get_uint32(d) << 32 | scsi_get_uint32(d + 4)) + 1;
	s->block_size = scsi_get_uint32(d + 8);
	lun_cmd_free(&c);
	if (s->block_size < 512 || s->block_size > 65536 ||
	    (s->block_size & (s->block_size - 1)))
		return lun_fail(s, -EPROTO, err, errlen, "unusable logical block size %" PRIu32,
				s->block_size);
	return 0;
}

lun_session_t *lun_open(const char *url, const char *initiator, const char *purpose,
			int timeout_s, char *err, size_t errlen)
{
	struct lun_cmd tur = { .op = CMD_TUR, .what = "TEST UNIT READY" };
	struct lun_session *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "lun %s: out of memory", url ? url : "(null)");
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	rc = lun_url_parse(url, &s->url, err, errlen);
	if (rc)
		goto err_free;
	rc = -ENOMEM;
	s->url_str = strdup(url);
	s->initiator = strdup(initiator ? initiator : "");
	s->purpose = strdup(purpose ? purpose : "");
	if (!s->url_str || !s->initiator || !s->purpose) {
		snprintf(err, errlen, "lun %s: out of memory", url);
		goto err_free;
	}
	if (!initiator || strncmp(initiator, "iqn.", 4) != 0 || !purpose || !*purpose) {
		rc = lun_fail(s, -EINVAL, err, errlen,
			      "an initiator name (iqn....) and a purpose are needed");
		goto err_free;
	}
	s->isid = storage_isid(initiator, purpose);
	s->timeout_s = timeout_s > 0 ? timeout_s : LUN_TIMEOUT_DEFAULT;
	/* libiscsi puts the 16-bit value as is: flat space addressing above 255 */
	s->lun_wire = s->url.lun < 256 ? s->url.lun : 0x4000 | s->url.lun;

	rc = login(s, err, errlen);
	if (rc)
		goto err_free;
	/* the first command after login meets the power-on UA; lun_cmd_run eats it */
	rc = lun_cmd_run(s, &tur, err, errlen);
	lun_cmd_free(&tur);
	if (rc == -ENXIO) {
		lun_fail(s, rc, err, errlen, "no LUN %u on target %s", (unsigned)s->url.lun,
			 s->url.target);
		goto err_drop;
	}
	if (rc)
		goto err_drop;
	rc = read_capacity(s, err, errlen);
	if (rc)
		goto err_drop;
	return s;

err_drop:
	drop_connection(s);
err_free:
	free(s->url_str);
	free(s->initiator);
	free(s->purpose);
	pthread_mutex_destroy(&s->lock);
	free(s);
	errno = -rc;
	return NULL;
}

void lun_close(lun_session_t *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->iscsi && iscsi_is_logged_in(s->iscsi)) {
		memset(&s->wait, 0, sizeof(s->wait));
		if (iscsi_logout_async(s->iscsi, wait_cb, &s->wait) == 0 &&
		    wait_done(s, now_ms() + (int64_t)s->timeout_s * 1000) == 0)
			lun_log(s, LOG_DEBUG, "logged out");
	}
	drop_connection(s);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	free(s->url_str);
	free(s->initiator);
	free(s->purpose);
	free(s);
}

void lun_set_log(lun_session_t *s, lun_log_fn fn, void *opaque)
{
	pthread_mutex_lock(&s->lock);
	s->log = fn;
	s->log_opaque = opaque;
	pthread_mutex_unlock(&s->lock);
}

const char *lun_session_url(const lun_session_t *s)
{
	return s->url_str;
}

uint32_t lun_block_size(const lun_session_t *s)
{
	return s->block_size;
}

uint64_t lun_size(const lun_session_t *s)
{
	return s->nblocks * s->block_size;
}

int lun_reconnect(lun_session_t *s, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	lun_log(s, LOG_INFO, "logging in again (same ISID)");
	rc = relogin(s, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int lun_capacity(lun_session_t *s, uint64_t *bytes, uint32_t *block_size, char *err,
		 size_t errlen)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = read_capacity(s, err, errlen);
	if (!rc && bytes)
		*bytes = s->nblocks * s->block_size;
	if (!rc && block_size)
		*block_size = s->block_size;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int check_range(struct lun_session *s, size_t len, uint64_t offset, char *err,
		       size_t errlen)
{
	uint64_t size = s->nblocks * s->block_size;

	if (offset % s->block_size || len % s->block_size)
		return lun_fail(s, -EINVAL, err, errlen,
				"I/O of %zu bytes at %" PRIu64 " is not aligned to the block "
				"size %" PRIu32,
				len, offset, s->block_size);
	if (offset > size || len > size - offset)
		return lun_fail(s, -ERANGE, err, errlen,
				"I/O of %zu bytes at %" PRIu64 " is beyond the end (%" PRIu64
				" bytes)",
				len, offset, size);
	return 0;
}

/* READ or WRITE (16) in chunks of LUN_MAX_XFER. */
static int rw(struct lun_session *s, enum lun_cmd_op op, void *buf, size_t len,
	      uint64_t offset, bool fua, char *err, size_t errlen)
{
	size_t done = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = check_range(s, len, offset, err, errlen);
	while (!rc && done < len) {
		size_t n = len - done > LUN_MAX_XFER ? LUN_MAX_XFER : len - done;
		struct lun_cmd c = { .op = op, .fua = fua };

		c.lba = (offset + done) / s->block_size;
		c.iov.iov_base = (char *)buf + done;
		c.iov.iov_len = n;
		snprintf(c.what, sizeof(c.what), "%s of %zu bytes at LBA %" PRIu64,
			 op == CMD_READ16 ? "READ (16)" : "WRITE (16)", n, c.lba);
		rc = lun_cmd_run(s, &c, err, errlen);
		if (!rc && c.task->residual_status != SCSI_RESIDUAL_NO_RESIDUAL && c.task->residual)
			rc = lun_fail(s, -EIO, err, errlen, "%s: %zu bytes not transferred",
				      c.what, c.task->residual);
		lun_cmd_free(&c);
		done += n;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int lun_read(lun_session_t *s, void *buf, size_t len, uint64_t offset, char *err,
	     size_t errlen)
{
	return rw(s, CMD_READ16, buf, len, offset, false, err, errlen);
}

int lun_write(lun_session_t *s, const void *buf, size_t len, uint64_t offset, bool fua,
	      char *err, size_t errlen)
{
	/* libiscsi only reads from the iovec of a write */
	return rw(s, CMD_WRITE16, (void *)buf, len, offset, fua, err, errlen);
}

int lun_flush(lun_session_t *s, char *err, size_t errlen)
{
	struct lun_cmd c = { .op = CMD_SYNC16, .what = "SYNCHRONIZE CACHE (16)" };
	int rc;

	pthread_mutex_lock(&s->lock);
	if (!s->no_sync16) {
		rc = lun_cmd_run(s, &c, err, errlen);
		lun_cmd_free(&c);
		if (rc != -EOPNOTSUPP)
			goto out;
		s->no_sync16 = true;
		lun_log(s, LOG_DEBUG, "no SYNCHRONIZE CACHE (16): using (10)");
	}
	c = (struct lun_cmd){ .op = CMD_SYNC10, .what = "SYNCHRONIZE CACHE (10)" };
	rc = lun_cmd_run(s, &c, err, errlen);
	lun_cmd_free(&c);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}
