/*
 * Fence agents, the protocol side: the options an action is run with (and the secrets
 * among them), what is kept of the output, the one-line summary, and the status and
 * power-off logic on top of a run. The process itself is agent_proc.c's.
 *
 * The options go through a pipe filled before the agent exists: we hold its read end
 * then, so the write can neither block nor raise SIGPIPE, whatever the agent does with
 * its stdin. Secret values live in buffers wiped before they are freed.
 */
#include "agent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_MAX (64 * 1024) /* options: what a pipe holds without a reader */
#define SECRET_FILE_MAX 4096
#define LAST_LINE_MAX 200
#define VALUE_MAX 4096

static const char *const secret_words[] = {
	"passw", "secret", "token", "community", "apikey", "api_key", "access_key", "private_key",
};

/* --- small helpers ---------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *fa_base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return s ? s + 1 : path ? path : "(no agent)";
}

static unsigned int timeout_of(const struct fence_agent_call *c)
{
	return c->timeout_ms ? c->timeout_ms : FENCE_AGENT_TIMEOUT_MS;
}

bool fa_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '_' || c == '-' || c == '.' || c == ':';
}

bool fa_valid_key(const char *k)
{
	size_t n = k ? strlen(k) : 0;

	if (n == 0 || n >= FENCE_AGENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!fa_is_name_char(k[i]) || k[i] == ':')
			return false;
	return true;
}

static bool valid_value(const char *v)
{
	return v && strlen(v) < VALUE_MAX && !strpbrk(v, "\n\r");
}

bool fa_is_ours(const char *k)
{
	return !strcmp(k, "action") || !strcmp(k, "plug") || !strcmp(k, "port") ||
		!strcmp(k, "nodename");
}

bool fence_agent_key_is_secret(const char *key)
{
	char low[FENCE_AGENT_NAME_MAX];
	size_t i;

	if (!key)
		return false;
	for (i = 0; key[i] && i < sizeof(low) - 1; i++)
		low[i] = (key[i] >= 'A' && key[i] <= 'Z') ? (char)(key[i] - 'A' + 'a') : key[i];
	low[i] = '\0';
	for (i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]); i++)
		if (strstr(low, secret_words[i]))
			return true;
	return false;
}

static bool param_is_secret(const struct fence_agent_param *p)
{
	return p->from_file || fence_agent_key_is_secret(p->key);
}

/* --- messages --------------------------------------------------------------------- */

/* "fence_x action=off plug=n2": how every message of a call begins. */
static int call_prefix(const struct fence_agent_call *c, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s action=%s", fa_base_name(c->agent),
			 c->action ? c->action : "(none)");

	if (c->plug && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, " %s=%s", c->plug_arg ? c->plug_arg : "plug",
			      c->plug);
	return n < 0 ? 0 : (size_t)n < len ? n : (int)len - 1;
}

static __attribute__((format(printf, 3, 4))) void
set_summary(struct fence_agent_result *res, const struct fence_agent_call *c, const char *fmt, ...)
{
	size_t len = sizeof(res->summary);
	int n = call_prefix(c, res->summary, len);
	va_list ap;

	if ((size_t)n + 2 >= len)
		return;
	res->summary[n++] = ':';
	res->summary[n++] = ' ';
	va_start(ap, fmt);
	vsnprintf(res->summary + n, len - n, fmt, ap);
	va_end(ap);
	/* one line, whatever a bad call put in it */
	for (char *p = res->summary; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

/* What follows "prefix: " in a summary made for @c. */
static const char *summary_detail(const struct fence_agent_result *res,
				  const struct fence_agent_call *c)
{
	char pre[FENCE_AGENT_SUMMARY_MAX];
	size_t n = (size_t)call_prefix(c, pre, sizeof(pre));

	if (!strncmp(res->summary, pre, n) && !strncmp(res->summary + n, ": ", 2))
		return res->summary + n + 2;
	return res->summary;
}

/* The last non-empty line of the (sanitized) output, at most LAST_LINE_MAX chars. */
static void last_line(const char *out, char *buf, size_t len)
{
	const char *end = out + strlen(out), *start;
	size_t n;

	while (end > out && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	start = end;
	while (start > out && start[-1] != '\n')
		start--;
	while (start < end && *start == ' ')
		start++;
	n = (size_t)(end - start);
	if (n > LAST_LINE_MAX)
		n = LAST_LINE_MAX;
	snprintf(buf, len, "%.*s", (int)n, start);
}

char *fence_agent_format_options(const struct fence_agent_call *call, char *buf, size_t len)
{
	size_t n = 0;
	int w;

	if (!len)
		return buf;
	buf[0] = '\0';
#define APPEND(...)                                                                                \
	do {                                                                                       \
		w = snprintf(buf + n, len - n, __VA_ARGS__);                                       \
		if (w < 0 || (size_t)w >= len - n)                                                 \
			return buf;                                                                \
		n += (size_t)w;                                                                    \
	} while (0)
	APPEND("action=%s", call->action ? call->action : "(none)");
	if (call->plug)
		APPEND(" %s=%s", call->plug_arg ? call->plug_arg : "plug", call->plug);
	if (call->nodename)
		APPEND(" nodename=%s", call->nodename);
	for (size_t i = 0; i < call->nparams; i++) {
		const struct fence_agent_param *p = &call->params[i];

		APPEND(" %s=%s", p->key ? p->key : "(null)",
		       param_is_secret(p) ? "***"
			       : p->value ? p->value
					  : "(null)");
	}
#undef APPEND
	return buf;
}

/* --- options and secrets ---------------------------------------------------------- */

struct secrets {
	char **v; /* copies, wiped when freed */
	size_t n;
};

static void secrets_free(struct secrets *s)
{
	for (size_t i = 0; i < s->n; i++) {
		explicit_bzero(s->v[i], strlen(s->v[i]));
		free(s->v[i]);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int secrets_add(struct secrets *s, const char *val, size_t len)
{
	char *copy;

	if (!len)
		return 0;
	copy = strndup(val, len);
	if (!copy)
		return -ENOMEM;
	s->v[s->n++] = copy;
	return 0;
}

/* The one line of file @path into @buf. 0, or -errno with the cause in @why. */
static int read_secret_file(const char *path, char *buf, size_t buflen, char *why, size_t whylen)
{
	struct stat st;
	size_t len = 0;
	ssize_t r;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s", strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		close(fd);
		return -EINVAL;
	}
	rc = 0;
	while (len < buflen - 1) {
		r = read(fd, buf + len, buflen - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = -errno;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	if (rc) {
		snprintf(why, whylen, "%s", strerror(-rc));
		return rc;
	}
	if (len >= buflen - 1) {
		snprintf(why, whylen, "larger than %zu bytes", buflen - 2);
		return -EFBIG;
	}
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (strlen(buf) != len || strpbrk(buf, "\n\r")) {
		snprintf(why, whylen, "not one line of text");
		return -EINVAL;
	}
	return 0;
}

struct payload {
	char *p;
	size_t len, cap;
};

static int payload_line(struct payload *pl, const char *key, const char *val)
{
	size_t need = strlen(key) + strlen(val) + 2;

	if (pl->len + need > PAYLOAD_MAX)
		return -E2BIG;
	if (pl->len + need > pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 1024;
		char *p;

		while (cap < pl->len + need)
			cap *= 2;
		p = malloc(cap);
		if (!p)
			return -ENOMEM;
		if (pl->p) {
			memcpy(p, pl->p, pl->len);
			explicit_bzero(pl->p, pl->cap);
			free(pl->p);
		}
		pl->p = p;
		pl->cap = cap;
	}
	pl->len += (size_t)sprintf(pl->p + pl->len, "%s=%s\n", key, val);
	return 0;
}

static void payload_free(struct payload *pl)
{
	if (pl->p)
		explicit_bzero(pl->p, pl->cap);
	free(pl->p);
	pl->p = NULL;
}

/* Checks @c and builds its stdin; secret values are copied to @sec for redaction. */
static int build_payload(const struct fence_agent_call *c, struct payload *pl, struct secrets *sec,
			 struct fence_agent_result *res)
{
	char file_val[SECRET_FILE_MAX + 2], why[128];
	const char *plug_arg = c->plug_arg ? c->plug_arg : "plug";
	int rc;

	if (!c->action || !fa_valid_key(c->action)) {
		set_summary(res, c, "bad action");
		return -EINVAL;
	}
	if ((c->plug && (!valid_value(c->plug) || !fa_valid_key(plug_arg))) ||
	    (c->nodename && !valid_value(c->nodename))) {
		set_summary(res, c, "bad plug or nodename (empty key, or a newline)");
		return -EINVAL;
	}
	sec->v = calloc(c->nparams + 1, sizeof(*sec->v));
	if (!sec->v)
		goto err_nomem;
	rc = payload_line(pl, "action", c->action);
	if (!rc && c->plug)
		rc = payload_line(pl, plug_arg, c->plug);
	if (!rc && c->nodename)
		rc = payload_line(pl, "nodename", c->nodename);
	for (size_t i = 0; !rc && i < c->nparams; i++) {
		const struct fence_agent_param *p = &c->params[i];
		const char *val = p->value;

		if (!fa_valid_key(p->key) || fa_is_ours(p->key)) {
			set_summary(res, c, "parameter %zu: bad key '%s'%s", i,
				    p->key ? p->key : "(null)",
				    p->key && fa_is_ours(p->key) ? " (sent by hvcluster itself)"
								 : "");
			return -EINVAL;
		}
		if (p->from_file) {
			if (!p->value || p->value[0] != '/') {
				set_summary(res, c, "%s: file '%s' is not an absolute path", p->key,
					    p->value ? p->value : "(null)");
				return -EINVAL;
			}
			rc = read_secret_file(p->value, file_val, sizeof(file_val), why,
					      sizeof(why));
			if (rc) {
				explicit_bzero(file_val, sizeof(file_val));
				set_summary(res, c, "%s from %s: %s", p->key, p->value, why);
				return rc;
			}
			val = file_val;
		} else if (!valid_value(val)) {
			set_summary(res, c, "%s: value missing, too long or with a newline",
				    p->key);
			return -EINVAL;
		}
		rc = param_is_secret(p) ? secrets_add(sec, val, strlen(val)) : 0;
		if (!rc)
			rc = payload_line(pl, p->key, val);
		explicit_bzero(file_val, sizeof(file_val));
	}
	if (rc == -E2BIG)
		set_summary(res, c, "options longer than %d bytes", PAYLOAD_MAX);
	else if (rc == -ENOMEM)
		goto err_nomem;
	return rc;
err_nomem:
	set_summary(res, c, "out of memory");
	return -ENOMEM;
}

/* --- output ----------------------------------------------------------------------- */

static void tail_add(struct fence_agent_result *res, struct fa_capture *cap, const char *d,
		     size_t n)
{
	const size_t max = FENCE_AGENT_OUTPUT_MAX;

	if (n >= max) {
		memcpy(res->output, d + n - max, max);
		cap->tail_len = max;
		return;
	}
	if (cap->tail_len + n > max) {
		size_t drop = cap->tail_len + n - max;

		memmove(res->output, res->output + drop, cap->tail_len - drop);
		cap->tail_len -= drop;
	}
	memcpy(res->output + cap->tail_len, d, n);
	cap->tail_len += n;
}

static void full_add(struct fa_capture *cap, const char *d, size_t n)
{
	size_t ncap;
	char *p;

	if (cap->full_overflow)
		return;
	if (cap->full_len + n > FA_METADATA_MAX) {
		cap->full_overflow = true;
		return;
	}
	if (cap->full_len + n > cap->full_cap) {
		for (ncap = cap->full_cap ? cap->full_cap : 16384; ncap < cap->full_len + n;)
			ncap *= 2;
		p = realloc(cap->full, ncap);
		if (!p) {
			cap->full_overflow = true;
			return;
		}
		cap->full = p;
		cap->full_cap = ncap;
	}
	memcpy(cap->full + cap->full_len, d, n);
	cap->full_len += n;
}

void fa_capture_add(struct fence_agent_result *res, struct fa_capture *cap, const char *d, size_t n,
		    bool is_stdout)
{
	tail_add(res, cap, d, n);
	if (is_stdout && cap->want_full)
		full_add(cap, d, n);
}

/*
 * Each secret in the tail becomes "***", the last FENCE_AGENT_OUTPUT_MAX bytes kept. A
 * secret cut by the start of the tail is not recognized: only its end can show.
 */
static void redact_output(struct fence_agent_result *res, struct fa_capture *cap,
			  const struct secrets *sec)
{
	for (size_t s = 0; s < sec->n; s++) {
		const char *v = sec->v[s];
		size_t vl = strlen(v), len = cap->tail_len, o = 0, i = 0;
		char *tmp;

		if (!memmem(res->output, len, v, vl))
			continue;
		tmp = malloc(len * 3 + 1);
		if (!tmp) { /* cannot rebuild it: drop the output rather than show a secret */
			explicit_bzero(res->output, len);
			cap->tail_len = 0;
			return;
		}
		while (i < len) {
			if (i + vl <= len && !memcmp(res->output + i, v, vl)) {
				memcpy(tmp + o, "***", 3);
				o += 3;
				i += vl;
			} else {
				tmp[o++] = res->output[i++];
			}
		}
		explicit_bzero(res->output, len);
		cap->tail_len = 0;
		tail_add(res, cap, tmp, o);
		explicit_bzero(tmp, o);
		free(tmp);
	}
}

/* Printable ASCII and \n only: the output goes to logs and one-line messages. */
static void sanitize_output(struct fence_agent_result *res, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)res->output[i];

		if (ch == '\r')
			res->output[i] = '\n';
		else if (ch == '\t')
			res->output[i] = ' ';
		else if ((ch < 0x20 && ch != '\n') || ch >= 0x7f)
			res->output[i] = '?';
	}
	res->output[len] = '\0';
}

/* --- running ---------------------------------------------------------------------- */

static int check_agent(const struct fence_agent_call *c, struct fence_agent_result *res)
{
	struct stat st;
	int rc;

	if (!c->agent || c->agent[0] != '/') {
		set_summary(res, c, "agent '%s' is not an absolute path", c->agent ? c->agent : "");
		return -EINVAL;
	}
	if (stat(c->agent, &st) < 0) {
		rc = -errno;
		set_summary(res, c, "%s: %s", c->agent,
			    errno == ENOENT ? "not found (is the fence agent installed?)"
					    : strerror(errno));
		return rc;
	}
	if (!S_ISREG(st.st_mode) || access(c->agent, X_OK) < 0) {
		set_summary(res, c, "%s: not an executable file", c->agent);
		return -EACCES;
	}
	return 0;
}

/* The options into a fresh pipe whose read end we hold: this write cannot block. */
static int fill_stdin(const struct payload *pl, int fds[2])
{
	ssize_t n;
	int rc;

	rc = fa_pipe(fds);
	if (rc)
		return rc;
	if (fcntl(fds[0], F_GETPIPE_SZ) < (int)pl->len &&
	    fcntl(fds[0], F_SETPIPE_SZ, PAYLOAD_MAX) < (int)pl->len)
		goto err_big;
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	do
		n = write(fds[1], pl->p, pl->len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)pl->len)
		goto err_big;
	close(fds[1]);
	fds[1] = -1;
	return 0;
err_big:
	close(fds[0]);
	close(fds[1]);
	return -E2BIG;
}

static const char *sig_name(int sig)
{
	const char *s = sigabbrev_np(sig);

	return s ? s : "?";
}

/* The summary of a run that started; its return code. */
static int describe_end(const struct fa_end *end, const struct fence_agent_call *c,
			struct fence_agent_result *res)
{
	char line[LAST_LINE_MAX + 1], how[128];
	int rc = 0;

	last_line(res->output, line, sizeof(line));
	if (!end->exited) {
		snprintf(how, sizeof(how),
			 "timed out after %u ms; still alive after SIGKILL (pid %d)", timeout_of(c),
			 (int)end->pid);
		rc = -ETIMEDOUT;
	} else if (end->lost) {
		snprintf(how, sizeof(how), "exit status lost (its helper process died)");
		rc = -ECHILD;
	} else if (res->timed_out && res->term_signal) {
		snprintf(how, sizeof(how), "timed out after %u ms, killed (SIG%s)", timeout_of(c),
			 sig_name(res->term_signal));
		rc = -ETIMEDOUT;
	} else if (res->timed_out) {
		snprintf(how, sizeof(how), "timed out after %u ms, exit %d on SIGTERM",
			 timeout_of(c), res->exit_code);
		rc = -ETIMEDOUT;
	} else if (res->term_signal) {
		snprintf(how, sizeof(how), "killed by signal %d (SIG%s)", res->term_signal,
			 sig_name(res->term_signal));
		rc = -ECANCELED;
	} else {
		snprintf(how, sizeof(how), "exit %d", res->exit_code);
	}
	if (line[0])
		set_summary(res, c, "%s: %s", how, line);
	else
		set_summary(res, c, "%s (no output)", how);
	return rc;
}

int fa_run(const struct fence_agent_call *c, struct fence_agent_result *res, struct fa_capture *cap)
{
	struct payload pl = {0};
	struct secrets sec = {0};
	struct fa_end end;
	uint64_t start = now_ms();
	char why[FENCE_AGENT_SUMMARY_MAX];
	int in[2] = {-1, -1}, rc;

	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	cap->tail_len = 0;
	rc = check_agent(c, res);
	if (rc)
		return rc;
	rc = build_payload(c, &pl, &sec, res);
	if (!rc) {
		rc = fill_stdin(&pl, in);
		if (rc)
			set_summary(res, c, "cannot pass the options on stdin: %s", strerror(-rc));
	}
	payload_free(&pl);
	if (rc)
		goto out;
	rc = fa_proc_run(c->agent, in[0], timeout_of(c),
			 c->grace_ms ? c->grace_ms : FENCE_AGENT_GRACE_MS, res, cap, &end, why,
			 sizeof(why));
	close(in[0]);
	redact_output(res, cap, &sec);
	sanitize_output(res, cap->tail_len);
	if (rc)
		set_summary(res, c, "%s", why);
	else
		rc = describe_end(&end, c, res);
out:
	secrets_free(&sec);
	res->elapsed_ms = (unsigned int)(now_ms() - start);
	return rc;
}

int fence_agent_run(const struct fence_agent_call *call, struct fence_agent_result *res)
{
	struct fa_capture cap = {0};

	return fa_run(call, res, &cap);
}

int fence_agent_status(const struct fence_agent_call *call, bool *is_off,
		       struct fence_agent_result *res)
{
	struct fence_agent_call c = *call;
	char line[LAST_LINE_MAX + 1];
	int rc;

	c.action = "status";
	rc = fence_agent_run(&c, res);
	if (rc)
		return rc;
	switch (res->exit_code) {
	case 0:
	case 2:
		*is_off = res->exit_code == 2;
		return 0;
	case 1:
		return -EHOSTUNREACH;
	default:
		last_line(res->output, line, sizeof(line));
		set_summary(res, &c, "exit %d, not 0 (on), 2 (off) or 1 (error)%s%s",
			    res->exit_code, line[0] ? ": " : "", line);
		return -EPROTO;
	}
}

int fence_agent_power_off(const struct fence_agent_call *call, unsigned int confirm_ms,
			  struct fence_agent_result *res)
{
	struct fence_agent_call c = *call;
	char reason[FENCE_AGENT_SUMMARY_MAX];
	uint64_t start, deadline, t;
	bool off = false;
	int rc;

	c.action = "off";
	rc = fence_agent_run(&c, res);
	if (rc)
		return rc;
	if (res->exit_code != 0)
		return -EREMOTEIO;
	start = now_ms();
	deadline = start + confirm_ms;
	c.action = "status";
	for (;;) {
		rc = fence_agent_status(&c, &off, res);
		if (!rc && off) {
			c.action = "off";
			set_summary(res, &c, "powered off, confirmed by status after %u ms",
				    (unsigned int)(now_ms() - start));
			return 0;
		}
		snprintf(reason, sizeof(reason), "status %.400s", summary_detail(res, &c));
		t = now_ms();
		if (t >= deadline)
			break;
		sleep_ms(deadline - t < FENCE_AGENT_STATUS_INTERVAL_MS
				 ? deadline - t
				 : FENCE_AGENT_STATUS_INTERVAL_MS);
	}
	c.action = "off";
	set_summary(res, &c, "off succeeded but power-off not confirmed within %u ms: last %s%s",
		    confirm_ms, reason, !rc ? " (still on)" : "");
	return -ETIMEDOUT;
}
