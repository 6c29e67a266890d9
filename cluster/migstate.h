/*
 * Migrations in the cluster state (private to cluster/): their stored JSON.
 * The types and the names hvctl sees are in state.h.
 */
#ifndef HV_CLUSTER_MIGSTATE_H
#define HV_CLUSTER_MIGSTATE_H

#include "state.h"

int mig_progress_from_json(const json_t *j, struct mig_progress *p, char *err, size_t errlen);
json_t *mig_status_to_json(const struct vm_migration *m);
int mig_status_from_json(const json_t *j, struct vm_migration *m, char *err, size_t errlen);
json_t *mig_last_status_to_json(const struct vm_mig_last *l);
int mig_last_status_from_json(const json_t *j, struct vm_mig_last *l, char *err, size_t errlen);

#endif
