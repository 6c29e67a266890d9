/*
 * One QEMU: lifecycle on the caller's loop.
 *
 * start: spawn (with -S) -> connect to DIR/qmp.sock, retrying while QEMU
 * comes up -> greeting, qmp_capabilities -> query-status -> cont (unless
 * the caller wants it paused) -> ops->ready. The QMP connection is checked
 * to be QEMU's own (SO_PEERCRED pid and uid): the socket lives in a
 * directory the VM's uid controls. A lost connection is reconnected and the
 * state resynchronised with query-status; events missed meanwhile are lost.
 *
 * The exit comes from the caller (qemu_vm_reaped(), it owns SIGCHLD) and is
 * expected after qemu_vm_stop()/qemu_vm_shutdown() or a guest power-off.
 */
#include "hypervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qb/qbdefs.h>
#include <qb/qblog.h>

#include "qmp.h"
#include "spawn.h"

/*
 * QEMU opens its QMP socket some 20-40 ms after exec (TCG, a small guest): until it is
 * ready, retry after 5, 10, 20... ms, at most CONNECT_RETRY_MS apart. A fixed 100 ms kept
 * a migration's target waiting that long for nothing (its start is on the critical path).
 */
#define CONNECT_FIRST_MS 5
#define CONNECT_RETRY_MS 100
#define RECONNECT_MS 1000
#define START_TIMEOUT_MS 30000
#define TAIL_LINES 10
#define TAIL_MAX 4200

struct qemu_vm {
	qb_loop_t *loop;
	const struct qemu_vm_ops *ops;
	void *arg;
	char *name;
	char *dir;
	char qmp_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uid_t uid;
	bool start_paused;
	bool incoming;

	pid_t pid; /* 0 once reaped */
	pid_t spawned;
	off_t stderr_start;

	enum qemu_state state;
	char reason[32];
	bool ready_sent;
	unsigned int connect_backoff_ms; /* the next retry before the first QMP greeting */
	bool io_error_hint;	 /* BLOCK_IO_ERROR with action stop: the STOP is for it */
	unsigned int user_stops; /* our QMP stop commands in flight */

	qmp_client_t *qmp;
	qb_loop_timer_handle connect_timer;
	bool connect_armed;
	bool connect_warned;
	char connect_error[512];	  /* the last failed attempt */
	qb_loop_timer_handle start_timer; /* not ready in time: the start failed */
	bool start_armed;

	bool killed; /* we sent SIGKILL */
	bool stop_requested;
	bool shutdown_requested;
	bool guest_shutdown;	 /* SHUTDOWN event from the guest itself */
	bool forced;		 /* the shutdown ended in SIGKILL */
	char start_failure[256]; /* why we killed it before it was ready */
	qemu_shutdown_fn shutdown_cb;
	void *shutdown_arg;
	unsigned int shutdown_ms;
	qb_loop_timer_handle kill_timer;
	bool kill_armed;

	unsigned int depth; /* in a callback: destroy only marks */
	bool destroyed;
};

/* A QMP command of ours or the caller's, on its way. */
struct pending {
	qemu_vm_t *vm;
	qemu_qmp_fn cb;
	void *arg;
	bool user_stop;
};

static const char *const state_names[] = {
	[QEMU_STATE_STARTING] = "starting", [QEMU_STATE_RUNNING] = "running",
	[QEMU_STATE_PAUSED] = "paused",	    [QEMU_STATE_SHUTTING_DOWN] = "shutting-down",
	[QEMU_STATE_EXITED] = "exited",
};

static const char *const event_names[] = {
	[QEMU_EVENT_OTHER] = "OTHER",
	[QEMU_EVENT_SHUTDOWN] = "SHUTDOWN",
	[QEMU_EVENT_POWERDOWN] = "POWERDOWN",
	[QEMU_EVENT_RESET] = "RESET",
	[QEMU_EVENT_STOP] = "STOP",
	[QEMU_EVENT_RESUME] = "RESUME",
	[QEMU_EVENT_SUSPEND] = "SUSPEND",
	[QEMU_EVENT_WAKEUP] = "WAKEUP",
	[QEMU_EVENT_BLOCK_IO_ERROR] = "BLOCK_IO_ERROR",
	[QEMU_EVENT_GUEST_PANICKED] = "GUEST_PANICKED",
	[QEMU_EVENT_WATCHDOG] = "WATCHDOG",
	[QEMU_EVENT_MIGRATION] = "MIGRATION",
	[QEMU_EVENT_MIGRATION_PASS] = "MIGRATION_PASS",
};

const char *qemu_state_name(enum qemu_state st)
{
	return (unsigned)st < sizeof(state_names) / sizeof(state_names[0]) ? state_names[st] : "?";
}

const char *qemu_event_name(enum qemu_event ev)
{
	return (unsigned)ev < sizeof(event_names) / sizeof(event_names[0]) ? event_names[ev] : "?";
}

static enum qemu_event event_from_name(const char *name)
{
	for (size_t i = 1; i < sizeof(event_names) / sizeof(event_names[0]); i++)
		if (!strcmp(name, event_names[i]))
			return (enum qemu_event)i;
	return QEMU_EVENT_OTHER;
}

/* --- lifetime -------------------------------------------------------------- */

static void hold(qemu_vm_t *vm)
{
	vm->depth++;
}

static void put(qemu_vm_t *vm)
{
	if (--vm->depth || !vm->destroyed)
		return;
	free(vm->name);
	free(vm->dir);
	free(vm);
}

static bool alive(const qemu_vm_t *vm)
{
	return !vm->destroyed && vm->pid > 0;
}

static void cancel_timer(qemu_vm_t *vm, qb_loop_timer_handle *t, bool *armed)
{
	if (*armed)
		qb_loop_timer_del(vm->loop, *t);
	*armed = false;
}

static void set_state(qemu_vm_t *vm, enum qemu_state st, const char *reason)
{
	vm->state = st;
	snprintf(vm->reason, sizeof(vm->reason), "%s", st == QEMU_STATE_PAUSED ? reason : "");
}

/* After a change QEMU made (not one the caller made itself). */
static void notify_state(qemu_vm_t *vm, enum qemu_state old, const char *old_reason)
{
	if (vm->destroyed || !vm->ready_sent || !vm->ops->state_changed)
		return;
	if (old == vm->state && !strcmp(old_reason, vm->reason))
		return;
	vm->ops->state_changed(vm, vm->arg);
}

static void kill_qemu(qemu_vm_t *vm)
{
	if (vm->pid <= 0)
		return;
	if (kill(vm->pid, SIGKILL) < 0)
		qb_log(LOG_ERR, "vm %s: kill QEMU %d: %s", vm->name, (int)vm->pid, strerror(errno));
	vm->killed = true;
}

static void start_failed(qemu_vm_t *vm, const char *why)
{
	if (vm->killed)
		return;
	snprintf(vm->start_failure, sizeof(vm->start_failure), "%s", why);
	qb_log(LOG_ERR, "vm %s: QEMU %d did not start: %s; killing it", vm->name, (int)vm->pid,
	       why);
	kill_qemu(vm);
}

/* --- QMP commands ---------------------------------------------------------- */

static void on_reply(json_t *result, const char *err_class, const char *err_desc, void *arg)
{
	struct pending *p = arg;
	qemu_vm_t *vm = p->vm;

	hold(vm);
	if (p->user_stop)
		vm->user_stops--;
	if (p->cb)
		p->cb(vm, result, err_class, err_desc, p->arg);
	free(p);
	put(vm);
}

static int send_cmd_fd(qemu_vm_t *vm, const char *cmd, json_t *args, int fd, qemu_qmp_fn cb,
		       void *arg, bool user_stop)
{
	struct pending *p;
	int rc;

	if (vm->destroyed)
		return -EINVAL;
	if (vm->pid <= 0)
		return -ESRCH;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct pending){.vm = vm, .cb = cb, .arg = arg, .user_stop = user_stop};
	rc = qmp_client_send_fd(vm->qmp, cmd, args, fd, on_reply, p);
	if (rc) {
		free(p);
		return rc;
	}
	vm->user_stops += user_stop;
	return 0;
}

static int send_cmd(qemu_vm_t *vm, const char *cmd, json_t *args, qemu_qmp_fn cb, void *arg,
		    bool user_stop)
{
	return send_cmd_fd(vm, cmd, args, -1, cb, arg, user_stop);
}

int qemu_vm_qmp_fd(qemu_vm_t *vm, const char *cmd, json_t *args, int fd, qemu_qmp_fn cb,
		   void *arg)
{
	return send_cmd_fd(vm, cmd, args, fd, cb, arg, false);
}

int qemu_vm_qmp(qemu_vm_t *vm, const char *cmd, json_t *args, qemu_qmp_fn cb, void *arg)
{
	return send_cmd(vm, cmd, args, cb, arg, false);
}

int qemu_vm_pause(qemu_vm_t *vm, qemu_qmp_fn cb, void *arg)
{
	return send_cmd(vm, "stop", NULL, cb, arg, true);
}

int qemu_vm_resume(qemu_vm_t *vm, qemu_qmp_fn cb, void *arg)
{
	return send_cmd(vm, "cont", NULL, cb, arg, false);
}

static void ready(qemu_vm_t *vm)
{
	vm->ready_sent = true;
	cancel_timer(vm, &vm->start_timer, &vm->start_armed);
	qb_log(LOG_NOTICE, "vm %s: QEMU %d ready, %s%s%s", vm->name, (int)vm->pid,
	       state_names[vm->state], vm->reason[0] ? " " : "", vm->reason);
	if (vm->ops->ready)
		vm->ops->ready(vm, vm->arg);
}

static void on_cont(qemu_vm_t *vm, json_t *result, const char *err_class, const char *err_desc,
		    void *arg)
{
	char why[256];

	if (!alive(vm) || vm->ready_sent)
		return;
	if (err_class) {
		snprintf(why, sizeof(why), "cont refused: %s: %s", err_class, err_desc);
		start_failed(vm, why);
		return;
	}
	if (vm->state == QEMU_STATE_STARTING)
		set_state(vm, QEMU_STATE_RUNNING, "");
	ready(vm);
}

/* query-status's "status" into our state; keeps shutting-down. */
static void apply_status(qemu_vm_t *vm, const char *status, bool running)
{
	if (vm->state == QEMU_STATE_SHUTTING_DOWN || vm->state == QEMU_STATE_EXITED)
		return;
	if (running)
		set_state(vm, QEMU_STATE_RUNNING, "");
	else
		set_state(vm, QEMU_STATE_PAUSED, !strcmp(status, "paused") ? "user" : status);
}

static void on_status(qemu_vm_t *vm, json_t *result, const char *err_class, const char *err_desc,
		      void *arg)
{
	enum qemu_state old = vm->state;
	char old_reason[sizeof(vm->reason)], why[256];
	const char *status = json_string_value(json_object_get(result, "status"));
	json_t *running = json_object_get(result, "running");

	if (!alive(vm))
		return;
	if (err_class || !status || !json_is_boolean(running)) {
		snprintf(why, sizeof(why), "query-status failed: %s: %s",
			 err_class ? err_class : "bad reply", err_desc ? err_desc : "");
		if (!vm->ready_sent)
			start_failed(vm, why);
		else if (!err_class || strcmp(err_class, QEMU_ERR_DISCONNECTED))
			qb_log(LOG_WARNING, "vm %s: %s", vm->name, why);
		return;
	}
	if (!vm->ready_sent && !strcmp(status, "prelaunch") && !vm->start_paused && !vm->incoming) {
		if (send_cmd(vm, "cont", NULL, on_cont, NULL, false))
			start_failed(vm, "cannot send cont");
		return;
	}
	snprintf(old_reason, sizeof(old_reason), "%s", vm->reason);
	apply_status(vm, status, json_is_true(running));
	if (!vm->ready_sent)
		ready(vm);
	else
		notify_state(vm, old, old_reason);
}

static void on_logged_error(qemu_vm_t *vm, json_t *result, const char *err_class,
			    const char *err_desc, void *arg)
{
	if (err_class && !vm->destroyed)
		qb_log(LOG_WARNING, "vm %s: QMP %s failed: %s: %s", vm->name, (const char *)arg,
		       err_class, err_desc);
}

/* --- QMP connection -------------------------------------------------------- */

static void on_qmp_ready(qmp_client_t *c, void *arg)
{
	qemu_vm_t *vm = arg;

	hold(vm);
	if (vm->connect_warned)
		qb_log(LOG_NOTICE, "vm %s: QMP connection back", vm->name);
	vm->connect_warned = false;
	if (send_cmd(vm, "query-status", NULL, on_status, NULL, false) && !vm->ready_sent)
		start_failed(vm, "cannot send query-status");
	put(vm);
}

/* Until query-status answers: the likely reason of a STOP. */
static const char *stop_reason(const qemu_vm_t *vm)
{
	if (vm->io_error_hint)
		return "io-error";
	if (vm->user_stops)
		return "user";
	return "paused";
}

static void on_qmp_event(qmp_client_t *c, const char *name, json_t *data, void *arg)
{
	qemu_vm_t *vm = arg;
	enum qemu_event ev = event_from_name(name);
	enum qemu_state old = vm->state;
	char old_reason[sizeof(vm->reason)];
	const char *action;

	hold(vm);
	snprintf(old_reason, sizeof(old_reason), "%s", vm->reason);
	qb_log(LOG_DEBUG, "vm %s: QMP event %s", vm->name, name);
	switch (ev) {
	case QEMU_EVENT_STOP:
		if (vm->ready_sent && old != QEMU_STATE_SHUTTING_DOWN) {
			set_state(vm, QEMU_STATE_PAUSED, stop_reason(vm));
			/* the exact run state (io-error, postmigrate, ...) */
			send_cmd(vm, "query-status", NULL, on_status, NULL, false);
		}
		break;
	case QEMU_EVENT_RESUME:
		vm->io_error_hint = false;
		if (vm->ready_sent && old != QEMU_STATE_SHUTTING_DOWN)
			set_state(vm, QEMU_STATE_RUNNING, "");
		break;
	case QEMU_EVENT_SHUTDOWN:
		vm->guest_shutdown = json_is_true(json_object_get(data, "guest"));
		set_state(vm, QEMU_STATE_SHUTTING_DOWN, "");
		break;
	case QEMU_EVENT_BLOCK_IO_ERROR:
		action = json_string_value(json_object_get(data, "action"));
		if (action && !strcmp(action, "stop"))
			vm->io_error_hint = true;
		qb_log(LOG_WARNING, "vm %s: I/O error on %s (%s, action %s)", vm->name,
		       json_string_value(json_object_get(data, "device")) ?: "?",
		       json_string_value(json_object_get(data, "operation")) ?: "?", action ?: "?");
		break;
	case QEMU_EVENT_GUEST_PANICKED:
		qb_log(LOG_WARNING, "vm %s: guest panicked", vm->name);
		break;
	default:
		break;
	}
	if (!vm->destroyed && vm->ops->event)
		vm->ops->event(vm, ev, data, vm->arg);
	notify_state(vm, old, old_reason);
	put(vm);
}

static void arm_connect(qemu_vm_t *vm, unsigned int ms);

static void on_qmp_broken(qmp_client_t *c, const char *why, void *arg)
{
	qemu_vm_t *vm = arg;

	if (!alive(vm) || vm->killed)
		return;
	/* QEMU may just have died: its exit, not this, is the news then */
	qb_log(LOG_INFO, "vm %s: QMP connection lost (%s); reconnecting", vm->name, why);
	vm->connect_warned = false;
	arm_connect(vm, vm->ready_sent ? RECONNECT_MS : CONNECT_RETRY_MS);
}

static const struct qmp_client_ops qmp_ops = {
	.ready = on_qmp_ready,
	.event = on_qmp_event,
	.broken = on_qmp_broken,
};

/* A connected socket, checked to be our QEMU's; -errno (retry) or -EPERM with @why. */
static int connect_qmp(qemu_vm_t *vm, char *why, size_t whylen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, rc;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -errno;
	}
	memcpy(sa.sun_path, vm->qmp_path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		rc = -errno;
		snprintf(why, whylen, "connect %s: %s", vm->qmp_path, strerror(errno));
		close(fd);
		return rc;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		rc = -errno;
		snprintf(why, whylen, "SO_PEERCRED on %s: %s", vm->qmp_path, strerror(errno));
		close(fd);
		return rc;
	}
	if (cred.pid != vm->pid || cred.uid != vm->uid) {
		snprintf(why, whylen, "%s is served by pid %d uid %u, not by QEMU %d uid %u",
			 vm->qmp_path, (int)cred.pid, (unsigned)cred.uid, (int)vm->pid,
			 (unsigned)vm->uid);
		close(fd);
		return -EPERM;
	}
	return fd;
}

static void try_connect(void *data)
{
	qemu_vm_t *vm = data;
	char why[512];
	int fd, rc;

	vm->connect_armed = false;
	if (!alive(vm) || vm->killed || qmp_client_is_attached(vm->qmp))
		return;
	hold(vm);
	fd = connect_qmp(vm, why, sizeof(why));
	if (fd >= 0) {
		rc = qmp_client_attach(vm->qmp, fd);
		if (!rc)
			goto out;
		snprintf(why, sizeof(why), "cannot watch the QMP socket: %s", strerror(-rc));
	}
	if (fd == -EPERM)
		qb_log(LOG_ERR, "vm %s: %s", vm->name, why);
	snprintf(vm->connect_error, sizeof(vm->connect_error), "%s", why);
	if (vm->ready_sent && !vm->connect_warned) {
		qb_log(LOG_WARNING, "vm %s: QMP: %s; retrying", vm->name, why);
		vm->connect_warned = true;
	}
	if (vm->ready_sent) {
		arm_connect(vm, RECONNECT_MS);
	} else {
		vm->connect_backoff_ms = vm->connect_backoff_ms ? vm->connect_backoff_ms * 2
								: CONNECT_FIRST_MS * 2;
		if (vm->connect_backoff_ms > CONNECT_RETRY_MS)
			vm->connect_backoff_ms = CONNECT_RETRY_MS;
		arm_connect(vm, vm->connect_backoff_ms);
	}
out:
	put(vm);
}

static void start_timeout(void *data)
{
	qemu_vm_t *vm = data;
	char why[sizeof(vm->connect_error) + 64];

	vm->start_armed = false;
	if (!alive(vm) || vm->ready_sent || vm->killed)
		return;
	hold(vm);
	snprintf(why, sizeof(why), "not ready within %d s%s%s", START_TIMEOUT_MS / 1000,
		 vm->connect_error[0] ? "; QMP: " : "", vm->connect_error);
	start_failed(vm, why);
	put(vm);
}

static void arm_connect(qemu_vm_t *vm, unsigned int ms)
{
	if (vm->connect_armed)
		return;
	if (qb_loop_timer_add(vm->loop, QB_LOOP_MED, ms * QB_TIME_NS_IN_MSEC, vm, try_connect,
			      &vm->connect_timer) == 0)
		vm->connect_armed = true;
	else
		qb_log(LOG_ERR, "vm %s: cannot arm the QMP connect timer", vm->name);
}

/* --- start / stop ------------------------------------------------------------ */

static qemu_vm_t *vm_alloc(qb_loop_t *loop, const struct hv_spec *s, const struct qemu_vm_ops *ops,
			   void *arg)
{
	qemu_vm_t *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->loop = loop;
	vm->ops = ops;
	vm->arg = arg;
	vm->uid = s->uid;
	vm->start_paused = s->start_paused;
	vm->incoming = s->incoming_defer;
	vm->state = QEMU_STATE_STARTING;
	vm->name = strdup(s->name);
	vm->dir = strdup(s->dir);
	snprintf(vm->qmp_path, sizeof(vm->qmp_path), "%s/%s", s->dir, HV_QMP_SOCKET);
	if (vm->name && vm->dir)
		vm->qmp = qmp_client_create(loop, vm->name, &qmp_ops, vm);
	if (!vm->qmp) {
		free(vm->name);
		free(vm->dir);
		free(vm);
		return NULL;
	}
	return vm;
}

qemu_vm_t *qemu_vm_start(qb_loop_t *loop, const struct hv_spec *s, const struct qemu_vm_ops *ops,
			 void *arg, char *err, size_t errlen)
{
	struct hv_caps caps;
	struct hv_proc proc = {0};
	char **argv;
	qemu_vm_t *vm;
	int rc;

	hv_probe_caps(&caps);
	if (caps.kvm && !hv_kvm_usable_by(s->uid, s->gid)) {
		qb_log(LOG_WARNING,
		       "vm %s: /dev/kvm is not open to %u:%u (it needs mode 0666, or the VM's "
		       "group): running it under TCG, much slower",
		       s->name, (unsigned)s->uid, (unsigned)s->gid);
		caps.kvm = false;
	}
	rc = hv_build_argv(s, &caps, &argv, err, errlen);
	if (rc)
		goto err;
	vm = vm_alloc(loop, s, ops, arg);
	if (!vm) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto err_argv;
	}
	rc = hv_spawn(s, argv, &proc, err, errlen);
	if (rc)
		goto err_vm;
	hv_argv_free(argv);
	vm->pid = vm->spawned = proc.pid;
	vm->stderr_start = proc.stderr_start;
	if (qb_loop_timer_add(loop, QB_LOOP_MED, START_TIMEOUT_MS * QB_TIME_NS_IN_MSEC, vm,
			      start_timeout, &vm->start_timer) == 0)
		vm->start_armed = true;
	qb_log(LOG_NOTICE, "vm %s: QEMU %d started as %u:%u (%s)", vm->name, (int)vm->pid,
	       (unsigned)s->uid, (unsigned)s->gid, caps.kvm ? "kvm" : "tcg");
	arm_connect(vm, CONNECT_FIRST_MS);
	return vm;

err_vm:
	vm->destroyed = true;
	hold(vm);
	qmp_client_destroy(vm->qmp);
	put(vm);
err_argv:
	hv_argv_free(argv);
err:
	errno = -rc;
	return NULL;
}

void qemu_vm_destroy(qemu_vm_t *vm)
{
	if (!vm || vm->destroyed)
		return;
	vm->destroyed = true;
	hold(vm);
	cancel_timer(vm, &vm->connect_timer, &vm->connect_armed);
	cancel_timer(vm, &vm->kill_timer, &vm->kill_armed);
	cancel_timer(vm, &vm->start_timer, &vm->start_armed);
	qmp_client_destroy(vm->qmp);
	put(vm);
}

pid_t qemu_vm_pid(const qemu_vm_t *vm)
{
	return vm->pid;
}

const char *qemu_vm_name(const qemu_vm_t *vm)
{
	return vm->name;
}

enum qemu_state qemu_vm_state(const qemu_vm_t *vm, const char **reason)
{
	if (reason)
		*reason = vm->reason;
	return vm->state;
}

int qemu_vm_stop(qemu_vm_t *vm)
{
	if (vm->pid <= 0)
		return -ESRCH;
	qb_log(LOG_INFO, "vm %s: killing QEMU %d (hard stop)", vm->name, (int)vm->pid);
	vm->stop_requested = true;
	if (vm->shutdown_requested && !vm->killed)
		vm->forced = true;
	cancel_timer(vm, &vm->kill_timer, &vm->kill_armed);
	kill_qemu(vm);
	set_state(vm, QEMU_STATE_SHUTTING_DOWN, "");
	return 0;
}

static void shutdown_timeout(void *data)
{
	qemu_vm_t *vm = data;

	vm->kill_armed = false;
	if (!alive(vm) || vm->killed)
		return;
	qb_log(LOG_WARNING, "vm %s: no power-off within %u ms; killing QEMU %d", vm->name,
	       vm->shutdown_ms, (int)vm->pid);
	vm->forced = true;
	kill_qemu(vm);
}

int qemu_vm_shutdown(qemu_vm_t *vm, unsigned int timeout_ms, qemu_shutdown_fn cb, void *arg)
{
	if (vm->pid <= 0)
		return -ESRCH;
	if (vm->shutdown_requested)
		return -EALREADY;
	vm->shutdown_requested = true;
	vm->shutdown_cb = cb;
	vm->shutdown_arg = arg;
	vm->shutdown_ms = timeout_ms;
	set_state(vm, QEMU_STATE_SHUTTING_DOWN, "");
	if (vm->killed)
		return 0;
	qb_log(LOG_INFO, "vm %s: system_powerdown, SIGKILL after %u ms", vm->name, timeout_ms);
	send_cmd(vm, "system_powerdown", NULL, on_logged_error, (void *)"system_powerdown", false);
	if (qb_loop_timer_add(vm->loop, QB_LOOP_MED, timeout_ms * QB_TIME_NS_IN_MSEC, vm,
			      shutdown_timeout, &vm->kill_timer) == 0) {
		vm->kill_armed = true;
	} else {
		qb_log(LOG_ERR, "vm %s: no timer for the shutdown: killing QEMU now", vm->name);
		vm->forced = true;
		kill_qemu(vm);
	}
	return 0;
}

/* --- exit ---------------------------------------------------------------------- */

static void describe_status(int wstatus, char *buf, size_t len)
{
	if (WIFSIGNALED(wstatus))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(wstatus),
			 strsignal(WTERMSIG(wstatus)));
	else if (WIFEXITED(wstatus))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(wstatus));
	else
		snprintf(buf, len, "wait status 0x%x", wstatus);
}

static void log_exit(qemu_vm_t *vm, pid_t pid, int wstatus, bool expected, const char *tail)
{
	char how[96], oneline[TAIL_MAX];
	size_t i;

	describe_status(wstatus, how, sizeof(how));
	if (expected) {
		qb_log(LOG_NOTICE, "vm %s: QEMU %d %s", vm->name, (int)pid, how);
		return;
	}
	for (i = 0; tail[i] && i + 1 < sizeof(oneline); i++)
		oneline[i] = tail[i] == '\n' ? '|' : tail[i];
	oneline[i] = '\0';
	qb_log(LOG_ERR, "vm %s: QEMU %d %s unexpectedly%s%s; stderr: %s", vm->name, (int)pid, how,
	       vm->start_failure[0] ? " after a failed start: " : "", vm->start_failure,
	       oneline[0] ? oneline : "(nothing)");
}

void qemu_vm_reaped(qemu_vm_t *vm, int wstatus)
{
	char tail[TAIL_MAX];
	pid_t pid = vm->pid;
	bool expected;

	if (pid <= 0 || vm->destroyed)
		return;
	hold(vm);
	/* the last words (SHUTDOWN, ...) may still be unread */
	qmp_client_drain(vm->qmp);
	vm->pid = 0;
	cancel_timer(vm, &vm->connect_timer, &vm->connect_armed);
	cancel_timer(vm, &vm->kill_timer, &vm->kill_armed);
	cancel_timer(vm, &vm->start_timer, &vm->start_armed);
	set_state(vm, QEMU_STATE_EXITED, "");
	qmp_client_detach(vm->qmp, QEMU_ERR_DISCONNECTED, "QEMU exited");
	qmp_client_fail_all(vm->qmp, QEMU_ERR_DISCONNECTED, "QEMU exited");

	expected = vm->stop_requested || vm->shutdown_requested ||
		(vm->guest_shutdown && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
	if (vm->start_failure[0])
		expected = false;
	hv_stderr_tail(vm->dir, vm->stderr_start, TAIL_LINES, tail, sizeof(tail));
	log_exit(vm, pid, wstatus, expected, tail);
	if (!vm->destroyed && vm->shutdown_requested && vm->shutdown_cb)
		vm->shutdown_cb(vm, vm->forced, vm->shutdown_arg);
	if (!vm->destroyed && vm->ops->exited)
		vm->ops->exited(vm, wstatus, expected, tail, vm->arg);
	put(vm);
}
