/*
 * External fence agents, run the way Pacemaker runs them (fence-agents' FenceAgentAPI):
 * the agent is exec'd with no arguments, reads "key=value" lines on stdin (action=off,
 * plug=..., its device parameters), and answers with its exit status: 0 success; for
 * status, 0 on, 2 off, 1 device error. action=metadata prints the XML that lists its
 * parameters and actions. Any agent of Debian's fence-agents package works unchanged.
 *
 * Every call blocks (run it from a worker thread) and keeps no state between calls.
 * The agent runs in a session of its own, with PATH as its only environment, cwd /, no
 * fd of ours, and default signal dispositions. It is not a child of the daemon: a helper
 * process (a clone child, invisible to waitpid(-1)) forks and reaps it, so the daemon's
 * SIGCHLD reaper never takes its status. At its timeout its process group gets SIGTERM,
 * then SIGKILL after a grace; after it exits, whatever it left in its process group is
 * SIGKILLed.
 *
 * Secrets never leave this module except on the agent's stdin: values of secret keys
 * (fence_agent_key_is_secret()) and values read from files are shown as "***" in every
 * message, and replaced by "***" in the agent's captured output too.
 */
#ifndef HV_FENCING_AGENT_H
#define HV_FENCING_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#define FENCE_AGENT_OUTPUT_MAX 4096	   /* bytes of stdout+stderr kept: the last ones */
#define FENCE_AGENT_SUMMARY_MAX 512	   /* one line */
#define FENCE_AGENT_TIMEOUT_MS 60000	   /* per action, when the call says 0 */
#define FENCE_AGENT_GRACE_MS 2000	   /* SIGTERM to SIGKILL, when the call says 0 */
#define FENCE_AGENT_STATUS_INTERVAL_MS 500 /* between status polls of fence_agent_power_off */
#define FENCE_AGENT_NAME_MAX 64		   /* parameter and action names, with the NUL */
#define FENCE_AGENT_PARAMS_MAX 128	   /* fence-agents 4.12 has 44 at most */
#define FENCE_AGENT_ACTIONS_MAX 32

/* One device parameter, sent as "key=value". */
struct fence_agent_param {
	const char *key;
	const char *value; /* with from_file: absolute path of the file that holds the value */
	/*
	 * Send the content of the file @value names, read at each call (one line; a final
	 * newline is dropped), e.g. passwd from a device's passwd file. Such a value is
	 * secret whatever its key; the path itself is never sent.
	 */
	bool from_file;
};

/* One action of one agent. The strings are the caller's, used only during the call. */
struct fence_agent_call {
	const char *agent;    /* absolute path, e.g. /usr/sbin/fence_ipmilan */
	const char *action;   /* off, on, reboot, status, monitor, list, metadata, ... */
	const char *plug;     /* the victim's plug/port on the device; NULL: none sent */
	const char *plug_arg; /* key for @plug: NULL means "plug"; "port" for old agents */
	const char *nodename; /* sent as nodename= when not NULL, as Pacemaker does */
	const struct fence_agent_param *params;
	size_t nparams;
	unsigned int timeout_ms; /* 0: FENCE_AGENT_TIMEOUT_MS */
	unsigned int grace_ms;	 /* 0: FENCE_AGENT_GRACE_MS */
};

/* How one run went. */
struct fence_agent_result {
	int exit_code;	 /* the agent's exit status, or -1 if it did not exit by itself */
	int term_signal; /* the signal that ended it, or 0 */
	bool timed_out;	 /* we stopped it at its timeout */
	unsigned int elapsed_ms;
	/* the last bytes of its stdout and stderr, in the order written (as 2>&1; metadata
	 * runs read them apart); printable ASCII and \n only */
	char output[FENCE_AGENT_OUTPUT_MAX + 1];
	/* "fence_ipmilan action=off plug=n2: exit 1: <last line of output>" */
	char summary[FENCE_AGENT_SUMMARY_MAX];
};

/*
 * Run @call->action once. 0 when the agent ran and exited by itself, whatever its exit
 * status (read res->exit_code); -errno otherwise, res->summary saying why: -EINVAL a bad
 * call (relative path, bad key, newline in a value), -ENOENT / -EACCES the agent is
 * missing, not executable or cannot be exec'd, -E2BIG options too long, the -errno of a
 * secret file that cannot be read, -ETIMEDOUT stopped at its timeout, -ECANCELED killed
 * by a signal not ours, -ECHILD its exit status was lost (its helper process died),
 * -EIO no helper. @res is always filled.
 */
int fence_agent_run(const struct fence_agent_call *call, struct fence_agent_result *res);

/*
 * Run action=status (whatever @call->action says). 0 with *@is_off set when the agent
 * answered on (exit 0) or off (exit 2); -EHOSTUNREACH when it exited 1 (device error),
 * -EPROTO on any other exit status, or fence_agent_run()'s error.
 */
int fence_agent_status(const struct fence_agent_call *call, bool *is_off,
		       struct fence_agent_result *res);

/*
 * Power fencing: action=off, then action=status every FENCE_AGENT_STATUS_INTERVAL_MS
 * until it reports off, for @confirm_ms (plus the last status' own run; at least one is
 * asked). 0 only when status confirmed off. Else -EREMOTEIO when off exited non-zero,
 * -ETIMEDOUT when off succeeded but status never said off (the summary gives its last
 * answer), or the error of the off run. @res: the last run, its summary rewritten to
 * tell the outcome.
 */
int fence_agent_power_off(const struct fence_agent_call *call, unsigned int confirm_ms,
			  struct fence_agent_result *res);

/* --- metadata ---------------------------------------------------------------------- */

struct fence_agent_meta_param {
	char name[FENCE_AGENT_NAME_MAX];
	char obsoletes[FENCE_AGENT_NAME_MAX]; /* the older name this one replaces, or "" */
	bool required;
	bool deprecated;
};

/* What an agent's metadata says. Plain data (about 18 KiB): copy it, nothing to free. */
struct fence_agent_meta {
	char name[FENCE_AGENT_NAME_MAX]; /* <resource-agent name="...">, or "" */
	size_t nparams;
	struct fence_agent_meta_param params[FENCE_AGENT_PARAMS_MAX];
	size_t nactions;
	char actions[FENCE_AGENT_ACTIONS_MAX][FENCE_AGENT_NAME_MAX];
};

/*
 * Run @agent's action=metadata (timeout @timeout_s, 0 for the default) and parse it.
 * 0, or -errno with a message naming the agent and the cause in @err. Whether the
 * agent can power fence is the caller's question: has_action "off" and "status".
 */
int fence_agent_metadata(const char *agent, unsigned int timeout_s, struct fence_agent_meta *meta,
			 char *err, size_t errlen);

/*
 * Parse metadata XML of @len bytes (no NUL needed): <resource-agent name=>, each
 * <parameter name= required= deprecated= obsoletes=> and <action name=> inside it. Not
 * a validating parser, but safe on any input: garbage or truncated XML is -EBADMSG,
 * too many parameters or actions -E2BIG, with the cause in @err.
 */
int fence_agent_meta_parse(const char *xml, size_t len, struct fence_agent_meta *meta, char *err,
			   size_t errlen);

bool fence_agent_meta_has_param(const struct fence_agent_meta *meta, const char *name);
bool fence_agent_meta_has_action(const struct fence_agent_meta *meta, const char *name);

/* The key the agent takes the victim's plug as: "plug", "port", or NULL if neither. */
const char *fence_agent_meta_plug_arg(const struct fence_agent_meta *meta);

/*
 * Check a device's parameter keys (as sent to the agent) against its metadata: 0, or
 * -EINVAL naming the first unknown, repeated or missing required parameter. action,
 * plug, port and nodename are ours to send with each call, so they are neither required
 * nor allowed as device parameters. A required parameter is satisfied by the older name
 * it obsoletes, and the other way round.
 */
int fence_agent_check_params(const struct fence_agent_meta *meta, const char *const *keys, size_t n,
			     char *err, size_t errlen);

/* --- messages ---------------------------------------------------------------------- */

/* A key whose value is never shown: contains passw, secret, token, community, apikey... */
bool fence_agent_key_is_secret(const char *key);

/*
 * The options @call sends, on one line for a log ("action=off plug=n2 ipaddr=10.0.0.9
 * passwd=***"): secret values and values from files as "***". Returns @buf.
 */
char *fence_agent_format_options(const struct fence_agent_call *call, char *buf, size_t len);

#endif
