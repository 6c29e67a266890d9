#include "fenceconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "vm.h"

struct fence_conf {
	struct fence_device devices[FENCE_DEVICES_MAX];
	size_t ndevices;
	struct fence_level levels[FENCE_LEVELS_MAX];
	size_t nlevels;
};

fence_conf_t *fence_conf_create(void)
{
	return calloc(1, sizeof(fence_conf_t));
}

void fence_conf_destroy(fence_conf_t *fc)
{
	free(fc);
}

fence_conf_t *fence_conf_dup(const fence_conf_t *fc)
{
	fence_conf_t *d = malloc(sizeof(*d));

	if (d)
		*d = *fc;
	return d;
}

size_t fence_device_count(const fence_conf_t *fc)
{
	return fc->ndevices;
}

const struct fence_device *fence_device_at(const fence_conf_t *fc, size_t i)
{
	return i < fc->ndevices ? &fc->devices[i] : NULL;
}

const struct fence_device *fence_device_find(const fence_conf_t *fc, const char *name)
{
	for (size_t i = 0; i < fc->ndevices; i++)
		if (!strcmp(fc->devices[i].name, name))
			return &fc->devices[i];
	return NULL;
}

int fence_device_add(fence_conf_t *fc, const struct fence_device *dev, char *err, size_t errlen)
{
	if (!strcmp(dev->name, FENCE_STORAGE) || fence_device_find(fc, dev->name)) {
		jv_fail(err, errlen, "fence device %s already exists", dev->name);
		return -EEXIST;
	}
	if (fc->ndevices == FENCE_DEVICES_MAX) {
		jv_fail(err, errlen, "fence device %s: already %d devices", dev->name,
			FENCE_DEVICES_MAX);
		return -ENOSPC;
	}
	fc->devices[fc->ndevices++] = *dev;
	return 0;
}

int fence_device_del(fence_conf_t *fc, const char *name, char *err, size_t errlen)
{
	for (size_t i = 0; i < fc->nlevels; i++)
		for (size_t k = 0; k < fc->levels[i].ndevices; k++)
			if (!strcmp(fc->levels[i].devices[k], name)) {
				jv_fail(err, errlen,
					"fence device %s is used by level %u of node %u: delete "
					"that level first",
					name, fc->levels[i].index, fc->levels[i].node);
				return -EBUSY;
			}
	for (size_t i = 0; i < fc->ndevices; i++) {
		if (strcmp(fc->devices[i].name, name))
			continue;
		memmove(&fc->devices[i], &fc->devices[i + 1],
			(fc->ndevices - i - 1) * sizeof(fc->devices[0]));
		fc->ndevices--;
		return 0;
	}
	jv_fail(err, errlen, "fence device %s does not exist", name);
	return -ENOENT;
}

size_t fence_level_count(const fence_conf_t *fc)
{
	return fc->nlevels;
}

const struct fence_level *fence_level_at(const fence_conf_t *fc, size_t i)
{
	return i < fc->nlevels ? &fc->levels[i] : NULL;
}

static bool level_before(const struct fence_level *a, const struct fence_level *b)
{
	return a->node < b->node || (a->node == b->node && a->index < b->index);
}

int fence_level_add(fence_conf_t *fc, const struct fence_level *lv, char *err, size_t errlen)
{
	size_t i;

	for (size_t k = 0; k < lv->ndevices; k++)
		if (strcmp(lv->devices[k], FENCE_STORAGE) && !fence_device_find(fc, lv->devices[k])) {
			jv_fail(err, errlen, "fence level %u of node %u: device %s does not exist",
				lv->index, lv->node, lv->devices[k]);
			return -ENOENT;
		}
	for (i = 0; i < fc->nlevels; i++)
		if (fc->levels[i].node == lv->node && fc->levels[i].index == lv->index) {
			jv_fail(err, errlen, "node %u already has a fence level %u", lv->node,
				lv->index);
			return -EEXIST;
		}
	if (fc->nlevels == FENCE_LEVELS_MAX) {
		jv_fail(err, errlen, "already %d fence levels", FENCE_LEVELS_MAX);
		return -ENOSPC;
	}
	for (i = 0; i < fc->nlevels && level_before(&fc->levels[i], lv); i++)
		;
	memmove(&fc->levels[i + 1], &fc->levels[i], (fc->nlevels - i) * sizeof(fc->levels[0]));
	fc->levels[i] = *lv;
	fc->nlevels++;
	return 0;
}

int fence_level_del(fence_conf_t *fc, uint32_t node, unsigned int index, char *err,
		    size_t errlen)
{
	for (size_t i = 0; i < fc->nlevels; i++) {
		if (fc->levels[i].node != node || fc->levels[i].index != index)
			continue;
		memmove(&fc->levels[i], &fc->levels[i + 1],
			(fc->nlevels - i - 1) * sizeof(fc->levels[0]));
		fc->nlevels--;
		return 0;
	}
	jv_fail(err, errlen, "node %u has no fence level %u", node, index);
	return -ENOENT;
}

size_t fence_levels_of(const fence_conf_t *fc, uint32_t node, const struct fence_level **out,
		       size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < fc->nlevels && n < max; i++)
		if (fc->levels[i].node == node)
			out[n++] = &fc->levels[i];
	return n;
}

bool fence_node_has_power(const fence_conf_t *fc, uint32_t node)
{
	for (size_t i = 0; i < fc->nlevels; i++)
		for (size_t k = 0; fc->levels[i].node == node && k < fc->levels[i].ndevices; k++)
			if (strcmp(fc->levels[i].devices[k], FENCE_STORAGE))
				return true;
	return false;
}

/* --- JSON -------------------------------------------------------------------------- */

json_t *fence_device_to_json(const struct fence_device *dev)
{
	json_t *params = json_object(), *secrets = json_object();

	for (size_t i = 0; i < dev->nparams; i++)
		json_object_set_new(dev->params[i].secret ? secrets : params, dev->params[i].key,
				    json_string(dev->params[i].value));
	return json_pack("{s:s,s:s,s:o,s:o}", "name", dev->name, "agent", dev->agent, "params",
			 params, "secrets", secrets);
}

static int params_from(const json_t *obj, bool secret, struct fence_device *dev, char *err,
		       size_t errlen)
{
	const char *key;
	json_t *v;

	if (!obj)
		return 0;
	if (!json_is_object(obj))
		return jv_fail(err, errlen, "fence device %s: %s must be an object", dev->name,
			       secret ? "secrets" : "params");
	json_object_foreach((json_t *)obj, key, v) {
		struct fence_param *p;
		const char *val = json_string_value(v);

		if (dev->nparams == FENCE_PARAMS_MAX)
			return jv_fail(err, errlen, "fence device %s: at most %d parameters",
				       dev->name, FENCE_PARAMS_MAX);
		if (!*key || strlen(key) >= FENCE_KEY_MAX || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(key))
			return jv_fail(err, errlen, "fence device %s: parameter name '%.64s' is not "
						    "valid (a-z 0-9 _)",
				       dev->name, key);
		if (!strcmp(key, "action") || !strcmp(key, "plug") || !strcmp(key, "port") ||
		    !strcmp(key, "nodename"))
			return jv_fail(err, errlen, "fence device %s: '%s' is set by hvcluster at "
						    "fence time",
				       dev->name, key);
		if (!val || strlen(val) >= FENCE_VALUE_MAX || strchr(val, '\n'))
			return jv_fail(err, errlen, "fence device %s: parameter %s: a one-line "
						    "string of at most %d bytes",
				       dev->name, key, FENCE_VALUE_MAX - 1);
		if (secret && val[0] != '/')
			return jv_fail(err, errlen, "fence device %s: secret %s must be given as "
						    "the absolute path of a file",
				       dev->name, key);
		p = &dev->params[dev->nparams++];
		snprintf(p->key, sizeof(p->key), "%s", key);
		snprintf(p->value, sizeof(p->value), "%s", val);
		p->secret = secret;
	}
	return 0;
}

int fence_device_from_json(const json_t *j, struct fence_device *dev, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "agent", "params", "secrets", NULL };
	int rc;

	memset(dev, 0, sizeof(*dev));
	rc = jv_check_keys(j, keys, "fence device", err, errlen);
	rc = rc ?: jv_str(j, "name", dev->name, sizeof(dev->name), err, errlen);
	rc = rc ?: jv_str(j, "agent", dev->agent, sizeof(dev->agent), err, errlen);
	if (rc)
		return rc;
	if (!vm_name_is_valid(dev->name))
		return jv_fail(err, errlen, "fence device: name missing or not valid");
	if (!strcmp(dev->name, FENCE_STORAGE))
		return jv_fail(err, errlen, "fence device: '%s' is the built-in storage fencing",
			       FENCE_STORAGE);
	if (dev->agent[0] != '/' || strstr(dev->agent, "/../"))
		return jv_fail(err, errlen, "fence device %s: agent must be an absolute path",
			       dev->name);
	rc = params_from(json_object_get(j, "params"), false, dev, err, errlen);
	return rc ?: params_from(json_object_get(j, "secrets"), true, dev, err, errlen);
}

json_t *fence_level_to_json(const struct fence_level *lv)
{
	json_t *devs = json_array();

	for (size_t i = 0; i < lv->ndevices; i++)
		json_array_append_new(devs, json_string(lv->devices[i]));
	return json_pack("{s:I,s:I,s:o}", "node", (json_int_t)lv->node, "index",
			 (json_int_t)lv->index, "devices", devs);
}

int fence_level_from_json(const json_t *j, struct fence_level *lv, char *err, size_t errlen)
{
	static const char *const keys[] = { "node", "index", "devices", NULL };
	json_t *devs, *v;
	size_t i;
	int rc;

	memset(lv, 0, sizeof(*lv));
	rc = jv_check_keys(j, keys, "fence level", err, errlen);
	rc = rc ?: jv_u32(j, "node", &lv->node, err, errlen);
	rc = rc ?: jv_uint(j, "index", &lv->index, err, errlen);
	if (rc)
		return rc;
	if (!lv->node || lv->index < 1 || lv->index > 99)
		return jv_fail(err, errlen, "fence level: node id and index 1..99 needed");
	devs = json_object_get(j, "devices");
	if (!json_is_array(devs) || !json_array_size(devs) ||
	    json_array_size(devs) > FENCE_LEVEL_DEVICES)
		return jv_fail(err, errlen, "fence level %u: 1 to %d devices", lv->index,
			       FENCE_LEVEL_DEVICES);
	json_array_foreach(devs, i, v) {
		const char *name = json_string_value(v);

		if (!name || !vm_name_is_valid(name))
			return jv_fail(err, errlen, "fence level %u: devices[%zu] is not a name",
				       lv->index, i);
		snprintf(lv->devices[lv->ndevices++], sizeof(lv->devices[0]), "%s", name);
	}
	return 0;
}

json_t *fence_conf_to_json(const fence_conf_t *fc)
{
	json_t *devs = json_array(), *levels = json_array();

	for (size_t i = 0; i < fc->ndevices; i++)
		json_array_append_new(devs, fence_device_to_json(&fc->devices[i]));
	for (size_t i = 0; i < fc->nlevels; i++)
		json_array_append_new(levels, fence_level_to_json(&fc->levels[i]));
	return json_pack("{s:o,s:o}", "devices", devs, "levels", levels);
}

int fence_conf_from_json(fence_conf_t *fc, const json_t *j, char *err, size_t errlen)
{
	static const char *const keys[] = { "devices", "levels", NULL };
	fence_conf_t *tmp;
	struct fence_device dev;
	struct fence_level lv;
	char msg[400];
	json_t *v;
	size_t i;
	int rc;

	rc = jv_check_keys(j, keys, "fencing", err, errlen);
	if (rc)
		return rc;
	tmp = fence_conf_create();
	if (!tmp)
		return jv_fail(err, errlen, "fencing: out of memory");
	json_array_foreach(json_object_get(j, "devices"), i, v) {
		rc = fence_device_from_json(v, &dev, msg, sizeof(msg));
		rc = rc ?: fence_device_add(tmp, &dev, msg, sizeof(msg));
		if (rc)
			goto bad;
	}
	json_array_foreach(json_object_get(j, "levels"), i, v) {
		rc = fence_level_from_json(v, &lv, msg, sizeof(msg));
		rc = rc ?: fence_level_add(tmp, &lv, msg, sizeof(msg));
		if (rc)
			goto bad;
	}
	*fc = *tmp;
	fence_conf_destroy(tmp);
	return 0;
bad:
	fence_conf_destroy(tmp);
	return jv_fail(err, errlen, "fencing: %s", msg);
}
