/*
 * Running VMs on this node.
 *
 * Start: take every LUN (worker: register + reserve WERO, refusing a LUN
 * another node owns) -> a disk server (nbdkit + our plugin) per LUN, under
 * the VM's uid, on a unix socket in the VM's private dir -> QEMU under the
 * same uid, its drives on those sockets with werror=stop,rerror=stop.
 * Stop: QEMU first (no more writes), then the disk servers (each
 * unregisters its nexus), then release the LUNs (worker). Every step is
 * logged with the VM's name; any failure unwinds what was done.
 */
#include "hvnoded.h"
#include "tap.h"
#include "vmrun.h"
#include "vmsave.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "../hypervisor/hypervisor.h"
#include "../storage/storage.h"

#define SOCKET_POLL_MS 10 /* disk server sockets, and QEMU loading a restored state */
#define SOCKET_POLLS 1500

enum run_state {
	RUN_STOPPED,
	RUN_STARTING,
	RUN_RUNNING,
	RUN_PAUSED,
	RUN_STOPPING,
	RUN_INCOMING, /* the target of a migration: QEMU paused, loading or loaded */
};

static const char *const state_names[] = { "stopped", "starting", "running", "paused",
					   "stopping", "incoming" };

struct vm_run {
	struct vm_run *next;
	struct hvnoded *d;
	struct vm_def def; /* as it was when started */
	enum run_state state;
	char reason[64];      /* why paused */
	char last_error[1024];
	unsigned int slot;
	uid_t uid;
	char dir[4096];
	uint64_t key;
	char initiator[256];
	pid_t nbd_pid[VM_MAX_DISKS];
	unsigned int nbd_alive;
	bool luns_held;
	qemu_vm_t *qemu;
	uint64_t epoch;	/* the assignment this run carries out */
	uint64_t preempt[STATE_MAX_NODES]; /* keys its LUNs may be taken from */
	size_t npreempt;
	enum vm_gone gone; /* how it ends: asked (stop), poweroff (shutdown or guest), failed */
	qb_loop_timer_handle timer;
	bool timer_armed;
	unsigned int socket_polls;
	bool failed;		/* unwinding after a failed start */
	bool worker_busy;	/* a LUN job runs: teardown waits for it */
	/* the target of migration @mig_id until the handoff: not assigned here yet */
	bool incoming;
	uint64_t mig_id;
	int incoming_fd;	/* QEMU's end of the stream until QEMU has it, else -1 */
	int qemu_in_fd;		/* its number in QEMU */
	uint64_t loaded_ms;	/* when QEMU had loaded the whole stream (monotonic), else 0 */
	vmrun_ready_fn ready_cb; /* the incoming QEMU waits for the stream (or failed) */
	void *ready_arg;
	/* a start from the state on the state LUN: QEMU -incoming, a job feeds it */
	bool restore;
	bool restoring;		/* the job runs: teardown cuts its fd and waits for it */
	int restore_fd;		/* the job's end of the stream until it has it, else -1 */
	int restore_cut;	/* a copy, to cut the job short, else -1 */
	/* the source's side of a handoff: the end is reported to @handoff_cb, not the agent */
	vmrun_done_fn handoff_cb;
	void *handoff_arg;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct vm_run *find_run(struct hvnoded *d, const char *name)
{
	for (struct vm_run *r = d->runs; r; r = r->next)
		if (!strcmp(r->def.name, name))
			return r;
	return NULL;
}

void vmrun_dir(struct hvnoded *d, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/vms/%s", d->cfg.run_dir, name);
}

bool vmrun_is_active(struct hvnoded *d, const char *name)
{
	struct vm_run *r = find_run(d, name);

	return r && r->state != RUN_STOPPED;
}

void vmrun_describe(struct hvnoded *d, const char *name, json_t *obj)
{
	struct vm_run *r = find_run(d, name);
	bool active = r && r->state != RUN_STOPPED;
	char dir[4096];

	vmrun_dir(d, name, dir, sizeof(dir));
	json_object_set_new(obj, "state", json_string(r ? state_names[r->state] : "stopped"));
	json_object_set_new(obj, "node", active ? json_string(d->cfg.node_name) : json_null());
	json_object_set_new(obj, "dir", json_string(dir));
	if (active && r->qemu && qemu_vm_pid(r->qemu) > 0)
		json_object_set_new(obj, "pid", json_integer(qemu_vm_pid(r->qemu)));
	if (active)
		json_object_set_new(obj, "uid", json_integer(r->uid));
	if (r && r->state == RUN_PAUSED && r->reason[0])
		json_object_set_new(obj, "reason", json_string(r->reason));
	if (r && r->last_error[0])
		json_object_set_new(obj, "last_error", json_string(r->last_error));
}

/* --- the end of a start or stop ------------------------------------------ */

static void incoming_ready(struct vm_run *r, int rc)
{
	vmrun_ready_fn cb = r->ready_cb;

	r->ready_cb = NULL;
	if (cb)
		cb(r->ready_arg, rc, r->last_error);
}

/* The run is over: tell the agent how it ended (or whoever waits for a handoff). */
static void finished(struct vm_run *r)
{
	enum vm_gone gone = r->failed ? VM_GONE_FAILED : r->gone;
	vmrun_done_fn cb = r->handoff_cb;

	r->failed = false;
	if (r->incoming_fd >= 0)
		close(r->incoming_fd);
	r->incoming_fd = -1;
	if (r->restore_fd >= 0)
		close(r->restore_fd);
	r->restore_fd = -1;
	if (r->incoming) {
		/* never assigned here: nothing to report but to whoever waits for it */
		if (!r->last_error[0])
			snprintf(r->last_error, sizeof(r->last_error), "stopped before the stream came");
		incoming_ready(r, -ECANCELED);
		r->incoming = false;
		return;
	}
	if (cb) {
		r->handoff_cb = NULL;
		cb(r->handoff_arg, r->last_error[0] ? -EIO : 0, r->last_error);
		return;
	}
	agent_vm_gone(r->d, r->def.name, r->epoch, gone, r->last_error);
}

__attribute__((format(printf, 2, 3))) static void set_error(struct vm_run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
	va_end(ap);
	qb_log(LOG_ERR, "vm %s: %s", r->def.name, r->last_error);
}

/* --- LUNs (workers) -------------------------------------------------------- */

struct lun_job {
	struct vm_run *r;
	char err[1024];
};

/*
 * Whom does the LUN belong to? Only keys of gone or fenced nodes and of the
 * fencer may be preempted (@takeover then); another live node's key means the
 * VM runs there: refused, whatever the state said when this start was decided.
 */
static int may_take(struct vm_run *r, lun_session_t *s, bool *takeover, char *err, size_t errlen)
{
	struct lun_pr_state pr;
	int rc = lun_read_pr(s, &pr, err, errlen);

	if (rc)
		return rc;
	for (unsigned int k = 0; k < pr.nkeys && k < LUN_PR_MAX_KEYS; k++) {
		bool ok = false;

		if (pr.keys[k] == r->key)
			continue;
		for (size_t p = 0; p < r->npreempt && !ok; p++)
			ok = pr.keys[k] == r->preempt[p];
		if (!ok) {
			snprintf(err, errlen,
				 "lun %s is held by key 0x%016" PRIx64 " (node %u), a live node: "
				 "not taking it over",
				 lun_session_url(s), pr.keys[k], storage_key_nodeid(pr.keys[k]));
			return -EBUSY;
		}
		*takeover = true;
	}
	if (pr.reserved && pr.holder && pr.holder != r->key)
		*takeover = true;
	return 0;
}

/* Take every LUN; on a failure give back the ones taken. Worker thread. */
static int luns_acquire(void *arg)
{
	struct lun_job *job = arg;
	struct vm_run *r = job->r;
	char err[1024];
	size_t i;
	int rc = 0;

	for (i = 0; i < r->def.ndisks; i++) {
		lun_session_t *s = lun_open(r->def.disks[i].url, r->initiator, "mgmt", 10, err,
					    sizeof(err));
		bool takeover = false;

		if (!s) {
			rc = -errno ? -errno : -EIO;
			snprintf(job->err, sizeof(job->err), "%s", err);
			break;
		}
		rc = may_take(r, s, &takeover, err, sizeof(err));
		if (!rc)
			rc = lun_acquire(s, r->key, takeover, err, sizeof(err));
		lun_close(s);
		if (rc) {
			snprintf(job->err, sizeof(job->err), "%s", err);
			break;
		}
	}
	if (!rc)
		return 0;
	while (i-- > 0) {
		lun_session_t *s = lun_open(r->def.disks[i].url, r->initiator, "mgmt", 10, err,
					    sizeof(err));

		if (s) {
			lun_release(s, r->key, err, sizeof(err));
			lun_close(s);
		}
	}
	return rc;
}

/* Give back every LUN; the last error wins. Worker thread. */
static int luns_release(void *arg)
{
	struct lun_job *job = arg;
	struct vm_run *r = job->r;
	char err[1024];
	int rc = 0, one;

	for (size_t i = 0; i < r->def.ndisks; i++) {
		lun_session_t *s = lun_open(r->def.disks[i].url, r->initiator, "mgmt", 10, err,
					    sizeof(err));

		if (!s) {
			rc = -EIO;
			snprintf(job->err, sizeof(job->err), "%s", err);
			continue;
		}
		one = lun_release(s, r->key, err, sizeof(err));
		lun_close(s);
		if (one) {
			rc = one;
			snprintf(job->err, sizeof(job->err), "%s", err);
		}
	}
	return rc;
}

/* --- teardown: QEMU, then disk servers, then LUNs ------------------------- */

static void teardown_step(struct vm_run *r);

static void released(void *arg, int rc)
{
	struct lun_job *job = arg;
	struct vm_run *r = job->r;

	r->worker_busy = false;
	r->luns_held = false;
	if (rc)
		set_error(r, "LUNs not all released: %s", job->err);
	else
		qb_log(LOG_NOTICE, "vm %s: LUNs released", r->def.name);
	free(job);
	teardown_step(r);
}

static void cancel_timer(struct vm_run *r)
{
	if (r->timer_armed)
		qb_loop_timer_del(r->d->loop, r->timer);
	r->timer_armed = false;
}

/*
 * A VM's dir once nothing of it runs: root's again, 0700, its files root's and
 * 0600; sockets, links, FIFOs and the like that the VM's uid made are removed.
 * The uid's slot goes to the next VM started here, which must not read this
 * one's console log or reach its sockets. hvnoded still reads the console log
 * (hvctl vm console); make_vm_dir gives the dir to the VM's uid at its next start.
 * No process of the uid is left (teardown waited for each), so none races this.
 */
static void release_vm_dir(const char *dir)
{
	struct dirent *e;
	struct stat st;
	int dfd, fd;
	DIR *dp;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		if (errno != ENOENT)
			qb_log(LOG_ERR, "%s: cannot give it back to root: %s", dir, strerror(errno));
		return;
	}
	if (fchown(dfd, 0, 0) < 0 || fchmod(dfd, 0700) < 0) {
		qb_log(LOG_ERR, "%s: cannot give it back to root: %s: the next VM of its uid may read it",
		       dir, strerror(errno));
		close(dfd);
		return;
	}
	dp = fdopendir(dfd);
	if (!dp) {
		close(dfd);
		return;
	}
	while ((e = readdir(dp))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* never follow what the VM's uid planted; a FIFO must not block */
		fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			if (fchown(fd, 0, 0) < 0 || fchmod(fd, 0600) < 0)
				qb_log(LOG_ERR, "%s/%s: cannot give it back to root: %s", dir,
				       e->d_name, strerror(errno));
			close(fd);
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (unlinkat(dfd, e->d_name, 0) < 0 && errno == EISDIR)
			unlinkat(dfd, e->d_name, AT_REMOVEDIR); /* if empty; else root's dir hides it */
	}
	closedir(dp);
}

/*
 * Called whenever a piece went away; does the next thing. The teardown is
 * over when nothing is left: then the agent learns how it ended.
 */
static void teardown_step(struct vm_run *r)
{
	struct lun_job *job;

	cancel_timer(r);
	if (r->worker_busy)
		return; /* its completion calls us again */
	if (r->restoring) {
		shutdown(r->restore_cut, SHUT_RDWR); /* its writes fail now: it ends soon */
		return;				     /* and calls us again */
	}
	if (r->qemu) {
		qemu_vm_stop(r->qemu); /* its exit comes back through the reaper */
		return;
	}
	if (r->nbd_alive) {
		for (size_t i = 0; i < r->def.ndisks; i++)
			if (r->nbd_pid[i] > 0)
				kill(r->nbd_pid[i], SIGTERM);
		return;
	}
	if (r->luns_held) {
		job = calloc(1, sizeof(*job));
		if (job) {
			job->r = r;
			if (work_submit(r->d, luns_release, released, job) == 0) {
				r->worker_busy = true;
				return;
			}
			free(job);
		}
		set_error(r, "cannot release its LUNs: no worker");
		r->luns_held = false;
	}
	release_vm_dir(r->dir);
	r->state = RUN_STOPPED;
	qb_log(LOG_NOTICE, "vm %s: stopped (epoch %" PRIu64 ")", r->def.name, r->epoch);
	finished(r);
}

static void start_failed(struct vm_run *r)
{
	r->failed = true;
	r->state = RUN_STOPPING;
	teardown_step(r);
}

/* --- QEMU ----------------------------------------------------------------- */

/* --- restore: the state LUN's stream into QEMU, then cont ------------------------------- */

static void restore_poll(void *data);

/* The last step of a restore or of a migration's handoff: the guest runs on here. */
static void on_resumed(qemu_vm_t *vm, json_t *result, const char *err_class, const char *err_desc,
		       void *arg)
{
	struct vm_run *r = arg;
	const char *after = r->restore ? "its restore" : "the handoff";

	if (err_class) {
		set_error(r, "QEMU refused to resume after %s: %s: %s", after, err_class,
			  err_desc ?: "");
		start_failed(r);
		return;
	}
	r->state = RUN_RUNNING;
	qb_log(LOG_NOTICE, "vm %s: running here after %s (pid %d, epoch %" PRIu64 ")", r->def.name,
	       r->restore ? "its restore from its state LUN" : "its migration", (int)qemu_vm_pid(vm),
	       r->epoch);
	if (!r->restore && r->loaded_ms)
		agent_vm_resumed(r->d, r->def.name, r->epoch, mono_ms() - r->loaded_ms);
	else
		agent_vm_running(r->d, r->def.name, r->epoch);
}

static void on_restore_status(qemu_vm_t *vm, json_t *res, const char *err_class,
			      const char *err_desc, void *arg)
{
	struct vm_run *r = arg;
	const char *status = json_string_value(json_object_get(res, "status"));

	if (!strcmp(err_class ?: "", QEMU_ERR_CANCELLED) || r->state != RUN_STARTING)
		return;
	if (status && !strcmp(status, "completed")) {
		if (qemu_vm_qmp(vm, "cont", NULL, on_resumed, r) < 0) {
			set_error(r, "restore: cannot resume QEMU");
			start_failed(r);
		}
		return;
	}
	if (err_class || !status || !strcmp(status, "failed") || ++r->socket_polls > SOCKET_POLLS) {
		set_error(r, "restore: QEMU did not load the saved state: %s",
			  err_class ? err_desc ?: err_class
			  : status ? json_string_value(json_object_get(res, "error-desc")) ?: status
				   : "no status");
		start_failed(r);
		return;
	}
	if (qb_loop_timer_add(r->d->loop, QB_LOOP_MED, SOCKET_POLL_MS * QB_TIME_NS_IN_MSEC, r,
			      restore_poll, &r->timer) == 0)
		r->timer_armed = true;
}

static void restore_poll(void *data)
{
	struct vm_run *r = data;

	r->timer_armed = false;
	if (!r->qemu || qemu_vm_qmp(r->qemu, "query-migrate", NULL, on_restore_status, r) < 0) {
		set_error(r, "restore: cannot talk to QEMU");
		start_failed(r);
	}
}

static void restore_fed(void *arg, int rc, const char *err)
{
	struct vm_run *r = arg;

	r->restoring = false;
	if (r->restore_cut >= 0)
		close(r->restore_cut);
	r->restore_cut = -1;
	if (r->state == RUN_STOPPING) {
		teardown_step(r);
		return;
	}
	if (rc) {
		set_error(r, "restore from its state LUN failed: %s", err);
		start_failed(r);
		return;
	}
	qb_log(LOG_NOTICE, "vm %s: its saved state is read back: waiting for QEMU to load it",
	       r->def.name);
	r->socket_polls = 0;
	restore_poll(r);
}

static void restore_feed(struct vm_run *r)
{
	char err[1024];
	int fd = r->restore_fd;

	r->restore_fd = -1;
	if (vmsave_restore(r->d, &r->def, fd, &r->restore_cut, restore_fed, r, err, sizeof(err))) {
		set_error(r, "restore: %s", err);
		start_failed(r);
		return;
	}
	r->restoring = true;
	qb_log(LOG_NOTICE, "vm %s: restoring its state from %s", r->def.name, r->def.state_lun);
}

static void on_incoming(qemu_vm_t *vm, json_t *result, const char *err_class,
			const char *err_desc, void *arg)
{
	struct vm_run *r = arg;

	if (err_class) {
		set_error(r, "QEMU refused migrate-incoming: %s: %s", err_class, err_desc ?: "");
		if (r->restore)
			start_failed(r);
		incoming_ready(r, -EIO);
		return;
	}
	if (r->restore) {
		restore_feed(r);
		return;
	}
	qb_log(LOG_NOTICE, "vm %s: waiting for the stream of migration %" PRIu64 " (pid %d, uid %u)",
	       r->def.name, r->mig_id, (int)qemu_vm_pid(vm), (unsigned)r->uid);
	incoming_ready(r, 0);
}

static void on_qemu_ready(qemu_vm_t *vm, void *arg)
{
	struct vm_run *r = arg;
	char uri[32];
	json_t *args;

	if (r->incoming || r->restore) {
		snprintf(uri, sizeof(uri), "fd:%d", r->qemu_in_fd);
		args = json_pack("{s:s}", "uri", uri);
		if (!args || qemu_vm_qmp(vm, "migrate-incoming", args, on_incoming, r) < 0) {
			set_error(r, "cannot send migrate-incoming to QEMU");
			incoming_ready(r, -EIO);
		}
		json_decref(args);
		return;
	}
	r->state = RUN_RUNNING;
	qb_log(LOG_NOTICE, "vm %s: running (pid %d, uid %u, epoch %" PRIu64 ")", r->def.name,
	       (int)qemu_vm_pid(vm), (unsigned)r->uid, r->epoch);
	agent_vm_running(r->d, r->def.name, r->epoch);
}

static void on_qemu_event(qemu_vm_t *vm, enum qemu_event ev, json_t *data, void *arg)
{
	struct vm_run *r = arg;
	const char *reason = json_string_value(json_object_get(data, "reason"));

	switch (ev) {
	case QEMU_EVENT_STOP:
		if (r->state == RUN_RUNNING) {
			r->state = RUN_PAUSED;
			if (!r->reason[0])
				snprintf(r->reason, sizeof(r->reason), "%s", "paused");
		}
		qb_log(LOG_NOTICE, "vm %s: paused (%s)", r->def.name, r->reason);
		break;
	case QEMU_EVENT_RESUME:
		if (r->state == RUN_PAUSED)
			r->state = RUN_RUNNING;
		r->reason[0] = '\0';
		qb_log(LOG_NOTICE, "vm %s: resumed", r->def.name);
		break;
	case QEMU_EVENT_BLOCK_IO_ERROR:
		/* with werror=stop the VM stops right after: say why */
		snprintf(r->reason, sizeof(r->reason), "io-error");
		set_error(r, "I/O error on %s (%s): the VM is paused; its LUN may have been "
			     "taken over by another node",
			  json_string_value(json_object_get(data, "device")) ?: "a disk",
			  reason ? reason : json_string_value(json_object_get(data, "operation"))
					?: "?");
		if (r->state == RUN_RUNNING)
			r->state = RUN_PAUSED;
		break;
	case QEMU_EVENT_GUEST_PANICKED:
		set_error(r, "guest panicked");
		break;
	default:
		qb_log(LOG_INFO, "vm %s: QEMU event %d", r->def.name, (int)ev);
		break;
	}
}

static void on_qemu_exited(qemu_vm_t *vm, int wstatus, bool expected, const char *stderr_tail,
			   void *arg)
{
	struct vm_run *r = arg;

	if (!expected) {
		if (WIFSIGNALED(wstatus))
			set_error(r, "QEMU died unexpectedly (signal %d): %s", WTERMSIG(wstatus),
				  stderr_tail && *stderr_tail ? stderr_tail : "no stderr output");
		else
			set_error(r, "QEMU exited unexpectedly (status %d): %s",
				  WEXITSTATUS(wstatus),
				  stderr_tail && *stderr_tail ? stderr_tail : "no stderr output");
		r->failed = true;
	} else {
		/* not asked to stop: the guest powered itself off */
		if (r->state != RUN_STOPPING)
			r->gone = VM_GONE_POWEROFF;
		qb_log(LOG_INFO, "vm %s: QEMU exited (%s)", r->def.name,
		       r->gone == VM_GONE_POWEROFF ? "powered off" : "stopped");
	}
	qemu_vm_destroy(r->qemu);
	r->qemu = NULL;
	if (r->state != RUN_STOPPING)
		r->state = RUN_STOPPING;
	teardown_step(r);
}

static const struct qemu_vm_ops qemu_ops = {
	.ready = on_qemu_ready,
	.event = on_qemu_event,
	.exited = on_qemu_exited,
};

/* A tap per NIC on its bridge; the fds go to QEMU. 0 or -errno with @err. */
static int open_taps(struct vm_run *r, struct hv_nic *nics, char *err, size_t errlen)
{
	char ifname[16], msg[512];
	int fd;

	for (size_t i = 0; i < r->def.nnics; i++) {
		snprintf(ifname, sizeof(ifname), "hv%un%u", r->slot % 100000, (unsigned)i % 10);
		fd = tap_open(ifname, r->def.nics[i].bridge, msg, sizeof(msg));
		if (fd < 0) {
			snprintf(err, errlen, "nic %zu: %s", i, msg);
			while (i-- > 0)
				close(nics[i].tap_fd);
			return fd;
		}
		nics[i] = (struct hv_nic){ .tap_fd = fd, .mac = r->def.nics[i].mac };
		qb_log(LOG_INFO, "vm %s: nic %zu: tap %s on bridge %s, mac %s", r->def.name, i,
		       ifname, r->def.nics[i].bridge, r->def.nics[i].mac);
	}
	return 0;
}

static void start_qemu(struct vm_run *r)
{
	struct hv_disk disks[VM_MAX_DISKS];
	struct hv_nic nics[VM_MAX_NICS];
	char socks[VM_MAX_DISKS][4200];
	struct hv_spec spec = { 0 };
	char err[1024];

	for (size_t i = 0; i < r->def.ndisks; i++) {
		snprintf(socks[i], sizeof(socks[i]), "%s/disk%zu.sock", r->dir, i);
		disks[i] = (struct hv_disk){
			.nbd_socket = socks[i],
			.bus = r->def.disks[i].bus == VM_BUS_IDE ? HV_BUS_IDE : HV_BUS_VIRTIO,
		};
	}
	spec.name = r->def.name;
	spec.uuid = r->def.uuid;
	spec.vcpus = r->def.vcpus;
	spec.memory_mb = r->def.memory_mb;
	spec.disks = disks;
	spec.ndisks = r->def.ndisks;
	spec.kernel = r->def.kernel[0] ? r->def.kernel : NULL;
	spec.initrd = r->def.initrd[0] ? r->def.initrd : NULL;
	spec.append = r->def.append[0] ? r->def.append : NULL;
	spec.dir = r->dir;
	spec.uid = r->uid;
	spec.gid = r->uid;
	spec.qemu_binary = r->d->cfg.qemu;
	if (r->incoming || r->restore) {
		/* QEMU inherits it at the same number: "fd:N" in migrate-incoming */
		spec.incoming_defer = true;
		spec.incoming_fd = r->incoming_fd;
		r->qemu_in_fd = r->incoming_fd;
	}
	if (open_taps(r, nics, err, sizeof(err))) {
		set_error(r, "cannot start QEMU: %s", err);
		start_failed(r);
		return;
	}
	spec.nics = nics;
	spec.nnics = r->def.nnics;
	r->qemu = qemu_vm_start(r->d->loop, &spec, &qemu_ops, r, err, sizeof(err));
	/* QEMU holds its copies now: the taps live exactly as long as it does */
	for (size_t i = 0; i < r->def.nnics; i++)
		close(nics[i].tap_fd);
	if (r->incoming_fd >= 0) {
		close(r->incoming_fd);
		r->incoming_fd = -1;
	}
	if (!r->qemu) {
		set_error(r, "cannot start QEMU: %s", err);
		start_failed(r);
		return;
	}
	qb_log(LOG_NOTICE, "vm %s: QEMU started, pid %d", r->def.name, (int)qemu_vm_pid(r->qemu));
}

/* --- disk servers ----------------------------------------------------------- */


static void poll_sockets(void *data)
{
	struct vm_run *r = data;
	char path[4200];
	struct stat st;

	r->timer_armed = false;
	for (size_t i = 0; i < r->def.ndisks; i++) {
		snprintf(path, sizeof(path), "%s/disk%zu.sock", r->dir, i);
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			continue;
		if (++r->socket_polls > SOCKET_POLLS) {
			set_error(r, "disk server of %s did not come up in %d s; see %s/disk%zu.log",
				  r->def.disks[i].url, SOCKET_POLLS * SOCKET_POLL_MS / 1000, r->dir,
				  i);
			start_failed(r);
			return;
		}
		if (qb_loop_timer_add(r->d->loop, QB_LOOP_MED, SOCKET_POLL_MS * QB_TIME_NS_IN_MSEC, r,
				      poll_sockets, &r->timer) == 0)
			r->timer_armed = true;
		return;
	}
	qb_log(LOG_INFO, "vm %s: %zu disk servers ready", r->def.name, r->def.ndisks);
	start_qemu(r);
}

/* fork + setuid + exec nbdkit serving disk @i on DIR/disk<i>.sock. */
static pid_t spawn_disk_server(struct vm_run *r, size_t i, char *err, size_t errlen)
{
	char sock[4200], log[4200], url[VM_URL_MAX + 8], init[300], purpose[80], key[40];
	const char *argv[16];
	int n = 0, fd;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/disk%zu.sock", r->dir, i);
	snprintf(log, sizeof(log), "%s/disk%zu.log", r->dir, i);
	snprintf(url, sizeof(url), "url=%s", r->def.disks[i].url);
	snprintf(init, sizeof(init), "initiator=%s", r->initiator);
	snprintf(purpose, sizeof(purpose), "purpose=vm:%s:%zu", r->def.uuid, i);
	snprintf(key, sizeof(key), "key=0x%016" PRIx64, r->key);
	unlink(sock);
	argv[n++] = r->d->cfg.nbdkit;
	argv[n++] = "--foreground";
	argv[n++] = "--unix";
	argv[n++] = sock;
	argv[n++] = "--threads";
	argv[n++] = "1";
	argv[n++] = r->d->cfg.nbdkit_plugin;
	argv[n++] = url;
	argv[n++] = init;
	argv[n++] = purpose;
	argv[n++] = key;
	if (r->incoming)
		argv[n++] = "register=lazy"; /* no key of ours on the LUN before the handoff */
	argv[n] = NULL;

	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		return pid;
	/* child: only async-signal-safe calls from here */
	setsid();
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	/* as root in a dir the VM's uid owns: never follow a link it planted, never block */
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	closefrom(3);
	if (setgroups(0, NULL) < 0 || setgid(r->uid) < 0 || setuid(r->uid) < 0)
		_exit(126);
	umask(0177);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static int make_vm_dir(struct vm_run *r, char *err, size_t errlen)
{
	char vms[4200];
	int rc;

	snprintf(vms, sizeof(vms), "%s/vms", r->d->cfg.run_dir);
	/* 0711: each VM's uid may pass through to its own dir, not list the others */
	if (mkdir(vms, 0711) < 0 && errno != EEXIST)
		goto err;
	chmod(vms, 0711);
	if (mkdir(r->dir, 0700) < 0 && errno != EEXIST)
		goto err;
	if (chown(r->dir, r->uid, r->uid) < 0 || chmod(r->dir, 0700) < 0)
		goto err;
	/*
	 * The console log survives restarts; it follows the VM's current uid. The VM's
	 * uid may have made it a symlink: chown must not follow it (spawn refuses it).
	 */
	snprintf(vms, sizeof(vms), "%s/console.log", r->dir);
	if (fchownat(AT_FDCWD, vms, r->uid, r->uid, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
		goto err;
	return 0;
err:
	rc = -errno;
	snprintf(err, errlen, "cannot prepare %.900s: %s", r->dir, strerror(-rc));
	return rc;
}

static void serve_disks(struct vm_run *r);

/*
 * The LUN job of a start (@what: "" or "handoff: ") is over: true when the
 * start goes on; else the run unwinds (stopped meanwhile, or the job failed).
 */
static bool luns_taken(struct vm_run *r, struct lun_job *job, int rc, const char *what)
{
	if (r->state == RUN_STOPPING) {
		/* stopped while the LUNs were being taken: give back what we got */
		r->luns_held = rc == 0;
		free(job);
		teardown_step(r);
		return false;
	}
	if (rc) {
		set_error(r, "%s%s", what, job->err);
		free(job);
		start_failed(r);
		return false;
	}
	free(job);
	r->luns_held = true;
	qb_log(LOG_NOTICE, "vm %s: owns its %zu LUNs %s(key 0x%016" PRIx64 ")", r->def.name,
	       r->def.ndisks, what, r->key);
	return true;
}

static void acquired(void *arg, int rc)
{
	struct lun_job *job = arg;
	struct vm_run *r = job->r;

	r->worker_busy = false;
	if (r->state == RUN_STARTING && !membership_is_quorate(r->d->membership)) {
		/* quorum went while the LUNs were taken: the quorate side may own the VM now */
		set_error(r, "quorum lost while starting: not started");
		r->failed = true;
		r->state = RUN_STOPPING;
	}
	if (luns_taken(r, job, rc, ""))
		serve_disks(r);
}

/* A disk server per LUN, then (once their sockets are there) QEMU. */
static void serve_disks(struct vm_run *r)
{
	char err[1024];

	if (make_vm_dir(r, err, sizeof(err))) {
		set_error(r, "%s", err);
		start_failed(r);
		return;
	}
	for (size_t i = 0; i < r->def.ndisks; i++) {
		r->nbd_pid[i] = spawn_disk_server(r, i, err, sizeof(err));
		if (r->nbd_pid[i] < 0) {
			r->nbd_pid[i] = 0;
			set_error(r, "cannot start the disk server of %s: %s", r->def.disks[i].url,
				  err);
			start_failed(r);
			return;
		}
		r->nbd_alive++;
		qb_log(LOG_INFO, "vm %s: disk server %zu for %s: pid %d", r->def.name, i,
		       r->def.disks[i].url, (int)r->nbd_pid[i]);
	}
	r->socket_polls = 0;
	poll_sockets(r);
}

/* --- commands ---------------------------------------------------------------- */

static int free_slot(struct hvnoded *d, unsigned int *slot)
{
	for (unsigned int s = 0; s < d->cfg.vm_uid_count; s++) {
		bool used = false;

		for (struct vm_run *r = d->runs; r && !used; r = r->next)
			used = r->state != RUN_STOPPED && r->slot == s;
		if (!used) {
			*slot = s;
			return 0;
		}
	}
	return -ENOSPC;
}

/* A run record for @def, set up but not started: NULL with @err. */
static struct vm_run *run_prepare(struct hvnoded *d, const struct vm_def *def, uint64_t epoch,
				  char *err, size_t errlen)
{
	struct vm_run *r = find_run(d, def->name);
	unsigned int slot;
	uint32_t nodeid = membership_local_id(d->membership);

	if (r && r->state != RUN_STOPPED) {
		snprintf(err, errlen, "vm %s is already %s here", def->name, state_names[r->state]);
		errno = EBUSY;
		return NULL;
	}
	/* a node without quorum starts nothing: the quorate side may own the VM */
	if (!membership_is_quorate(d->membership) || nodeid == 0) {
		snprintf(err, errlen, "vm %s not started: cluster not quorate", def->name);
		errno = EAGAIN;
		return NULL;
	}
	if (free_slot(d, &slot)) {
		snprintf(err, errlen, "vm %s not started: all %u VM uids are in use", def->name,
			 d->cfg.vm_uid_count);
		errno = ENOSPC;
		return NULL;
	}
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r) {
			snprintf(err, errlen, "out of memory");
			errno = ENOMEM;
			return NULL;
		}
		r->next = d->runs;
		d->runs = r;
	}
	r->d = d;
	r->def = *def;
	r->state = RUN_STARTING;
	r->reason[0] = '\0';
	r->last_error[0] = '\0';
	r->slot = slot;
	r->uid = d->cfg.vm_uid_base + slot;
	r->epoch = epoch;
	r->npreempt = 0;
	r->incoming = false;
	r->mig_id = 0;
	r->incoming_fd = -1;
	r->ready_cb = NULL;
	r->handoff_cb = NULL;
	r->restore = false;
	r->restoring = false;
	r->restore_fd = -1;
	r->restore_cut = -1;
	r->gone = VM_GONE_ASKED;
	r->failed = false;
	r->key = storage_node_key(d->cfg.cluster_name, nodeid);
	storage_initiator_name(r->initiator, sizeof(r->initiator), d->cfg.cluster_name,
			       d->cfg.node_name);
	vmrun_dir(d, def->name, r->dir, sizeof(r->dir));
	memset(r->nbd_pid, 0, sizeof(r->nbd_pid));
	r->nbd_alive = 0;
	return r;
}

static void set_preempt(struct vm_run *r, const uint64_t *preempt, size_t npreempt)
{
	r->npreempt = npreempt < STATE_MAX_NODES ? npreempt : STATE_MAX_NODES;
	memcpy(r->preempt, preempt, r->npreempt * sizeof(*preempt));
}

int vmrun_start(struct hvnoded *d, const struct vm_def *def, uint64_t epoch,
		const uint64_t *preempt, size_t npreempt, bool restore, char *err, size_t errlen)
{
	struct vm_run *r = run_prepare(d, def, epoch, err, errlen);
	struct lun_job *job;
	int sv[2];

	if (!r)
		return -errno;
	set_preempt(r, preempt, npreempt);
	if (restore) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			snprintf(err, errlen, "vm %s: socketpair: %s", def->name, strerror(errno));
			r->state = RUN_STOPPED;
			return -errno;
		}
		r->restore = true;
		r->incoming_fd = sv[1];
		r->restore_fd = sv[0];
	}
	qb_log(LOG_NOTICE, "vm %s: starting on node %s (uid %u, epoch %" PRIu64 ")", def->name,
	       d->cfg.node_name, (unsigned)r->uid, epoch);

	job = calloc(1, sizeof(*job));
	if (job) {
		job->r = r;
		if (work_submit(d, luns_acquire, acquired, job) == 0) {
			r->worker_busy = true;
			return 0;
		}
		free(job);
	}
	set_error(r, "cannot start a worker");
	start_failed(r);
	return 0;
}

/* --- migration ---------------------------------------------------------------------- */

int vmrun_incoming(struct hvnoded *d, const struct vm_def *def, uint64_t mig_id, int qemu_fd,
		   vmrun_ready_fn ready, void *arg, char *err, size_t errlen)
{
	struct vm_run *r = run_prepare(d, def, 0, err, errlen);

	if (!r) {
		close(qemu_fd);
		return -errno;
	}
	r->incoming = true;
	r->mig_id = mig_id;
	r->incoming_fd = qemu_fd;
	r->ready_cb = ready;
	r->ready_arg = arg;
	r->state = RUN_INCOMING;
	qb_log(LOG_NOTICE, "vm %s: target of migration %" PRIu64 " on node %s (uid %u): disk "
			   "servers without registration, QEMU -incoming",
	       def->name, mig_id, d->cfg.node_name, (unsigned)r->uid);
	serve_disks(r);
	return 0;
}


static void acquired_for_handoff(void *arg, int rc)
{
	struct lun_job *job = arg;
	struct vm_run *r = job->r;

	r->worker_busy = false;
	if (!luns_taken(r, job, rc, "handoff: "))
		return;
	if (!r->qemu || qemu_vm_qmp(r->qemu, "cont", NULL, on_resumed, r) < 0) {
		set_error(r, "handoff: cannot resume QEMU");
		start_failed(r);
	}
}

void vmrun_incoming_loaded(struct hvnoded *d, const char *name)
{
	struct vm_run *r = find_run(d, name);

	if (r && r->incoming)
		r->loaded_ms = mono_ms();
}

int vmrun_incoming_finish(struct hvnoded *d, const char *name, uint64_t epoch,
			  const uint64_t *preempt, size_t npreempt)
{
	struct vm_run *r = find_run(d, name);
	struct lun_job *job;

	if (!r || !r->incoming || r->state != RUN_INCOMING || !r->qemu)
		return -ENOENT;
	/* assigned here from now on: its end is reported like any start's */
	r->incoming = false;
	r->epoch = epoch;
	r->state = RUN_STARTING;
	set_preempt(r, preempt, npreempt);
	qb_log(LOG_NOTICE, "vm %s: handoff of migration %" PRIu64 ": taking its LUNs (epoch %" PRIu64
			   ")",
	       name, r->mig_id, epoch);
	job = calloc(1, sizeof(*job));
	if (job) {
		job->r = r;
		if (work_submit(d, luns_acquire, acquired_for_handoff, job) == 0) {
			r->worker_busy = true;
			return 0;
		}
		free(job);
	}
	set_error(r, "cannot start a worker");
	start_failed(r);
	return 0;
}

int vmrun_handoff(struct hvnoded *d, const char *name, vmrun_done_fn done, void *arg)
{
	struct vm_run *r = find_run(d, name);

	if (!r || r->state == RUN_STOPPED || r->state == RUN_STOPPING || r->incoming)
		return -ENOENT;
	qb_log(LOG_NOTICE, "vm %s: handoff: stopping QEMU, disk servers, releasing LUNs (epoch %" PRIu64
			   ")",
	       name, r->epoch);
	r->handoff_cb = done;
	r->handoff_arg = arg;
	r->last_error[0] = '\0';
	r->state = RUN_STOPPING;
	teardown_step(r);
	return 0;
}

qemu_vm_t *vmrun_qemu(struct hvnoded *d, const char *name)
{
	struct vm_run *r = find_run(d, name);

	return r && r->state != RUN_STOPPED && r->state != RUN_STOPPING ? r->qemu : NULL;
}

int vmrun_stop(struct hvnoded *d, const char *name)
{
	struct vm_run *r = find_run(d, name);

	if (!r || r->state == RUN_STOPPED)
		return -ENOENT;
	if (r->state == RUN_STOPPING)
		return -EALREADY;
	qb_log(LOG_NOTICE, "vm %s: stopping (hard, epoch %" PRIu64 ")", name, r->epoch);
	r->state = RUN_STOPPING;
	/* while the LUN worker runs, its completion finds RUN_STOPPING and unwinds */
	teardown_step(r);
	return 0;
}

bool vmrun_next(struct hvnoded *d, struct vm_run_iter *it)
{
	const struct vm_run *r = it->pos ? it->pos->next : d->runs;

	while (r && r->state == RUN_STOPPED)
		r = r->next;
	it->pos = r;
	if (!r)
		return false;
	it->name = r->def.name;
	it->epoch = r->epoch;
	it->stopping = r->state == RUN_STOPPING;
	it->incoming = r->incoming ? r->mig_id : 0;
	return true;
}

uint64_t vmrun_epoch(struct hvnoded *d, const char *name)
{
	struct vm_run *r = find_run(d, name);

	return r && r->state != RUN_STOPPED ? r->epoch : 0;
}

static void on_shutdown_done(qemu_vm_t *vm, bool forced, void *arg)
{
	struct vm_run *r = arg;

	if (forced)
		qb_log(LOG_WARNING, "vm %s: did not power off in time; killed", r->def.name);
}

static struct vm_run *active_run(struct hvnoded *d, const char *name, struct ipc_request *req)
{
	struct vm_run *r = find_run(d, name);

	if (!r || r->state == RUN_STOPPED) {
		ipc_request_fail(req, -EINVAL, "vm %s is not running on this node (%s)", name,
				 d->cfg.node_name);
		return NULL;
	}
	return r;
}

int vmrun_shutdown(struct hvnoded *d, const char *name, unsigned int timeout_s, char *err,
		   size_t errlen)
{
	struct vm_run *r = find_run(d, name);

	if (!r || (r->state != RUN_RUNNING && r->state != RUN_PAUSED)) {
		snprintf(err, errlen, "vm %s is %s on this node (%s)", name,
			 r ? state_names[r->state] : "not running", d->cfg.node_name);
		return -EINVAL;
	}
	qb_log(LOG_NOTICE, "vm %s: ACPI shutdown, hard stop after %u s", name, timeout_s);
	r->state = RUN_STOPPING;
	r->gone = VM_GONE_POWEROFF;
	return qemu_vm_shutdown(r->qemu, timeout_s * 1000, on_shutdown_done, r);
}

struct qmp_wait {
	struct vm_run *r;
	struct ipc_request *req;
	const char *what;
};

static void qmp_done(qemu_vm_t *vm, json_t *result, const char *err_class, const char *err_desc,
		     void *arg)
{
	struct qmp_wait *w = arg;
	json_t *res;

	if (err_class) {
		ipc_request_fail(w->req, -EIO, "vm %s: QEMU refused %s: %s: %s", w->r->def.name,
				 w->what, err_class, err_desc ? err_desc : "");
	} else {
		res = vm_def_to_json(&w->r->def);
		vmrun_describe(w->r->d, w->r->def.name, res);
		ipc_request_reply(w->req, 0, res);
		json_decref(res);
	}
	free(w);
}

static void qmp_simple(struct hvnoded *d, const char *name, struct ipc_request *req,
		       const char *cmd, const char *what)
{
	struct vm_run *r = active_run(d, name, req);
	struct qmp_wait *w;

	if (!r)
		return;
	if (!r->qemu || r->state == RUN_STARTING || r->state == RUN_STOPPING) {
		ipc_request_fail(req, -EBUSY, "vm %s is %s", name, state_names[r->state]);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		ipc_request_fail(req, -ENOMEM, "out of memory");
		return;
	}
	w->r = r;
	w->req = req;
	w->what = what;
	if (!strcmp(cmd, "stop"))
		snprintf(r->reason, sizeof(r->reason), "user");
	qb_log(LOG_NOTICE, "vm %s: %s", name, what);
	if (qemu_vm_qmp(r->qemu, cmd, NULL, qmp_done, w) < 0) {
		ipc_request_fail(req, -EIO, "vm %s: cannot talk to QEMU", name);
		free(w);
	}
}

void vmrun_pause(struct hvnoded *d, const char *name, struct ipc_request *req)
{
	qmp_simple(d, name, req, "stop", "pause");
}

void vmrun_resume(struct hvnoded *d, const char *name, struct ipc_request *req)
{
	qmp_simple(d, name, req, "cont", "resume");
}

static void disk_server_died(struct vm_run *r, size_t i, int wstatus)
{
	char how[64];

	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127)
		snprintf(how, sizeof(how), "could not be executed (%s)", r->d->cfg.nbdkit);
	else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 126)
		snprintf(how, sizeof(how), "could not drop to uid %u", (unsigned)r->uid);
	else if (WIFEXITED(wstatus))
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(wstatus));
	else
		snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(wstatus));
	set_error(r, "disk server of %s %s; see %s/disk%zu.log", r->def.disks[i].url, how, r->dir, i);
}

bool vmrun_child_exited(struct hvnoded *d, pid_t pid, int wstatus)
{
	for (struct vm_run *r = d->runs; r; r = r->next) {
		if (r->qemu && qemu_vm_pid(r->qemu) == pid) {
			qemu_vm_reaped(r->qemu, wstatus);
			return true;
		}
		for (size_t i = 0; i < r->def.ndisks; i++) {
			if (r->nbd_pid[i] != pid)
				continue;
			r->nbd_pid[i] = 0;
			r->nbd_alive--;
			if (r->state == RUN_STOPPING) {
				qb_log(LOG_INFO, "vm %s: disk server %zu exited", r->def.name, i);
			} else {
				disk_server_died(r, i, wstatus);
				if (r->state == RUN_STARTING && !r->failed) {
					start_failed(r);
					return true;
				}
			}
			if (r->state == RUN_STOPPING || r->state == RUN_STARTING)
				if (!r->qemu && !r->nbd_alive)
					teardown_step(r);
			return true;
		}
	}
	return false;
}

/*
 * QEMU and disk servers left by an earlier hvnoded of this host (a crash, a
 * kill) would go on writing unseen: every process of a VM uid dies before this
 * node joins the cluster, so its list of runs is the truth. The uid range is
 * hvcluster's alone (see [vm] uid_base).
 */
static void kill_leftovers(struct hvnoded *d)
{
	uid_t lo = d->cfg.vm_uid_base, hi = lo + d->cfg.vm_uid_count;
	unsigned int killed = 0;
	struct dirent *e;
	struct stat st;
	char path[300];
	DIR *proc;

	for (int round = 0; round < 20; round++) {
		unsigned int seen = 0;

		proc = opendir("/proc");
		if (!proc)
			return;
		while ((e = readdir(proc))) {
			pid_t pid = (pid_t)atoi(e->d_name);

			if (pid <= 1)
				continue;
			snprintf(path, sizeof(path), "/proc/%d", (int)pid);
			if (stat(path, &st) < 0 || st.st_uid < lo || st.st_uid >= hi)
				continue;
			seen++;
			if (kill(pid, SIGKILL) == 0 && round == 0)
				killed++;
		}
		closedir(proc);
		if (!seen)
			break;
		usleep(100 * 1000);
	}
	if (killed)
		qb_log(LOG_WARNING, "killed %u leftover VM processes (uids %u..%u) of an earlier "
				    "hvnoded",
		       killed, (unsigned)lo, (unsigned)hi - 1);
}

/* The dirs of VMs an earlier hvnoded ran here: root's, as after a stop. */
static void release_leftover_dirs(struct hvnoded *d)
{
	char vms[4200], dir[4200 + 2 + 256];
	struct dirent *e;
	DIR *dp;

	snprintf(vms, sizeof(vms), "%s/vms", d->cfg.run_dir);
	dp = opendir(vms);
	if (!dp)
		return;
	while ((e = readdir(dp)))
		if (e->d_name[0] != '.') {
			snprintf(dir, sizeof(dir), "%s/%s", vms, e->d_name);
			release_vm_dir(dir);
		}
	closedir(dp);
}

int vmrun_init(struct hvnoded *d)
{
	d->runs = NULL;
	kill_leftovers(d);
	release_leftover_dirs(d);
	return 0;
}

/* Daemon shutdown: nothing may keep writing to a LUN nobody manages. */
void vmrun_fini(struct hvnoded *d)
{
	struct vm_run *r, *next;
	struct lun_job job;
	int wstatus;

	/* a LUN job still running reads its run: let it finish, and start nothing more */
	for (r = d->runs; r; r = r->next) {
		if (r->state == RUN_STARTING)
			r->state = RUN_STOPPING;
		if (r->restoring)
			shutdown(r->restore_cut, SHUT_RDWR); /* else it waits for QEMU forever */
	}
	work_drain(d);
	for (r = d->runs; r; r = next) {
		next = r->next;
		cancel_timer(r);
		if (r->qemu) {
			pid_t pid = qemu_vm_pid(r->qemu);

			qb_log(LOG_WARNING, "vm %s: hvnoded stops: killing QEMU %d", r->def.name,
			       (int)pid);
			kill(pid, SIGKILL);
			waitpid(pid, &wstatus, 0);
			qemu_vm_destroy(r->qemu);
		}
		for (size_t i = 0; i < r->def.ndisks; i++) {
			if (r->nbd_pid[i] <= 0)
				continue;
			kill(r->nbd_pid[i], SIGTERM);
			waitpid(r->nbd_pid[i], &wstatus, 0);
		}
		if (r->luns_held) {
			job.r = r;
			if (luns_release(&job))
				qb_log(LOG_ERR, "vm %s: %s", r->def.name, job.err);
		}
		free(r);
	}
	d->runs = NULL;
}

/* One LUN of @def (@what: "disk N" or "state LUN"): reachable, its reservations, its size. */
static int probe_lun(const char *initiator, const struct vm_def *def, const char *url,
		     const char *what, bool need_pr, uint64_t min_bytes, char *err, size_t errlen)
{
	struct lun_pr_caps caps;
	struct lun_url u;
	lun_session_t *s;
	char msg[1024];
	int rc;

	rc = lun_url_parse(url, &u, msg, sizeof(msg));
	if (rc) {
		snprintf(err, errlen, "%s: %s", what, msg);
		return rc;
	}
	s = lun_open(url, initiator, "mgmt", 10, msg, sizeof(msg));
	if (!s) {
		snprintf(err, errlen, "%s: %s", what, msg);
		return -EHOSTUNREACH;
	}
	rc = need_pr ? lun_pr_capabilities(s, &caps, msg, sizeof(msg)) : 0;
	if (!rc && lun_size(s) < min_bytes) {
		snprintf(msg, sizeof(msg), "%" PRIu64 " MiB is less than the VM's memory (%" PRIu64
					   " MiB): its saved state may not fit",
			 lun_size(s) >> 20, def->memory_mb);
		rc = -ENOSPC;
	}
	lun_close(s);
	if (rc == -EOPNOTSUPP && min_bytes)
		snprintf(err, errlen, "%s: %s; hvcluster holds a state LUN under a reservation while "
				      "it writes it: use a LUN with persistent reservations",
			 what, msg);
	else if (rc == -EOPNOTSUPP)
		snprintf(err, errlen,
			 "%s: %s; hvcluster cannot guarantee that only one node writes to it. Use "
			 "another LUN, or accept the risk with --no-fence-storage (power fencing "
			 "only)",
			 what, msg);
	else if (rc)
		snprintf(err, errlen, "%s: %s", what, msg);
	return rc;
}

int vm_disks_probe(struct hvnoded *d, const struct vm_def *def, char *err, size_t errlen)
{
	char initiator[256], what[32];
	int rc;

	storage_initiator_name(initiator, sizeof(initiator), d->cfg.cluster_name,
			       d->cfg.node_name);
	for (size_t i = 0; i < def->ndisks; i++) {
		snprintf(what, sizeof(what), "disk %zu", i);
		rc = probe_lun(initiator, def, def->disks[i].url, what, def->fence_storage, 0, err,
			       errlen);
		if (rc)
			return rc;
	}
	if (def->state_lun[0])
		return probe_lun(initiator, def, def->state_lun, "state LUN", true,
				 def->memory_mb << 20, err, errlen);
	return 0;
}
