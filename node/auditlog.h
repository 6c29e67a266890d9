/* Reading this node's audit log (state_dir/audit.log, one JSON object a line), newest first. */
#ifndef HV_NODE_AUDITLOG_H
#define HV_NODE_AUDITLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * The newest records of the log open on @fd: those whose at_ms is @since_ms or
 * later, at most @limit of them, whose compact JSON (with a comma each) fits
 * in @max_bytes; oldest first in *@out (new reference). The log is in the
 * order records were appended, so the reading stops at the first older
 * record. Lines that are not JSON objects are skipped (a torn last write).
 * *@more: older records that match were left out. 0 or -errno.
 */
int audit_log_tail(int fd, int64_t since_ms, size_t limit, size_t max_bytes, json_t **out,
		   bool *more);

#endif
