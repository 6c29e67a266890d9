/*
 * Decoding of an hvctl request as it arrives over libqb IPC (see proto.h):
 * a pure function of the bytes, apart from the daemon, so that it can be
 * unit-tested and fuzzed.
 */
#ifndef HV_NODE_IPCPROTO_H
#define HV_NODE_IPCPROTO_H

#include <stddef.h>

#include <jansson.h>

/* Room for a command name and its NUL; longer names are refused. */
#define HV_IPC_CMD_MAX 64

/*
 * Decode one request: a qb_ipc_request_header (id HV_IPC_REQUEST, size within
 * @len) and the JSON object {"cmd": "...", "args": {...}} after it. @buf needs no
 * alignment. 0: @cmd holds the command name, non-empty, without NUL bytes, a C
 * string within @cmdlen; *@args is a new reference to an object (empty when the
 * request has no "args"), for the caller to json_decref(). -EPROTO (malformed) or
 * -ENOMEM: *@args is NULL and @err, if @errlen > 0, holds a C string saying why.
 */
int ipc_request_decode(const void *buf, size_t len, char *cmd, size_t cmdlen, json_t **args,
		       char *err, size_t errlen);

#endif
