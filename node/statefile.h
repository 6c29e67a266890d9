/* Persisting the cluster state on this node: write temp, fsync, rename, fsync dir. */
#ifndef HV_NODE_STATEFILE_H
#define HV_NODE_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "../cluster/state.h"

/* The largest state file a node reads: a bigger one is refused, never read in part. */
#define STATEFILE_MAX (64 * 1024 * 1024)

/*
 * The bytes of a state file, @len of them (no NUL needed), into @s: pure, no I/O.
 * 0; or -EFBIG (more than STATEFILE_MAX), -EINVAL (not JSON, or not a state) with
 * @err saying why, and @s unchanged.
 */
int statefile_parse(const char *buf, size_t len, cluster_state_t *s, char *err, size_t errlen);

/*
 * Load @path into @s. A missing file is an empty state (0). A file that is
 * unreadable, truncated, invalid or bigger than STATEFILE_MAX is refused
 * (-EINVAL, -EFBIG or -errno) with a message naming the file and the cause,
 * and @s unchanged; the file is left as it is.
 * (At start, see statefile_load_at_start.)
 */
int statefile_load(const char *path, cluster_state_t *s, char *err, size_t errlen);

/*
 * Load @path at the daemon's start. Loaded, or no file: 0, *needed false.
 * A file that does not load is never started from: it is moved aside to
 * @path.corrupt-YYYYmmdd-HHMMSS (@moved; same inode, so its mode is kept;
 * never deleted), a marker @path.needed records that, @s stays empty and
 * *needed is true: this node must get the state from the cluster. The marker
 * also makes a later start without a file *needed, until
 * statefile_needed_done(). @err: one line, the file and the cause.
 * -errno when the file could not be set aside (or the marker not written).
 */
int statefile_load_at_start(const char *path, cluster_state_t *s, bool *needed, char *moved,
			    size_t movedlen, char *err, size_t errlen);
/* The cluster's state arrived and was persisted: forget the marker. */
void statefile_needed_done(const char *path);

/* Atomically replace @path with @s; 0 or -errno with a message. */
int statefile_save(const char *path, const cluster_state_t *s, char *err, size_t errlen);

#endif
