/* Persisting the cluster state on this node: write temp, fsync, rename, fsync dir. */
#ifndef HV_NODE_STATEFILE_H
#define HV_NODE_STATEFILE_H

#include <stddef.h>

#include "../cluster/state.h"

/*
 * Load @path into @s. A missing file is an empty state (0). A file that is
 * unreadable, truncated or invalid is refused: -EINVAL/-errno with a message
 * naming the file and the cause, and @s unchanged; the file is left as it is.
 */
int statefile_load(const char *path, cluster_state_t *s, char *err, size_t errlen);

/* Atomically replace @path with @s; 0 or -errno with a message. */
int statefile_save(const char *path, const cluster_state_t *s, char *err, size_t errlen);

#endif
