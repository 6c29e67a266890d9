/*
 * Spawning QEMU under the VM's uid.
 *
 * Everything the driver touches as root lives in a directory the VM's uid
 * owns, so a compromised QEMU of an earlier run could have planted links
 * there: files are opened relative to the checked directory fd with
 * O_NOFOLLOW, must be plain files with a single link, and are only then
 * fchown'd. The child does nothing but async-signal-safe calls (hvnoded has
 * worker threads); an early failure reaches the parent through a CLOEXEC
 * pipe, so qemu_vm_start() can say "cannot exec ..." itself.
 *
 * No PR_SET_PDEATHSIG: a restarted hvnoded must find its VMs still running.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/close_range.h>

#define TAIL_BYTES 4096

enum child_step {
	STEP_SETSID,
	STEP_STDIO,
	STEP_FDS,
	STEP_SETGROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_CHDIR,
	STEP_NO_NEW_PRIVS,
	STEP_EXEC,
};

static const char *const step_names[] = {
	[STEP_SETSID] = "setsid",
	[STEP_STDIO] = "redirect stdio",
	[STEP_FDS] = "close fds",
	[STEP_SETGROUPS] = "drop groups",
	[STEP_SETGID] = "setgid",
	[STEP_SETUID] = "setuid",
	[STEP_CHDIR] = "enter the VM dir",
	[STEP_NO_NEW_PRIVS] = "set no_new_privs",
	[STEP_EXEC] = "exec",
};

struct child_failure {
	int step;
	int err;
};

/* What the child needs, all prepared before fork. */
struct child_ctx {
	const char *path;
	char *const *argv;
	uid_t uid;
	gid_t gid;
	int dirfd, nullfd, errfd, report_fd;
	int keep[HV_NICS_MAX + 1]; /* tap fds and the incoming stream, inherited by QEMU */
	size_t nkeep;
	long max_fd;
};

static __attribute__((noreturn)) void child_fail(const struct child_ctx *x, int step)
{
	struct child_failure f = {.step = step, .err = errno};
	ssize_t n;

	do
		n = write(x->report_fd, &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	_exit(127);
}

static bool is_kept(const struct child_ctx *x, int fd)
{
	for (size_t i = 0; i < x->nkeep; i++)
		if (x->keep[i] == fd)
			return true;
	return false;
}

/* Every fd >= 3 closes at exec but the tap fds. */
static int child_fds(const struct child_ctx *x)
{
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (long fd = 3; fd < x->max_fd; fd++)
			if (!is_kept(x, fd))
				fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	for (size_t i = 0; i < x->nkeep; i++)
		if (fcntl(x->keep[i], F_SETFD, 0) < 0)
			return -1;
	return 0;
}

static __attribute__((noreturn)) void child(const struct child_ctx *x)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	/* hvnoded's handlers and ignored signals are not QEMU's business */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (setsid() < 0)
		child_fail(x, STEP_SETSID);
	if (dup2(x->nullfd, 0) < 0 || dup2(x->errfd, 1) < 0 || dup2(x->errfd, 2) < 0)
		child_fail(x, STEP_STDIO);
	if (child_fds(x) < 0)
		child_fail(x, STEP_FDS);
	if (setgroups(0, NULL) < 0)
		child_fail(x, STEP_SETGROUPS);
	if (setresgid(x->gid, x->gid, x->gid) < 0)
		child_fail(x, STEP_SETGID);
	if (setresuid(x->uid, x->uid, x->uid) < 0)
		child_fail(x, STEP_SETUID);
	if (fchdir(x->dirfd) < 0)
		child_fail(x, STEP_CHDIR);
	umask(0177); /* sockets QEMU binds come out 0600, files it makes too */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(x, STEP_NO_NEW_PRIVS);
	execv(x->path, x->argv);
	child_fail(x, STEP_EXEC);
}

static int check_dir(int dirfd, const struct hv_spec *s, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(dirfd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return -errno;
	}
	if (st.st_uid != s->uid || st.st_gid != s->gid || (st.st_mode & 07777) != 0700) {
		snprintf(err, errlen,
			 "%s must be owned by %u:%u with mode 0700 (it is %u:%u, mode %04o)",
			 s->dir, (unsigned)s->uid, (unsigned)s->gid, (unsigned)st.st_uid,
			 (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Open DIR/@name for appending, as a plain file of the VM's uid; *@size: its size. */
static int open_log(int dirfd, const struct hv_spec *s, const char *name, off_t *size, char *err,
		    size_t errlen)
{
	struct stat st;
	int fd, rc;

	fd = openat(dirfd, name,
		    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		snprintf(err, errlen, "%s/%s: not a plain file with a single link; refusing it",
			 s->dir, name);
		close(fd);
		return -EPERM;
	}
	if ((st.st_uid != s->uid || st.st_gid != s->gid) && fchown(fd, s->uid, s->gid) < 0)
		goto err_fd;
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		goto err_fd;
	*size = st.st_size;
	return fd;
err_fd:
	rc = -errno;
	snprintf(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
	close(fd);
	return rc;
}

/* The binary to exec: as given when it has a '/', else the first match in PATH. */
static int resolve_binary(const char *bin, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *path = getenv("PATH");
	const char *p, *end;
	int n;

	if (strchr(bin, '/')) {
		snprintf(out, outlen, "%s", bin);
		return 0;
	}
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		n = snprintf(out, outlen, "%.*s/%s", (int)(end - p), p, bin);
		if (end > p && n > 0 && (size_t)n < outlen && access(out, X_OK) == 0)
			return 0;
	}
	snprintf(err, errlen, "%s not found in PATH", bin);
	return -ENOENT;
}

/* A header in qemu.stderr: when, and with what command line, this run started. */
static void write_header(int fd, const char *name, char *const argv[])
{
	char when[64];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;
	int dupfd = dup(fd);

	if (dupfd < 0)
		return;
	f = fdopen(dupfd, "a");
	if (!f) {
		close(dupfd);
		return;
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", localtime_r(&now, &tm));
	fprintf(f, "hvcluster: %s: starting QEMU for VM %s:", when, name);
	for (char *const *a = argv; *a; a++)
		fprintf(f, " %s", *a);
	fputc('\n', f);
	fclose(f);
}

static int wait_exec(pid_t pid, int report_fd, const char *path, char *err, size_t errlen)
{
	struct child_failure f;
	ssize_t n;
	int wstatus;

	do
		n = read(report_fd, &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0; /* the pipe closed at exec */
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(f) || f.step < 0 || f.step > STEP_EXEC) {
		snprintf(err, errlen, "the QEMU child died before exec");
		return -EIO;
	}
	snprintf(err, errlen, "QEMU child: cannot %s%s%s: %s", step_names[f.step],
		 f.step == STEP_EXEC ? " " : "", f.step == STEP_EXEC ? path : "", strerror(f.err));
	return f.err ? -f.err : -EIO;
}

int hv_spawn(const struct hv_spec *s, char *const argv[], struct hv_proc *out, char *err,
	     size_t errlen)
{
	struct child_ctx x = {.argv = argv, .uid = s->uid, .gid = s->gid};
	char path[PATH_MAX];
	int pipefd[2], rc;
	off_t size;
	pid_t pid;

	rc = resolve_binary(argv[0], path, sizeof(path), err, errlen);
	if (rc)
		return rc;
	x.path = path;
	for (size_t i = 0; i < s->nnics && i < HV_NICS_MAX; i++)
		if (s->nics[i].tap_fd >= 0) {
			if (fcntl(s->nics[i].tap_fd, F_GETFD) < 0) {
				snprintf(err, errlen, "nic %zu: tap fd %d is not open", i,
					 s->nics[i].tap_fd);
				return -EBADF;
			}
			x.keep[x.nkeep++] = s->nics[i].tap_fd;
		}
	if (s->incoming_defer && s->incoming_fd > 0) {
		if (fcntl(s->incoming_fd, F_GETFD) < 0) {
			snprintf(err, errlen, "incoming migration fd %d is not open", s->incoming_fd);
			return -EBADF;
		}
		x.keep[x.nkeep++] = s->incoming_fd;
	}
	x.max_fd = sysconf(_SC_OPEN_MAX);
	if (x.max_fd <= 0 || x.max_fd > 65536)
		x.max_fd = 65536;

	x.dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (x.dirfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
		return rc;
	}
	rc = check_dir(x.dirfd, s, err, errlen);
	if (rc)
		goto err_dir;
	rc = open_log(x.dirfd, s, HV_CONSOLE_LOG, &size, err, errlen);
	if (rc < 0)
		goto err_dir;
	close(rc);
	rc = x.errfd = open_log(x.dirfd, s, HV_STDERR_LOG, &size, err, errlen);
	if (rc < 0)
		goto err_dir;
	/* a stale socket of an earlier run: QEMU would replace it, but we might connect first */
	unlinkat(x.dirfd, HV_QMP_SOCKET, 0);
	write_header(x.errfd, s->name, argv);
	out->stderr_start = lseek(x.errfd, 0, SEEK_END);
	if (out->stderr_start < 0)
		out->stderr_start = size;

	x.nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (x.nullfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "/dev/null: %s", strerror(errno));
		goto err_errfd;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto err_nullfd;
	}
	x.report_fd = pipefd[1];
	pid = fork();
	if (pid == 0)
		child(&x);
	if (pid < 0) {
		rc = -errno;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(pipefd[1]);
		goto err_pipe;
	}
	close(pipefd[1]);
	rc = wait_exec(pid, pipefd[0], path, err, errlen);
	if (rc == 0)
		out->pid = pid;
err_pipe:
	close(pipefd[0]);
err_nullfd:
	close(x.nullfd);
err_errfd:
	close(x.errfd);
err_dir:
	close(x.dirfd);
	return rc;
}

void hv_stderr_tail(const char *dir, off_t from, unsigned int lines, char *buf, size_t len)
{
	char path[PATH_MAX], data[TAIL_BYTES + 1];
	struct stat st;
	off_t start;
	ssize_t n;
	char *p;
	int fd;

	if (!len)
		return;
	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, HV_STDERR_LOG);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= from) {
		close(fd);
		return;
	}
	start = st.st_size - from > TAIL_BYTES ? st.st_size - TAIL_BYTES : from;
	n = pread(fd, data, st.st_size - start, start);
	close(fd);
	if (n <= 0)
		return;
	data[n] = '\0';
	while (n > 0 && data[n - 1] == '\n')
		data[--n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)data[i] < 0x20 && data[i] != '\n')
			data[i] = '?';
	/* back @lines newlines from the end; a line cut by the 4 KiB window is dropped */
	p = data + n;
	for (unsigned int seen = 0; p > data; p--)
		if (p[-1] == '\n' && ++seen == lines)
			break;
	if (p == data && start > from && strchr(data, '\n'))
		p = strchr(data, '\n') + 1;
	snprintf(buf, len, "%s", p);
}
