#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATEFILE_MAX (64 * 1024 * 1024)

int statefile_load(const char *path, cluster_state_t *s, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;
	char msg[400];
	int rc;

	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(err, errlen, "state file %s is unreadable or corrupt (line %d: %s); "
				      "refusing to start from it",
			 path, jerr.line, jerr.text);
		return -EINVAL;
	}
	rc = state_from_json(s, j, msg, sizeof(msg));
	json_decref(j);
	if (rc)
		snprintf(err, errlen, "state file %s is invalid: %s; refusing to start from it",
			 path, msg);
	return rc;
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
	char tmp[4096], dir[4096];
	json_t *j = state_to_json(s);
	char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	int fd, dfd, rc;

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
	/* the rename itself must survive a crash */
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(text);
	return 0;
err_unlink:
	unlink(tmp);
err_text:
	free(text);
	snprintf(err, errlen, "state file %s: cannot write: %s", path, strerror(-rc));
	return rc;
}
