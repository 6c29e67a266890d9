/*
 * A strict INI reader for hvnoded.conf.
 *
 * Format: "[section]" lines, "key = value" lines, comments start with '#' or
 * ';' at the start of a line or after whitespace in a value. Values are not
 * quoted. A key given twice is an error: an admin who writes it twice meant
 * one of them, and we will not guess which.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

enum key_type {
	KEY_STRING,
	KEY_PATH,	/* absolute path */
	KEY_NAME,	/* [A-Za-z0-9._-], 1..64 chars */
	KEY_BOOL,
	KEY_LOG_TARGET,
	KEY_LOG_LEVEL,
	KEY_UID,	/* 1000..4294967294 */
	KEY_COUNT,	/* 1..65536 */
	KEY_MEMORY_MB,	/* 1..16777216 */
	KEY_SECONDS,	/* 0..3600 */
	KEY_CLASS,	/* public, internal, confidential, secret */
	KEY_ADDRESS,	/* an IPv4 or IPv6 address */
	KEY_SHUTDOWN,	/* migrate, freeze, failover */
};

struct key_def {
	const char *section;
	const char *key;
	enum key_type type;
	size_t offset;
};

#define CFG_OFF(field) offsetof(struct hv_config, field)

static const struct key_def keys[] = {
	{ "node", "name", KEY_NAME, CFG_OFF(node_name) },
	{ "node", "state_dir", KEY_PATH, CFG_OFF(state_dir) },
	{ "node", "run_dir", KEY_PATH, CFG_OFF(run_dir) },
	{ "node", "ipc_name", KEY_NAME, CFG_OFF(ipc_name) },
	{ "node", "vcpus", KEY_COUNT, CFG_OFF(node_vcpus) },
	{ "node", "memory_mb", KEY_MEMORY_MB, CFG_OFF(node_memory_mb) },
	{ "node", "domain", KEY_NAME, CFG_OFF(node_domain) },
	{ "node", "clearance", KEY_CLASS, CFG_OFF(node_clearance) },
	{ "node", "shutdown_policy", KEY_SHUTDOWN, CFG_OFF(shutdown_policy) },
	{ "node", "shutdown_timeout_s", KEY_SECONDS, CFG_OFF(shutdown_timeout_s) },
	{ "cluster", "name", KEY_NAME, CFG_OFF(cluster_name) },
	{ "cluster", "quorum_loss_stop_s", KEY_SECONDS, CFG_OFF(quorum_loss_stop_s) },
	{ "log", "target", KEY_LOG_TARGET, CFG_OFF(log_target) },
	{ "log", "file", KEY_PATH, CFG_OFF(log_file) },
	{ "log", "level", KEY_LOG_LEVEL, CFG_OFF(log_level) },
	{ "log", "blackbox", KEY_BOOL, CFG_OFF(log_blackbox) },
	{ "log", "blackbox_dir", KEY_PATH, CFG_OFF(blackbox_dir) },
	{ "watchdog", "device", KEY_PATH, CFG_OFF(watchdog_device) },
	{ "watchdog", "timeout_s", KEY_SECONDS, CFG_OFF(watchdog_timeout_s) },
	{ "vm", "uid_base", KEY_UID, CFG_OFF(vm_uid_base) },
	{ "vm", "uid_count", KEY_COUNT, CFG_OFF(vm_uid_count) },
	{ "vm", "qemu", KEY_PATH, CFG_OFF(qemu) },
	{ "vm", "nbdkit", KEY_PATH, CFG_OFF(nbdkit) },
	{ "vm", "nbdkit_plugin", KEY_PATH, CFG_OFF(nbdkit_plugin) },
	{ "migrate", "address", KEY_ADDRESS, CFG_OFF(mig_address) },
	{ "migrate", "port", KEY_COUNT, CFG_OFF(mig_port) },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parser {
	const char *path;
	unsigned int line;
	char *err;
	size_t errlen;
	bool seen[NKEYS];
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* line 0: an error about the file as a whole (a missing mandatory key) */
	if (p->line)
		n = snprintf(p->err, p->errlen, "%s:%u: ", p->path, p->line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->path);
	if (n < 0 || (size_t)n >= p->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int hv_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "error", LOG_ERR },	    { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
		{ "info", LOG_INFO },	    { "debug", LOG_DEBUG },	{ "trace", LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -EINVAL;
}

static bool is_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	return true;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* A '#' or ';' preceded by whitespace starts a comment inside a value. */
static void strip_comment(char *v)
{
	for (char *c = v; *c; c++) {
		if ((*c == '#' || *c == ';') && (c == v || isspace((unsigned char)c[-1]))) {
			*c = '\0';
			return;
		}
	}
}

static int set_string(struct parser *p, char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return fail(p, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

static int set_value(struct parser *p, struct hv_config *cfg, const struct key_def *k,
		     const char *value)
{
	void *field = (char *)cfg + k->offset;
	int v;

	switch (k->type) {
	case KEY_NAME:
		if (!is_name(value))
			return fail(p, "[%s] %s: '%s' is not a valid name (1-64 of A-Z a-z 0-9 . _ -)",
				    k->section, k->key, value);
		return set_string(p, field, value);
	case KEY_PATH:
		if (value[0] != '/' || strlen(value) >= PATH_MAX)
			return fail(p, "[%s] %s: '%s' is not an absolute path", k->section, k->key,
				    value);
		return set_string(p, field, value);
	case KEY_STRING:
		return set_string(p, field, value);
	case KEY_BOOL:
		if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "on") ||
		    !strcmp(value, "1"))
			*(bool *)field = true;
		else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "off") ||
			 !strcmp(value, "0"))
			*(bool *)field = false;
		else
			return fail(p, "[%s] %s: '%s' is not a boolean (yes/no)", k->section,
				    k->key, value);
		return 0;
	case KEY_LOG_TARGET:
		if (!strcmp(value, "stderr"))
			*(enum hv_log_target *)field = HV_LOG_STDERR;
		else if (!strcmp(value, "syslog"))
			*(enum hv_log_target *)field = HV_LOG_SYSLOG;
		else if (!strcmp(value, "file"))
			*(enum hv_log_target *)field = HV_LOG_FILE;
		else
			return fail(p, "[log] target: '%s' is not one of stderr, syslog, file",
				    value);
		return 0;
	case KEY_SHUTDOWN:
		if (strcmp(value, "migrate") && strcmp(value, "freeze") && strcmp(value, "failover"))
			return fail(p, "[%s] %s: '%s' is not one of migrate, freeze, failover",
				    k->section, k->key, value);
		return set_string(p, field, value);
	case KEY_CLASS:
		if (strcmp(value, "public") && strcmp(value, "internal") &&
		    strcmp(value, "confidential") && strcmp(value, "secret"))
			return fail(p, "[%s] %s: '%s' is not one of public, internal, confidential, "
				       "secret",
				    k->section, k->key, value);
		return set_string(p, field, value);
	case KEY_ADDRESS: {
		unsigned char buf[sizeof(struct in6_addr)];

		if (inet_pton(AF_INET, value, buf) != 1 && inet_pton(AF_INET6, value, buf) != 1)
			return fail(p, "[%s] %s: '%s' is not an IPv4 or IPv6 address", k->section,
				    k->key, value);
		return set_string(p, field, value);
	}
	case KEY_UID:
	case KEY_COUNT:
	case KEY_MEMORY_MB:
	case KEY_SECONDS: {
		unsigned long long lo = k->type == KEY_UID ? 1000 : k->type == KEY_SECONDS ? 0 : 1;
		unsigned long long hi = k->type == KEY_UID	     ? 4294967294ULL
					: k->type == KEY_MEMORY_MB ? 16777216
					: k->type == KEY_SECONDS   ? 3600
								   : 65536;
		unsigned long long n;
		char *end;

		errno = 0;
		n = strtoull(value, &end, 10);
		if (errno || *end || !isdigit((unsigned char)*value) || n < lo || n > hi)
			return fail(p, "[%s] %s: '%s' is not a number in %llu..%llu", k->section,
				    k->key, value, lo, hi);
		*(unsigned int *)field = n;
		return 0;
	}
	case KEY_LOG_LEVEL:
		v = hv_log_level_parse(value);
		if (v < 0)
			return fail(p, "[log] level: '%s' is not one of error, warning, notice, "
				       "info, debug",
				    value);
		*(int *)field = v;
		return 0;
	}
	return fail(p, "internal: key type %d", (int)k->type);
}

static int parse_line(struct parser *p, struct hv_config *cfg, char *line, char *section,
		      size_t seclen)
{
	char *s = trim(line), *eq, *key, *value;

	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');

		if (!end || end[1] != '\0')
			return fail(p, "malformed section header '%s'", s);
		*end = '\0';
		s = trim(s + 1);
		if (strcmp(s, "node") && strcmp(s, "cluster") && strcmp(s, "log") && strcmp(s, "vm") &&
		    strcmp(s, "watchdog") && strcmp(s, "migrate"))
			return fail(p, "unknown section [%s] (known: node, cluster, log, vm, watchdog, "
				       "migrate)",
				    s);
		snprintf(section, seclen, "%s", s);
		return 0;
	}
	eq = strchr(s, '=');
	if (!eq)
		return fail(p, "expected 'key = value', got '%s'", s);
	*eq = '\0';
	key = trim(s);
	value = eq + 1;
	strip_comment(value);
	value = trim(value);
	if (section[0] == '\0')
		return fail(p, "key '%s' outside of any section", key);
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) || strcmp(keys[i].key, key))
			continue;
		if (p->seen[i])
			return fail(p, "[%s] %s given twice", section, key);
		p->seen[i] = true;
		if (*value == '\0')
			return fail(p, "[%s] %s: empty value", section, key);
		return set_value(p, cfg, &keys[i], value);
	}
	return fail(p, "unknown key '%s' in section [%s]", key, section);
}

static int set_defaults(struct parser *p, struct hv_config *cfg)
{
	char host[256];

	if (!cfg->node_name) {
		if (gethostname(host, sizeof(host)) < 0)
			return fail(p, "[node] name not set and gethostname failed: %s",
				    strerror(errno));
		host[sizeof(host) - 1] = '\0';
		if (!is_name(host))
			return fail(p, "[node] name not set and host name '%s' is not a valid name",
				    host);
		if (set_string(p, &cfg->node_name, host))
			return -ENOMEM;
	}
	if (!cfg->state_dir && set_string(p, &cfg->state_dir, "/var/lib/hvcluster"))
		return -ENOMEM;
	if (!cfg->run_dir && set_string(p, &cfg->run_dir, "/run/hvcluster"))
		return -ENOMEM;
	if (!cfg->ipc_name && set_string(p, &cfg->ipc_name, "hvnoded"))
		return -ENOMEM;
	if (!cfg->blackbox_dir && set_string(p, &cfg->blackbox_dir, cfg->state_dir))
		return -ENOMEM;
	if (!cfg->qemu && set_string(p, &cfg->qemu, "/usr/bin/qemu-system-x86_64"))
		return -ENOMEM;
	if (!cfg->nbdkit && set_string(p, &cfg->nbdkit, "/usr/bin/nbdkit"))
		return -ENOMEM;
	if (!cfg->nbdkit_plugin &&
	    set_string(p, &cfg->nbdkit_plugin, HV_PLUGIN_DIR "/nbdkit-hviscsi-plugin.so"))
		return -ENOMEM;
	if (!cfg->node_memory_mb) {
		long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

		cfg->node_memory_mb = pages > 0 && psize > 0 ? (unsigned int)((unsigned long long)pages * psize >> 20) : 1024;
	}
	if (!cfg->watchdog_timeout_s)
		cfg->watchdog_timeout_s = 10;
	if (cfg->watchdog_timeout_s < 2)
		return fail(p, "[watchdog] timeout_s must be at least 2");
	if (!cfg->vm_uid_base)
		cfg->vm_uid_base = 640000;
	if (!cfg->vm_uid_count)
		cfg->vm_uid_count = 1000;
	if ((unsigned long long)cfg->vm_uid_base + cfg->vm_uid_count > 4294967295ULL)
		return fail(p, "[vm] uid_base + uid_count exceeds the uid range");
	if (!cfg->mig_port)
		cfg->mig_port = 7790;
	if (!cfg->shutdown_policy && set_string(p, &cfg->shutdown_policy, "migrate"))
		return -ENOMEM;
	if (!cfg->shutdown_timeout_s)
		cfg->shutdown_timeout_s = 300;
	if (cfg->mig_port > 65535)
		return fail(p, "[migrate] port must be 1..65535");
	if (!cfg->cluster_name)
		return fail(p, "[cluster] name is mandatory and missing");
	if (cfg->log_target == HV_LOG_FILE && !cfg->log_file)
		return fail(p, "[log] target = file needs [log] file");
	return 0;
}

int hv_config_load(struct hv_config *cfg, const char *path, char *err, size_t errlen)
{
	struct parser p = { .path = path, .err = err, .errlen = errlen };
	char section[32] = "";
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_target = HV_LOG_SYSLOG;
	cfg->log_level = LOG_INFO;
	cfg->log_blackbox = true;

	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	cfg->path = strdup(path);
	if (!cfg->path) {
		rc = fail(&p, "out of memory");
		goto out;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		p.line++;
		if ((size_t)len != strlen(line)) {
			rc = fail(&p, "NUL byte in line");
			goto out;
		}
		rc = parse_line(&p, cfg, line, section, sizeof(section));
		if (rc)
			goto out;
	}
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	p.line = 0;
	rc = set_defaults(&p, cfg);
out:
	free(line);
	fclose(f);
	if (rc)
		hv_config_free(cfg);
	return rc;
}

void hv_config_free(struct hv_config *cfg)
{
	free(cfg->path);
	free(cfg->node_name);
	free(cfg->state_dir);
	free(cfg->run_dir);
	free(cfg->ipc_name);
	free(cfg->cluster_name);
	free(cfg->log_file);
	free(cfg->blackbox_dir);
	free(cfg->qemu);
	free(cfg->nbdkit);
	free(cfg->nbdkit_plugin);
	free(cfg->node_domain);
	free(cfg->watchdog_device);
	free(cfg->node_clearance);
	free(cfg->mig_address);
	free(cfg->shutdown_policy);
	memset(cfg, 0, sizeof(*cfg));
}
