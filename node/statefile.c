#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int statefile_parse(const char *buf, size_t len, cluster_state_t *s, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;
	char msg[400];
	int rc;

	if (len > STATEFILE_MAX) {
		snprintf(err, errlen, "too big (%zu bytes, more than the %d a state file may have)",
			 len, STATEFILE_MAX);
		return -EFBIG;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(err, errlen, "unreadable or corrupt (line %d: %s)", jerr.line, jerr.text);
		return -EINVAL;
	}
	rc = state_from_json(s, j, msg, sizeof(msg));
	json_decref(j);
	if (rc)
		snprintf(err, errlen, "invalid: %s", msg);
	return rc;
}

/*
 * The bytes of @fd, at most STATEFILE_MAX: a new buffer in *@buf (free it) and its
 * length, or -EFBIG when the file is bigger (even if it grows while read), or -errno.
 */
static int read_bounded(int fd, char **buf, size_t *len)
{
	size_t cap, n = 0;
	struct stat st;
	char *b, *nb;
	ssize_t got;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > STATEFILE_MAX)
		return -EFBIG;
	cap = (size_t)st.st_size + 1; /* one more: the read that sees the end */
	b = malloc(cap);
	if (!b)
		return -ENOMEM;
	for (;;) {
		got = read(fd, b + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(b);
			return -errno;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > STATEFILE_MAX) {
			free(b);
			return -EFBIG;
		}
		if (n == cap) {
			/* it grew since fstat */
			cap *= 2;
			if (cap > (size_t)STATEFILE_MAX + 1)
				cap = (size_t)STATEFILE_MAX + 1;
			nb = realloc(b, cap);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
	}
	*buf = b;
	*len = n;
	return 0;
}

int statefile_load(const char *path, cluster_state_t *s, char *err, size_t errlen)
{
	char msg[512];
	size_t len = 0;
	char *buf = NULL;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "state file %s is unreadable: %s", path, strerror(-rc));
		return rc;
	}
	rc = read_bounded(fd, &buf, &len);
	close(fd);
	if (rc == -EFBIG) {
		snprintf(err, errlen,
			 "state file %s is too big (more than the %d bytes a state file may have)",
			 path, STATEFILE_MAX);
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "state file %s is unreadable: %s", path,
			 rc == -EINVAL ? "not a regular file" : strerror(-rc));
		return rc;
	}
	rc = statefile_parse(buf, len, s, msg, sizeof(msg));
	free(buf);
	if (rc)
		snprintf(err, errlen, "state file %s is %s", path, msg);
	return rc;
}

/* fsync the directory of @path: a rename or unlink in it must survive a crash */
static void sync_dir(const char *path)
{
	char dir[4096];
	int dfd;

	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

int statefile_save(const char *path, const cluster_state_t *s, char *err, size_t errlen)
{
	char tmp[4096];
	json_t *j = state_to_json(s);
	char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	int fd, rc;

	json_decref(j);
	if (!text) {
		snprintf(err, errlen, "state file %s: cannot encode the state", path);
		return -ENOMEM;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto err_text;
	}
	rc = write_all(fd, text, strlen(text));
	if (!rc)
		rc = write_all(fd, "\n", 1);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc)
		goto err_unlink;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	sync_dir(path);
	free(text);
	return 0;
err_unlink:
	unlink(tmp);
err_text:
	free(text);
	snprintf(err, errlen, "state file %s: cannot write: %s", path, strerror(-rc));
	return rc;
}

/* Rename @path to @path.corrupt-YYYYmmdd-HHMMSS[.N], never over an existing file. */
static int set_aside(const char *path, char *moved, size_t movedlen)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	for (int n = 0; n < 100; n++) {
		if (n)
			snprintf(moved, movedlen, "%s.corrupt-%s.%d", path, stamp, n);
		else
			snprintf(moved, movedlen, "%s.corrupt-%s", path, stamp);
		/* link + unlink: the same inode (its mode, owner, bytes), never replacing one */
		if (link(path, moved) < 0) {
			if (errno == EEXIST)
				continue;
			return -errno;
		}
		if (unlink(path) < 0)
			return -errno;
		sync_dir(path);
		return 0;
	}
	return -EEXIST;
}

static void marker_path(char *buf, size_t len, const char *path)
{
	snprintf(buf, len, "%s.needed", path);
}

static int marker_write(const char *path, const char *moved)
{
	char mpath[4200];
	FILE *f;
	int rc = 0;

	marker_path(mpath, sizeof(mpath), path);
	f = fopen(mpath, "we");
	if (!f)
		return -errno;
	if (fprintf(f, "%s\n", moved) < 0 || fflush(f) || fsync(fileno(f)) < 0)
		rc = -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc)
		sync_dir(path);
	return rc;
}

/* The marker of an earlier start: true with what it says in @moved. */
static bool marker_read(const char *path, char *moved, size_t movedlen)
{
	char mpath[4200];
	FILE *f;

	marker_path(mpath, sizeof(mpath), path);
	f = fopen(mpath, "re");
	if (!f)
		return false;
	if (!fgets(moved, (int)movedlen, f))
		moved[0] = '\0';
	moved[strcspn(moved, "\n")] = '\0';
	fclose(f);
	return true;
}

int statefile_load_at_start(const char *path, cluster_state_t *s, bool *needed, char *moved,
			    size_t movedlen, char *err, size_t errlen)
{
	char cause[1024];
	int rc;

	*needed = false;
	moved[0] = '\0';
	err[0] = '\0';
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		/* no file, but an earlier start set a bad one aside and got nothing since */
		if (marker_read(path, moved, movedlen)) {
			*needed = true;
			snprintf(err, errlen, "state file %s was corrupt at an earlier start (moved to "
					      "%s) and no state came from the cluster since",
				 path, moved[0] ? moved : "?");
		}
		return 0;
	}
	rc = statefile_load(path, s, cause, sizeof(cause));
	if (!rc)
		return 0;
	rc = set_aside(path, moved, movedlen);
	if (rc) {
		snprintf(err, errlen, "%s; cannot move it aside: %s; refusing to start", cause,
			 strerror(-rc));
		return rc;
	}
	rc = marker_write(path, moved);
	if (rc) {
		/* a restart would take the missing file for a new node's: refuse now instead */
		snprintf(err, errlen, "%s; moved to %s, but cannot record that: %s; refusing to "
				      "start",
			 cause, moved, strerror(-rc));
		return rc;
	}
	*needed = true;
	snprintf(err, errlen, "%s; moved to %s; starting with an empty state that waits for the "
			      "cluster's",
		 cause, moved);
	return 0;
}

void statefile_needed_done(const char *path)
{
	char mpath[4200];

	marker_path(mpath, sizeof(mpath), path);
	if (unlink(mpath) == 0)
		sync_dir(path);
}
