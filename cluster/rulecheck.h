/*
 * Whether the VMs as they run now keep the placement rules. Pure: reads the
 * state only. The placement engine decides where VMs go; this says what is
 * true now (a soft rule may be broken, and a hard rule added while its VMs
 * already ran together stays broken until the manager places them again).
 * Used by `hvctl rule show` and `hvctl security report`.
 */
#ifndef HV_CLUSTER_RULECHECK_H
#define HV_CLUSTER_RULECHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"

/* Whether @r applies to @def: named in it, or (tier separation) of its app. */
bool rule_names_vm(const struct rule *r, const struct vm_def *def);

/*
 * Does the cluster keep @r now? 0 with @buf "" when it does, else @buf says
 * which running VMs break it and where (the first pair found); -ENOMEM.
 */
int rule_broken_by(const cluster_state_t *s, const struct rule *r, char *buf, size_t len);

#endif
