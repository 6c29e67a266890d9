/*
 * Unit tests of fencing/agent*.c: running fence agents in the fence-agents protocol.
 *
 * The agents are small shell scripts this test writes into a temporary directory:
 * one that succeeds, fails, hangs (with and without ignoring SIGTERM), leaves a child
 * behind, prints garbage or floods, records its stdin, argv, environment, cwd and fds,
 * lies about off, or keeps a power state in a file. Then the lab's own agent
 * (tests/lab/fence_lab) against a fake lab script, and, when Debian's fence-agents
 * package is installed, real agents: fence_dummy end to end (metadata, off confirmed
 * by status, on), and the metadata of a few hardware agents.
 *
 * The metadata parser also gets every truncation of a good document and random
 * garbage, each in a heap buffer of exactly its length, so a sanitized build
 * (SANITIZE=1) catches any read past the end.
 *
 * Every run must leave no child of ours behind: the agent is reaped, and what it
 * started in its process group is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../fencing/agent.h"

#define FENCE_DUMMY "/usr/sbin/fence_dummy"

static char dir[64];		 /* this run's temporary directory: /tmp/test_fencing.XXXXXX */
static char fence_lab[PATH_MAX]; /* tests/lab/fence_lab, absolute */

/* --- helpers ----------------------------------------------------------------------- */

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (!strstr(h_, n_))                                                               \
			fail_msg("\"%s\" does not contain \"%s\"", h_, n_);                        \
	} while (0)

#define assert_not_contains(hay, needle)                                                           \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (strstr(h_, n_))                                                                \
			fail_msg("\"%s\" contains \"%s\"", h_, n_);                                \
	} while (0)

static const char *path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
	return buf;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	fputs(content, f);
	if (fclose(f) != 0)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	if (chmod(path, mode) < 0)
		fail_msg("chmod %s: %s", path, strerror(errno));
}

/* Reads @path into @buf ("" if missing). */
static char *read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (!f)
		return buf;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/*
 * An agent: "#!/bin/sh" and @body, where every "@D" stands for the temporary directory
 * (the agent gets no environment to find it). Its absolute path goes into @path.
 */
static const char *make_agent(char *path, size_t len, const char *name, const char *body)
{
	char script[8192];
	size_t o = 0;

	o += (size_t)snprintf(script, sizeof(script), "#!/bin/sh\n");
	for (const char *p = body; *p && o < sizeof(script) - PATH_MAX; p++) {
		if (p[0] == '@' && p[1] == 'D') {
			o += (size_t)snprintf(script + o, sizeof(script) - o, "%s", dir);
			p++;
		} else {
			script[o++] = *p;
		}
	}
	script[o] = '\0';
	path_in(path, len, name);
	write_file(path, script, 0755);
	return path;
}

/* Whether @text has a line that is exactly @line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, line, n) && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Dead: gone, or a zombie (of init, its reaper). Waits up to @ms for it. */
static bool process_gone(pid_t pid, unsigned int ms)
{
	uint64_t end = now_ms() + ms;
	char path[64], stat[512];

	for (;;) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		read_file(path, stat, sizeof(stat));
		const char *rp = strrchr(stat, ')');

		if (!stat[0] || (rp && rp[1] == ' ' && rp[2] == 'Z'))
			return true;
		if (now_ms() >= end)
			return false;
		usleep(10000);
	}
}

static pid_t read_pid(const char *name)
{
	char path[PATH_MAX], buf[64];

	read_file(path_in(path, sizeof(path), name), buf, sizeof(buf));
	if (!buf[0])
		fail_msg("%s: no pid recorded", name);
	return (pid_t)atoi(buf);
}

/* No child of this process is left, zombie or not: the module reaped its agents. */
static void assert_no_children(void)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0)
		fail_msg("a child of ours is left: pid %d", (int)si.si_pid);
	assert_int_equal(errno, ECHILD);
}

static struct fence_agent_call call_of(const char *agent, const char *action, const char *plug)
{
	return (struct fence_agent_call){
		.agent = agent, .action = action, .plug = plug, .timeout_ms = 10000};
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	const char *top = getenv("HV_TOP");
	char buf[PATH_MAX], file[sizeof(__FILE__)];

	snprintf(dir, sizeof(dir), "/tmp/test_fencing.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	/* tests run from the repository top (tests/run); else from this file's place */
	if (top)
		snprintf(buf, sizeof(buf), "%s/tests/lab/fence_lab", top);
	else if (access("tests/lab/fence_lab", F_OK) == 0)
		snprintf(buf, sizeof(buf), "tests/lab/fence_lab");
	else
		snprintf(buf, sizeof(buf), "%s/../lab/fence_lab", dirname(strcpy(file, __FILE__)));
	if (!realpath(buf, fence_lab))
		fence_lab[0] = '\0';
	signal(SIGPIPE, SIG_IGN); /* as hvnoded: the agent must get it back to default */
	return 0;
}

static int group_teardown(void **state)
{
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- running: success, failure, the exact input ---------------------------------------- */

static void test_run_success(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c =
		call_of(make_agent(agent, sizeof(agent), "fence_ok",
				   "cat >/dev/null\necho 'Success: Powered OFF'\nexit 0\n"),
			"off", "n2");

	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 0);
	assert_int_equal(res.term_signal, 0);
	assert_false(res.timed_out);
	assert_string_equal(res.output, "Success: Powered OFF\n");
	assert_string_equal(res.summary,
			    "fence_ok action=off plug=n2: exit 0: Success: Powered OFF");
	assert_no_children();
}

static void test_run_exit_nonzero(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c = call_of(make_agent(agent, sizeof(agent), "fence_ipmilan",
						       "echo 'connecting'\necho 'Failed: Unable to "
						       "obtain correct plug status' >&2\n"
						       "exit 1\n"),
					    "off", "n2");

	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 1);
	assert_string_equal(res.summary,
			    "fence_ipmilan action=off plug=n2: exit 1: "
			    "Failed: Unable to obtain correct plug status");
	assert_contains(res.output, "connecting\n");

	make_agent(agent, sizeof(agent), "fence_quiet", "exit 3\n");
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 3);
	assert_string_equal(res.summary, "fence_quiet action=off plug=n2: exit 3 (no output)");
	assert_no_children();
}

/* stdin exactly as Pacemaker sends it; nothing of ours leaks into the agent. */
static void test_run_input_exact(void **state)
{
	const struct fence_agent_param params[] = {
		{.key = "ipaddr", .value = "10.0.0.9"},
		{.key = "login", .value = "admin"},
		{.key = "passwd", .value = NULL, .from_file = true},
	};
	struct fence_agent_param p[3];
	struct fence_agent_result res;
	char agent[PATH_MAX], pw[PATH_MAX], path[PATH_MAX], buf[8192];
	struct fence_agent_call c;
	int leak;

	memcpy(p, params, sizeof(p));
	p[2].value = path_in(pw, sizeof(pw), "ipmi.pw");
	write_file(pw, "s3cr3t-pw\n", 0600);
	make_agent(agent, sizeof(agent), "fence_record",
		   "cat > @D/stdin.txt\n"
		   "echo \"$# $0\" > @D/argv.txt\n"
		   "env > @D/env.txt\n"
		   "pwd > @D/cwd.txt\n"
		   "for f in /proc/$$/fd/*; do echo \"${f##*/}\"; done > @D/fds.txt\n"
		   "grep SigIgn /proc/$$/status > @D/sigign.txt\n"
		   "exit 0\n");
	c = call_of(agent, "off", "n2");
	c.nodename = "node2";
	c.params = p;
	c.nparams = 3;

	setenv("HV_TEST_LEAK", "1", 1);
	leak = dup2(open("/dev/null", O_RDONLY), 37); /* no CLOEXEC: must not reach the agent */
	assert_int_equal(leak, 37);
	assert_int_equal(fence_agent_run(&c, &res), 0);
	close(37);
	unsetenv("HV_TEST_LEAK");
	assert_int_equal(res.exit_code, 0);

	assert_string_equal(read_file(path_in(path, sizeof(path), "stdin.txt"), buf, sizeof(buf)),
			    "action=off\nplug=n2\nnodename=node2\nipaddr=10.0.0.9\nlogin=admin\n"
			    "passwd=s3cr3t-pw\n");
	/* no argument; argv[0] the path */
	read_file(path_in(path, sizeof(path), "argv.txt"), buf, sizeof(buf));
	assert_true(!strncmp(buf, "0 ", 2) && !strncmp(buf + 2, agent, strlen(agent)));
	read_file(path_in(path, sizeof(path), "env.txt"), buf, sizeof(buf));
	assert_contains(buf, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
	assert_not_contains(buf, "HV_TEST_LEAK");
	assert_not_contains(buf, "HOME=");
	assert_string_equal(read_file(path_in(path, sizeof(path), "cwd.txt"), buf, sizeof(buf)),
			    "/\n");
	read_file(path_in(path, sizeof(path), "fds.txt"), buf, sizeof(buf));
	assert_true(has_line(buf, "0") && has_line(buf, "1") && has_line(buf, "2"));
	assert_false(has_line(buf, "37"));
	/* SIGPIPE, ignored here as in hvnoded, is back to its default */
	assert_string_equal(read_file(path_in(path, sizeof(path), "sigign.txt"), buf, sizeof(buf)),
			    "SigIgn:\t0000000000000000\n");

	/* an old agent that takes the victim as port= */
	c.plug_arg = "port";
	c.nodename = NULL;
	c.nparams = 0;
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_string_equal(read_file(path_in(path, sizeof(path), "stdin.txt"), buf, sizeof(buf)),
			    "action=off\nport=n2\n");
	assert_string_equal(res.summary, "fence_record action=off port=n2: exit 0 (no output)");
	assert_no_children();
}

/* hvnoded's SIGCHLD handler, in a tight loop on a thread of its own */
static struct {
	volatile bool stop;
	bool running;
	pthread_t thread;
} reaper;

static void *foreign_reaper(void *arg)
{
	int st;

	while (!reaper.stop) {
		waitpid(-1, &st, WNOHANG);
		usleep(200);
	}
	return NULL;
}

/* Also when the test failed half-way: the reaper must not outlive it. */
static int stop_reaper(void **state)
{
	if (reaper.running) {
		reaper.stop = true;
		pthread_join(reaper.thread, NULL);
		reaper.running = false;
	}
	return 0;
}

/* A waitpid(-1) elsewhere in the daemon never takes the agent's status. */
static void test_run_foreign_reaper(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c = call_of(
		make_agent(agent, sizeof(agent), "fence_five", "echo five\nexit 5\n"), "off", "n2");

	reaper.stop = false;
	assert_int_equal(pthread_create(&reaper.thread, NULL, foreign_reaper, NULL), 0);
	reaper.running = true;
	for (int i = 0; i < 20; i++) {
		int rc = fence_agent_run(&c, &res);

		if (rc == -ECHILD)
			fail_msg("the agent's status was taken by a waitpid(-1): %s", res.summary);
		assert_int_equal(rc, 0);
		assert_int_equal(res.exit_code, 5);
	}
	stop_reaper(state);
	assert_no_children();
}

static int count_fds(void)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/* Every way a run can end closes what it opened. */
static void test_run_no_fd_leak(void **state)
{
	struct fence_agent_result res;
	char ok[PATH_MAX], hang[PATH_MAX], bad[PATH_MAX], path[PATH_MAX];
	struct fence_agent_param p = {.key = "passwd",
				      .from_file = true,
				      .value = path_in(path, sizeof(path), "none.pw")};
	struct fence_agent_call c =
		call_of(make_agent(ok, sizeof(ok), "fence_ok", "echo ok\nexit 0\n"), "off", "n2");
	int before = count_fds();

	make_agent(hang, sizeof(hang), "fence_hang2", "exec sleep 60\n");
	path_in(bad, sizeof(bad), "fence_bad2");
	write_file(bad, "#!/nonexistent/sh\n", 0755);
	for (int i = 0; i < 3; i++) {
		c.agent = ok;
		c.nparams = 0;
		assert_int_equal(fence_agent_run(&c, &res), 0);
		c.agent = hang;
		c.timeout_ms = 100;
		c.grace_ms = 100;
		assert_int_equal(fence_agent_run(&c, &res), -ETIMEDOUT);
		c.agent = bad;
		assert_int_equal(fence_agent_run(&c, &res), -ENOENT);
		c.agent = ok;
		c.params = &p;
		c.nparams = 1;
		assert_int_equal(fence_agent_run(&c, &res), -ENOENT);
	}
	assert_int_equal(count_fds(), before);
	assert_no_children();
}

/* --- running: hangs, strays, garbage --------------------------------------------------- */

/* An agent that ignores SIGTERM: SIGKILL after the grace, its child with it. */
static void test_run_hang_killed(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c =
		call_of(make_agent(agent, sizeof(agent), "fence_hang",
				   "trap '' TERM\nsleep 60 &\necho $! > @D/hang.pid\n"
				   "echo 'waiting for the device'\n"
				   "while :; do sleep 1; done\n"),
			"off", "n2");
	uint64_t t0;
	pid_t stray;

	c.timeout_ms = 400;
	c.grace_ms = 300;
	t0 = now_ms();
	assert_int_equal(fence_agent_run(&c, &res), -ETIMEDOUT);
	/*
	 * at least timeout + grace, and far less than the agent's 60 s: a bound loose
	 * enough for a loaded machine (timings themselves are for benchmarks)
	 */
	assert_in_range(now_ms() - t0, 650, 30000);
	assert_in_range(res.elapsed_ms, 650, 30000);
	assert_true(res.timed_out);
	assert_int_equal(res.term_signal, SIGKILL);
	assert_int_equal(res.exit_code, -1);
	assert_string_equal(res.summary,
			    "fence_hang action=off plug=n2: timed out after 400 ms, "
			    "killed (SIGKILL): waiting for the device");
	stray = read_pid("hang.pid");
	assert_true(process_gone(stray, 10000));
	assert_no_children();
}

/* An agent that dies of the SIGTERM at its timeout. */
static void test_run_hang_terminated(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c = call_of(
		make_agent(agent, sizeof(agent), "fence_slow", "exec sleep 60\n"), "status", "n3");

	c.timeout_ms = 300;
	c.grace_ms = 5000;
	assert_int_equal(fence_agent_run(&c, &res), -ETIMEDOUT);
	assert_in_range(res.elapsed_ms, 250, 30000); /* not the 60 s sleep */
	assert_int_equal(res.term_signal, SIGTERM);
	assert_string_equal(res.summary,
			    "fence_slow action=status plug=n3: timed out after 300 ms, "
			    "killed (SIGTERM) (no output)");
	assert_no_children();
}

/* It exits but leaves a child holding its stdout: we return at once, the child is killed. */
static void test_run_exit_leaves_child(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c =
		call_of(make_agent(agent, sizeof(agent), "fence_stray",
				   "sleep 60 &\necho $! > @D/stray.pid\necho done\nexit 0\n"),
			"off", "n2");

	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 0);
	assert_in_range(res.elapsed_ms, 0, 30000); /* not the stray's 60 s */
	assert_true(process_gone(read_pid("stray.pid"), 10000));
	assert_no_children();
}

/* A signal not ours. */
static void test_run_killed_by_signal(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c = call_of(
		make_agent(agent, sizeof(agent), "fence_crash", "echo oops\nkill -SEGV $$\n"),
		"off", "n2");

	assert_int_equal(fence_agent_run(&c, &res), -ECANCELED);
	assert_int_equal(res.term_signal, SIGSEGV);
	assert_false(res.timed_out);
	assert_contains(res.summary, "killed by signal 11 (SIGSEGV): oops");
	assert_no_children();
}

static void assert_clean_output(const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p != '\n' && (*p < 0x20 || *p > 0x7e))
			fail_msg("output byte 0x%02x at %zu", (unsigned char)*p, (size_t)(p - s));
}

static void test_run_garbage_output(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c =
		call_of(make_agent(agent, sizeof(agent), "fence_garbage",
				   "head -c 20000 /dev/urandom\n"
				   "printf '\\001\\002\\033[31mred\\033[0m\\377\\n' >&2\n"
				   "printf 'last \\t line\\r\\n'\nexit 0\n"),
			"status", "n2");

	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_true(strlen(res.output) <= FENCE_AGENT_OUTPUT_MAX);
	assert_clean_output(res.output);
	assert_clean_output(res.summary);
	assert_string_equal(res.summary,
			    "fence_garbage action=status plug=n2: exit 0: last   line");

	/* a flood: read as it comes, never blocking the agent, the last 4 KiB kept */
	make_agent(agent, sizeof(agent), "fence_flood",
		   "head -c 20000000 /dev/zero | tr '\\0' x\necho\necho THE-END\nexit 0\n");
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(strlen(res.output), FENCE_AGENT_OUTPUT_MAX);
	assert_contains(res.summary, "exit 0: THE-END");
	assert_no_children();
}

static void test_run_missing_agent(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX], path[PATH_MAX];
	struct fence_agent_call c = call_of("/usr/sbin/fence_nonexistent", "off", "n2");

	assert_int_equal(fence_agent_run(&c, &res), -ENOENT);
	assert_string_equal(res.summary,
			    "fence_nonexistent action=off plug=n2: "
			    "/usr/sbin/fence_nonexistent: not found (is the fence "
			    "agent installed?)");
	assert_int_equal(res.exit_code, -1);

	c.agent = "fence_ipmilan";
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	assert_contains(res.summary, "not an absolute path");

	c.agent = path_in(path, sizeof(path), "fence_noexec");
	write_file(path, "#!/bin/sh\nexit 0\n", 0644);
	assert_int_equal(fence_agent_run(&c, &res), -EACCES);
	assert_contains(res.summary, "fence_noexec: not an executable file");

	c.agent = dir;
	assert_int_equal(fence_agent_run(&c, &res), -EACCES);

	/* exec itself fails: an interpreter that does not exist */
	c.agent = path_in(agent, sizeof(agent), "fence_badinterp");
	write_file(agent, "#!/nonexistent/python3\n", 0755);
	assert_int_equal(fence_agent_run(&c, &res), -ENOENT);
	assert_contains(res.summary, "fence_badinterp action=off plug=n2: cannot exec ");
	assert_contains(res.summary, "No such file or directory");

	/* a file the kernel cannot exec at all */
	write_file(agent, "\177ELF garbage", 0755);
	assert_int_equal(fence_agent_run(&c, &res), -ENOEXEC);
	assert_contains(res.summary, "Exec format error");
	assert_no_children();
}

static void test_run_bad_call(void **state)
{
	struct fence_agent_param p = {.key = "ipaddr", .value = "10.0.0.1\nevil=1"};
	struct fence_agent_result res;
	char agent[PATH_MAX], path[PATH_MAX];
	struct fence_agent_call c =
		call_of(make_agent(agent, sizeof(agent), "fence_ok", "cat > @D/bad.txt\nexit 0\n"),
			"off", "n2");

	unlink(path_in(path, sizeof(path), "bad.txt"));
	c.params = &p;
	c.nparams = 1;
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	assert_contains(res.summary, "ipaddr: value missing, too long or with a newline");

	p = (struct fence_agent_param){.key = "action", .value = "on"};
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	assert_contains(res.summary, "bad key 'action' (sent by hvcluster itself)");

	p = (struct fence_agent_param){.key = "bad key", .value = "x"};
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);

	c.nparams = 0;
	c.plug = "n2\naction=on";
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	assert_string_equal(res.summary,
			    "fence_ok action=off plug=n2?action=on: bad plug or "
			    "nodename (empty key, or a newline)");
	c.plug = "n2";
	c.action = "off\n";
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	assert_string_equal(res.summary, "fence_ok action=off? plug=n2: bad action");
	/* nothing ran */
	assert_int_equal(access(path, F_OK), -1);
	assert_no_children();
}

/* --- secrets ------------------------------------------------------------------------- */

static void test_secrets_never_shown(void **state)
{
	struct fence_agent_param p[] = {
		{.key = "passwd", .from_file = true},
		{.key = "snmp_priv_passwd", .value = "inline-priv-secret"},
		{.key = "login", .value = "admin"},
	};
	struct fence_agent_result res;
	char agent[PATH_MAX], pw[PATH_MAX], opts[512];
	struct fence_agent_call c;

	p[0].value = path_in(pw, sizeof(pw), "secret.pw");
	write_file(pw, "Hunter2-file-secret\n", 0600);
	/* a chatty agent: echoes its options (as a --verbose agent may), then fails */
	make_agent(agent, sizeof(agent), "fence_chatty",
		   "while IFS= read -r l; do echo \"got $l\" >&2; done\n"
		   "echo \"login failed for admin with Hunter2-file-secret\"\nexit 1\n");
	c = call_of(agent, "off", "n2");
	c.params = p;
	c.nparams = 3;
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 1);
	assert_not_contains(res.output, "Hunter2");
	assert_not_contains(res.output, "inline-priv-secret");
	assert_contains(res.output, "got passwd=***\n");
	assert_contains(res.output, "got snmp_priv_passwd=***\n");
	assert_contains(res.output, "got login=admin\n");
	assert_string_equal(res.summary,
			    "fence_chatty action=off plug=n2: exit 1: "
			    "login failed for admin with ***");

	fence_agent_format_options(&c, opts, sizeof(opts));
	assert_string_equal(opts, "action=off plug=n2 passwd=*** snmp_priv_passwd=*** login=admin");

	assert_true(fence_agent_key_is_secret("passwd"));
	assert_true(fence_agent_key_is_secret("password"));
	assert_true(fence_agent_key_is_secret("Password_Script"));
	assert_true(fence_agent_key_is_secret("community"));
	assert_true(fence_agent_key_is_secret("secret_key"));
	assert_true(fence_agent_key_is_secret("apikey"));
	assert_true(fence_agent_key_is_secret("token"));
	assert_false(fence_agent_key_is_secret("login"));
	assert_false(fence_agent_key_is_secret("ipaddr"));
	assert_false(fence_agent_key_is_secret("identity_file"));

	/* the file is read at each call: a changed password is used, and hidden */
	write_file(pw, "Changed-secret", 0600);
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_not_contains(res.output, "Changed-secret");
	assert_contains(res.summary, "with Hunter2-file-secret"); /* no longer a secret: shown */
	assert_no_children();
}

static void test_secret_file_errors(void **state)
{
	struct fence_agent_param p = {.key = "passwd", .from_file = true};
	struct fence_agent_result res;
	char agent[PATH_MAX], pw[PATH_MAX], big[6000];
	struct fence_agent_call c =
		call_of(make_agent(agent, sizeof(agent), "fence_ok", "exit 0\n"), "off", "n2");

	c.params = &p;
	c.nparams = 1;
	p.value = path_in(pw, sizeof(pw), "missing.pw");
	assert_int_equal(fence_agent_run(&c, &res), -ENOENT);
	snprintf(big, sizeof(big),
		 "fence_ok action=off plug=n2: passwd from %s: No such file or "
		 "directory",
		 pw);
	assert_string_equal(res.summary, big);

	p.value = path_in(pw, sizeof(pw), "two-lines.pw");
	write_file(pw, "first-line-secret\nsecond\n", 0600);
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	assert_contains(res.summary, "not one line of text");
	assert_not_contains(res.summary, "first-line-secret");

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	p.value = path_in(pw, sizeof(pw), "big.pw");
	write_file(pw, big, 0600);
	assert_int_equal(fence_agent_run(&c, &res), -EFBIG);
	assert_not_contains(res.summary, "xxxx");

	p.value = "relative.pw";
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	p.value = dir;
	assert_int_equal(fence_agent_run(&c, &res), -EINVAL);
	assert_contains(res.summary, "not a regular file");
	assert_no_children();
}

/* --- status and power-off ------------------------------------------------------------- */

/*
 * A switch that keeps its plug's state in @D/state ("on" when missing). @off_body runs
 * for action=off; status answers from the state, or @status_body when given.
 */
static const char *make_switch(char *path, size_t len, const char *name, const char *off_body,
			       const char *status_body)
{
	char body[4096];

	snprintf(body, sizeof(body),
		 "a=\nwhile IFS= read -r l; do case $l in action=*) a=${l#action=} ;; esac; done\n"
		 "echo \"$a\" >> @D/actions.log\n"
		 "s=$(cat @D/state 2>/dev/null || echo on)\n"
		 "case $a in\n"
		 "off) %s ;;\n"
		 "on) echo on > @D/state; echo 'Success: Powered ON'; exit 0 ;;\n"
		 "status) %s ;;\n"
		 "esac\necho \"unknown action $a\" >&2; exit 1\n",
		 off_body,
		 status_body ? status_body
			     : "echo \"Status: $s\"; if [ \"$s\" = off ]; then exit 2; fi; exit 0");
	return make_agent(path, len, name, body);
}

static void reset_switch(const char *state)
{
	char path[PATH_MAX];

	unlink(path_in(path, sizeof(path), "actions.log"));
	unlink(path_in(path, sizeof(path), "count"));
	if (state)
		write_file(path_in(path, sizeof(path), "state"), state, 0644);
	else
		unlink(path);
}

static void test_status(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX];
	struct fence_agent_call c = call_of(
		make_switch(agent, sizeof(agent), "fence_switch", "exit 1", NULL), "ignored", "n2");
	bool off = true;

	reset_switch("on");
	assert_int_equal(fence_agent_status(&c, &off, &res), 0);
	assert_false(off);
	assert_string_equal(res.summary, "fence_switch action=status plug=n2: exit 0: Status: on");
	reset_switch("off");
	assert_int_equal(fence_agent_status(&c, &off, &res), 0);
	assert_true(off);

	make_agent(agent, sizeof(agent), "fence_status1",
		   "echo 'Failed: cannot connect'\nexit 1\n");
	assert_int_equal(fence_agent_status(&c, &off, &res), -EHOSTUNREACH);
	assert_contains(res.summary, "exit 1: Failed: cannot connect");
	make_agent(agent, sizeof(agent), "fence_status3", "echo 'what?'\nexit 3\n");
	assert_int_equal(fence_agent_status(&c, &off, &res), -EPROTO);
	assert_string_equal(res.summary,
			    "fence_status3 action=status plug=n2: exit 3, not 0 (on), "
			    "2 (off) or 1 (error): what?");
	assert_no_children();
}

static void test_power_off_confirmed(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX], path[PATH_MAX], log[256];
	struct fence_agent_call c = call_of(
		make_switch(agent, sizeof(agent), "fence_switch",
			    "echo off > @D/state; echo 'Success: Powered OFF'; exit 0", NULL),
		"reboot", "n2");

	reset_switch("on");
	assert_int_equal(fence_agent_power_off(&c, 5000, &res), 0);
	assert_contains(res.summary,
			"fence_switch action=off plug=n2: powered off, confirmed by "
			"status after ");
	assert_string_equal(read_file(path_in(path, sizeof(path), "actions.log"), log, sizeof(log)),
			    "off\nstatus\n");

	/* a slow device: status says on twice, then off */
	make_switch(
		agent, sizeof(agent), "fence_slowswitch", "echo 'Success: Powered OFF'; exit 0",
		"n=$(($(cat @D/count 2>/dev/null || echo 0) + 1)); echo $n > @D/count\n"
		"if [ $n -ge 3 ]; then echo 'Status: OFF'; exit 2; fi; echo 'Status: ON'; exit 0");
	reset_switch("on");
	assert_int_equal(fence_agent_power_off(&c, 5000, &res), 0);
	assert_string_equal(read_file(path, log, sizeof(log)), "off\nstatus\nstatus\nstatus\n");
	assert_no_children();
}

static void test_power_off_not_confirmed(void **state)
{
	struct fence_agent_result res;
	char agent[PATH_MAX], path[PATH_MAX], log[256];
	struct fence_agent_call c =
		call_of(make_switch(agent, sizeof(agent), "fence_liar",
				    "echo 'Success: Powered OFF'; exit 0", NULL),
			"off", "n2");
	uint64_t t0;

	/* off says yes, status keeps saying on */
	reset_switch("on");
	t0 = now_ms();
	assert_int_equal(fence_agent_power_off(&c, 1200, &res), -ETIMEDOUT);
	assert_in_range(now_ms() - t0, 1150, 30000); /* the confirm window, not forever */
	assert_string_equal(res.summary,
			    "fence_liar action=off plug=n2: off succeeded but power-off "
			    "not confirmed within 1200 ms: last status exit 0: "
			    "Status: on (still on)");
	read_file(path_in(path, sizeof(path), "actions.log"), log, sizeof(log));
	assert_contains(log, "off\nstatus\nstatus\n");

	/* off itself fails */
	make_switch(agent, sizeof(agent), "fence_nooff",
		    "echo 'Failed: Unable to connect to 10.0.0.9' >&2; exit 1", NULL);
	reset_switch("on");
	assert_int_equal(fence_agent_power_off(&c, 1000, &res), -EREMOTEIO);
	assert_string_equal(res.summary,
			    "fence_nooff action=off plug=n2: exit 1: "
			    "Failed: Unable to connect to 10.0.0.9");
	assert_string_equal(read_file(path, log, sizeof(log)), "off\n");

	/* status cannot reach the device */
	make_switch(agent, sizeof(agent), "fence_nostatus", "echo off > @D/state; exit 0",
		    "echo 'Failed: timed out talking to the BMC'; exit 1");
	reset_switch("on");
	assert_int_equal(fence_agent_power_off(&c, 300, &res), -ETIMEDOUT);
	assert_contains(res.summary, "last status exit 1: Failed: timed out talking to the BMC");
	assert_not_contains(res.summary, "still on");

	/* the agent hangs on off */
	make_switch(agent, sizeof(agent), "fence_hangoff", "exec sleep 60", NULL);
	c.timeout_ms = 300;
	c.grace_ms = 100;
	assert_int_equal(fence_agent_power_off(&c, 1000, &res), -ETIMEDOUT);
	assert_contains(res.summary, "fence_hangoff action=off plug=n2: timed out after 300 ms");
	assert_no_children();
}

/* --- metadata ------------------------------------------------------------------------- */

static const char good_xml[] =
	"<?xml version=\"1.0\" ?>\n"
	"<!-- a comment with <parameter name=\"fake\"> in it -->\n"
	"<resource-agent name=\"fence_test\" shortdesc=\"Test agent\" >\n"
	"<longdesc>Powers things. <![CDATA[ <parameter name=\"cdata\"/> ]]></longdesc>\n"
	"<vendor-url>http://www.example.com</vendor-url>\n"
	"<parameters>\n"
	"\t<parameter name=\"action\" unique=\"0\" required=\"1\">\n"
	"\t\t<getopt mixed=\"-o, --action=[action]\" />\n"
	"\t\t<content type=\"string\" default=\"reboot\"  />\n"
	"\t\t<shortdesc lang=\"en\">Fencing action</shortdesc>\n"
	"\t</parameter>\n"
	"\t<parameter name=\"ip\" unique=\"0\" required=\"1\" obsoletes=\"ipaddr\">\n"
	"\t\t<content type=\"string\" default=\"a>b\" />\n"
	"\t</parameter>\n"
	"\t<parameter name=\"ipaddr\" unique=\"0\" required=\"1\" deprecated=\"1\"/>\n"
	"\t<parameter name='username' required='1' obsoletes='login'/>\n"
	"\t<parameter name=\"login\" required=\"0\" deprecated=\"1\"/>\n"
	"\t<parameter name=\"password\" required=\"0\"/>\n"
	"\t<parameter name=\"plug\" required=\"1\"/>\n"
	"\t<parameter name=\"port\" required=\"0\" deprecated=\"1\"/>\n"
	"\t<parameter\n\t\tname = \"verbose\"\n\t\trequired=\"0\" />\n"
	"</parameters>\n"
	"<actions>\n"
	"\t<action name=\"on\" automatic=\"0\"/>\n"
	"\t<action name=\"off\" />\n"
	"\t<action name=\"status\" />\n"
	"\t<action name=\"metadata\" />\n"
	"</actions>\n"
	"</resource-agent>\n";

/* Parse a heap copy of exactly @len bytes, so ASan sees any read past it. */
static int parse_exact(const char *xml, size_t len, struct fence_agent_meta *m, char *err,
		       size_t errlen)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, xml, len);
	rc = fence_agent_meta_parse(copy, len, m, err, errlen);
	free(copy);
	return rc;
}

static const struct fence_agent_meta_param *param_named(const struct fence_agent_meta *m,
							const char *name)
{
	for (size_t i = 0; i < m->nparams; i++)
		if (!strcmp(m->params[i].name, name))
			return &m->params[i];
	fail_msg("no parameter %s", name);
	return NULL;
}

static void test_meta_parse_good(void **state)
{
	static struct fence_agent_meta m;
	char err[256] = "";

	assert_int_equal(parse_exact(good_xml, strlen(good_xml), &m, err, sizeof(err)), 0);
	assert_string_equal(m.name, "fence_test");
	assert_int_equal(m.nparams, 9);
	assert_false(fence_agent_meta_has_param(&m, "fake"));
	assert_false(fence_agent_meta_has_param(&m, "cdata"));
	assert_true(param_named(&m, "action")->required);
	assert_true(param_named(&m, "ip")->required);
	assert_string_equal(param_named(&m, "ip")->obsoletes, "ipaddr");
	assert_true(param_named(&m, "ipaddr")->deprecated);
	assert_true(param_named(&m, "username")->required);
	assert_string_equal(param_named(&m, "username")->obsoletes, "login");
	assert_false(param_named(&m, "password")->required);
	assert_false(param_named(&m, "verbose")->required);
	assert_int_equal(m.nactions, 4);
	assert_true(fence_agent_meta_has_action(&m, "off"));
	assert_true(fence_agent_meta_has_action(&m, "status"));
	assert_false(fence_agent_meta_has_action(&m, "reboot"));
	assert_string_equal(fence_agent_meta_plug_arg(&m), "plug");
}

/* Every cut of the document before its </resource-agent> is refused, none crashes. */
static void test_meta_parse_truncated(void **state)
{
	static struct fence_agent_meta m;
	size_t full = (size_t)(strstr(good_xml, "</resource-agent>") - good_xml) +
		strlen("</resource-agent>");
	char err[256];

	for (size_t len = 0; len < full; len++) {
		err[0] = '\0';
		if (parse_exact(good_xml, len, &m, err, sizeof(err)) == 0)
			fail_msg("a cut at %zu bytes parsed", len);
		assert_true(err[0] != '\0');
		assert_int_equal(m.nparams, 0);
	}
	assert_int_equal(parse_exact(good_xml, full, &m, err, sizeof(err)), 0);
	assert_int_equal(parse_exact(good_xml, full - 1, &m, err, sizeof(err)), -EBADMSG);
	assert_contains(err, "truncated at byte ");
	assert_int_equal(parse_exact(good_xml, 600, &m, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "truncated: no </resource-agent>");
}

static void expect_bad(const char *xml, int rc, const char *why)
{
	static struct fence_agent_meta m;
	char err[256] = "";

	if (parse_exact(xml, strlen(xml), &m, err, sizeof(err)) != rc)
		fail_msg("'%s' parsed, or with another error (%s)", xml, err);
	assert_contains(err, why);
}

static void test_meta_parse_garbage(void **state)
{
	static struct fence_agent_meta m;
	static char many[20000];
	char err[256], buf[2048];
	size_t o;

	expect_bad("", -EBADMSG, "empty");
	expect_bad("hello world", -EBADMSG, "no <resource-agent>");
	expect_bad("Traceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n"
		   "NameError: name 'x' is not defined\n",
		   -EBADMSG, "no <resource-agent>");
	expect_bad("<resource-agent name=fence_x></resource-agent>", -EBADMSG,
		   "unquoted attribute");
	expect_bad("<resource-agent><resource-agent></resource-agent>", -EBADMSG, "nested");
	expect_bad("</resource-agent>", -EBADMSG, "before <resource-agent>");
	expect_bad("<resource-agent><parameter required='1'/></resource-agent>", -EBADMSG,
		   "a <parameter> without a valid name");
	expect_bad("<resource-agent><parameter name='a b'/></resource-agent>", -EBADMSG,
		   "without a valid name");
	expect_bad("<resource-agent><action/></resource-agent>", -EBADMSG, "an <action> without");
	expect_bad("<resource-agent><parameter name='x' obsoletes='&lt;'/></resource-agent>",
		   -EBADMSG, "bad obsoletes");
	expect_bad("<resource-agent>< parameter name='x'/></resource-agent>", -EBADMSG,
		   "not a tag");
	expect_bad("<resource-agent><parameter name='x' junk/></resource-agent>", -EBADMSG,
		   "malformed attribute");
	expect_bad("<resource-agent><!-- never closed", -EBADMSG, "truncated at byte 16");
	expect_bad("<<<<>>>>", -EBADMSG, "not a tag");

	/* a NUL inside */
	err[0] = '\0';
	assert_int_equal(
		parse_exact("<resource-agent>\0</resource-agent>", 34, &m, err, sizeof(err)),
		-EBADMSG);
	assert_string_equal(err, "a NUL byte at offset 16: not XML");

	/* more parameters than we hold */
	o = (size_t)snprintf(many, sizeof(many), "<resource-agent>");
	for (int i = 0; i <= FENCE_AGENT_PARAMS_MAX; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "<parameter name='p%d'/>", i);
	snprintf(many + o, sizeof(many) - o, "</resource-agent>");
	expect_bad(many, -E2BIG, "too many parameters");

	/* random bytes, biased to XML's own characters: never a crash */
	srand(1);
	for (int round = 0; round < 3000; round++) {
		static const char alphabet[] = "<>/=\"' !-?[]resource-agentparameteractionname";
		size_t len = (size_t)(rand() % (int)sizeof(buf));

		for (size_t i = 0; i < len; i++)
			buf[i] = rand() % 4 ? alphabet[rand() % (int)(sizeof(alphabet) - 1)]
					    : (char)(rand() % 256);
		if (round % 3 == 0 && len > 40) /* some with a real start */
			memcpy(buf, "<resource-agent name='x'><parameter ", 36);
		if (parse_exact(buf, len, &m, err, sizeof(err)) == 0)
			assert_true(m.nparams <= FENCE_AGENT_PARAMS_MAX);
	}
}

static void test_metadata_run(void **state)
{
	static struct fence_agent_meta m;
	char agent[PATH_MAX], body[8192], err[512];

	/* stdout is the XML; a warning on stderr must not get into it */
	snprintf(body, sizeof(body),
		 "echo \"DeprecationWarning: 'pipes' is deprecated <junk\" >&2\n"
		 "cat <<'EOF'\n%sEOF\nexit 0\n",
		 good_xml);
	make_agent(agent, sizeof(agent), "fence_test", body);
	assert_int_equal(fence_agent_metadata(agent, 10, &m, err, sizeof(err)), 0);
	assert_string_equal(m.name, "fence_test");
	assert_int_equal(m.nparams, 9);

	/* not a fence agent: usage and exit 1, as fence_ack_manual */
	make_agent(agent, sizeof(agent), "fence_ack",
		   "echo 'usage: fence_ack <nodename>'\nexit 1\n");
	assert_int_equal(fence_agent_metadata(agent, 10, &m, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "fence_ack action=metadata: exit 1: usage: fence_ack <nodename>");

	make_agent(agent, sizeof(agent), "fence_noise", "head -c 3000 /dev/urandom\nexit 0\n");
	assert_int_equal(fence_agent_metadata(agent, 10, &m, err, sizeof(err)), -EBADMSG);
	assert_contains(err, "fence_noise action=metadata: ");

	snprintf(body, sizeof(body), "cat <<'EOF'\n%.700sEOF\nexit 0\n", good_xml);
	make_agent(agent, sizeof(agent), "fence_cut", body);
	assert_int_equal(fence_agent_metadata(agent, 10, &m, err, sizeof(err)), -EBADMSG);
	assert_contains(err, "fence_cut action=metadata: ");
	assert_int_equal(m.nparams, 0);

	make_agent(agent, sizeof(agent), "fence_mute", "exec sleep 60\n");
	assert_int_equal(fence_agent_metadata(agent, 1, &m, err, sizeof(err)), -ETIMEDOUT);
	assert_contains(err, "fence_mute action=metadata: timed out after 1000 ms");

	assert_int_equal(fence_agent_metadata("/nonexistent/fence_x", 1, &m, err, sizeof(err)),
			 -ENOENT);
	assert_contains(err, "fence_x action=metadata: /nonexistent/fence_x: not found");
	assert_no_children();
}

static void check_keys(const struct fence_agent_meta *m, const char *const *keys, size_t n, int rc,
		       const char *msg)
{
	char err[512] = "";

	assert_int_equal(fence_agent_check_params(m, keys, n, err, sizeof(err)), rc);
	if (msg)
		assert_string_equal(err, msg);
}

static void test_check_params(void **state)
{
	static struct fence_agent_meta m;
	const char *ok[] = {"ip", "username", "password"};
	const char *old[] = {"ipaddr", "login"};
	const char *no_user[] = {"ip"};
	const char *unknown[] = {"ip", "username", "bogus"};
	const char *twice[] = {"ip", "username", "ip"};
	const char *ours[] = {"ip", "username", "plug"};
	const char *bad[] = {"ip", "user name"};
	char err[256];

	assert_int_equal(fence_agent_meta_parse(good_xml, strlen(good_xml), &m, err, sizeof(err)),
			 0);
	check_keys(&m, ok, 3, 0, NULL);
	check_keys(&m, old, 2, 0, NULL); /* the deprecated names satisfy the new ones */
	check_keys(&m, no_user, 1, -EINVAL, "fence_test: missing required parameter 'username'");
	check_keys(&m, NULL, 0, -EINVAL, "fence_test: missing required parameter 'ip'");
	check_keys(&m, unknown, 3, -EINVAL,
		   "fence_test: unknown parameter 'bogus' (it takes: ip username password "
		   "verbose)");
	check_keys(&m, twice, 3, -EINVAL, "fence_test: parameter 'ip' given twice");
	check_keys(&m, ours, 3, -EINVAL,
		   "fence_test: 'plug' is not a device parameter: hvcluster sends it with each "
		   "action");
	check_keys(&m, bad, 2, -EINVAL, "fence_test: 'user name' is not a parameter name");
}

/* --- the lab's agent, against a fake lab ------------------------------------------------ */

/* A lab with hosts n1..n3 whose power is a file each; it logs LAB_ID and its arguments. */
static const char *make_fake_lab(char *path, size_t len)
{
	char p[PATH_MAX];

	make_agent(path, len, "lab",
		   "d=@D\necho \"LAB_ID=${LAB_ID:-} $*\" >> $d/lab.log\n"
		   "case $1 in\n"
		   "kill) rm -f $d/$2.on; echo \"$2: powered off\" ;;\n"
		   "start) touch $d/$2.on; echo \"$2: powered on\" ;;\n"
		   "status) if [ -e $d/$2.on ]; then echo \"$2 up\"; exit 0; fi; "
		   "echo \"$2 down\"; exit 1 ;;\n"
		   "path) echo $d ;;\n"
		   "*) echo \"lab: unknown command '$1'\" >&2; exit 2 ;;\n"
		   "esac\n");
	write_file(path_in(p, sizeof(p), "lab.env"), "N=3\n", 0644);
	unlink(path_in(p, sizeof(p), "lab.log"));
	return path;
}

static void skip_without_fence_lab(void)
{
	if (!fence_lab[0] || access(fence_lab, X_OK) != 0) {
		print_message("tests/lab/fence_lab not found (run from the repository top)\n");
		skip();
	}
}

static void test_fence_lab_metadata(void **state)
{
	static struct fence_agent_meta m;
	const char *keys[] = {"lab_id", "lab"};
	const char *bad[] = {"ipaddr"};
	char err[512];

	skip_without_fence_lab();
	assert_int_equal(fence_agent_metadata(fence_lab, 10, &m, err, sizeof(err)), 0);
	assert_string_equal(m.name, "fence_lab");
	assert_string_equal(fence_agent_meta_plug_arg(&m), "plug");
	assert_true(fence_agent_meta_has_param(&m, "lab_id"));
	assert_true(fence_agent_meta_has_action(&m, "off"));
	assert_true(fence_agent_meta_has_action(&m, "status"));
	assert_true(fence_agent_meta_has_action(&m, "list"));
	check_keys(&m, keys, 2, 0, NULL);
	check_keys(&m, NULL, 0, 0, NULL);
	check_keys(&m, bad, 1, -EINVAL,
		   "fence_lab: unknown parameter 'ipaddr' (it takes: lab_id lab)");
}

static void test_fence_lab_power(void **state)
{
	struct fence_agent_param p[] = {{.key = "lab"}, {.key = "lab_id", .value = "t1"}};
	struct fence_agent_result res;
	char lab[PATH_MAX], path[PATH_MAX], buf[2048];
	struct fence_agent_call c;
	bool off = false;

	skip_without_fence_lab();
	p[0].value = make_fake_lab(lab, sizeof(lab));
	write_file(path_in(path, sizeof(path), "n2.on"), "", 0644);
	c = call_of(fence_lab, "off", "n2");
	c.params = p;
	c.nparams = 2;
	c.nodename = "n2"; /* as Pacemaker sends it: ignored */

	assert_int_equal(fence_agent_power_off(&c, 5000, &res), 0);
	assert_contains(res.summary, "fence_lab action=off plug=n2: powered off, confirmed");
	assert_int_equal(access(path, F_OK), -1);
	read_file(path_in(path, sizeof(path), "lab.log"), buf, sizeof(buf));
	assert_contains(buf, "LAB_ID=t1 kill n2\n");
	/* idempotent: already off is success */
	assert_int_equal(fence_agent_power_off(&c, 5000, &res), 0);

	assert_int_equal(fence_agent_status(&c, &off, &res), 0);
	assert_true(off);
	assert_string_equal(res.summary, "fence_lab action=status plug=n2: exit 2: Status: OFF");
	c.action = "on";
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 0);
	assert_int_equal(fence_agent_status(&c, &off, &res), 0);
	assert_false(off);

	c.action = "monitor";
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 0);
	c.action = "list";
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_string_equal(res.output, "n1,\nn2,\nn3,\n");
	assert_no_children();
}

static void test_fence_lab_bad_input(void **state)
{
	struct fence_agent_param p[] = {{.key = "lab"}};
	struct fence_agent_result res;
	char lab[PATH_MAX], cmd[3 * PATH_MAX];
	struct fence_agent_call c;
	int st;

	skip_without_fence_lab();
	p[0].value = make_fake_lab(lab, sizeof(lab));
	c = call_of(fence_lab, "frobnicate", "n2");
	c.params = p;
	c.nparams = 1;
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 1);
	assert_contains(res.summary, "exit 1: fence_lab: unknown action 'frobnicate'");

	c.action = "off";
	c.plug = NULL;
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 1);
	assert_contains(res.summary, "needs plug");

	c.plug = "n2;reboot";
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 1);
	assert_contains(res.summary, "plug 'n2;reboot' is not a lab host");

	c.plug = "n2";
	p[0].value = "/nonexistent/lab";
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 1);
	assert_contains(res.summary, "lab script '/nonexistent/lab' is not an executable file");

	/* the lab has no such lab: status is an error (1), not "off" */
	make_agent(lab, sizeof(lab), "nolab",
		   "echo \"lab: no current lab (run 'lab up N', or set LAB_ID)\" >&2; exit 2\n");
	p[0].value = lab;
	c.action = "status";
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 1);
	assert_contains(res.summary, "lab status n2 failed (exit 2): lab: no current lab");

	/* the command line, as real agents take it */
	make_fake_lab(lab, sizeof(lab));
	snprintf(cmd, sizeof(cmd), "%s --action=status --plug=n3 --lab=%s >/dev/null 2>&1",
		 fence_lab, lab);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 2);
	snprintf(cmd, sizeof(cmd), "%s -o metadata | grep -q '<resource-agent name=\"fence_lab\"'",
		 fence_lab);
	assert_int_equal(system(cmd), 0);
}

/* --- real agents from Debian's fence-agents ----------------------------------------------- */

static void skip_without(const char *agent)
{
	if (access(agent, X_OK) != 0) {
		print_message("%s not installed (apt-get install fence-agents)\n", agent);
		skip();
	}
}

/* fence_dummy keeps its "power" in a status file: the whole protocol, for real. */
static void test_fence_dummy(void **state)
{
	static struct fence_agent_meta m;
	struct fence_agent_param p[] = {{.key = "status_file"}};
	const char *keys[] = {"status_file"};
	struct fence_agent_result res;
	char st[PATH_MAX], err[512], buf[64];
	struct fence_agent_call c;
	bool off = false;

	skip_without(FENCE_DUMMY);
	assert_int_equal(fence_agent_metadata(FENCE_DUMMY, 30, &m, err, sizeof(err)), 0);
	assert_string_equal(m.name, "fence_dummy");
	assert_true(fence_agent_meta_has_action(&m, "off"));
	assert_true(fence_agent_meta_has_action(&m, "status"));
	assert_null(fence_agent_meta_plug_arg(&m)); /* one "plug": no plug argument */
	check_keys(&m, keys, 1, 0, NULL);

	p[0].value = path_in(st, sizeof(st), "dummy.status");
	write_file(st, "on", 0644);
	c = call_of(FENCE_DUMMY, "off", NULL);
	c.timeout_ms = 30000;
	c.params = p;
	c.nparams = 1;
	assert_int_equal(fence_agent_power_off(&c, 10000, &res), 0);
	assert_contains(res.summary, "fence_dummy action=off: powered off, confirmed by status");
	assert_string_equal(read_file(st, buf, sizeof(buf)), "off");

	c.action = "on";
	assert_int_equal(fence_agent_run(&c, &res), 0);
	assert_int_equal(res.exit_code, 0);
	assert_int_equal(fence_agent_status(&c, &off, &res), 0);
	assert_false(off);
	assert_no_children();
}

/* fence_dummy type=fail: a real agent whose device fails. */
static void test_fence_dummy_fails(void **state)
{
	/* its own wait for the power to change, made short */
	struct fence_agent_param p[] = {{.key = "type", .value = "fail"},
					{.key = "power_timeout", .value = "1"}};
	struct fence_agent_result res;
	struct fence_agent_call c = call_of(FENCE_DUMMY, "off", NULL);

	skip_without(FENCE_DUMMY);
	c.timeout_ms = 30000;
	c.params = p;
	c.nparams = 2;
	assert_int_equal(fence_agent_power_off(&c, 2000, &res), -EREMOTEIO);
	assert_contains(res.summary, "fence_dummy action=off: exit 1: ");
	assert_contains(res.summary, "Failed: Timed out waiting to power OFF");
	assert_no_children();
}

/* The metadata of hardware agents parses, and their usual parameters check. */
static void test_fence_agents_metadata(void **state)
{
	static const char *const agents[] = {
		"/usr/sbin/fence_ipmilan",	   "/usr/sbin/fence_scsi",
		"/usr/sbin/fence_virsh",	   "/usr/sbin/fence_sbd",
		"/usr/sbin/fence_heuristics_ping", "/usr/sbin/fence_apc",
	};
	static struct fence_agent_meta m;
	const char *ipmi[] = {"ip", "username", "password", "lanplus"};
	const char *ipmi_old[] = {"ipaddr", "login", "passwd"};
	char err[512];
	int seen = 0;

	for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++) {
		if (access(agents[i], X_OK) != 0)
			continue;
		seen++;
		if (fence_agent_metadata(agents[i], 30, &m, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_string_equal(m.name, strrchr(agents[i], '/') + 1);
		assert_true(m.nparams > 5);
		assert_true(fence_agent_meta_has_action(&m, "metadata"));
		if (!strcmp(m.name, "fence_ipmilan")) {
			assert_string_equal(fence_agent_meta_plug_arg(&m), "plug");
			check_keys(&m, ipmi, 4, 0, NULL);
			check_keys(&m, ipmi_old, 3, 0, NULL);
		}
	}
	if (!seen) {
		print_message("no fence-agents agent installed (apt-get install fence-agents)\n");
		skip();
	}
	assert_no_children();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_success),
		cmocka_unit_test(test_run_exit_nonzero),
		cmocka_unit_test(test_run_input_exact),
		cmocka_unit_test_teardown(test_run_foreign_reaper, stop_reaper),
		cmocka_unit_test(test_run_no_fd_leak),
		cmocka_unit_test(test_run_hang_killed),
		cmocka_unit_test(test_run_hang_terminated),
		cmocka_unit_test(test_run_exit_leaves_child),
		cmocka_unit_test(test_run_killed_by_signal),
		cmocka_unit_test(test_run_garbage_output),
		cmocka_unit_test(test_run_missing_agent),
		cmocka_unit_test(test_run_bad_call),
		cmocka_unit_test(test_secrets_never_shown),
		cmocka_unit_test(test_secret_file_errors),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_power_off_confirmed),
		cmocka_unit_test(test_power_off_not_confirmed),
		cmocka_unit_test(test_meta_parse_good),
		cmocka_unit_test(test_meta_parse_truncated),
		cmocka_unit_test(test_meta_parse_garbage),
		cmocka_unit_test(test_metadata_run),
		cmocka_unit_test(test_check_params),
		cmocka_unit_test(test_fence_lab_metadata),
		cmocka_unit_test(test_fence_lab_power),
		cmocka_unit_test(test_fence_lab_bad_input),
		cmocka_unit_test(test_fence_dummy),
		cmocka_unit_test(test_fence_dummy_fails),
		cmocka_unit_test(test_fence_agents_metadata),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
