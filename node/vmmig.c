/*
 * Migrations on this node; see vmmig.h.
 *
 * Source: once the state says "running" for a VM that runs here, a sender
 * (migrate/send.c) connects to the target's server and says hello; when the
 * target accepted, QEMU gets one end of a socketpair (getfd) and migrates
 * into it ("fd:"), the sender reads the other end. The sender finishes ok
 * only after the target's QEMU loaded the whole stream: then the handoff
 * (QEMU killed, disk servers stopped, LUNs released) and mig.handoff to the
 * cluster. Any failure before: the stream is cut, QEMU's migration
 * cancelled, the VM resumed if it was paused, and mig.end says why.
 *
 * Target: the server hands us each hello; we check it against the cluster
 * state (this migration, to this node, from that node's key), start QEMU
 * -incoming with lazy disk servers and accept. When the stream ended we
 * wait until QEMU loaded it and tell the source. The VM resumes here only
 * when the state assigns it here (vmrun_incoming_finish()).
 */
#include "hvnoded.h"
#include "vmmig.h"
#include "vmrun.h"
#include "vmsave.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "../cluster/membership.h"
#include "../hypervisor/hypervisor.h"
#include "../migrate/migrate.h"
#include "../storage/storage.h"

#define POLL_MS 200		/* query-migrate on the source */
#define PROGRESS_MS 1000	/* mig.progress to the cluster */
#define LOAD_POLL_MS 20		/* the target's QEMU loading the end of the stream */
#define LOAD_POLLS 1500
#define HELLO_RETRY_MS 50	/* the state may reach us after the source's hello */
#define HELLO_RETRIES 100
#define SEND_TIMEOUT_MS 15000

struct mig_ctx {
	struct mig_ctx *next;
	struct vmmig *m;
	char name[VM_NAME_MAX + 1];
	uint64_t id;
	bool source;
	enum mig_mode mode;
	qb_loop_timer_handle timer;
	bool timer_armed;
	bool dead; /* done: freed at the next reconcile */
	unsigned int inflight; /* QMP commands whose callback gets this context */
	bool free_pending;     /* gone from the list: freed when the last of them returns */

	/* source */
	mig_sender_t *sender;
	vmsave_t *save;	  /* a save: the state LUN's writer instead of a sender */
	bool streamed;	  /* the save's stream ended: commit or abort now */
	int qemu_fd;	  /* QEMU's end until getfd took it */
	bool qemu_migrating, qemu_completed, paused, ending, cancel;
	uint64_t start_ms, last_sent_ms, last_raw, last_ms;
	uint64_t stop_ms;   /* quick: when the guest was paused */
	uint64_t loaded_ms; /* when the target said its QEMU loaded the whole stream */
	struct mig_progress prog;

	/* target */
	uint64_t conn;
	char *hello;
	char client_key[MIG_KEY_Z85];
	unsigned int tries;
	uint32_t from;
};

struct vmmig {
	struct hvnoded *d;
	struct mig_keys keys;
	mig_server_t *srv;
	char endpoint[80];
	struct mig_ctx *ctxs;
	char peers_sig[STATE_MAX_NODES * MIG_KEY_Z85];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t my_id(struct hvnoded *d)
{
	return membership_local_id(d->membership);
}

static struct mig_ctx *ctx_new(struct vmmig *m, const char *name, uint64_t id, bool source)
{
	struct mig_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->m = m;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->id = id;
	c->source = source;
	c->qemu_fd = -1;
	c->next = m->ctxs;
	m->ctxs = c;
	return c;
}

static void ctx_timer_del(struct mig_ctx *c)
{
	if (c->timer_armed)
		qb_loop_timer_del(c->m->d->loop, c->timer);
	c->timer_armed = false;
}

static void ctx_timer(struct mig_ctx *c, unsigned int ms, void (*fn)(void *))
{
	ctx_timer_del(c);
	if (qb_loop_timer_add(c->m->d->loop, QB_LOOP_MED, (uint64_t)ms * QB_TIME_NS_IN_MSEC, c, fn,
			      &c->timer) == 0)
		c->timer_armed = true;
}

static void ctx_free(struct mig_ctx *c)
{
	struct mig_ctx **pp;

	if (c->free_pending)
		return;
	ctx_timer_del(c);
	if (c->sender) {
		qb_loop_poll_del(c->m->d->loop, mig_send_notify_fd(c->sender));
		mig_send_free(c->sender);
	}
	if (c->save && c->streamed) {
		vmsave_abort(c->save);
	} else if (c->save) {
		/* hvnoded stops: its job ends with the stream; it must not find us freed */
		vmsave_cut(c->save);
		return;
	}
	if (c->qemu_fd >= 0)
		close(c->qemu_fd);
	c->qemu_fd = -1;
	for (pp = &c->m->ctxs; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	free(c->hello);
	c->hello = NULL;
	if (c->inflight) {
		c->free_pending = true; /* QEMU still owes an answer to c */
		return;
	}
	free(c);
}

/* Send a QMP command whose callback gets @c; 0 or -errno as qemu_vm_qmp(). */
static int ctx_qmp(struct mig_ctx *c, qemu_vm_t *q, const char *cmd, json_t *args, int fd,
		   qemu_qmp_fn cb)
{
	int rc = fd >= 0 ? qemu_vm_qmp_fd(q, cmd, args, fd, cb, c) : qemu_vm_qmp(q, cmd, args, cb, c);

	if (rc == 0)
		c->inflight++;
	return rc;
}

/* At the start of each such callback: true when @c is gone (then freed, maybe) and the
 * callback must return at once. */
static bool ctx_answered(struct mig_ctx *c)
{
	c->inflight--;
	if (!c->free_pending)
		return false;
	if (!c->inflight)
		free(c);
	return true;
}

static void send_op(struct hvnoded *d, json_t *op)
{
	int rc = op ? cluster_send(d, op) : -ENOMEM;

	if (rc)
		qb_log(LOG_WARNING, "migration: cannot send %s to the cluster: %s",
		       json_string_value(json_object_get(op, "op")) ?: "an op", strerror(-rc));
	json_decref(op);
}

/* --- source --------------------------------------------------------------------------- */

static void src_fail(struct mig_ctx *c, const char *why);

static void src_stats(struct mig_ctx *c)
{
	struct mig_stats st = { 0 };
	uint64_t now = mono_ms();

	if (c->sender)
		mig_send_stats(c->sender, &st);
	if (c->save)
		vmsave_counts(c->save, &st.raw_bytes, &st.wire_bytes);
	c->prog.elapsed_ms = now - c->start_ms;
	if (st.raw_bytes >= c->prog.raw_bytes) {
		if (now > c->last_ms + 100) {
			c->prog.rate_bps = (st.raw_bytes - c->last_raw) * 1000 / (now - c->last_ms);
			c->last_raw = st.raw_bytes;
			c->last_ms = now;
		}
		c->prog.raw_bytes = st.raw_bytes;
		c->prog.wire_bytes = st.wire_bytes;
	}
}

static void src_progress_op(struct mig_ctx *c, bool force)
{
	uint64_t now = mono_ms();

	if (!force && now - c->last_sent_ms < PROGRESS_MS)
		return;
	c->last_sent_ms = now;
	send_op(c->m->d, json_pack("{s:s,s:s,s:I,s:o}", "op", "mig.progress", "name", c->name,
				     "id", (json_int_t)c->id, "progress", mig_progress_to_json(&c->prog)));
}

static void on_query_migrate(qemu_vm_t *vm, json_t *res, const char *err_class,
			     const char *err_desc, void *arg);

static void src_poll(void *data)
{
	struct mig_ctx *c = data;
	qemu_vm_t *q = vmrun_qemu(c->m->d, c->name);

	c->timer_armed = false;
	if (c->ending)
		return;
	if (!q || ctx_qmp(c, q, "query-migrate", NULL, -1, on_query_migrate) < 0)
		src_fail(c, "the VM's QEMU went away during the migration");
}

static void on_query_migrate(qemu_vm_t *vm, json_t *res, const char *err_class,
			     const char *err_desc, void *arg)
{
	struct mig_ctx *c = arg;
	const char *status = json_string_value(json_object_get(res, "status"));
	json_t *ram = json_object_get(res, "ram");
	char why[600];

	if (ctx_answered(c))
		return;
	if (c->ending || !strcmp(err_class ?: "", QEMU_ERR_CANCELLED))
		return;
	if (err_class || !status) {
		snprintf(why, sizeof(why), "query-migrate failed: %s: %s", err_class ?: "bad reply",
			 err_desc ?: "");
		src_fail(c, why);
		return;
	}
	snprintf(c->prog.qemu_status, sizeof(c->prog.qemu_status), "%s", status);
	c->prog.remaining_bytes = (uint64_t)json_integer_value(json_object_get(ram, "remaining"));
	c->prog.dirty_rate_pps =
		(uint64_t)json_integer_value(json_object_get(ram, "dirty-pages-rate"));
	c->prog.iteration = (uint64_t)json_integer_value(json_object_get(ram, "dirty-sync-count"));
	src_stats(c);
	if (!strcmp(status, "failed")) {
		snprintf(why, sizeof(why), "QEMU's migration failed: %s",
			 json_string_value(json_object_get(res, "error-desc")) ?: "no reason given");
		src_fail(c, why);
		return;
	}
	if (!strcmp(status, "cancelled")) {
		src_fail(c, "QEMU's migration was cancelled");
		return;
	}
	if (!strcmp(status, "completed")) {
		c->qemu_completed = true;
		c->prog.downtime_ms = (uint64_t)json_integer_value(json_object_get(res, "downtime"));
		qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": QEMU completed (downtime %" PRIu64
				   " ms, %" PRIu64 " bytes): waiting for the target to load it",
		       c->name, c->id, c->prog.downtime_ms, c->prog.raw_bytes);
		return;
	}
	src_progress_op(c, false);
	ctx_timer(c, POLL_MS, src_poll);
}

static void on_migrate(qemu_vm_t *vm, json_t *res, const char *err_class, const char *err_desc,
		       void *arg)
{
	struct mig_ctx *c = arg;
	char why[600];

	if (ctx_answered(c))
		return;
	if (c->ending || !strcmp(err_class ?: "", QEMU_ERR_CANCELLED))
		return;
	if (err_class) {
		snprintf(why, sizeof(why), "QEMU refused migrate: %s: %s", err_class, err_desc ?: "");
		src_fail(c, why);
		return;
	}
	c->qemu_migrating = true;
	qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": QEMU streams (%s)", c->name, c->id,
	       mig_mode_name(c->mode));
	ctx_timer(c, POLL_MS, src_poll);
}

/* A QMP step of the start; the next one is chosen by what this one was. */
static void on_step(qemu_vm_t *vm, json_t *res, const char *err_class, const char *err_desc,
		    void *arg);

static int src_send(struct mig_ctx *c, const char *cmd, json_t *args, int fd)
{
	qemu_vm_t *q = vmrun_qemu(c->m->d, c->name);
	int rc;

	if (!q)
		return -ESRCH;
	rc = ctx_qmp(c, q, cmd, args, fd, !strcmp(cmd, "migrate") ? on_migrate : on_step);
	json_decref(args);
	return rc;
}

enum { STEP_PARAMS, STEP_STOP, STEP_GETFD, STEP_MIGRATE };

/*
 * The guest's pause is QEMU's last round plus what follows it here: the blocks still in the
 * window reach the target's QEMU, then the handoff (the source releases its LUNs, the state
 * moves the VM, the target reserves them and resumes it), some 20-60 ms in the lab. QEMU's
 * downtime-limit gets the admin's limit less this much, so that the pause the guest sees
 * stays within migrate_downtime_ms; a limit of at most twice the reserve is halved instead.
 * QEMU's auto-converge stays off (its default): tried, it made guests dirtying 128 MiB migrate
 * 4x longer and stalled them for seconds.
 */
#define HANDOFF_RESERVE_MS 100

static uint64_t qemu_downtime_limit(unsigned int limit_ms)
{
	return limit_ms > 2 * HANDOFF_RESERVE_MS ? limit_ms - HANDOFF_RESERVE_MS
						 : (limit_ms + 1) / 2;
}

static int src_step(struct mig_ctx *c, int step)
{
	const struct cluster_settings *cs = state_settings(c->m->d->state);
	uint64_t bw = cs->mig_bandwidth_mbps ? (uint64_t)cs->mig_bandwidth_mbps << 20 : 1ULL << 40;
	int rc;

	c->tries = (unsigned int)step;
	switch (step) {
	case STEP_PARAMS:
		return src_send(c, "migrate-set-parameters",
				json_pack("{s:I,s:I}", "downtime-limit",
					  (json_int_t)qemu_downtime_limit(cs->mig_downtime_ms),
					  "max-bandwidth",
					  (json_int_t)bw),
				-1);
	case STEP_STOP:
		c->paused = true;
		c->stop_ms = mono_ms();
		return src_send(c, "stop", NULL, -1);
	case STEP_GETFD:
		rc = src_send(c, "getfd", json_pack("{s:s}", "fdname", "hvmig"), c->qemu_fd);
		/* QEMU gets its own copy; ours must go for the stream's end to reach the sender */
		close(c->qemu_fd);
		c->qemu_fd = -1;
		return rc;
	default:
		return src_send(c, "migrate", json_pack("{s:s}", "uri", "fd:hvmig"), -1);
	}
}

static void on_step(qemu_vm_t *vm, json_t *res, const char *err_class, const char *err_desc,
		    void *arg)
{
	static const char *const names[] = { "migrate-set-parameters", "stop", "getfd" };
	struct mig_ctx *c = arg;
	int next = (int)c->tries + 1;
	char why[600];

	if (ctx_answered(c))
		return;
	if (c->ending || !strcmp(err_class ?: "", QEMU_ERR_CANCELLED))
		return;
	if (err_class) {
		snprintf(why, sizeof(why), "QEMU refused %s: %s: %s",
			 c->tries < 3 ? names[c->tries] : "a command", err_class, err_desc ?: "");
		src_fail(c, why);
		return;
	}
	if (next == STEP_STOP && c->mode == MIG_LIVE)
		next = STEP_GETFD;
	if (src_step(c, next) < 0)
		src_fail(c, "cannot talk to the VM's QEMU");
}

static void src_accepted(void *arg, const char *reply)
{
	struct mig_ctx *c = arg;

	qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": node accepted the stream", c->name, c->id);
	if (src_step(c, STEP_PARAMS) < 0)
		src_fail(c, "cannot talk to the VM's QEMU");
}

static void src_released(void *arg, int rc, const char *err)
{
	struct mig_ctx *c = arg;

	if (rc)
		qb_log(LOG_WARNING, "vm %s: migration %" PRIu64 ": handoff with an error (the target "
				    "may preempt our key; our QEMU is gone): %s",
		       c->name, c->id, err);
	src_stats(c);
	/*
	 * quick: the guest stood still from the pause on, not only in QEMU's last phase; our
	 * part ends when the target had loaded the stream, the target adds its part up to
	 * its resume (vm.report resume_ms)
	 */
	if (c->stop_ms)
		c->prog.downtime_ms = (c->loaded_ms ? c->loaded_ms : mono_ms()) - c->stop_ms;
	qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": source released the VM after %" PRIu64
			   " ms: handoff",
	       c->name, c->id, c->prog.elapsed_ms);
	send_op(c->m->d, json_pack("{s:s,s:s,s:I,s:o}", "op",
				     c->mode == MIG_SAVE ? "mig.saved" : "mig.handoff", "name",
				     c->name, "id", (json_int_t)c->id, "progress",
				     mig_progress_to_json(&c->prog)));
	c->dead = true;
}

static void on_resumed(qemu_vm_t *vm, json_t *res, const char *err_class, const char *err_desc,
		       void *arg)
{
	const char *name = arg;

	if (err_class)
		qb_log(LOG_ERR, "vm %s: cannot resume it after the failed migration: %s: %s", name,
		       err_class, err_desc ?: "");
	else
		qb_log(LOG_NOTICE, "vm %s: runs on here after the failed migration", name);
	free(arg);
}

static void on_status_after(qemu_vm_t *vm, json_t *res, const char *err_class,
			    const char *err_desc, void *arg)
{
	if (!err_class && json_is_false(json_object_get(res, "running")) &&
	    qemu_vm_qmp(vm, "cont", NULL, on_resumed, arg) == 0)
		return;
	free(arg);
}

/*
 * Before the handoff: cut the stream, cancel QEMU's migration, resume the VM
 * if it stopped (quick, or live after its stop-and-copy), tell the cluster.
 */
static void src_fail(struct mig_ctx *c, const char *why)
{
	qemu_vm_t *q = vmrun_qemu(c->m->d, c->name);
	char *name;

	if (c->ending)
		return;
	c->ending = true;
	ctx_timer_del(c);
	src_stats(c);
	qb_log(LOG_ERR, "vm %s: migration %" PRIu64 " %s: %s; the VM stays on this node", c->name,
	       c->id, c->cancel ? "cancelled" : "failed", why);
	if (c->sender) {
		qb_loop_poll_del(c->m->d->loop, mig_send_notify_fd(c->sender));
		mig_send_free(c->sender); /* closes our end: QEMU's writes fail now */
		c->sender = NULL;
	}
	if (c->save && c->streamed) {
		vmsave_abort(c->save);
		c->save = NULL;
	} else if (c->save) {
		vmsave_cut(c->save); /* save_streamed() aborts it when its job is over */
	}
	if (q) {
		if (c->qemu_migrating)
			qemu_vm_qmp(q, "migrate_cancel", NULL, NULL, NULL);
		name = strdup(c->name);
		if (name && qemu_vm_qmp(q, "query-status", NULL, on_status_after, name) < 0)
			free(name);
	}
	send_op(c->m->d, json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "op", "mig.end", "name", c->name,
				     "id", (json_int_t)c->id, "result",
				     c->cancel ? "cancelled" : "failed", "reason", why, "progress",
				     mig_progress_to_json(&c->prog)));
	c->dead = true;
}

static void handoff(struct mig_ctx *c)
{
	if (vmrun_handoff(c->m->d, c->name, src_released, c)) {
		c->ending = false;
		src_fail(c, "the VM stopped here before the handoff");
	}
}

static void on_final(qemu_vm_t *vm, json_t *res, const char *err_class, const char *err_desc,
		     void *arg)
{
	struct mig_ctx *c = arg;

	if (ctx_answered(c))
		return;
	if (!strcmp(err_class ?: "", QEMU_ERR_CANCELLED))
		return;
	if (!err_class)
		c->prog.downtime_ms = (uint64_t)json_integer_value(json_object_get(res, "downtime"));
	snprintf(c->prog.qemu_status, sizeof(c->prog.qemu_status), "%s",
		 json_string_value(json_object_get(res, "status")) ?: "?");
	qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": QEMU %s, downtime %" PRIu64 " ms",
	       c->name, c->id, c->prog.qemu_status, c->prog.downtime_ms);
	handoff(c);
}

static void src_finished(void *arg, bool ok, const char *why)
{
	struct mig_ctx *c = arg;
	qemu_vm_t *q;

	if (c->ending)
		return;
	if (!ok) {
		src_fail(c, why);
		return;
	}
	/* the target's QEMU holds the whole state: ours must never run again */
	c->ending = true;
	c->loaded_ms = mono_ms();
	ctx_timer_del(c);
	src_stats(c);
	qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": the target loaded the stream (%" PRIu64
			   " bytes, %" PRIu64 " on the wire)",
	       c->name, c->id, c->prog.raw_bytes, c->prog.wire_bytes);
	/* QEMU's own downtime figure first (its poll may not have seen "completed") */
	q = vmrun_qemu(c->m->d, c->name);
	if (!q || c->qemu_completed || ctx_qmp(c, q, "query-migrate", NULL, -1, on_final) < 0)
		handoff(c);
}

static const struct mig_send_ops send_ops = {
	.accepted = src_accepted,
	.finished = src_finished,
};

static int32_t on_sender(int32_t fd, int32_t revents, void *data)
{
	struct mig_ctx *c = data;

	if (c->sender)
		mig_send_dispatch(c->sender);
	return 0;
}

/* --- a save: the stream goes to the state LUN ----------------------------------------------- */

static void save_committed(void *arg, int rc, const char *err)
{
	struct mig_ctx *c = arg;
	char why[1200];

	c->save = NULL; /* freed by its commit */
	if (rc) {
		c->ending = false;
		snprintf(why, sizeof(why), "the state LUN's header could not be written: %s", err);
		src_fail(c, why);
		return;
	}
	qb_log(LOG_NOTICE, "vm %s: save %" PRIu64 ": its state is on %s", c->name, c->id, "its state LUN");
	handoff(c);
}

static void on_save_final(qemu_vm_t *vm, json_t *res, const char *err_class,
			  const char *err_desc, void *arg)
{
	struct mig_ctx *c = arg;
	const char *status = json_string_value(json_object_get(res, "status"));
	char why[600];

	if (ctx_answered(c))
		return;
	if (!strcmp(err_class ?: "", QEMU_ERR_CANCELLED))
		return;
	if (!status || strcmp(status, "completed")) {
		c->ending = false;
		snprintf(why, sizeof(why), "QEMU's stream ended but its migration is %s: %s",
			 status ?: "unknown",
			 json_string_value(json_object_get(res, "error-desc")) ?: err_desc ?: "");
		src_fail(c, why);
		return;
	}
	src_stats(c);
	if (vmsave_commit(c->save, save_committed, c)) {
		c->ending = false;
		src_fail(c, "cannot start a worker to finish the save");
	}
}

/* The save job read QEMU's stream to its end (or failed). */
static void save_streamed(void *arg, int rc, const char *err)
{
	struct mig_ctx *c = arg;
	qemu_vm_t *q = vmrun_qemu(c->m->d, c->name);
	char why[1200];

	c->streamed = true;
	if (c->ending) {
		/* failed meanwhile: give the LUN back without an image */
		vmsave_abort(c->save);
		c->save = NULL;
		return;
	}
	if (rc) {
		snprintf(why, sizeof(why), "%s", err);
		src_fail(c, why);
		return;
	}
	/* QEMU closes the stream when it completed, or when it failed: ask which */
	c->ending = true;
	ctx_timer_del(c);
	if (!q || ctx_qmp(c, q, "query-migrate", NULL, -1, on_save_final) < 0) {
		c->ending = false;
		src_fail(c, "the VM's QEMU went away during the save");
	}
}

static void save_start(struct mig_ctx *c, const struct vm_def *def)
{
	char err[1024];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, sizeof(err), "socketpair: %s", strerror(errno));
		src_fail(c, err);
		return;
	}
	c->qemu_fd = sv[1];
	c->save = vmsave_begin(c->m->d, def, sv[0], save_streamed, c, err, sizeof(err));
	if (!c->save) {
		src_fail(c, err);
		return;
	}
	qb_log(LOG_NOTICE, "vm %s: save %" PRIu64 " to its state LUN %s starts", def->name, c->id,
	       def->state_lun);
	src_accepted(c, NULL); /* no one to ask: QEMU may write at once */
}

/* A test hook: the number in STATE_DIR/test-corrupt-migration (then removed). */
static uint64_t test_corrupt_seq(struct hvnoded *d)
{
	char path[4200];
	unsigned long long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/test-corrupt-migration", d->cfg.state_dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &n) != 1)
		n = 0;
	fclose(f);
	unlink(path);
	if (n)
		qb_log(LOG_WARNING, "test hook: the migration stream's block %llu will be damaged",
		       n - 1);
	return n;
}

static void src_start(struct vmmig *m, const struct vm_def *def, const struct vm_status *st)
{
	struct hvnoded *d = m->d;
	const struct cluster_settings *cs = state_settings(d->state);
	const struct node_info *to = state_node_find(d->state, st->mig.to);
	struct mig_send_cfg cfg = { 0 };
	struct mig_ctx *c;
	char err[512], *hello;
	json_t *hj;
	int sv[2];

	c = ctx_new(m, def->name, st->mig.id, true);
	if (!c)
		return;
	c->mode = st->mig.mode;
	c->start_ms = c->last_ms = mono_ms();
	if (c->mode == MIG_SAVE) {
		save_start(c, def);
		return;
	}
	if (!to || !to->mig_endpoint[0] || !mig_key_is_valid(to->mig_key)) {
		src_fail(c, "the target node publishes no migration endpoint or key");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, sizeof(err), "socketpair: %s", strerror(errno));
		src_fail(c, err);
		return;
	}
	c->qemu_fd = sv[1];
	hj = json_pack("{s:s,s:s,s:I,s:I,s:s}", "vm", def->name, "uuid", def->uuid, "id",
		       (json_int_t)st->mig.id, "from", (json_int_t)my_id(d), "mode",
		       mig_mode_name(st->mig.mode));
	hello = hj ? json_dumps(hj, JSON_COMPACT) : NULL;
	json_decref(hj);
	cfg = (struct mig_send_cfg){ .endpoint = to->mig_endpoint, .server_key = to->mig_key,
				     .keys = &m->keys, .hello = hello ?: "{}", .fd = sv[0],
				     .nthreads = cs->mig_threads, .compress = cs->mig_compress,
				     .timeout_ms = SEND_TIMEOUT_MS,
				     .corrupt_seq = test_corrupt_seq(d) };
	c->sender = mig_send_start(&cfg, &send_ops, c, err, sizeof(err));
	free(hello);
	if (!c->sender) {
		close(sv[0]);
		src_fail(c, err);
		return;
	}
	qb_loop_poll_add(d->loop, QB_LOOP_MED, mig_send_notify_fd(c->sender), POLLIN, c, on_sender);
	qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 " (%s) to node %s (%s) starts", def->name,
	       st->mig.id, mig_mode_name(st->mig.mode), to->name, to->mig_endpoint);
}

/* --- target --------------------------------------------------------------------------- */

static struct mig_ctx *find_conn(struct vmmig *m, uint64_t conn)
{
	for (struct mig_ctx *c = m->ctxs; c; c = c->next)
		if (!c->source && c->conn == conn && !c->dead)
			return c;
	return NULL;
}

static void tgt_reject(struct mig_ctx *c, const char *why)
{
	qb_log(LOG_WARNING, "vm %s: incoming migration %" PRIu64 " refused: %s", c->name, c->id, why);
	mig_server_reject(c->m->srv, c->conn, why);
	c->dead = true;
}

static void tgt_ready(void *arg, int rc, const char *err)
{
	struct mig_ctx *c = arg;
	char why[600];

	if (c->dead)
		return;
	if (rc) {
		snprintf(why, sizeof(why), "cannot start the VM for the stream: %s", err);
		tgt_reject(c, why);
		return;
	}
	if (mig_server_accept(c->m->srv, c->conn, "{}", c->qemu_fd) < 0) {
		c->qemu_fd = -1;
		vmrun_stop(c->m->d, c->name);
		tgt_reject(c, "the migration server dropped the connection");
		return;
	}
	c->qemu_fd = -1; /* the server's now */
	qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": accepted, receiving", c->name, c->id);
}

/* The hello against the state: 0, -EAGAIN (not there yet), or -errno with @why. */
static int tgt_check(struct mig_ctx *c, const struct vm_def **defp, char *why, size_t len)
{
	struct hvnoded *d = c->m->d;
	json_t *h = json_loads(c->hello, 0, NULL);
	const char *vm = json_string_value(json_object_get(h, "vm"));
	const char *uuid = json_string_value(json_object_get(h, "uuid"));
	json_int_t id = json_integer_value(json_object_get(h, "id"));
	const struct vm_def *def = vm ? state_vm_find(d->state, vm) : NULL;
	const struct vm_status *st = def ? state_vm_status(d->state, vm) : NULL;
	const struct node_info *from;
	int rc = 0;

	if (!vm || !uuid || id <= 0) {
		snprintf(why, len, "malformed hello");
		rc = -EINVAL;
	} else if (!def || strcmp(def->uuid, uuid)) {
		snprintf(why, len, "vm %.64s (uuid %.40s) is not in the cluster state", vm, uuid);
		rc = -ENOENT;
	} else if (st->mig.id != (uint64_t)id || st->mig.phase != MIG_RUNNING) {
		snprintf(why, len, "migration %" PRIu64 " of vm %s is not running in the cluster state",
			 (uint64_t)id, vm);
		rc = -EAGAIN;
	} else if (st->mig.to != my_id(d)) {
		snprintf(why, len, "migration %" PRIu64 " of vm %s goes to another node", (uint64_t)id,
			 vm);
		rc = -EPERM;
	} else if (!(from = state_node_find(d->state, st->mig.from)) ||
		   strcmp(from->mig_key, c->client_key)) {
		snprintf(why, len, "the stream of migration %" PRIu64 " does not come from its source "
				   "node's key",
			 (uint64_t)id);
		rc = -EPERM;
	}
	if (def) {
		snprintf(c->name, sizeof(c->name), "%s", def->name);
		c->id = (uint64_t)id;
		c->from = st->mig.from;
	}
	json_decref(h);
	*defp = def;
	return rc;
}

static void tgt_try(void *data)
{
	struct mig_ctx *c = data;
	const struct vm_def *def = NULL;
	char why[512], err[1024];
	int sv[2], rc;

	c->timer_armed = false;
	rc = tgt_check(c, &def, why, sizeof(why));
	if (rc == -EAGAIN && ++c->tries < HELLO_RETRIES) {
		ctx_timer(c, HELLO_RETRY_MS, tgt_try);
		return;
	}
	if (rc) {
		tgt_reject(c, why);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, sizeof(why), "socketpair: %s", strerror(errno));
		tgt_reject(c, why);
		return;
	}
	c->qemu_fd = sv[0];
	rc = vmrun_incoming(c->m->d, def, c->id, sv[1], tgt_ready, c, err, sizeof(err));
	if (rc) {
		close(c->qemu_fd);
		c->qemu_fd = -1;
		tgt_reject(c, err);
	}
}

static void srv_incoming(void *arg, uint64_t conn, const char *hello, const char *client_key)
{
	struct vmmig *m = arg;
	struct mig_ctx *c = ctx_new(m, "?", 0, false);

	if (!c || !(c->hello = strdup(hello))) {
		if (c)
			ctx_free(c);
		mig_server_reject(m->srv, conn, "out of memory");
		return;
	}
	c->conn = conn;
	snprintf(c->client_key, sizeof(c->client_key), "%s", client_key);
	tgt_try(c);
}

static void on_loaded(qemu_vm_t *vm, json_t *res, const char *err_class, const char *err_desc,
		      void *arg);

static void tgt_poll(void *data)
{
	struct mig_ctx *c = data;
	qemu_vm_t *q = vmrun_qemu(c->m->d, c->name);

	c->timer_armed = false;
	if (!q || ctx_qmp(c, q, "query-migrate", NULL, -1, on_loaded) < 0) {
		mig_server_finish(c->m->srv, c->conn, false, "the target's QEMU went away");
		c->dead = true;
	}
}

static void on_loaded(qemu_vm_t *vm, json_t *res, const char *err_class, const char *err_desc,
		      void *arg)
{
	struct mig_ctx *c = arg;
	const char *status = json_string_value(json_object_get(res, "status"));
	char why[600];

	if (ctx_answered(c))
		return;
	if (c->dead || !strcmp(err_class ?: "", QEMU_ERR_CANCELLED))
		return;
	if (status && !strcmp(status, "completed")) {
		qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": QEMU loaded the stream; waiting "
				   "for the handoff",
		       c->name, c->id);
		vmrun_incoming_loaded(c->m->d, c->name);
		mig_server_finish(c->m->srv, c->conn, true, NULL);
		c->dead = true;
		return;
	}
	if (err_class || !status || !strcmp(status, "failed") || ++c->tries > LOAD_POLLS) {
		snprintf(why, sizeof(why), "the target's QEMU did not load the stream: %s",
			 err_class ? err_desc ?: err_class
			 : status ? json_string_value(json_object_get(res, "error-desc")) ?: status
				  : "no status");
		qb_log(LOG_ERR, "vm %s: migration %" PRIu64 ": %s", c->name, c->id, why);
		mig_server_finish(c->m->srv, c->conn, false, why);
		vmrun_stop(c->m->d, c->name);
		c->dead = true;
		return;
	}
	ctx_timer(c, LOAD_POLL_MS, tgt_poll);
}

static void srv_ended(void *arg, uint64_t conn, bool ok, const char *why)
{
	struct vmmig *m = arg;
	struct mig_ctx *c = find_conn(m, conn);

	if (!c)
		return;
	if (!ok) {
		qb_log(LOG_ERR, "vm %s: incoming migration %" PRIu64 " aborted: %s", c->name, c->id,
		       why);
		vmrun_stop(m->d, c->name);
		c->dead = true;
		return;
	}
	c->tries = 0;
	tgt_poll(c);
}

static void srv_rejected(void *arg, const char *why)
{
	qb_log(LOG_WARNING, "migration server: %s", why);
}

static const struct mig_server_ops server_ops = {
	.incoming = srv_incoming,
	.ended = srv_ended,
	.rejected = srv_rejected,
};

static int32_t on_server(int32_t fd, int32_t revents, void *data)
{
	struct vmmig *m = data;

	mig_server_dispatch(m->srv);
	return 0;
}

/* --- the node ---------------------------------------------------------------------------- */

int vmmig_init(struct hvnoded *d, char *err, size_t errlen)
{
	struct vmmig *m = calloc(1, sizeof(*m));
	char bind[96], msg[512];
	int rc;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->d = d;
	d->mig = m;
	rc = mig_keys_load(d->cfg.state_dir, &m->keys, msg, sizeof(msg));
	if (rc) {
		snprintf(err, errlen, "migration keys: %s", msg);
		return rc;
	}
	if (d->cfg.mig_address && strchr(d->cfg.mig_address, ':'))
		snprintf(bind, sizeof(bind), "tcp://[%s]:%u", d->cfg.mig_address, d->cfg.mig_port);
	else
		snprintf(bind, sizeof(bind), "tcp://%s:%u",
			 d->cfg.mig_address ? d->cfg.mig_address : "*", d->cfg.mig_port);
	m->srv = mig_server_start(bind, &m->keys, &server_ops, m, msg, sizeof(msg));
	if (!m->srv) {
		snprintf(err, errlen, "migration server on %s: %s", bind, msg);
		return -EADDRNOTAVAIL;
	}
	qb_loop_poll_add(d->loop, QB_LOOP_MED, mig_server_notify_fd(m->srv), POLLIN, m, on_server);
	qb_log(LOG_NOTICE, "migration server on %s (CURVE key %s)", bind, m->keys.pub);
	return 0;
}

void vmmig_stop(struct hvnoded *d)
{
	struct vmmig *m = d->mig;

	for (struct mig_ctx *c = m ? m->ctxs : NULL; c; c = c->next) {
		c->ending = true; /* whatever comes back now gives up */
		ctx_timer_del(c);
		if (c->save && !c->streamed)
			vmsave_cut(c->save); /* its job ends; vmrun_fini()'s drain runs its callback */
	}
}

void vmmig_fini(struct hvnoded *d)
{
	struct vmmig *m = d->mig;
	struct mig_ctx *c, *next;

	if (!m)
		return;
	for (c = m->ctxs; c; c = next) {
		next = c->next;
		ctx_free(c);
	}
	if (m->srv) {
		qb_loop_poll_del(d->loop, mig_server_notify_fd(m->srv));
		mig_server_free(m->srv);
	}
	free(m);
	d->mig = NULL;
}

const char *vmmig_endpoint(struct hvnoded *d)
{
	struct vmmig *m = d->mig;
	char addr[256] = "";

	if (!m || !m->srv)
		return "";
	if (d->cfg.mig_address)
		snprintf(addr, sizeof(addr), "%s", d->cfg.mig_address);
	else if (!membership_node_addr(d->membership, my_id(d), addr, sizeof(addr)))
		return "";
	if (strchr(addr, ':'))
		snprintf(m->endpoint, sizeof(m->endpoint), "tcp://[%.60s]:%u", addr, d->cfg.mig_port);
	else
		snprintf(m->endpoint, sizeof(m->endpoint), "tcp://%.60s:%u", addr, d->cfg.mig_port);
	return m->endpoint;
}

const char *vmmig_pubkey(struct hvnoded *d)
{
	return d->mig && d->mig->srv ? d->mig->keys.pub : "";
}

void vmmig_update_peers(struct hvnoded *d)
{
	struct vmmig *m = d->mig;
	char keys[STATE_MAX_NODES][MIG_KEY_Z85], sig[sizeof(m->peers_sig)] = "";
	size_t n = 0;

	if (!m || !m->srv)
		return;
	for (size_t i = 0; i < state_node_count(d->state) && n < STATE_MAX_NODES; i++) {
		const struct node_info *nd = state_node_at(d->state, i);

		if (nd->status != NODE_ONLINE || nd->id == my_id(d) || !mig_key_is_valid(nd->mig_key))
			continue;
		memcpy(keys[n++], nd->mig_key, MIG_KEY_Z85);
		strcat(sig, nd->mig_key);
	}
	if (!strcmp(sig, m->peers_sig))
		return;
	if (mig_server_set_allowed(m->srv, (const char(*)[MIG_KEY_Z85])keys, n) == 0) {
		memcpy(m->peers_sig, sig, sizeof(sig));
		qb_log(LOG_INFO, "migration server: %zu peer keys allowed", n);
	}
}

/* The source's context of migration @id, also once it is over (until the state says so). */
static struct mig_ctx *find_src(struct vmmig *m, const char *name, uint64_t id)
{
	for (struct mig_ctx *c = m->ctxs; c; c = c->next)
		if (c->source && c->id == id && !strcmp(c->name, name))
			return c;
	return NULL;
}

/* Keys the target may take the LUNs from at the handoff: the usual ones and the source's. */
static size_t handoff_keys(struct hvnoded *d, uint32_t from, uint64_t *keys)
{
	uint32_t leader = membership_leader(d->membership);
	size_t n = 0;

	keys[n++] = storage_node_key(d->cfg.cluster_name, from);
	for (size_t i = 0; i < state_node_count(d->state) && n < STATE_MAX_NODES; i++) {
		const struct node_info *nd = state_node_at(d->state, i);

		if (nd->id != my_id(d) && nd->id != from &&
		    (nd->status != NODE_ONLINE || nd->id == leader))
			keys[n++] = storage_node_key(d->cfg.cluster_name, nd->id);
	}
	return n;
}

void vmmig_reconcile(struct hvnoded *d)
{
	struct vmmig *m = d->mig;
	struct mig_ctx *c, *next;
	uint64_t keys[STATE_MAX_NODES];
	uint32_t me = my_id(d);

	if (!m)
		return;
	vmmig_update_peers(d);
	for (c = m->ctxs; c; c = next) {
		const struct vm_status *st;

		next = c->next;
		st = state_vm_status(d->state, c->name);
		if (c->dead) {
			/* a source's stays until the state moved on: it must not start again */
			if ((!c->source || !st || st->mig.id != c->id ||
			     st->mig.phase != MIG_RUNNING) &&
			    !(c->save && !c->streamed)) /* its job still calls back */
				ctx_free(c);
			continue;
		}
		if (!c->source || c->ending)
			continue;
		if (!st || st->mig.id != c->id) {
			src_fail(c, "the migration ended in the cluster state");
		} else if (st->mig.cancel && !c->cancel) {
			c->cancel = true;
			src_fail(c, st->mig.cancel_why[0] ? st->mig.cancel_why : "cancelled by an admin");
		}
	}
	for (size_t i = 0; m->srv && i < state_vm_count(d->state); i++) {
		const struct vm_def *def = state_vm_at(d->state, i);
		const struct vm_status *st = state_vm_status(d->state, def->name);

		if (st->mig.phase == MIG_RUNNING && st->mig.from == me && st->node == me &&
		    vmrun_epoch(d, def->name) == st->epoch && vmrun_qemu(d, def->name) &&
		    !find_src(m, def->name, st->mig.id) && !st->mig.cancel) {
			src_start(m, def, st);
		} else if (st->mig.phase == MIG_HANDOFF && st->node == me && st->mig.to == me) {
			if (vmrun_incoming_finish(d, def->name, st->epoch, keys,
						  handoff_keys(d, st->mig.from, keys)) == 0) {
				agent_vm_starting(d, def->name, st->epoch);
				qb_log(LOG_NOTICE, "vm %s: migration %" PRIu64 ": handoff to this node "
						   "(epoch %" PRIu64 ")",
				       def->name, st->mig.id, st->epoch);
			}
		}
	}
}
