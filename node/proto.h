/*
 * The hvctl <-> hvnoded protocol over libqb IPC.
 *
 * A request is a qb_ipc_request_header (id HV_IPC_REQUEST) followed by a
 * UTF-8 JSON object {"cmd": "...", "args": {...}}. The response is a
 * qb_ipc_response_header whose error is 0 or -errno, followed by a JSON
 * object: the result, or {"error": "message"} when error != 0.
 * Every body is validated: hvnoded treats hvctl's bytes as hostile.
 */
#ifndef HV_NODE_PROTO_H
#define HV_NODE_PROTO_H

#include <qb/qbipc_common.h>

#define HV_IPC_REQUEST (QB_IPC_MSG_USER_START + 17)
#define HV_IPC_RESPONSE (QB_IPC_MSG_USER_START + 18)
#define HV_IPC_MAX_MSG (1024 * 1024)
#define HV_IPC_DEFAULT_NAME "hvnoded"
#define HV_VERSION "0.1.0"

#endif
