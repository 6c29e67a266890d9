/*
 * Fencing configuration in the cluster state: fence devices (an external
 * agent in the fence-agents protocol with its parameters; secrets only as
 * paths of files each node reads when it fences, never their content) and,
 * per node, ordered levels (a level is one or more devices that must all
 * succeed). The built-in device "storage" is SCSI-3 PREEMPT of the node's key
 * on the LUNs of its VMs. A node without levels is fenced by "storage" alone.
 */
#ifndef HV_CLUSTER_FENCECONF_H
#define HV_CLUSTER_FENCECONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define FENCE_DEVICES_MAX 64
#define FENCE_PARAMS_MAX 16
#define FENCE_LEVELS_MAX 256
#define FENCE_LEVEL_DEVICES 8
#define FENCE_NAME_MAX 64
#define FENCE_PATH_MAX 512
#define FENCE_KEY_MAX 64
#define FENCE_VALUE_MAX 256
#define FENCE_STORAGE "storage"

struct fence_param {
	char key[FENCE_KEY_MAX];
	char value[FENCE_VALUE_MAX]; /* for a secret: the path of the file holding it */
	bool secret;
};

struct fence_device {
	char name[FENCE_NAME_MAX + 1];
	char agent[FENCE_PATH_MAX]; /* absolute path of the agent */
	struct fence_param params[FENCE_PARAMS_MAX];
	size_t nparams;
};

struct fence_level {
	uint32_t node;
	unsigned int index; /* 1..: tried in this order */
	char devices[FENCE_LEVEL_DEVICES][FENCE_NAME_MAX + 1];
	size_t ndevices;
};

typedef struct fence_conf fence_conf_t;

fence_conf_t *fence_conf_create(void);
void fence_conf_destroy(fence_conf_t *fc);
fence_conf_t *fence_conf_dup(const fence_conf_t *fc);

size_t fence_device_count(const fence_conf_t *fc);
const struct fence_device *fence_device_at(const fence_conf_t *fc, size_t i);
const struct fence_device *fence_device_find(const fence_conf_t *fc, const char *name);
/* -EEXIST, -ENOSPC with @err. */
int fence_device_add(fence_conf_t *fc, const struct fence_device *dev, char *err, size_t errlen);
/* -ENOENT, or -EBUSY when a level uses it. */
int fence_device_del(fence_conf_t *fc, const char *name, char *err, size_t errlen);

size_t fence_level_count(const fence_conf_t *fc);
const struct fence_level *fence_level_at(const fence_conf_t *fc, size_t i); /* by node, index */
/* Every device must exist (or be "storage"); -EEXIST when the node has that index. */
int fence_level_add(fence_conf_t *fc, const struct fence_level *lv, char *err, size_t errlen);
int fence_level_del(fence_conf_t *fc, uint32_t node, unsigned int index, char *err,
		    size_t errlen);
/* The levels of @node in order into @out (at most @max); 0 when it has none configured. */
size_t fence_levels_of(const fence_conf_t *fc, uint32_t node, const struct fence_level **out,
		       size_t max);
/* Whether @node's levels include a device other than storage (a power fence). */
bool fence_node_has_power(const fence_conf_t *fc, uint32_t node);

/* Strict JSON: unknown keys, bad names, relative paths refused with a message. */
json_t *fence_device_to_json(const struct fence_device *dev);
int fence_device_from_json(const json_t *j, struct fence_device *dev, char *err, size_t errlen);
json_t *fence_level_to_json(const struct fence_level *lv);
int fence_level_from_json(const json_t *j, struct fence_level *lv, char *err, size_t errlen);
json_t *fence_conf_to_json(const fence_conf_t *fc);
/* All or nothing into @fc. */
int fence_conf_from_json(fence_conf_t *fc, const json_t *j, char *err, size_t errlen);

#endif
