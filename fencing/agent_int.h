/* Fence agents: what agent.c, agent_proc.c and agent_meta.c share. Private to fencing/. */
#ifndef HV_FENCING_AGENT_INT_H
#define HV_FENCING_AGENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agent.h"

#define FA_METADATA_MAX (1024 * 1024) /* bytes of stdout kept whole for action=metadata */

/* What a run keeps of the agent's output. */
struct fa_capture {
	size_t tail_len; /* bytes in res->output */
	bool want_full;	 /* keep all of stdout (metadata) */
	bool full_overflow;
	char *full; /* malloc'd; the caller frees it */
	size_t full_len, full_cap;
};

/* Appends output: to the tail in @res, and to the whole stdout when asked and @is_stdout. */
void fa_capture_add(struct fence_agent_result *res, struct fa_capture *cap, const char *d, size_t n,
		    bool is_stdout);

/* How an agent process ended. */
struct fa_end {
	pid_t pid;
	bool exited; /* false: still alive after SIGKILL (left unreaped) */
	bool lost;   /* ended, but its helper died without telling the status */
};

/*
 * Exec @path, through a helper process that forks and reaps it (see agent_proc.c),
 * with stdin @in_fd (filled, write end closed), in a session of its own,
 * no argument, env PATH only, cwd /. Captures its stdout and stderr into @res/@cap
 * (one stream, as 2>&1; with cap->want_full, stdout apart from stderr),
 * SIGTERMs its group at @timeout_ms, SIGKILLs it @grace_ms later, and after the exit
 * SIGKILLs what is left of its group. Sets res->exit_code, term_signal, timed_out.
 * 0 when it ran (see @end), or -errno when it could not be started or exec'd, with the
 * cause in @why.
 */
int fa_proc_run(const char *path, int in_fd, unsigned int timeout_ms, unsigned int grace_ms,
		struct fence_agent_result *res, struct fa_capture *cap, struct fa_end *end,
		char *why, size_t whylen);

/* A pipe, both ends CLOEXEC and above fd 2. 0 or -errno. */
int fa_pipe(int fds[2]);

/* Run one call; with cap->want_full, all of stdout is kept too. As fence_agent_run(). */
int fa_run(const struct fence_agent_call *call, struct fence_agent_result *res,
	   struct fa_capture *cap);

bool fa_is_name_char(char c);
/* What the API allows as a key: letters, digits, _ - . (XML attribute name, no '='). */
bool fa_valid_key(const char *k);
/* action, plug, port, nodename: sent by us with each call, not device parameters. */
bool fa_is_ours(const char *k);
/* The agent's file name, for messages. */
const char *fa_base_name(const char *path);

#endif
