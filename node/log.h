/*
 * hvnoded's logging: qb_log to stderr, syslog or a file, plus an in-memory
 * blackbox written out when the daemon crashes. Every module logs through
 * qb_log(); the source file (module/file.c) names the subsystem.
 */
#ifndef HV_NODE_LOG_H
#define HV_NODE_LOG_H

#include "config.h"

/* Set up targets from @cfg; @debug_stderr forces debug logging to stderr. 0 or -errno. */
int hv_log_setup(const struct hv_config *cfg, bool debug_stderr, char *err, size_t errlen);
/* Reopen the log file (after logrotate moved it). */
void hv_log_reopen(void);
void hv_log_teardown(void);

#endif
