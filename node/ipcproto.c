/*
 * hvctl's requests, from bytes to a command name and its args. The bytes are
 * hostile: every length, type and size is checked before use.
 */
#include "ipcproto.h"
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* -EPROTO, with @err saying why. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EPROTO;
}

/* The "cmd" member: a string that fits @cmdlen, non-empty and without NUL bytes. */
static int copy_cmd(json_t *req, char *cmd, size_t cmdlen, char *err, size_t errlen)
{
	json_t *v = json_object_get(req, "cmd");
	const char *s = json_string_value(v);
	size_t n;

	if (!json_is_object(req) || !s)
		return fail(err, errlen, "malformed request: not an object with a string \"cmd\"");
	n = json_string_length(v);
	/* jansson refuses \u0000 unless JSON_ALLOW_NUL; checked anyway, strcmp() would stop at it */
	if (n == 0 || memchr(s, '\0', n))
		return fail(err, errlen, "malformed request: \"cmd\" is empty or holds a NUL byte");
	if (n >= cmdlen)
		return fail(err, errlen, "malformed request: \"cmd\" is longer than %zu bytes",
			    cmdlen ? cmdlen - 1 : 0);
	memcpy(cmd, s, n + 1);
	return 0;
}

int ipc_request_decode(const void *buf, size_t len, char *cmd, size_t cmdlen, json_t **args,
		       char *err, size_t errlen)
{
	struct qb_ipc_request_header hdr;
	json_error_t jerr;
	json_t *req, *a;
	int rc;

	*args = NULL;
	if (cmdlen)
		cmd[0] = '\0';
	if (errlen)
		err[0] = '\0';
	/* a copy: the bytes need not be aligned for the header */
	if (len < sizeof(hdr))
		return fail(err, errlen, "malformed request: bad header size");
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.size < (int32_t)sizeof(hdr) || (size_t)hdr.size > len)
		return fail(err, errlen, "malformed request: bad header size");
	if (hdr.id != HV_IPC_REQUEST)
		return fail(err, errlen, "malformed request: unknown message id %d", hdr.id);
	req = json_loadb((const char *)buf + sizeof(hdr), hdr.size - sizeof(hdr),
			 JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		return fail(err, errlen, "malformed request: not JSON: %s", jerr.text);
	rc = copy_cmd(req, cmd, cmdlen, err, errlen);
	if (rc)
		goto err_req;
	a = json_object_get(req, "args");
	if (a && !json_is_object(a)) {
		rc = fail(err, errlen, "malformed request: \"args\" is not an object");
		goto err_req;
	}
	/* without "args", an empty object: handlers never see NULL */
	a = a ? json_incref(a) : json_object();
	if (!a) {
		rc = -ENOMEM;
		if (errlen)
			snprintf(err, errlen, "out of memory");
		goto err_req;
	}
	json_decref(req);
	*args = a;
	return 0;
err_req:
	if (cmdlen)
		cmd[0] = '\0';
	json_decref(req);
	return rc;
}
