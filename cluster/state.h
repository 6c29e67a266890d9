/*
 * The cluster state: the VM definitions (and, as the cluster brain grows,
 * nodes, rules, fencing and the manager's view). Pure data with strict
 * (de)serialization; every change bumps the version. Who may change it and
 * how the change travels (today: the local node; next: CPG in agreed order)
 * is the caller's business, not this module's.
 */
#ifndef HV_CLUSTER_STATE_H
#define HV_CLUSTER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vm.h"

#define STATE_FORMAT_VERSION 1
#define STATE_MAX_VMS 4096

typedef struct cluster_state cluster_state_t;

cluster_state_t *state_create(void);
void state_destroy(cluster_state_t *s);

uint64_t state_version(const cluster_state_t *s);

/* Lookups; the pointer stays valid until the next change of the state. */
const struct vm_def *state_vm_find(const cluster_state_t *s, const char *name);
size_t state_vm_count(const cluster_state_t *s);
const struct vm_def *state_vm_at(const cluster_state_t *s, size_t i);

/* Add a validated definition: -EEXIST (name or uuid taken) or -ENOSPC, with a message. */
int state_vm_add(cluster_state_t *s, const struct vm_def *def, char *err, size_t errlen);
/* Remove by name: -ENOENT if there is none. */
int state_vm_del(cluster_state_t *s, const char *name);

/* The whole state as {"format": 1, "version": N, "vms": [...]} (new reference). */
json_t *state_to_json(const cluster_state_t *s);
/*
 * Replace @s by the state in @j, all or nothing: on any error (unknown
 * format, a bad VM, duplicates) @s is unchanged and @err says what and where.
 */
int state_from_json(cluster_state_t *s, const json_t *j, char *err, size_t errlen);

#endif
