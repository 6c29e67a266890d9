/*
 * hv-run: the QEMU driver (hypervisor/) under a script, for test_hypervisor.sh.
 * It owns a qb_loop and SIGCHLD as hvnoded does, starts one VM, then runs
 * the actions given after "--" one after the other, printing what happens.
 *
 * Usage: hv-run --dir DIR --uid UID [--gid GID] [--name NAME] [--uuid UUID]
 *               [--vcpus N] [--memory MB] [--kernel PATH] [--initrd PATH]
 *               [--append STR] [--disk-file PATH[,ide][,ro]]... [--disk-nbd SOCK[,ide]]...
 *               [--nic MAC[,MODEL]]... [--qemu BIN] [--paused] -- ACTION...
 * (--nic: a NIC with no link; hv-run opens no tap.)
 *
 * Each ACTION is one word with its arguments after spaces:
 *   wait-ready [SECS]                 ops->ready came (default 60 s)
 *   wait-console TEXT [SECS]          a new console.log line contains TEXT (default 60 s)
 *   quiet-console TEXT SECS           no new console line contains TEXT for SECS
 *   pause | resume                    QMP stop / cont; fails on an error reply
 *   expect-state STATE [REASON] [SECS]  the driver's state becomes STATE (within 5 s)
 *   qmp CMD                           send CMD, print its reply; fails on an error
 *   qmp-bad                           send an unknown command: expects an error with class+desc
 *   pid                               print "pid N"
 *   sleep MS
 *   wait-file PATH [SECS]             wait until PATH exists (a go-ahead from the script)
 *   stop                              hard stop through the driver
 *   shutdown MS                       system_powerdown, SIGKILL after MS
 *   expect-exit expected|unexpected [signal=N] [status=N] [forced] [SECS]
 *
 * Exit: 0 when every action passed, 1 with "FAIL: ..." otherwise, 2 usage.
 * QEMU never outlives hv-run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qb/qbdefs.h>
#include <qb/qblog.h>
#include <qb/qbloop.h>
#include <qb/qbutil.h>

#include "../../hypervisor/hypervisor.h"

#define TICK_MS 50
#define MAX_ARGS 8

struct run {
	qb_loop_t *loop;
	qemu_vm_t *vm;
	pid_t pid;
	struct hv_spec spec;
	struct hv_disk disks[HV_DISKS_MAX];
	struct hv_nic nics[HV_NICS_MAX];
	char **actions;
	int nactions, cur;
	int rc;

	/* what happened */
	bool ready;
	bool exited;
	int wstatus;
	bool expected;
	bool shutdown_done;
	bool forced;

	/* the current action */
	char buf[1024];
	char *argv[MAX_ARGS + 1];
	int argc;
	bool started;
	uint64_t deadline;
	bool pass_at_deadline; /* quiet-console, sleep: running out of time is success */
	off_t console_off;
	bool replied;
	bool reply_error;
	char reply[1024];

	qb_loop_timer_handle tick;
};

static struct run run;

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

__attribute__((format(printf, 2, 3))) static int fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	r->rc = 1;
	qb_loop_stop(r->loop);
	return -1;
}

static uint64_t now_ns(void)
{
	return qb_util_nano_current_get();
}

/* --- driver callbacks --------------------------------------------------------- */

static void on_ready(qemu_vm_t *vm, void *arg)
{
	struct run *r = arg;
	const char *reason;
	enum qemu_state st = qemu_vm_state(vm, &reason);

	r->ready = true;
	say("ready state=%s%s%s", qemu_state_name(st), reason[0] ? " reason=" : "", reason);
}

static void on_event(qemu_vm_t *vm, enum qemu_event ev, json_t *data, void *arg)
{
	char *s = json_dumps(data, JSON_COMPACT);

	say("event %s %s", qemu_event_name(ev), s ? s : "?");
	free(s);
}

static void on_state(qemu_vm_t *vm, void *arg)
{
	const char *reason;
	enum qemu_state st = qemu_vm_state(vm, &reason);

	say("state %s%s%s", qemu_state_name(st), reason[0] ? " reason=" : "", reason);
}

static void on_exited(qemu_vm_t *vm, int wstatus, bool expected, const char *tail, void *arg)
{
	struct run *r = arg;
	const char *p = tail, *nl;

	r->exited = true;
	r->wstatus = wstatus;
	r->expected = expected;
	if (WIFSIGNALED(wstatus))
		say("exited %s signal=%d", expected ? "expected" : "unexpected", WTERMSIG(wstatus));
	else
		say("exited %s status=%d", expected ? "expected" : "unexpected",
		    WEXITSTATUS(wstatus));
	say("stderr-tail:");
	while (*p) {
		nl = strchrnul(p, '\n');
		say("  | %.*s", (int)(nl - p), p);
		p = *nl ? nl + 1 : nl;
	}
}

static void on_shutdown_done(qemu_vm_t *vm, bool forced, void *arg)
{
	struct run *r = arg;

	r->shutdown_done = true;
	r->forced = forced;
	say("shutdown-done forced=%d", forced);
}

static void on_reply(qemu_vm_t *vm, json_t *result, const char *err_class, const char *err_desc,
		     void *arg)
{
	struct run *r = arg;
	char *s;

	r->replied = true;
	r->reply_error = err_class != NULL;
	if (err_class) {
		snprintf(r->reply, sizeof(r->reply), "%s: %s", err_class, err_desc ? err_desc : "");
		say("qmp-error %s", r->reply);
		return;
	}
	s = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(r->reply, sizeof(r->reply), "%s", s ? s : "?");
	free(s);
	say("qmp-reply %s", r->reply);
}

static const struct qemu_vm_ops ops = {
	.ready = on_ready,
	.event = on_event,
	.state_changed = on_state,
	.exited = on_exited,
};

/* --- console ------------------------------------------------------------------- */

static off_t console_size(struct run *r)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", r->spec.dir, HV_CONSOLE_LOG);
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Does a complete line written since r->console_off contain @text? Advances the offset. */
static bool console_has(struct run *r, const char *text)
{
	char path[PATH_MAX], buf[65536];
	bool found = false;
	ssize_t n;
	char *line, *nl;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", r->spec.dir, HV_CONSOLE_LOG);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = pread(fd, buf, sizeof(buf) - 1, r->console_off);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (line = buf; !found && (nl = memchr(line, '\n', buf + n - line)); line = nl + 1) {
		*nl = '\0';
		found = strstr(line, text) != NULL;
		if (found)
			say("console: %s", line);
	}
	r->console_off += line - buf;
	return found;
}

/* --- actions ---------------------------------------------------------------------- */

/* 1 done, 0 keep waiting, -1 failed (already reported). */
typedef int (*action_fn)(struct run *r);

static double arg_num(struct run *r, int i, double def)
{
	return i < r->argc ? strtod(r->argv[i], NULL) : def;
}

static void set_deadline(struct run *r, double secs)
{
	r->deadline = now_ns() + (uint64_t)(secs * 1e9);
}

static int act_wait_ready(struct run *r)
{
	if (!r->started)
		set_deadline(r, arg_num(r, 1, 60));
	if (r->exited)
		return fail(r, "QEMU exited before it was ready");
	return r->ready;
}

static int act_wait_console(struct run *r)
{
	if (r->argc < 2)
		return fail(r, "wait-console needs a text");
	if (!r->started) {
		set_deadline(r, arg_num(r, 2, 60));
		r->console_off = console_size(r);
	}
	return console_has(r, r->argv[1]);
}

static int act_quiet_console(struct run *r)
{
	if (r->argc < 3)
		return fail(r, "quiet-console needs a text and seconds");
	if (!r->started) {
		set_deadline(r, arg_num(r, 2, 0));
		r->pass_at_deadline = true;
		r->console_off = console_size(r);
	}
	if (console_has(r, r->argv[1]))
		return fail(r, "console printed '%s' while it should be quiet", r->argv[1]);
	return 0;
}

static int wait_reply(struct run *r, int rc, const char *what)
{
	if (!r->started) {
		if (rc)
			return fail(r, "%s: %s", what, strerror(-rc));
		set_deadline(r, 10);
		return 0;
	}
	if (!r->replied)
		return 0;
	if (r->reply_error)
		return fail(r, "%s: %s", what, r->reply);
	return 1;
}

static int act_pause(struct run *r)
{
	return wait_reply(r, r->started ? 0 : qemu_vm_pause(r->vm, on_reply, r), "pause");
}

static int act_resume(struct run *r)
{
	return wait_reply(r, r->started ? 0 : qemu_vm_resume(r->vm, on_reply, r), "resume");
}

static int act_qmp(struct run *r)
{
	if (r->argc < 2)
		return fail(r, "qmp needs a command");
	return wait_reply(r, r->started ? 0 : qemu_vm_qmp(r->vm, r->argv[1], NULL, on_reply, r),
			  r->argv[1]);
}

static int act_qmp_bad(struct run *r)
{
	int rc;

	if (!r->started) {
		rc = qemu_vm_qmp(r->vm, "hv-run-no-such-command", NULL, on_reply, r);
		if (rc)
			return fail(r, "qmp-bad: %s", strerror(-rc));
		set_deadline(r, 10);
		return 0;
	}
	if (!r->replied)
		return 0;
	if (!r->reply_error)
		return fail(r, "QEMU accepted an unknown command: %s", r->reply);
	/* "Class: desc", both non-empty */
	if (!strstr(r->reply, ": ") || r->reply[0] == ':' || !strstr(r->reply, ": ")[2])
		return fail(r, "error without class and desc: '%s'", r->reply);
	return 1;
}

static int act_expect_state(struct run *r)
{
	const char *reason;
	enum qemu_state st;

	const char *want_reason = NULL;

	if (r->argc < 2)
		return fail(r, "expect-state needs a state");
	for (int i = 2; i < r->argc; i++) {
		if (r->argv[i][0] >= '0' && r->argv[i][0] <= '9') {
			if (!r->started)
				set_deadline(r, strtod(r->argv[i], NULL));
		} else {
			want_reason = r->argv[i];
		}
	}
	if (!r->started && !r->deadline)
		set_deadline(r, 5);
	st = qemu_vm_state(r->vm, &reason);
	if (strcmp(qemu_state_name(st), r->argv[1]))
		return 0;
	return !want_reason || !strcmp(reason, want_reason);
}

static int act_pid(struct run *r)
{
	say("pid %d", (int)qemu_vm_pid(r->vm));
	return 1;
}

static int act_sleep(struct run *r)
{
	if (!r->started) {
		r->deadline = now_ns() + (uint64_t)arg_num(r, 1, 0) * QB_TIME_NS_IN_MSEC;
		r->pass_at_deadline = true;
	}
	return 0;
}

static int act_wait_file(struct run *r)
{
	if (r->argc < 2)
		return fail(r, "wait-file needs a path");
	if (!r->started)
		set_deadline(r, arg_num(r, 2, 60));
	return access(r->argv[1], F_OK) == 0;
}

static int act_stop(struct run *r)
{
	int rc = qemu_vm_stop(r->vm);

	return rc ? fail(r, "stop: %s", strerror(-rc)) : 1;
}

static int act_shutdown(struct run *r)
{
	int rc;

	if (r->argc < 2)
		return fail(r, "shutdown needs a timeout in ms");
	rc = qemu_vm_shutdown(r->vm, (unsigned int)arg_num(r, 1, 0), on_shutdown_done, r);
	return rc ? fail(r, "shutdown: %s", strerror(-rc)) : 1;
}

static int check_exit(struct run *r)
{
	bool want_expected = !strcmp(r->argv[1], "expected");

	if (r->expected != want_expected)
		return fail(r, "exit was %s", r->expected ? "expected" : "unexpected");
	for (int i = 2; i < r->argc; i++) {
		const char *a = r->argv[i];

		if (!strncmp(a, "signal=", 7) &&
		    (!WIFSIGNALED(r->wstatus) || WTERMSIG(r->wstatus) != atoi(a + 7)))
			return fail(r, "exit status 0x%x is not %s", r->wstatus, a);
		if (!strncmp(a, "status=", 7) &&
		    (!WIFEXITED(r->wstatus) || WEXITSTATUS(r->wstatus) != atoi(a + 7)))
			return fail(r, "exit status 0x%x is not %s", r->wstatus, a);
		if (!strcmp(a, "forced") && (!r->shutdown_done || !r->forced))
			return fail(r, "the shutdown was not forced (done %d)", r->shutdown_done);
	}
	return 1;
}

static int act_expect_exit(struct run *r)
{
	if (r->argc < 2 || (strcmp(r->argv[1], "expected") && strcmp(r->argv[1], "unexpected")))
		return fail(r, "expect-exit needs expected or unexpected");
	if (!r->started) {
		double secs = 60;

		for (int i = 2; i < r->argc; i++)
			if (r->argv[i][0] >= '0' && r->argv[i][0] <= '9')
				secs = strtod(r->argv[i], NULL);
		set_deadline(r, secs);
		say("waiting for QEMU %d to exit", (int)r->pid);
	}
	return r->exited ? check_exit(r) : 0;
}

static const struct {
	const char *name;
	action_fn fn;
} actions[] = {
	{"wait-ready", act_wait_ready},
	{"wait-console", act_wait_console},
	{"quiet-console", act_quiet_console},
	{"pause", act_pause},
	{"resume", act_resume},
	{"expect-state", act_expect_state},
	{"qmp", act_qmp},
	{"qmp-bad", act_qmp_bad},
	{"pid", act_pid},
	{"sleep", act_sleep},
	{"wait-file", act_wait_file},
	{"stop", act_stop},
	{"shutdown", act_shutdown},
	{"expect-exit", act_expect_exit},
};

static action_fn find_action(const char *name)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(actions[i].name, name))
			return actions[i].fn;
	return NULL;
}

/* Split the current action into words. */
static void split_action(struct run *r, const char *action)
{
	char *save = NULL, *w;

	snprintf(r->buf, sizeof(r->buf), "%s", action);
	r->argc = 0;
	for (w = strtok_r(r->buf, " ", &save); w && r->argc < MAX_ARGS;
	     w = strtok_r(NULL, " ", &save))
		r->argv[r->argc++] = w;
	r->argv[r->argc] = NULL;
}

static void tick(void *data)
{
	struct run *r = data;
	action_fn fn;
	int rc;

	while (r->cur < r->nactions) {
		if (!r->started) {
			split_action(r, r->actions[r->cur]);
			r->deadline = 0;
			r->pass_at_deadline = false;
			r->replied = false;
		}
		fn = r->argc ? find_action(r->argv[0]) : NULL;
		if (!fn) {
			fail(r, "unknown action '%s'", r->actions[r->cur]);
			return;
		}
		rc = fn(r);
		r->started = true;
		if (rc < 0)
			return;
		if (rc == 0 && r->deadline && now_ns() >= r->deadline) {
			if (!r->pass_at_deadline) {
				fail(r, "timed out: %s", r->actions[r->cur]);
				return;
			}
			rc = 1;
		}
		if (rc == 0)
			break;
		say("ok: %s", r->actions[r->cur]);
		r->cur++;
		r->started = false;
	}
	if (r->cur == r->nactions) {
		qb_loop_stop(r->loop);
		return;
	}
	qb_loop_timer_add(r->loop, QB_LOOP_LOW, TICK_MS * QB_TIME_NS_IN_MSEC, r, tick, &r->tick);
}

/* --- signals, options, main --------------------------------------------------------- */

static int32_t on_sigchld(int32_t sig, void *data)
{
	struct run *r = data;
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
		if (r->vm && pid == r->pid)
			qemu_vm_reaped(r->vm, wstatus);
	return 0;
}

static int32_t on_term(int32_t sig, void *data)
{
	fail(data, "hv-run got signal %d", sig);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: hv-run --dir DIR --uid UID [options] -- ACTION... (see hv-run.c)\n");
	return 2;
}

static int add_disk(struct run *r, char *arg, bool nbd)
{
	struct hv_disk *d;
	char *opt;

	if (r->spec.ndisks >= HV_DISKS_MAX)
		return -1;
	d = &r->disks[r->spec.ndisks++];
	opt = strchr(arg, ',');
	if (opt)
		*opt++ = '\0';
	if (nbd)
		d->nbd_socket = arg;
	else
		d->file = arg;
	for (char *o = opt; o && *o; o = opt) {
		opt = strchr(o, ',');
		if (opt)
			*opt++ = '\0';
		if (!strcmp(o, "ide"))
			d->bus = HV_BUS_IDE;
		else if (!strcmp(o, "virtio"))
			d->bus = HV_BUS_VIRTIO;
		else if (!strcmp(o, "ro"))
			d->readonly = true;
		else
			return -1;
		if (!opt)
			break;
	}
	return 0;
}

/* MAC[,MODEL]: a NIC with no link (hv-run opens no tap). */
static int add_nic(struct run *r, char *arg)
{
	struct hv_nic *n;
	char *model = strchr(arg, ',');

	if (r->spec.nnics >= HV_NICS_MAX)
		return -1;
	n = &r->nics[r->spec.nnics++];
	if (model)
		*model++ = '\0';
	*n = (struct hv_nic){.tap_fd = -1, .mac = arg, .model = model};
	return 0;
}

static int parse_options(struct run *r, int argc, char **argv)
{
	struct hv_spec *s = &r->spec;
	int i;

	*s = (struct hv_spec){
		.name = "hvrun",
		.vcpus = 1,
		.memory_mb = 32,
		.disks = r->disks,
		.nics = r->nics,
	};
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		const char *o = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--paused")) {
			s->start_paused = true;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (!strcmp(o, "--dir"))
			s->dir = v;
		else if (!strcmp(o, "--uid"))
			s->uid = atoi(v);
		else if (!strcmp(o, "--gid"))
			s->gid = atoi(v);
		else if (!strcmp(o, "--name"))
			s->name = v;
		else if (!strcmp(o, "--uuid"))
			s->uuid = v;
		else if (!strcmp(o, "--vcpus"))
			s->vcpus = atoi(v);
		else if (!strcmp(o, "--memory"))
			s->memory_mb = strtoull(v, NULL, 10);
		else if (!strcmp(o, "--kernel"))
			s->kernel = v;
		else if (!strcmp(o, "--initrd"))
			s->initrd = v;
		else if (!strcmp(o, "--append"))
			s->append = v;
		else if (!strcmp(o, "--qemu"))
			s->qemu_binary = v;
		else if (!strcmp(o, "--nic")) {
			if (add_nic(r, v))
				return -1;
		} else if (!strcmp(o, "--disk-file") || !strcmp(o, "--disk-nbd")) {
			if (add_disk(r, v, !strcmp(o, "--disk-nbd")))
				return -1;
		} else
			return -1;
	}
	if (!s->dir || !s->uid)
		return -1;
	if (!s->gid)
		s->gid = s->uid;
	r->actions = i < argc ? argv + i + 1 : NULL;
	r->nactions = i < argc ? argc - i - 1 : 0;
	return 0;
}

static void setup_log(void)
{
	qb_log_init("hv-run", LOG_DAEMON, LOG_DEBUG);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_INFO);
	qb_log_format_set(QB_LOG_STDERR, "%t %N[%P] %p %f: %b");
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
}

/* QEMU never outlives us. */
static void finish(struct run *r)
{
	int wstatus;

	if (r->vm && qemu_vm_pid(r->vm) > 0) {
		say("hv-run: killing QEMU %d", (int)r->pid);
		kill(r->pid, SIGKILL);
		while (waitpid(r->pid, &wstatus, 0) < 0 && errno == EINTR)
			;
	}
	qemu_vm_destroy(r->vm);
	r->vm = NULL;
}

int main(int argc, char **argv)
{
	struct run *r = &run;
	qb_loop_signal_handle h;
	char err[1024];

	if (parse_options(r, argc, argv))
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup_log();
	r->loop = qb_loop_create();
	if (!r->loop) {
		fprintf(stderr, "hv-run: cannot create a loop\n");
		return 1;
	}
	qb_loop_signal_add(r->loop, QB_LOOP_HIGH, SIGCHLD, r, on_sigchld, &h);
	qb_loop_signal_add(r->loop, QB_LOOP_HIGH, SIGTERM, r, on_term, &h);
	qb_loop_signal_add(r->loop, QB_LOOP_HIGH, SIGINT, r, on_term, &h);

	r->vm = qemu_vm_start(r->loop, &r->spec, &ops, r, err, sizeof(err));
	if (!r->vm) {
		say("FAIL: cannot start QEMU: %s", err);
		qb_loop_destroy(r->loop);
		qb_log_fini();
		return 1;
	}
	r->pid = qemu_vm_pid(r->vm);
	say("started pid %d", (int)r->pid);
	qb_loop_timer_add(r->loop, QB_LOOP_LOW, TICK_MS * QB_TIME_NS_IN_MSEC, r, tick, &r->tick);
	qb_loop_run(r->loop);
	finish(r);
	qb_loop_destroy(r->loop);
	qb_log_fini();
	if (!r->rc)
		say("PASS: %d actions", r->nactions);
	return r->rc;
}
