/*
 * Persistent reservations on a LUN session: read, acquire, register, release.
 *
 * The rules that keep two nodes from writing one LUN:
 *   - a node writes only through a nexus registered with its key, under a WERO
 *     reservation held by its key;
 *   - a PREEMPT of a key removes every registration of it: the old owner's
 *     disk servers lose write access at once (their writes meet RESERVATION
 *     CONFLICT, the plugin turns that into EIO, QEMU pauses the VM);
 *   - we never register a key that does not hold the reservation while another
 *     key does, and we re-check after registering: a preempted node cannot come
 *     back by re-registering.
 */
#include "lun_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#define ACQUIRE_MAX_STEPS 16

static const char *pr_out_name(int sa)
{
	switch (sa) {
	case SCSI_PERSISTENT_RESERVE_REGISTER:
		return "REGISTER";
	case SCSI_PERSISTENT_RESERVE_RESERVE:
		return "RESERVE";
	case SCSI_PERSISTENT_RESERVE_RELEASE:
		return "RELEASE";
	case SCSI_PERSISTENT_RESERVE_CLEAR:
		return "CLEAR";
	case SCSI_PERSISTENT_RESERVE_PREEMPT:
		return "PREEMPT";
	case SCSI_PERSISTENT_RESERVE_PREEMPT_AND_ABORT:
		return "PREEMPT AND ABORT";
	case SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY:
		return "REGISTER AND IGNORE EXISTING KEY";
	}
	return "PERSISTENT RESERVE OUT";
}

int lun_pr_out(struct lun_session *s, int sa, int type, uint64_t res_key, uint64_t sa_key,
	       const char *what, char *err, size_t errlen)
{
	struct lun_cmd c = {
		.op = CMD_PR_OUT, .sa = sa, .type = type, .res_key = res_key, .sa_key = sa_key
	};
	int rc;

	snprintf(c.what, sizeof(c.what), "%s", what);
	lun_log(s, LOG_DEBUG, "%s (reservation key 0x%016" PRIx64 ", service action key 0x%016" PRIx64
		", type %d)", pr_out_name(sa), res_key, sa_key, type);
	rc = lun_cmd_run(s, &c, err, errlen);
	lun_cmd_free(&c);
	return rc;
}

static int pr_in(struct lun_session *s, int sa, const char *what, struct lun_cmd *c, char *err,
		 size_t errlen)
{
	*c = (struct lun_cmd){ .op = CMD_PR_IN, .sa = sa, .alloc = 8 + 8 * LUN_PR_MAX_KEYS + 8 };
	snprintf(c->what, sizeof(c->what), "PERSISTENT RESERVE IN %s", what);
	return lun_cmd_run(s, c, err, errlen);
}

int lun_read_pr_locked(struct lun_session *s, struct lun_pr_state *st, char *err,
		       size_t errlen)
{
	struct lun_cmd c;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = pr_in(s, SCSI_PERSISTENT_RESERVE_READ_KEYS, "READ KEYS", &c, err, errlen);
	if (rc == -EOPNOTSUPP || rc == -EINVAL)
		return lun_fail(s, -EOPNOTSUPP, err, errlen,
				"persistent reservations are not supported (READ KEYS refused)");
	if (rc)
		return rc;
	rc = lun_pr_parse_keys(c.task->datain.data, (size_t)c.task->datain.size, st);
	lun_cmd_free(&c);
	if (rc)
		return lun_fail(s, rc, err, errlen, "READ KEYS: malformed answer");
	rc = pr_in(s, SCSI_PERSISTENT_RESERVE_READ_RESERVATION, "READ RESERVATION", &c, err,
		   errlen);
	if (rc)
		return rc;
	rc = lun_pr_parse_reservation(c.task->datain.data, (size_t)c.task->datain.size, st);
	lun_cmd_free(&c);
	if (rc)
		return lun_fail(s, rc, err, errlen, "READ RESERVATION: malformed answer");
	return 0;
}

int lun_read_pr(lun_session_t *s, struct lun_pr_state *st, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = lun_read_pr_locked(s, st, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* REPORT SUPPORTED OPERATION CODES lists PREEMPT AND ABORT? Unknown is no. */
static bool probe_preempt_abort(struct lun_session *s)
{
	struct lun_cmd c = { .op = CMD_OPCODES, .alloc = 8192,
			     .what = "REPORT SUPPORTED OPERATION CODES" };
	char why[512] = "malformed answer";
	bool yes;

	if (lun_cmd_run(s, &c, why, sizeof(why))) {
		lun_log(s, LOG_DEBUG, "PREEMPT AND ABORT support unknown (%s): using PREEMPT",
			why);
		return false;
	}
	yes = lun_opcodes_list_preempt_abort(c.task->datain.data, (size_t)c.task->datain.size);
	lun_cmd_free(&c);
	return yes;
}

static int capabilities(struct lun_session *s, struct lun_pr_caps *caps, char *err,
			size_t errlen)
{
	struct lun_pr_state st;
	struct lun_cmd c;
	char why[512] = "malformed answer";
	int rc;

	memset(caps, 0, sizeof(*caps));
	rc = pr_in(s, SCSI_PERSISTENT_RESERVE_REPORT_CAPABILITIES, "REPORT CAPABILITIES", &c, why,
		   sizeof(why));
	if (!rc) {
		rc = lun_pr_parse_caps(c.task->datain.data, (size_t)c.task->datain.size, caps);
		lun_cmd_free(&c);
	}
	if (rc) {
		/* some targets lack REPORT CAPABILITIES: READ KEYS working is enough */
		lun_log(s, LOG_DEBUG, "no usable REPORT CAPABILITIES (%s); probing READ KEYS", why);
		rc = lun_read_pr_locked(s, &st, err, errlen);
		if (rc)
			return rc;
		memset(caps, 0, sizeof(*caps));
		caps->pr_supported = true;
		caps->wero_supported = true;
	}
	if (!caps->wero_supported)
		return lun_fail(s, -EOPNOTSUPP, err, errlen,
				"the target does not support Write Exclusive - Registrants Only "
				"reservations (type mask 0x%04x)",
				caps->type_mask);
	caps->preempt_abort = probe_preempt_abort(s);
	return 0;
}

int lun_pr_capabilities(lun_session_t *s, struct lun_pr_caps *caps, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = capabilities(s, caps, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int do_register(struct lun_session *s, uint64_t key, char *err, size_t errlen)
{
	char what[96];

	snprintf(what, sizeof(what), "REGISTER AND IGNORE EXISTING KEY of key 0x%016" PRIx64,
		 key);
	return lun_pr_out(s, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, key,
			  what, err, errlen);
}

/* Unregister this nexus: REGISTER AND IGNORE with key 0 is a no-op when not registered. */
static int do_unregister(struct lun_session *s, uint64_t key, char *err, size_t errlen)
{
	char what[96];

	snprintf(what, sizeof(what), "unregistering key 0x%016" PRIx64, key);
	return lun_pr_out(s, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, 0,
			  what, err, errlen);
}

/* Reserved by a key other than @key (all-registrants types count as not ours). */
static bool reserved_by_other(const struct lun_pr_state *st, uint64_t key)
{
	return st->reserved && (st->holder != key || st->type == LUN_PR_TYPE_WEAR ||
				st->type == LUN_PR_TYPE_EAAR);
}

/*
 * Register @key on this nexus, but only to join an owner of that key (or a LUN
 * nobody reserved): a node whose key was preempted stays out. The check after
 * registering catches a PREEMPT that came between our read and our register.
 */
static int join(struct lun_session *s, uint64_t key, bool need_key, char *err, size_t errlen)
{
	struct lun_pr_state st;
	char kb[96], tb[32];
	int rc;

	rc = lun_read_pr_locked(s, &st, err, errlen);
	if (rc)
		return rc;
	if (reserved_by_other(&st, key))
		return lun_fail(s, -EBADE, err, errlen,
				"not registering key 0x%016" PRIx64 ": the LUN is reserved (%s) "
				"by %s",
				key, lun_pr_type_name(st.type, tb, sizeof(tb)),
				lun_key_describe(kb, sizeof(kb), st.holder, key));
	if (need_key && lun_pr_count_key(&st, key) == 0)
		return lun_fail(s, -EBADE, err, errlen,
				"not registering key 0x%016" PRIx64 " again: it is no longer "
				"registered (preempted)",
				key);
	rc = do_register(s, key, err, errlen);
	if (rc)
		return rc;
	rc = lun_read_pr_locked(s, &st, err, errlen);
	if (rc)
		return rc;
	if (reserved_by_other(&st, key) || lun_pr_count_key(&st, key) == 0) {
		char ignored[256];

		do_unregister(s, key, ignored, sizeof(ignored));
		return lun_fail(s, -EBADE, err, errlen,
				"key 0x%016" PRIx64 " was preempted while registering; "
				"unregistered again",
				key);
	}
	return 0;
}

int lun_reestablish_registration(struct lun_session *s, char *err, size_t errlen)
{
	uint64_t key = s->reg_key;
	int rc;

	/* a target that keys the nexus on (initiator, ISID) kept it: this is a no-op there */
	rc = join(s, key, true, err, errlen);
	if (rc == -EBADE) {
		lun_log(s, LOG_WARNING, "after re-login: %s", err);
		s->reg_key = 0;
		/* the session is up; its writes will meet RESERVATION CONFLICT */
		return 0;
	}
	if (!rc)
		lun_log(s, LOG_INFO, "after re-login: key 0x%016" PRIx64 " registered again", key);
	return rc;
}

int lun_register(lun_session_t *s, uint64_t key, char *err, size_t errlen)
{
	int rc;

	if (key == 0)
		return lun_fail(s, -EINVAL, err, errlen, "reservation key 0 is not a key");
	pthread_mutex_lock(&s->lock);
	rc = join(s, key, false, err, errlen);
	if (!rc) {
		s->reg_key = key;
		lun_log(s, LOG_DEBUG, "registered key 0x%016" PRIx64 " (purpose %s)", key,
			s->purpose);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int lun_unregister(lun_session_t *s, uint64_t key, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = do_unregister(s, key, err, errlen);
	if (!rc) {
		s->reg_key = 0;
		lun_log(s, LOG_DEBUG, "unregistered this nexus (purpose %s)", s->purpose);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* One step of lun_acquire. 0: go on; 1: done; -errno: stop. */
static int acquire_step(struct lun_session *s, uint64_t key, bool takeover,
			struct lun_pr_caps *caps, char *err, size_t errlen)
{
	struct lun_acq_step step;
	struct lun_pr_state st;
	char what[96], kb[96];
	int rc, sa;

	rc = lun_read_pr_locked(s, &st, err, errlen);
	if (rc)
		return rc;
	lun_acquire_decide(&st, key, takeover, caps, &step);
	switch (step.action) {
	case LUN_ACQ_DONE:
		lun_log(s, LOG_DEBUG, "acquire: %s", step.reason);
		return 1;
	case LUN_ACQ_REFUSE:
		return lun_fail(s, step.err, err, errlen, "acquire with key %s refused: %s",
				lun_key_describe(kb, sizeof(kb), key, key), step.reason);
	case LUN_ACQ_RESERVE:
		lun_log(s, LOG_DEBUG, "acquire: %s", step.reason);
		snprintf(what, sizeof(what), "RESERVE of key 0x%016" PRIx64, key);
		rc = lun_pr_out(s, SCSI_PERSISTENT_RESERVE_RESERVE, LUN_PR_TYPE_WERO, key, 0, what,
				err, errlen);
		/* someone reserved between our read and our RESERVE: read again */
		return rc == -EBADE ? 0 : rc;
	case LUN_ACQ_PREEMPT:
		lun_log(s, LOG_INFO, "acquire: %s", step.reason);
		sa = step.abort ? SCSI_PERSISTENT_RESERVE_PREEMPT_AND_ABORT
				: SCSI_PERSISTENT_RESERVE_PREEMPT;
		snprintf(what, sizeof(what), "%s of key 0x%016" PRIx64, pr_out_name(sa),
			 step.preempt_key);
		rc = lun_pr_out(s, sa, LUN_PR_TYPE_WERO, key, step.preempt_key, what, err, errlen);
		if (rc && step.abort && (rc == -EOPNOTSUPP || rc == -EINVAL)) {
			lun_log(s, LOG_INFO, "PREEMPT AND ABORT refused: using PREEMPT");
			caps->preempt_abort = false;
			return 0;
		}
		/* the key went away meanwhile (RESERVATION CONFLICT): read again */
		return rc == -EBADE ? 0 : rc;
	}
	return lun_fail(s, -EINVAL, err, errlen, "acquire: bad decision");
}

static int acquire(struct lun_session *s, uint64_t key, bool takeover, char *err,
		   size_t errlen)
{
	struct lun_pr_caps caps;
	struct lun_acq_step step;
	struct lun_pr_state st;
	char kb[96], ignored[256];
	int rc;

	rc = capabilities(s, &caps, err, errlen);
	if (rc)
		return rc;
	/* refuse before registering: our registration alone would let us write */
	rc = lun_read_pr_locked(s, &st, err, errlen);
	if (rc)
		return rc;
	if (st.nkeys < LUN_PR_MAX_KEYS && lun_pr_count_key(&st, key) == 0)
		st.keys[st.nkeys++] = key;
	lun_acquire_decide(&st, key, takeover, &caps, &step);
	if (step.action == LUN_ACQ_REFUSE)
		return lun_fail(s, step.err, err, errlen, "acquire with key %s refused: %s",
				lun_key_describe(kb, sizeof(kb), key, key), step.reason);

	rc = do_register(s, key, err, errlen);
	if (rc)
		return rc;
	for (int i = 0; i < ACQUIRE_MAX_STEPS; i++) {
		rc = acquire_step(s, key, takeover, &caps, err, errlen);
		if (rc == 1) {
			s->reg_key = key;
			lun_log(s, LOG_INFO, "acquired with key 0x%016" PRIx64, key);
			return 0;
		}
		if (rc < 0)
			goto err_unregister;
	}
	rc = lun_fail(s, -EAGAIN, err, errlen,
		      "acquire with key 0x%016" PRIx64 ": the reservation did not settle after "
		      "%d steps (another node acquiring at the same time?)",
		      key, ACQUIRE_MAX_STEPS);
err_unregister:
	/* never stay registered on a LUN we do not own */
	if (do_unregister(s, key, ignored, sizeof(ignored)))
		lun_log(s, LOG_WARNING, "after a failed acquire: %s", ignored);
	return rc;
}

int lun_acquire(lun_session_t *s, uint64_t key, bool takeover, char *err, size_t errlen)
{
	int rc;

	if (key == 0)
		return lun_fail(s, -EINVAL, err, errlen, "reservation key 0 is not a key");
	pthread_mutex_lock(&s->lock);
	rc = acquire(s, key, takeover, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int release(struct lun_session *s, uint64_t key, char *err, size_t errlen)
{
	struct lun_pr_state st;
	char what[96], tb[32];
	int rc;

	rc = lun_read_pr_locked(s, &st, err, errlen);
	if (rc)
		return rc;
	if (lun_pr_count_key(&st, key) == 0) {
		lun_log(s, LOG_DEBUG, "release: key 0x%016" PRIx64 " not registered: nothing to do",
			key);
		s->reg_key = 0;
		return 0;
	}
	/* act from this nexus: registered, it may PREEMPT, RELEASE and unregister */
	rc = do_register(s, key, err, errlen);
	if (rc)
		return rc;
	rc = lun_read_pr_locked(s, &st, err, errlen);
	if (rc)
		return rc;
	if (lun_pr_count_key(&st, key) > 1 || (st.reserved && st.holder == key)) {
		/*
		 * Other nexuses hold our key (a disk server that did not unregister,
		 * registrations a target keeps after logout) or one of them may hold
		 * the reservation: preempting our own key removes every other
		 * registration of it and moves a reservation of it to this nexus.
		 */
		snprintf(what, sizeof(what), "PREEMPT of our own key 0x%016" PRIx64, key);
		lun_log(s, LOG_DEBUG, "release: %u registrations of our key: preempting it from "
				      "this nexus",
			lun_pr_count_key(&st, key));
		rc = lun_pr_out(s, SCSI_PERSISTENT_RESERVE_PREEMPT, LUN_PR_TYPE_WERO, key, key, what,
				err, errlen);
		if (rc)
			return rc;
		rc = lun_read_pr_locked(s, &st, err, errlen);
		if (rc)
			return rc;
	}
	if (st.reserved && st.holder == key) {
		snprintf(what, sizeof(what), "RELEASE of key 0x%016" PRIx64, key);
		lun_log(s, LOG_DEBUG, "release: releasing the %s reservation",
			lun_pr_type_name(st.type, tb, sizeof(tb)));
		rc = lun_pr_out(s, SCSI_PERSISTENT_RESERVE_RELEASE, st.type, key, 0, what, err,
				errlen);
		if (rc)
			return rc;
	}
	rc = do_unregister(s, key, err, errlen);
	if (rc)
		return rc;
	s->reg_key = 0;
	rc = lun_read_pr_locked(s, &st, err, errlen);
	if (rc)
		return rc;
	if (lun_pr_count_key(&st, key) || (st.reserved && st.holder == key))
		return lun_fail(s, -EIO, err, errlen,
				"release: key 0x%016" PRIx64 " still registered %u time(s)%s after "
				"unregistering",
				key, lun_pr_count_key(&st, key),
				st.reserved && st.holder == key ? " and holding the reservation"
								: "");
	lun_log(s, LOG_INFO, "released key 0x%016" PRIx64, key);
	return 0;
}

int lun_release(lun_session_t *s, uint64_t key, char *err, size_t errlen)
{
	int rc;

	if (key == 0)
		return lun_fail(s, -EINVAL, err, errlen, "reservation key 0 is not a key");
	pthread_mutex_lock(&s->lock);
	rc = release(s, key, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
