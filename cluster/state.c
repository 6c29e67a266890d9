#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cluster_state {
	uint64_t version;
	struct vm_def *vms;
	size_t nvms;
	size_t cap;
};

cluster_state_t *state_create(void)
{
	return calloc(1, sizeof(cluster_state_t));
}

void state_destroy(cluster_state_t *s)
{
	if (!s)
		return;
	free(s->vms);
	free(s);
}

uint64_t state_version(const cluster_state_t *s)
{
	return s->version;
}

const struct vm_def *state_vm_find(const cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nvms; i++)
		if (!strcmp(s->vms[i].name, name))
			return &s->vms[i];
	return NULL;
}

size_t state_vm_count(const cluster_state_t *s)
{
	return s->nvms;
}

const struct vm_def *state_vm_at(const cluster_state_t *s, size_t i)
{
	return i < s->nvms ? &s->vms[i] : NULL;
}

/* Adds without bumping the version; used by add and by load. */
static int vm_insert(cluster_state_t *s, const struct vm_def *def, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->nvms; i++) {
		if (!strcmp(s->vms[i].name, def->name)) {
			snprintf(err, errlen, "vm %s already exists", def->name);
			return -EEXIST;
		}
		if (def->uuid[0] && !strcmp(s->vms[i].uuid, def->uuid)) {
			snprintf(err, errlen, "vm %s: uuid %s is already used by vm %s", def->name,
				 def->uuid, s->vms[i].name);
			return -EEXIST;
		}
	}
	if (s->nvms == STATE_MAX_VMS) {
		snprintf(err, errlen, "vm %s: the cluster already holds %d VMs", def->name,
			 STATE_MAX_VMS);
		return -ENOSPC;
	}
	if (s->nvms == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct vm_def *v = realloc(s->vms, cap * sizeof(*v));

		if (!v) {
			snprintf(err, errlen, "vm %s: out of memory", def->name);
			return -ENOMEM;
		}
		s->vms = v;
		s->cap = cap;
	}
	s->vms[s->nvms++] = *def;
	return 0;
}

int state_vm_add(cluster_state_t *s, const struct vm_def *def, char *err, size_t errlen)
{
	int rc = vm_insert(s, def, err, errlen);

	if (!rc)
		s->version++;
	return rc;
}

int state_vm_del(cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nvms; i++) {
		if (strcmp(s->vms[i].name, name))
			continue;
		memmove(&s->vms[i], &s->vms[i + 1], (s->nvms - i - 1) * sizeof(s->vms[0]));
		s->nvms--;
		s->version++;
		return 0;
	}
	return -ENOENT;
}

json_t *state_to_json(const cluster_state_t *s)
{
	json_t *vms = json_array();

	for (size_t i = 0; vms && i < s->nvms; i++)
		json_array_append_new(vms, vm_def_to_json(&s->vms[i]));
	return json_pack("{s:i,s:I,s:o}", "format", STATE_FORMAT_VERSION, "version",
			 (json_int_t)s->version, "vms", vms);
}

int state_from_json(cluster_state_t *s, const json_t *j, char *err, size_t errlen)
{
	cluster_state_t tmp = { 0 };
	json_t *format, *version, *vms, *v;
	const char *key;
	json_t *val;
	struct vm_def def;
	char msg[400];
	size_t i;
	int rc;

	if (!json_is_object(j)) {
		snprintf(err, errlen, "state is not a JSON object");
		return -EINVAL;
	}
	json_object_foreach((json_t *)j, key, val) {
		if (strcmp(key, "format") && strcmp(key, "version") && strcmp(key, "vms")) {
			snprintf(err, errlen, "state: unknown key '%.64s'", key);
			return -EINVAL;
		}
	}
	format = json_object_get(j, "format");
	version = json_object_get(j, "version");
	vms = json_object_get(j, "vms");
	if (!json_is_integer(format) || json_integer_value(format) != STATE_FORMAT_VERSION) {
		if (json_is_integer(format))
			snprintf(err, errlen, "state: format %" JSON_INTEGER_FORMAT
					      " is not supported (this build reads %d)",
				 json_integer_value(format), STATE_FORMAT_VERSION);
		else
			snprintf(err, errlen, "state: format missing");
		return -EINVAL;
	}
	if (!json_is_integer(version) || json_integer_value(version) < 0) {
		snprintf(err, errlen, "state: version must be a non-negative integer");
		return -EINVAL;
	}
	if (!json_is_array(vms)) {
		snprintf(err, errlen, "state: vms must be an array");
		return -EINVAL;
	}
	json_array_foreach(vms, i, v) {
		rc = vm_def_from_json(v, &def, msg, sizeof(msg));
		if (!rc && !def.uuid[0]) {
			snprintf(msg, sizeof(msg), "uuid: missing");
			rc = -EINVAL;
		}
		if (!rc)
			rc = vm_insert(&tmp, &def, msg, sizeof(msg));
		if (rc) {
			snprintf(err, errlen, "state: vms[%zu]: %s", i, msg);
			free(tmp.vms);
			return rc;
		}
	}
	free(s->vms);
	s->vms = tmp.vms;
	s->nvms = tmp.nvms;
	s->cap = tmp.cap;
	s->version = json_integer_value(version);
	return 0;
}
