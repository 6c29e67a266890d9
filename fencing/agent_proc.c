/*
 * A fence agent's process: start it, capture its output, stop it at its timeout, reap it.
 *
 * hvnoded's SIGCHLD handler reaps with waitpid(-1), so a child of ours could lose its
 * exit status to it. The agent is therefore not our child: a helper is, created by
 * clone3() with no exit signal and never exec'ing, which keeps it a "clone child" that
 * waitpid(-1) does not see (an exec would make it an ordinary child again: the kernel
 * resets the exit signal at exec). The helper forks the agent, reports its pid, waits
 * for it, SIGKILLs what is left of its process group while the agent is still a zombie
 * (its pid, naming the group, cannot have been reused yet), reaps it and reports its
 * status, all through a pipe; we then reap the helper with __WALL. Where clone3 is
 * refused (kernels before 5.3, some seccomp profiles) the helper comes from fork(): a
 * foreign waitpid(-1) may then reap the helper, which costs nothing, as the agent's
 * status comes through the pipe.
 *
 * The helper and the agent, until its exec, do only async-signal-safe calls (hvnoded has
 * threads); the helper blocks every signal, the agent gets default dispositions back.
 * An exec failure reaches us through a CLOEXEC pipe.
 *
 * Our SIGTERM and SIGKILL at the timeout go to the agent's process group, before its
 * status has reached us. A process that left the group (setsid) escapes both.
 */
#include "agent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/close_range.h>

#define AGENT_ENV_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define REAP_WAIT_MS 5000 /* after SIGKILL, before giving up on an unkillable agent */
#define POLL_MAX_MS 60000
#define DRAIN_MAX (256 * 1024) /* read after the exit, from pipes a stray may still feed */

/* What the helper tells us, one fixed-size write each. */
enum { MSG_PID, MSG_EXIT, MSG_FAIL };

struct helper_msg {
	int kind;
	int pid;    /* MSG_PID */
	int code;   /* MSG_EXIT: si_code (CLD_EXITED, CLD_KILLED...); MSG_FAIL: errno */
	int status; /* MSG_EXIT: exit status or signal */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int fa_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		int hi;

		if (fds[i] > 2)
			continue;
		hi = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (hi < 0) {
			int rc = -errno;

			close(fds[0]);
			close(fds[1]);
			return rc;
		}
		close(fds[i]);
		fds[i] = hi;
	}
	return 0;
}

/* clone3() with @exit_signal and nothing shared: a fork that runs no atfork handler. */
static long raw_fork(int exit_signal)
{
	struct { /* struct clone_args, version 0 */
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = {.exit_signal = (uint64_t)exit_signal};

	return syscall(SYS_clone3, &args, sizeof(args));
}

/* --- the helper and the agent, between fork and exec ------------------------------------ */

/* What they need, all prepared before the helper exists. */
struct child_ctx {
	const char *path;
	char *const *argv;
	char *const *envp;
	int in_fd, out_fd, err_fd, report_fd, msg_fd;
	long max_fd;
};

static void write_all(int fd, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
}

static __attribute__((noreturn)) void agent_fail(const struct child_ctx *x)
{
	int e = errno;

	write_all(x->report_fd, &e, sizeof(e));
	_exit(127);
}

/*
 * glibc keeps signals 32 and 33 for itself and refuses them to sigaction(), but
 * an ignored one is inherited from whoever started us and survives exec: reset
 * it with the raw system call (the kernel's struct: handler, flags, restorer, mask).
 */
static void reset_reserved_signal(int sig)
{
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long mask;
	} k = { .handler = SIG_DFL };

	syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
}

static __attribute__((noreturn)) void agent_main(const struct child_ctx *x)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	/* hvnoded ignores SIGPIPE, and ignored signals survive exec: give the agent defaults */
	for (int sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, &dfl, NULL) < 0)
			reset_reserved_signal(sig);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		agent_fail(x);
	if (dup2(x->in_fd, 0) < 0 || dup2(x->out_fd, 1) < 0 || dup2(x->err_fd, 2) < 0)
		agent_fail(x);
	/* every other fd closes at exec; the report pipe must live until then */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		for (long fd = 3; fd < x->max_fd; fd++)
			fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	if (chdir("/") < 0)
		agent_fail(x);
	execve(x->path, x->argv, x->envp);
	agent_fail(x);
}

/* Only the message pipe stays open in the helper: it holds none of the daemon's fds. */
static void helper_close_fds(const struct child_ctx *x)
{
	unsigned int keep = (unsigned int)x->msg_fd; /* >= 3: fa_pipe() */

	if ((keep == 3 || close_range(3, keep - 1, 0) == 0) && close_range(keep + 1, ~0U, 0) == 0)
		return;
	for (long fd = 3; fd < x->max_fd; fd++)
		if (fd != (long)keep)
			close((int)fd);
}

static __attribute__((noreturn)) void helper_main(const struct child_ctx *x)
{
	struct helper_msg m = {.kind = MSG_PID};
	sigset_t all;
	siginfo_t si;
	long pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	pid = raw_fork(SIGCHLD);
#ifdef SYS_fork
	if (pid < 0 && (errno == ENOSYS || errno == EPERM))
		pid = syscall(SYS_fork);
#endif
	if (pid == 0)
		agent_main(x);
	if (pid < 0) {
		m = (struct helper_msg){.kind = MSG_FAIL, .code = errno};
		write_all(x->msg_fd, &m, sizeof(m));
		_exit(1);
	}
	helper_close_fds(x);
	m.pid = (int)pid;
	write_all(x->msg_fd, &m, sizeof(m));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	kill(-(pid_t)pid, SIGKILL); /* the agent is a zombie: its group id is still its own */
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED) < 0 && errno == EINTR)
		;
	m = (struct helper_msg){.kind = MSG_EXIT, .code = si.si_code, .status = si.si_status};
	write_all(x->msg_fd, &m, sizeof(m));
	_exit(0);
}

/* The helper: a clone child with no exit signal, or a forked one where clone3 is refused. */
static int start_helper(const struct child_ctx *x, pid_t *pid)
{
	long r = raw_fork(0);

	if (r == 0)
		helper_main(x);
	if (r < 0 && (errno == ENOSYS || errno == EPERM)) {
		r = fork();
		if (r == 0)
			helper_main(x);
	}
	if (r < 0)
		return -errno;
	*pid = (pid_t)r;
	return 0;
}

static void reap_helper(pid_t pid, bool block)
{
	siginfo_t si;

	/* ECHILD: a forked helper that a foreign waitpid(-1) took; nothing lost */
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | __WALL | (block ? 0 : WNOHANG)) < 0 &&
	       errno == EINTR)
		;
}

/* --- watching --------------------------------------------------------------------- */

struct watch {
	pid_t helper, agent;
	int out, err, msg;
	struct fa_end *end;
};

/* A whole message, or false at EOF or on a short read (the helper died). */
static bool read_msg(int fd, struct helper_msg *m)
{
	ssize_t n;

	do
		n = read(fd, m, sizeof(*m));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*m);
}

/* Reads what @fd has now; closes it at EOF, or once @budget (if any) is spent. */
static void read_fd(int *fd, bool is_stdout, struct fence_agent_result *res, struct fa_capture *cap,
		    size_t *budget)
{
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = read(*fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close_fd(fd);
			return;
		}
		fa_capture_add(res, cap, buf, (size_t)n, is_stdout);
		if (budget) {
			if (*budget <= (size_t)n) {
				close_fd(fd);
				return;
			}
			*budget -= (size_t)n;
		}
	}
}

static void on_exit_msg(struct watch *w, struct fence_agent_result *res)
{
	struct helper_msg m;

	w->end->exited = true;
	if (!read_msg(w->msg, &m) || m.kind != MSG_EXIT) {
		w->end->lost = true;
		return;
	}
	if (m.code == CLD_EXITED)
		res->exit_code = m.status;
	else
		res->term_signal = m.status;
}

/* Until the exit, or timeout + grace + REAP_WAIT_MS for what SIGKILL cannot end. */
static void watch(struct watch *w, unsigned int timeout_ms, unsigned int grace_ms,
		  struct fence_agent_result *res, struct fa_capture *cap, uint64_t start)
{
	uint64_t deadline = start + timeout_ms, kill_at = 0, give_up = 0, next, t;
	bool termed = false, killed = false;
	struct pollfd pfd[3];

	while (!w->end->exited) {
		t = now_ms();
		if (!termed && t >= deadline) {
			kill(-w->agent, SIGTERM);
			termed = res->timed_out = true;
			kill_at = t + grace_ms;
		}
		if (termed && !killed && t >= kill_at) {
			kill(-w->agent, SIGKILL);
			killed = true;
			give_up = t + REAP_WAIT_MS;
		}
		if (killed && t >= give_up)
			return;
		next = !termed ? deadline : !killed ? kill_at : give_up;
		if (next > t + POLL_MAX_MS)
			next = t + POLL_MAX_MS;
		pfd[0] = (struct pollfd){.fd = w->out, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = w->err, .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = w->msg, .events = POLLIN};
		if (poll(pfd, 3, (int)(next > t ? next - t : 0)) <= 0)
			continue;
		if (pfd[0].revents && w->out >= 0)
			read_fd(&w->out, true, res, cap, NULL);
		if (pfd[1].revents && w->err >= 0)
			read_fd(&w->err, false, res, cap, NULL);
		if (pfd[2].revents)
			on_exit_msg(w, res);
	}
}

/* After the exit (its group already swept by the helper): what output is left. */
static void drain(struct watch *w, struct fence_agent_result *res, struct fa_capture *cap)
{
	size_t budget = DRAIN_MAX;

	if (w->out >= 0)
		read_fd(&w->out, true, res, cap, &budget);
	if (w->err >= 0)
		read_fd(&w->err, false, res, cap, &budget);
}

/* The helper's first word: the agent's pid. 0, or -errno with @why. */
static int agent_started(struct watch *w, const char *path, char *why, size_t whylen)
{
	struct helper_msg m;

	if (!read_msg(w->msg, &m)) {
		snprintf(why, whylen, "cannot start %s: its helper process died", path);
		return -EIO;
	}
	if (m.kind != MSG_PID) {
		snprintf(why, whylen, "cannot start %s: %s", path,
			 strerror(m.kind == MSG_FAIL ? m.code : EIO));
		return m.kind == MSG_FAIL && m.code > 0 ? -m.code : -EIO;
	}
	w->agent = m.pid;
	w->end->pid = m.pid;
	return 0;
}

/* 0 once exec'd, else the agent's errno. */
static int wait_exec(int report_fd)
{
	ssize_t n;
	int e = 0;

	do
		n = read(report_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	return n == (ssize_t)sizeof(e) && e > 0 ? e : EIO;
}

int fa_proc_run(const char *path, int in_fd, unsigned int timeout_ms, unsigned int grace_ms,
		struct fence_agent_result *res, struct fa_capture *cap, struct fa_end *end,
		char *why, size_t whylen)
{
	char *argv[] = {(char *)path, NULL};
	char *envp[] = {(char *)AGENT_ENV_PATH, NULL};
	struct child_ctx x = {.path = path, .argv = argv, .envp = envp, .in_fd = in_fd};
	struct watch w = {.helper = -1, .agent = -1, .out = -1, .err = -1, .msg = -1, .end = end};
	int out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1}, msg[2] = {-1, -1};
	uint64_t start = now_ms();
	int rc;

	memset(end, 0, sizeof(*end));
	/* one stream, as 2>&1, so that the last line is the last one written; metadata
	 * keeps stdout apart, as it is the XML and stderr may carry warnings */
	rc = fa_pipe(out);
	if (!rc && cap->want_full)
		rc = fa_pipe(err);
	if (!rc)
		rc = fa_pipe(rep);
	if (!rc)
		rc = fa_pipe(msg);
	if (rc) {
		snprintf(why, whylen, "pipe: %s", strerror(-rc));
		goto out;
	}
	x.out_fd = out[1];
	x.err_fd = err[1] >= 0 ? err[1] : out[1];
	x.report_fd = rep[1];
	x.msg_fd = msg[1];
	x.max_fd = sysconf(_SC_OPEN_MAX);
	if (x.max_fd <= 0 || x.max_fd > 65536)
		x.max_fd = 65536;
	rc = start_helper(&x, &w.helper);
	if (rc) {
		snprintf(why, whylen, "cannot start %s: %s", path, strerror(-rc));
		goto out;
	}
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&rep[1]);
	close_fd(&msg[1]);
	w.msg = msg[0];
	msg[0] = -1;
	rc = agent_started(&w, path, why, whylen);
	if (rc)
		goto out_helper;
	rc = -wait_exec(rep[0]);
	if (rc) {
		snprintf(why, whylen, "cannot exec %s: %s", path, strerror(-rc));
		on_exit_msg(&w, res); /* its _exit(127), reported at once */
		goto out_helper;
	}
	w.out = out[0];
	w.err = err[0];
	out[0] = err[0] = -1;
	fcntl(w.out, F_SETFL, O_NONBLOCK);
	if (w.err >= 0)
		fcntl(w.err, F_SETFL, O_NONBLOCK);
	watch(&w, timeout_ms, grace_ms, res, cap, start);
	drain(&w, res, cap);
out_helper:
	/* an agent SIGKILL did not end leaves its helper waiting: not reaped, by necessity */
	reap_helper(w.helper, end->exited || rc);
	close_fd(&w.out);
	close_fd(&w.err);
	close_fd(&w.msg);
out:
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err[0]);
	close_fd(&err[1]);
	close_fd(&rep[0]);
	close_fd(&rep[1]);
	close_fd(&msg[0]);
	close_fd(&msg[1]);
	return rc;
}
