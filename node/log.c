#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <qb/qblog.h>

#define LOG_FORMAT "%T %N[%P] %p %f: %b"

/* Written once at setup, read in the crash handler: must be plain static storage. */
static char blackbox_path[4096];
static int file_target = -1;
static char file_path[4096];

static void crash_handler(int sig)
{
	if (blackbox_path[0])
		qb_log_blackbox_write_to_file(blackbox_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_crash_handlers(void)
{
	static const int sigs[] = { SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL };
	struct sigaction sa = { .sa_handler = crash_handler, .sa_flags = SA_RESETHAND };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void enable(int target, int level)
{
	qb_log_filter_ctl(target, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", level);
	qb_log_format_set(target, LOG_FORMAT);
	qb_log_ctl(target, QB_LOG_CONF_ENABLED, QB_TRUE);
}

int hv_log_setup(const struct hv_config *cfg, bool debug_stderr, char *err, size_t errlen)
{
	int level = debug_stderr ? LOG_DEBUG : cfg->log_level;

	qb_log_init("hvnoded", LOG_DAEMON, level);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);

	if (debug_stderr || cfg->log_target == HV_LOG_STDERR)
		enable(QB_LOG_STDERR, level);
	if (cfg->log_target == HV_LOG_SYSLOG) {
		qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", level);
		qb_log_format_set(QB_LOG_SYSLOG, "%f: %b");
		qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_TRUE);
	}
	if (cfg->log_target == HV_LOG_FILE) {
		file_target = qb_log_file_open(cfg->log_file);
		if (file_target < 0) {
			snprintf(err, errlen, "%s: cannot open log file %s: %s", cfg->path,
				 cfg->log_file, strerror(-file_target));
			qb_log_fini();
			return file_target;
		}
		snprintf(file_path, sizeof(file_path), "%s", cfg->log_file);
		enable(file_target, level);
	}
	if (cfg->log_blackbox) {
		/* the blackbox keeps the debug detail that the targets filter out */
		qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, 1024 * 1024);
		qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*",
				  LOG_DEBUG);
		qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
		snprintf(blackbox_path, sizeof(blackbox_path), "%s/hvnoded-blackbox-%d",
			 cfg->blackbox_dir, (int)getpid());
		install_crash_handlers();
	}
	return 0;
}

void hv_log_reopen(void)
{
	if (file_target >= 0 && qb_log_file_reopen(file_target, file_path) < 0)
		qb_log(LOG_ERR, "cannot reopen log file %s", file_path);
}

void hv_log_teardown(void)
{
	qb_log_fini();
	file_target = -1;
}
