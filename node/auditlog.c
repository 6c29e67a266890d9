/*
 * The audit log read from its end: `hvctl audit` wants the newest records, and
 * the log only grows. The file is read backwards in chunks; each complete line
 * is handed on newest first, and the reading stops as soon as the caller has
 * enough.
 */
#include "auditlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define LINE_MAX_BYTES (1024 * 1024) /* no record is near this: past it, the rest is not a log */

struct tail {
	int64_t since_ms;
	size_t limit, max_bytes, bytes;
	json_t *newest_first;
	bool more;
};

/* One line, newest first: false when the reading may stop. */
static bool take(struct tail *t, const char *line, size_t len)
{
	json_t *rec = json_loadb(line, len, 0, NULL);
	json_t *at = json_object_get(rec, "at_ms");
	size_t size;

	if (!json_is_object(rec) || !json_is_integer(at)) {
		json_decref(rec);
		return true;
	}
	if (json_integer_value(at) < t->since_ms) {
		json_decref(rec);
		return false;
	}
	size = json_dumpb(rec, NULL, 0, JSON_COMPACT) + 1;
	if (json_array_size(t->newest_first) >= t->limit || t->bytes + size > t->max_bytes) {
		t->more = true;
		json_decref(rec);
		return false;
	}
	t->bytes += size;
	json_array_append_new(t->newest_first, rec);
	return true;
}

/* Hand on the complete lines at the end of @buf[0, *have), newest first; keep the rest. */
static bool take_lines(struct tail *t, const char *buf, size_t *have, bool all)
{
	size_t end = *have;

	for (size_t i = end; i > 0; i--) {
		if (buf[i - 1] != '\n')
			continue;
		if (end > i && !take(t, buf + i, end - i))
			return false;
		end = i - 1;
	}
	*have = end;
	if (all && end > 0)
		return take(t, buf, end);
	return true;
}

int audit_log_tail(int fd, int64_t since_ms, size_t limit, size_t max_bytes, json_t **out,
		   bool *more)
{
	struct tail t = { .since_ms = since_ms, .limit = limit, .max_bytes = max_bytes };
	off_t pos = lseek(fd, 0, SEEK_END);
	char *buf = NULL, *next;
	size_t have = 0;
	int rc = 0;

	*out = NULL;
	*more = false;
	if (pos < 0)
		return -errno;
	t.newest_first = json_array();
	if (!t.newest_first)
		return -ENOMEM;
	while (pos > 0) {
		size_t n = pos > CHUNK ? CHUNK : (size_t)pos;
		ssize_t got;

		if (have > LINE_MAX_BYTES)
			break; /* a "line" this long is not one of ours: nothing older is read */
		next = malloc(n + have);
		if (!next) {
			rc = -ENOMEM;
			goto err_read;
		}
		pos -= (off_t)n;
		got = pread(fd, next, n, pos);
		if (got != (ssize_t)n) {
			rc = got < 0 ? -errno : -EIO;
			free(next);
			goto err_read;
		}
		if (have)
			memcpy(next + n, buf, have);
		free(buf);
		buf = next;
		have += n;
		if (!take_lines(&t, buf, &have, pos == 0))
			break;
	}
	free(buf);
	*more = t.more;
	*out = json_array();
	for (size_t i = json_array_size(t.newest_first); *out && i > 0; i--)
		json_array_append(*out, json_array_get(t.newest_first, i - 1));
	json_decref(t.newest_first);
	return *out ? 0 : -ENOMEM;

err_read:
	free(buf);
	json_decref(t.newest_first);
	return rc;
}
