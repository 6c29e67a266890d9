/*
 * Save and restore through a VM's state LUN (private to node/): QEMU's
 * migration stream, in the framing of migrate/ (LZ4 blocks with checksums),
 * written to the LUN through libiscsi and read back. Each step runs as a
 * work job (work.c) and completes on the loop.
 *
 * The LUN's layout: a 4 KiB header at offset 0 (magic, the VM's uuid, the
 * stream's length, frame and byte counts, when, a checksum), the frames from
 * 4 KiB on. A save zeroes the header first and writes it last, after the
 * frames are flushed: a save that did not finish leaves no image to restore.
 * While a job runs, the node holds the LUN's reservation with its key.
 */
#ifndef HV_NODE_VMSAVE_H
#define HV_NODE_VMSAVE_H

#include <stddef.h>
#include <stdint.h>

struct hvnoded;
struct vm_def;

typedef struct vmsave vmsave_t;

/* @rc 0 or -errno with @err (valid during the call). */
typedef void (*vmsave_done_fn)(void *arg, int rc, const char *err);

/*
 * Take @def's state LUN, invalidate any image on it and write the stream read
 * from @fd (taken) until EOF. @done when the stream ended (or failed); then
 * vmsave_commit() or vmsave_abort(). NULL with @err.
 */
vmsave_t *vmsave_begin(struct hvnoded *d, const struct vm_def *def, int fd, vmsave_done_fn done,
		       void *arg, char *err, size_t errlen);
/* Bytes of the stream read so far, and written (framed) to the LUN. */
void vmsave_counts(vmsave_t *v, uint64_t *raw, uint64_t *wire);
/* The stream was complete (QEMU said so): write the header, flush, release; @done, then freed. */
int vmsave_commit(vmsave_t *v, vmsave_done_fn done, void *arg);
/* Give the LUN back without an image; freed (also while the stream is still being written:
 * cut it with vmsave_cut() first). */
void vmsave_abort(vmsave_t *v);
/* Make a running vmsave_begin() job stop reading (shutdown of its fd). */
void vmsave_cut(vmsave_t *v);

/*
 * Restore: take @def's state LUN, check its image (this VM's, complete, its
 * checksums), and write the stream to @fd (taken, closed at the end); @done.
 * @cut_fd (out) is a copy of @fd whose shutdown() makes the job stop early.
 */
int vmsave_restore(struct hvnoded *d, const struct vm_def *def, int fd, int *cut_fd,
		   vmsave_done_fn done, void *arg, char *err, size_t errlen);

#endif
