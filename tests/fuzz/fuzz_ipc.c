/*
 * ipc_request_decode() (node/ipcproto.c) on any bytes: what hvnoded's IPC server gets
 * from a client, a qb_ipc_request_header and a JSON text, in a buffer of exactly their
 * size. Each input is decoded as it is, then once more behind a header the harness
 * writes (the right id and size), so that mutations of the JSON get past the header.
 *
 * Checks: no crash, no read past the bytes, no leak. An accepted request has a
 * non-empty command name, a C string within its buffer without NUL bytes, and args an
 * object held by the caller alone; a refused one leaves no args, an empty name and a
 * non-empty message within its buffer. Decoding is a function of the bytes (twice the
 * same result), and the buffer sizes only bound it: with a small name buffer a request
 * is accepted exactly when its name fits, with the same name; a 1-byte or no message
 * buffer refuses the same requests.
 *
 * The command table (node/commands.c) is not fed: its lookup runs authorization and the
 * handlers against the daemon.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../node/ipcproto.h"
#include "../../node/proto.h"

#define SMALL_CMD 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "check failed: " __VA_ARGS__);                             \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The promises of one call, whatever its buffers. */
static void check_result(int rc, const char *cmd, size_t cmdlen, json_t *args, const char *err,
			 size_t errlen)
{
	if (rc == 0) {
		check(cmdlen && memchr(cmd, '\0', cmdlen),
		      "accepted name not terminated in %zu bytes", cmdlen);
		check(cmd[0] != '\0', "accepted an empty name");
		check(json_is_object(args), "accepted args not an object");
		check(args->refcount == 1, "accepted args held elsewhere (refcount %zu)",
		      args->refcount);
		return;
	}
	check(rc == -EPROTO || rc == -ENOMEM, "refused with %d, not -EPROTO or -ENOMEM", rc);
	check(args == NULL, "refused but args set");
	check(!cmdlen || cmd[0] == '\0', "refused but a name left");
	if (errlen) {
		check(memchr(err, '\0', errlen), "message not terminated in %zu bytes", errlen);
		check(errlen == 1 || err[0] != '\0', "refused without a message");
		check(errlen < 20 || !strncmp(err, "malformed request: ", 19) ||
			      !strcmp(err, "out of memory"),
		      "unexpected message '%s'", err);
	}
}

static void decode_all(const uint8_t *buf, size_t len)
{
	char cmd[HV_IPC_CMD_MAX], cmd2[HV_IPC_CMD_MAX], small[SMALL_CMD];
	char err[256], err2[256], tiny[1];
	json_t *args, *args2, *args3;
	int rc, rc2, rc3;

	memset(cmd, 0x55, sizeof(cmd));
	memset(err, 0x55, sizeof(err));
	rc = ipc_request_decode(buf, len, cmd, sizeof(cmd), &args, err, sizeof(err));
	check_result(rc, cmd, sizeof(cmd), args, err, sizeof(err));

	/* a function of the bytes */
	memset(cmd2, 0x55, sizeof(cmd2));
	rc2 = ipc_request_decode(buf, len, cmd2, sizeof(cmd2), &args2, err2, sizeof(err2));
	check(rc2 == rc, "two decodes disagree: %d then %d", rc, rc2);
	if (rc == 0) {
		check(!strcmp(cmd, cmd2), "two decodes give '%s' then '%s'", cmd, cmd2);
		check(json_equal(args, args2), "two decodes give different args");
	} else {
		check(!strcmp(err, err2), "two decodes say '%s' then '%s'", err, err2);
	}
	json_decref(args2);

	/* a small name buffer refuses exactly the names that do not fit */
	memset(small, 0x55, sizeof(small));
	memset(err2, 0x55, sizeof(err2));
	rc3 = ipc_request_decode(buf, len, small, sizeof(small), &args3, err2, sizeof(err2));
	check_result(rc3, small, sizeof(small), args3, err2, sizeof(err2));
	if (rc == 0 && strlen(cmd) < sizeof(small)) {
		check(rc3 == 0 && !strcmp(small, cmd), "'%s' refused with a buffer that fits it",
		      cmd);
	} else if (rc3 == 0) {
		check(rc == 0 && !strcmp(small, cmd), "'%s' accepted only with a small buffer",
		      small);
	}
	json_decref(args3);

	/* the message buffer's size changes nothing else */
	tiny[0] = 0x55;
	rc3 = ipc_request_decode(buf, len, cmd2, sizeof(cmd2), &args3, tiny, sizeof(tiny));
	check_result(rc3, cmd2, sizeof(cmd2), args3, tiny, sizeof(tiny));
	check(rc3 == rc, "a 1-byte message buffer changes the result: %d, not %d", rc3, rc);
	json_decref(args3);
	rc3 = ipc_request_decode(buf, len, cmd2, sizeof(cmd2), &args3, NULL, 0);
	check_result(rc3, cmd2, sizeof(cmd2), args3, NULL, 0);
	check(rc3 == rc, "no message buffer changes the result: %d, not %d", rc3, rc);
	json_decref(args3);

	/* no room for a name: nothing is accepted */
	rc3 = ipc_request_decode(buf, len, cmd2, 0, &args3, err2, sizeof(err2));
	check(rc3 != 0, "accepted a request with no room for its name");
	check_result(rc3, cmd2, 0, args3, err2, sizeof(err2));

	json_decref(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qb_ipc_request_header hdr = {.id = HV_IPC_REQUEST};
	const uint8_t *body = size >= sizeof(hdr) ? data + sizeof(hdr) : data;
	size_t blen = size >= sizeof(hdr) ? size - sizeof(hdr) : size;
	uint8_t *buf;

	/* exactly the bytes, so that ASan sees a read past them */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	decode_all(buf, size);
	free(buf);

	if (blen > HV_IPC_MAX_MSG - sizeof(hdr))
		return 0;
	buf = malloc(sizeof(hdr) + blen);
	if (!buf)
		return 0;
	hdr.size = (int32_t)(sizeof(hdr) + blen);
	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), body, blen);
	decode_all(buf, sizeof(hdr) + blen);
	free(buf);
	return 0;
}
