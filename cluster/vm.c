#include "vm.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const prio_names[] = { "low", "medium", "high" };
static const char *const class_names[] = { "public", "internal", "confidential", "secret" };
static const char *const bus_names[] = { "virtio", "ide" };

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* iscsi://HOST[:PORT]/TARGET/LUN: host [A-Za-z0-9.-] or [v6], port digits, a target
 * of iqn./eui./naa. with no '/', a decimal LUN <= 16383. */
static bool url_shape_ok(const char *url)
{
	const char *p = url + 8, *slash, *t;
	unsigned long n;
	char *end;

	if (strncmp(url, "iscsi://", 8))
		return false;
	if (*p == '[') {
		p += strspn(p + 1, "0123456789abcdefABCDEF:.") + 1;
		if (*p++ != ']')
			return false;
	} else {
		size_t h = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");

		if (!h || strstr(p, "..") == p)
			return false;
		p += h;
	}
	if (*p == ':') {
		n = strtoul(p + 1, &end, 10);
		if (end == p + 1 || n < 1 || n > 65535)
			return false;
		p = end;
	}
	if (*p++ != '/')
		return false;
	t = p;
	slash = strchr(t, '/');
	if (!slash || (strncmp(t, "iqn.", 4) && strncmp(t, "eui.", 4) && strncmp(t, "naa.", 4)))
		return false;
	for (const char *c = t; c < slash; c++)
		if ((unsigned char)*c <= ' ' || *c == '\\')
			return false;
	if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
	    strlen(slash + 1) > 5)
		return false;
	return strtoul(slash + 1, NULL, 10) <= 16383;
}

void vm_lun_identity(const char *url, char *out, size_t len)
{
	const char *host = url + (strncmp(url, "iscsi://", 8) ? 0 : 8);
	const char *slash = strchr(host, '/'), *end, *colon;
	char h[300], rest[600];
	size_t hl = slash ? (size_t)(slash - host) : strlen(host);
	unsigned long lun;

	snprintf(h, sizeof(h), "%.*s", (int)hl, host);
	colon = h[0] == '[' ? strstr(h, "]:") : strrchr(h, ':');
	if (colon && h[0] == '[')
		colon++;
	if (!colon)
		snprintf(h + strlen(h), sizeof(h) - strlen(h), ":3260");
	snprintf(rest, sizeof(rest), "%s", slash ? slash + 1 : "");
	end = strrchr(rest, '/');
	lun = end ? strtoul(end + 1, NULL, 10) : 0;
	if (end)
		rest[end - rest] = '\0';
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = rest; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	snprintf(out, len, "%s/%s/%lu", h, rest, lun);
}

bool vm_name_is_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > VM_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (; *name; name++)
		if (!isalnum((unsigned char)*name) && !strchr("-_.", *name))
			return false;
	return true;
}

const char *vm_priority_name(enum vm_priority p)
{
	return (unsigned)p < 3 ? prio_names[p] : "?";
}

const char *vm_class_name(enum vm_class c)
{
	return (unsigned)c < 4 ? class_names[c] : "?";
}

static int lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

int vm_class_parse(const char *s, enum vm_class *c)
{
	int i = lookup(s, class_names, 4);

	if (i < 0)
		return -EINVAL;
	*c = i;
	return 0;
}

int vm_size_parse_mb(const char *s, uint64_t *mb, char *err, size_t errlen)
{
	unsigned long long v;
	uint64_t shift_kb;
	char *end;

	if (!isdigit((unsigned char)*s))
		return fail(err, errlen, "'%s' is not a size (a number with K, M, G or T)", s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return fail(err, errlen, "'%s' is not a size: too large", s);
	switch (toupper((unsigned char)*end)) {
	case '\0':
	case 'M':
		shift_kb = 1024;
		break;
	case 'K':
		shift_kb = 1;
		break;
	case 'G':
		shift_kb = 1024 * 1024;
		break;
	case 'T':
		shift_kb = 1024ULL * 1024 * 1024;
		break;
	default:
		return fail(err, errlen, "'%s' is not a size: unknown unit '%c' (K, M, G, T)", s,
			    *end);
	}
	if (*end && end[1] != '\0' && strcasecmp(end + 1, "iB") && strcasecmp(end + 1, "B"))
		return fail(err, errlen, "'%s' is not a size: trailing '%s'", s, end);
	if (v > UINT64_MAX / shift_kb)
		return fail(err, errlen, "'%s' is too large", s);
	v *= shift_kb; /* now KiB */
	if (v % 1024)
		return fail(err, errlen, "'%s' is not a whole number of MiB", s);
	*mb = v / 1024;
	return 0;
}

/* --- JSON in ------------------------------------------------------------- */

struct field;
typedef int (*field_fn)(const struct field *f, json_t *v, struct vm_def *d, char *err,
			size_t errlen);

struct field {
	const char *key;
	field_fn fn;
	size_t offset; /* of a char[] member, for the text fields */
	size_t size;
	bool mandatory;
};

static bool is_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int copy_text(const char *key, json_t *v, char *dst, size_t size, char *err, size_t errlen)
{
	const char *s;

	if (!json_is_string(v))
		return fail(err, errlen, "%s: must be a string", key);
	s = json_string_value(v);
	if (strlen(s) >= size)
		return fail(err, errlen, "%s: longer than %zu characters", key, size - 1);
	if (!is_printable(s))
		return fail(err, errlen, "%s: contains control characters", key);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int f_text(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	return copy_text(f->key, v, (char *)d + f->offset, f->size, err, errlen);
}

static int f_label(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	char *dst = (char *)d + f->offset;
	int rc = copy_text(f->key, v, dst, f->size, err, errlen);

	if (rc)
		return rc;
	if (*dst && !vm_name_is_valid(dst))
		return fail(err, errlen, "%s: '%s' is not a valid name (letters, digits, - _ .)",
			    f->key, dst);
	return 0;
}

static int f_path(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	char *dst = (char *)d + f->offset;
	int rc = copy_text(f->key, v, dst, f->size, err, errlen);

	if (rc)
		return rc;
	if (*dst && *dst != '/')
		return fail(err, errlen, "%s: '%s' is not an absolute path", f->key, dst);
	return 0;
}

static int f_name(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	int rc = copy_text("name", v, d->name, sizeof(d->name), err, errlen);

	if (rc)
		return fail(err, errlen, "name: must be 1-%d of letters, digits, - _ .", VM_NAME_MAX);
	if (!vm_name_is_valid(d->name))
		return fail(err, errlen, "name: '%s' is not valid (1-%d of letters, digits, - _ .)",
			    d->name, VM_NAME_MAX);
	return 0;
}

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static int f_uuid(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	int rc = copy_text("uuid", v, d->uuid, sizeof(d->uuid), err, errlen);

	if (rc)
		return fail(err, errlen, "uuid: must be a lowercase uuid");
	if (!is_uuid(d->uuid))
		return fail(err, errlen, "uuid: '%s' is not a lowercase uuid", d->uuid);
	return 0;
}

static int f_vcpus(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v))
		return fail(err, errlen, "vcpus: must be an integer");
	n = json_integer_value(v);
	if (n < 1 || n > 256)
		return fail(err, errlen, "vcpus: %" JSON_INTEGER_FORMAT " is out of range 1..256", n);
	d->vcpus = n;
	return 0;
}

static int f_memory(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	char msg[200];
	uint64_t mb;

	if (json_is_integer(v) && json_integer_value(v) > 0) {
		mb = json_integer_value(v);
	} else if (json_is_string(v)) {
		if (vm_size_parse_mb(json_string_value(v), &mb, msg, sizeof(msg)))
			return fail(err, errlen, "memory: %s", msg);
	} else {
		return fail(err, errlen, "memory: must be a size like 512M or 2G");
	}
	if (mb < 16 || mb > 16ULL * 1024 * 1024)
		return fail(err, errlen, "memory: %" PRIu64 " MiB is out of range 16M..16T", mb);
	d->memory_mb = mb;
	return 0;
}

static int enum_of(const char *key, json_t *v, const char *const *names, int n, int *out,
		   char *err, size_t errlen)
{
	int i;

	if (!json_is_string(v))
		return fail(err, errlen, "%s: must be a string", key);
	i = lookup(json_string_value(v), names, n);
	if (i < 0) {
		char list[128] = "";

		for (int k = 0; k < n; k++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 k ? ", " : "", names[k]);
		return fail(err, errlen, "%s: '%.64s' is not one of %s", key,
			    json_string_value(v), list);
	}
	*out = i;
	return 0;
}

static int f_priority(const struct field *f, json_t *v, struct vm_def *d, char *err,
		      size_t errlen)
{
	int i, rc = enum_of("priority", v, prio_names, 3, &i, err, errlen);

	if (!rc)
		d->priority = i;
	return rc;
}

/* "none" | "immediate" | "HH:MM-HH:MM" (UTC; it may wrap midnight, not be empty). */
static int f_failback(const struct field *f, json_t *v, struct vm_def *d, char *err,
		      size_t errlen)
{
	const char *str = json_string_value(v);
	unsigned int h1, m1, h2, m2;
	int end = 0;

	if (!str)
		return fail(err, errlen, "failback: must be a string");
	if (!strcmp(str, "none") || !strcmp(str, "immediate")) {
		d->failback = str[0] == 'n' ? VM_FAILBACK_NONE : VM_FAILBACK_IMMEDIATE;
		return 0;
	}
	if (sscanf(str, "%2u:%2u-%2u:%2u%n", &h1, &m1, &h2, &m2, &end) != 4 ||
	    (size_t)end != strlen(str) || h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59 ||
	    (h1 == h2 && m1 == m2))
		return fail(err, errlen,
			    "failback: '%.64s' is not none, immediate or a window HH:MM-HH:MM (UTC)",
			    str);
	d->failback = VM_FAILBACK_WINDOW;
	d->failback_from = h1 * 60 + m1;
	d->failback_to = h2 * 60 + m2;
	return 0;
}

const char *vm_failback_str(const struct vm_def *def, char *buf, size_t len)
{
	if (def->failback == VM_FAILBACK_WINDOW)
		snprintf(buf, len, "%02u:%02u-%02u:%02u", def->failback_from / 60,
			 def->failback_from % 60, def->failback_to / 60, def->failback_to % 60);
	else
		snprintf(buf, len, "%s", def->failback == VM_FAILBACK_NONE ? "none" : "immediate");
	return buf;
}

bool vm_failback_now(const struct vm_def *def, unsigned int min)
{
	switch (def->failback) {
	case VM_FAILBACK_NONE:
		return false;
	case VM_FAILBACK_IMMEDIATE:
		return true;
	case VM_FAILBACK_WINDOW:
		break;
	}
	if (def->failback_from < def->failback_to)
		return min >= def->failback_from && min < def->failback_to;
	return min >= def->failback_from || min < def->failback_to; /* wraps midnight */
}

static int f_class(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	int i, rc = enum_of("classification", v, class_names, 4, &i, err, errlen);

	if (!rc)
		d->classification = i;
	return rc;
}

static int f_bool(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	if (!json_is_boolean(v))
		return fail(err, errlen, "%s: must be true or false", f->key);
	*(bool *)((char *)d + f->offset) = json_is_true(v);
	return 0;
}

static int disk_from_json(json_t *v, size_t i, struct vm_disk *disk, char *err, size_t errlen)
{
	json_t *url, *bus;
	const char *key;
	json_t *val;
	char what[32];
	int b;

	snprintf(what, sizeof(what), "disks[%zu]", i);
	if (json_is_string(v)) {
		url = v;
		bus = NULL;
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, val)
			if (strcmp(key, "url") && strcmp(key, "bus"))
				return fail(err, errlen, "%s: unknown key '%.32s'", what, key);
		url = json_object_get(v, "url");
		bus = json_object_get(v, "bus");
	} else {
		return fail(err, errlen, "%s: must be a URL or {url, bus}", what);
	}
	if (!url || copy_text(what, url, disk->url, sizeof(disk->url), err, errlen))
		return fail(err, errlen, "%s: needs a URL of at most %d characters", what,
			    VM_URL_MAX - 1);
	/*
	 * The full check (names, addresses, LUN range) is storage/'s, on the node that
	 * takes the request; the state holds only the shape, so that an op from
	 * elsewhere cannot smuggle in a path or a second spelling of a LUN.
	 */
	if (!url_shape_ok(disk->url))
		return fail(err, errlen,
			    "%s: '%s' is not an iSCSI URL (expected iscsi://HOST[:PORT]/IQN/LUN)",
			    what, disk->url);
	disk->bus = VM_BUS_VIRTIO;
	if (bus) {
		if (enum_of(what, bus, bus_names, 2, &b, err, errlen))
			return -EINVAL;
		disk->bus = b;
	}
	return 0;
}

static int f_state_lun(const struct field *f, json_t *v, struct vm_def *d, char *err,
		       size_t errlen)
{
	if (!json_is_string(v) ||
	    copy_text("state_lun", v, d->state_lun, sizeof(d->state_lun), err, errlen))
		return fail(err, errlen, "state_lun: needs a URL of at most %d characters",
			    VM_URL_MAX - 1);
	if (d->state_lun[0] && !url_shape_ok(d->state_lun))
		return fail(err, errlen,
			    "state_lun: '%s' is not an iSCSI URL (expected iscsi://HOST[:PORT]/IQN/LUN)",
			    d->state_lun);
	return 0;
}

static int f_disks(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(err, errlen, "disks: a VM needs at least one disk");
	if (json_array_size(v) > VM_MAX_DISKS)
		return fail(err, errlen, "disks: at most %d", VM_MAX_DISKS);
	json_array_foreach(v, i, e) {
		if (disk_from_json(e, i, &d->disks[i], err, errlen))
			return -EINVAL;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(d->disks[k].url, d->disks[i].url))
				return fail(err, errlen, "disks: %s given twice", d->disks[i].url);
	}
	d->ndisks = json_array_size(v);
	return 0;
}

static bool is_mac(const char *s)
{
	unsigned int b[6];
	char tail;

	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
				      &b[4], &b[5], &tail) != 6)
		return false;
	/* unicast only */
	return !(b[0] & 1);
}

static int nic_from_json(json_t *v, size_t i, struct vm_nic *nic, char *err, size_t errlen)
{
	json_t *val;
	const char *key;
	char what[32];

	snprintf(what, sizeof(what), "nics[%zu]", i);
	if (!json_is_object(v))
		return fail(err, errlen, "%s: must be {bridge, mac}", what);
	json_object_foreach(v, key, val) {
		if (!strcmp(key, "bridge")) {
			if (copy_text(what, val, nic->bridge, sizeof(nic->bridge), err, errlen) ||
			    !vm_name_is_valid(nic->bridge))
				return fail(err, errlen, "%s: bridge must be an interface name of "
							 "at most 15 characters",
					    what);
		} else if (!strcmp(key, "mac")) {
			if (copy_text(what, val, nic->mac, sizeof(nic->mac), err, errlen) ||
			    !is_mac(nic->mac))
				return fail(err, errlen, "%s: mac must be a unicast aa:bb:cc:dd:ee:ff",
					    what);
			for (char *c = nic->mac; *c; c++)
				*c = tolower((unsigned char)*c);
		} else {
			return fail(err, errlen, "%s: unknown key '%.32s'", what, key);
		}
	}
	if (!nic->bridge[0])
		return fail(err, errlen, "%s: needs a bridge", what);
	return 0;
}

static int f_nics(const struct field *f, json_t *v, struct vm_def *d, char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(err, errlen, "nics: must be an array");
	if (json_array_size(v) > VM_MAX_NICS)
		return fail(err, errlen, "nics: at most %d", VM_MAX_NICS);
	json_array_foreach(v, i, e)
		if (nic_from_json(e, i, &d->nics[i], err, errlen))
			return -EINVAL;
	d->nnics = json_array_size(v);
	return 0;
}

static int node_list(const char *key, json_t *v, char out[][VM_NAME_MAX + 1], size_t *n,
		     char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(err, errlen, "%s: must be an array of node names", key);
	if (json_array_size(v) > VM_MAX_NODES)
		return fail(err, errlen, "%s: at most %d nodes", key, VM_MAX_NODES);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || !vm_name_is_valid(json_string_value(e)))
			return fail(err, errlen, "%s[%zu]: not a valid node name", key, i);
		snprintf(out[i], VM_NAME_MAX + 1, "%s", json_string_value(e));
		for (size_t k = 0; k < i; k++)
			if (!strcmp(out[k], out[i]))
				return fail(err, errlen, "%s: node %s given twice", key, out[i]);
	}
	*n = json_array_size(v);
	return 0;
}

static int f_preferred(const struct field *f, json_t *v, struct vm_def *d, char *err,
		       size_t errlen)
{
	return node_list("preferred", v, d->preferred, &d->npreferred, err, errlen);
}

static int f_possible(const struct field *f, json_t *v, struct vm_def *d, char *err,
		      size_t errlen)
{
	return node_list("possible", v, d->possible, &d->npossible, err, errlen);
}

#define TEXT(k, m, fn) { k, fn, offsetof(struct vm_def, m), sizeof(((struct vm_def *)0)->m), false }

static const struct field fields[] = {
	{ "name", f_name, 0, 0, true },
	{ "uuid", f_uuid, 0, 0, false },
	{ "vcpus", f_vcpus, 0, 0, true },
	{ "memory", f_memory, 0, 0, true },
	{ "disks", f_disks, 0, 0, true },
	{ "nics", f_nics, 0, 0, false },
	TEXT("kernel", kernel, f_path),
	TEXT("initrd", initrd, f_path),
	TEXT("append", append, f_text),
	{ "state_lun", f_state_lun, 0, 0, false },
	{ "priority", f_priority, 0, 0, false },
	{ "ha", f_bool, offsetof(struct vm_def, ha), 0, false },
	{ "fence_storage", f_bool, offsetof(struct vm_def, fence_storage), 0, false },
	TEXT("owner", owner, f_text),
	TEXT("contact", contact, f_text),
	TEXT("app", app, f_label),
	TEXT("tier", tier, f_label),
	{ "classification", f_class, 0, 0, false },
	{ "preferred", f_preferred, 0, 0, false },
	{ "possible", f_possible, 0, 0, false },
	{ "failback", f_failback, 0, 0, false },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

int vm_def_from_json(const json_t *j, struct vm_def *def, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	bool seen[NFIELDS] = { false };
	size_t i;

	memset(def, 0, sizeof(*def));
	def->priority = VM_PRIO_MEDIUM;
	def->ha = true;
	def->fence_storage = true;
	if (!json_is_object(j))
		return fail(err, errlen, "a VM definition must be a JSON object");
	json_object_foreach((json_t *)j, key, v) {
		for (i = 0; i < NFIELDS; i++)
			if (!strcmp(key, fields[i].key))
				break;
		if (i == NFIELDS)
			return fail(err, errlen, "unknown field '%.64s'", key);
		if (fields[i].fn(&fields[i], v, def, err, errlen))
			return -EINVAL;
		seen[i] = true;
	}
	for (i = 0; i < NFIELDS; i++)
		if (fields[i].mandatory && !seen[i])
			return fail(err, errlen, "%s: missing", fields[i].key);
	if (def->initrd[0] && !def->kernel[0])
		return fail(err, errlen, "initrd: needs a kernel");
	if (def->append[0] && !def->kernel[0])
		return fail(err, errlen, "append: needs a kernel");
	for (i = 0; i < def->npreferred; i++) {
		bool ok = def->npossible == 0;

		for (size_t k = 0; k < def->npossible && !ok; k++)
			ok = !strcmp(def->possible[k], def->preferred[i]);
		if (!ok)
			return fail(err, errlen, "preferred: node %s is not among the possible nodes",
				    def->preferred[i]);
	}
	return 0;
}

/* --- identity ------------------------------------------------------------ */

void vm_def_assign_identity(struct vm_def *def, const uint8_t random[16])
{
	uint8_t u[16];
	uint64_t h = 1469598103934665603ULL;

	if (!def->uuid[0]) {
		memcpy(u, random, 16);
		u[6] = (u[6] & 0x0f) | 0x40;
		u[8] = (u[8] & 0x3f) | 0x80;
		snprintf(def->uuid, sizeof(def->uuid),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
			 u[12], u[13], u[14], u[15]);
	}
	for (const char *c = def->uuid; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ULL;
	for (size_t i = 0; i < def->nnics; i++) {
		uint64_t m = h + i * 0x9e3779b97f4a7c15ULL;

		if (def->nics[i].mac[0])
			continue;
		/* 52:54:00 is QEMU's locally administered prefix */
		snprintf(def->nics[i].mac, sizeof(def->nics[i].mac), "52:54:00:%02x:%02x:%02x",
			 (unsigned)(m >> 40) & 0xff, (unsigned)(m >> 48) & 0xff,
			 (unsigned)(m >> 56) & 0xff);
	}
}

/* --- JSON out ------------------------------------------------------------ */

static json_t *names_json(const char list[][VM_NAME_MAX + 1], size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
}

json_t *vm_def_to_json(const struct vm_def *d)
{
	json_t *disks = json_array(), *nics = json_array(), *j;
	char fb[16];

	for (size_t i = 0; disks && i < d->ndisks; i++)
		json_array_append_new(disks, json_pack("{s:s,s:s}", "url", d->disks[i].url, "bus",
						       bus_names[d->disks[i].bus]));
	for (size_t i = 0; nics && i < d->nnics; i++)
		json_array_append_new(nics, json_pack("{s:s,s:s}", "bridge", d->nics[i].bridge,
						      "mac", d->nics[i].mac));
	j = json_pack("{s:s,s:s,s:i,s:I,s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:s}",
		      "name", d->name, "uuid", d->uuid, "vcpus", (int)d->vcpus, "memory",
		      (json_int_t)d->memory_mb, "disks", disks, "nics", nics, "kernel", d->kernel,
		      "initrd", d->initrd, "append", d->append, "state_lun", d->state_lun, "priority",
		      vm_priority_name(d->priority), "ha", d->ha, "fence_storage", d->fence_storage,
		      "owner", d->owner, "contact", d->contact, "app", d->app, "tier", d->tier,
		      "classification", vm_class_name(d->classification), "preferred",
		      names_json(d->preferred, d->npreferred), "possible",
		      names_json(d->possible, d->npossible), "failback",
		      vm_failback_str(d, fb, sizeof(fb)));
	return j;
}
