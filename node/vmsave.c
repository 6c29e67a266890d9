/*
 * Save and restore through a VM's state LUN; see vmsave.h.
 */
#include "hvnoded.h"
#include "vmsave.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>
#include <xxhash.h>

#include "../migrate/migrate.h"
#include "../storage/storage.h"

#define SAVE_MAGIC "HVSAVE01"
#define SAVE_VERSION 1
#define HDR_AREA 4096u		 /* the header's room; frames start after it */
#define IO_CHUNK (4u << 20)	 /* bytes per LUN write or read */
#define SAVE_THREADS_MAX 64	 /* as migrate_threads */

/* The header, little-endian on disk (hvcluster runs on x86-64 and arm64 hosts). */
struct save_hdr {
	char magic[8];
	uint32_t version;
	uint32_t reserved;
	char uuid[40];
	uint64_t stream_len; /* bytes of frames after HDR_AREA */
	uint64_t raw_len;    /* bytes of QEMU's stream */
	uint64_t frames;
	uint64_t saved_ms;
	uint64_t checksum;   /* XXH3-64 of everything above */
};

struct vmsave {
	struct hvnoded *d;
	char url[VM_URL_MAX + 1];
	char uuid[37];
	char name[VM_NAME_MAX + 1];
	char initiator[256];
	uint64_t key;
	int fd;
	lun_session_t *s;
	uint64_t raw, wire, frames; /* written by the job, read with atomics */
	vmsave_done_fn done;
	void *arg;
	bool restore;
	bool free_after;
	bool compress;	       /* a save: the cluster's migrate_compress when it began */
	unsigned int nthreads; /* a save: migrate_threads, blocks compressed at once */
	char err[1024];
};

static void set_err(struct vmsave *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct vmsave *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
}

static struct vmsave *vmsave_new(struct hvnoded *d, const struct vm_def *def, int fd)
{
	struct vmsave *v = calloc(1, sizeof(*v));
	uint32_t id = membership_local_id(d->membership);

	if (!v)
		return NULL;
	v->d = d;
	v->fd = fd;
	snprintf(v->url, sizeof(v->url), "%s", def->state_lun);
	snprintf(v->uuid, sizeof(v->uuid), "%s", def->uuid);
	snprintf(v->name, sizeof(v->name), "%s", def->name);
	v->key = storage_node_key(d->cfg.cluster_name, id);
	storage_initiator_name(v->initiator, sizeof(v->initiator), d->cfg.cluster_name,
			       d->cfg.node_name);
	return v;
}

static void vmsave_free(struct vmsave *v)
{
	char err[512];

	if (v->fd >= 0)
		close(v->fd);
	if (v->s) {
		lun_release(v->s, v->key, err, sizeof(err));
		lun_close(v->s);
	}
	free(v);
}

/* Worker: log in and take the LUN. */
static int take_lun(struct vmsave *v)
{
	char err[1024], purpose[64];
	int rc;

	snprintf(purpose, sizeof(purpose), "state:%s", v->uuid);
	v->s = lun_open(v->url, v->initiator, purpose, 10, err, sizeof(err));
	if (!v->s) {
		set_err(v, "state LUN: %s", err);
		return -EIO;
	}
	rc = lun_acquire(v->s, v->key, false, err, sizeof(err));
	if (rc)
		set_err(v, "state LUN: %s", err);
	else if (lun_size(v->s) <= HDR_AREA || HDR_AREA % lun_block_size(v->s))
		set_err(v, "state LUN %s: %" PRIu64 " bytes in %u-byte blocks: not usable", v->url,
			lun_size(v->s), lun_block_size(v->s));
	else
		return 0;
	return rc ? rc : -EINVAL;
}

static int write_hdr(struct vmsave *v, const struct save_hdr *h)
{
	uint8_t *buf = calloc(1, HDR_AREA);
	char err[1024];
	int rc;

	if (!buf)
		return -ENOMEM;
	if (h)
		memcpy(buf, h, sizeof(*h));
	rc = lun_write(v->s, buf, HDR_AREA, 0, true, err, sizeof(err));
	rc = rc ?: lun_flush(v->s, err, sizeof(err));
	free(buf);
	if (rc)
		set_err(v, "state LUN: writing its header: %s", err);
	return rc;
}

/* Read up to @len bytes; fewer only at EOF. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Write the whole blocks of @out (at LUN offset *pos), keep the rest at its start. */
static int flush_out(struct vmsave *v, uint8_t *out, size_t *len, uint64_t *pos, bool all)
{
	uint32_t bs = lun_block_size(v->s);
	size_t n = all ? (*len + bs - 1) / bs * bs : *len / bs * bs;
	char err[1024];
	int rc;

	if (!n)
		return 0;
	if (*pos + n > lun_size(v->s)) {
		set_err(v, "state LUN %s is too small: the image needs more than %" PRIu64 " MiB",
			v->url, (*pos + n) >> 20);
		return -ENOSPC;
	}
	if (n > *len)
		memset(out + *len, 0, n - *len);
	rc = lun_write(v->s, out, n, *pos, false, err, sizeof(err));
	if (rc) {
		set_err(v, "state LUN: write at %" PRIu64 ": %s", *pos, err);
		return rc;
	}
	*pos += n;
	*len = all ? 0 : *len - n;
	if (*len)
		memmove(out, out + n, *len);
	return 0;
}

/* One block of a save's batch, framed by its own thread. */
struct zblock {
	uint64_t seq;
	bool compress;
	uint8_t *raw;
	size_t raw_len;
	uint8_t *frame;
	ssize_t len; /* the frame's, or -errno */
};

static void *zblock_encode(void *arg)
{
	struct zblock *b = arg;

	b->len = mig_frame_encode(b->seq, b->raw, b->raw_len, b->compress, b->frame,
				  mig_frame_bound(MIG_BLOCK_SIZE));
	return NULL;
}

/* Frame the batch's @n blocks at once: one thread each, the first in ours. */
static void batch_encode(struct zblock *b, unsigned int n)
{
	pthread_t thr[SAVE_THREADS_MAX];
	bool started[SAVE_THREADS_MAX];

	if (!n)
		return;
	for (unsigned int i = 1; i < n; i++) {
		started[i] = pthread_create(&thr[i], NULL, zblock_encode, &b[i]) == 0;
		if (!started[i])
			zblock_encode(&b[i]); /* no thread: slower, not wrong */
	}
	zblock_encode(&b[0]);
	for (unsigned int i = 1; i < n; i++)
		if (started[i])
			pthread_join(thr[i], NULL);
}

static void batch_free(struct zblock *b, unsigned int n)
{
	for (unsigned int i = 0; b && i < n; i++) {
		free(b[i].raw);
		free(b[i].frame);
	}
	free(b);
}

static struct zblock *batch_new(unsigned int n, bool compress)
{
	struct zblock *b = calloc(n, sizeof(*b));

	for (unsigned int i = 0; b && i < n; i++) {
		b[i].compress = compress;
		b[i].raw = malloc(MIG_BLOCK_SIZE);
		b[i].frame = malloc(mig_frame_bound(MIG_BLOCK_SIZE));
		if (!b[i].raw || !b[i].frame) {
			batch_free(b, n);
			return NULL;
		}
	}
	return b;
}

/* Read up to @n blocks of QEMU's stream: how many (the last may be short), or -errno. */
static int batch_read(struct vmsave *v, struct zblock *b, unsigned int n, uint64_t *seq,
		      bool *eof)
{
	unsigned int k = 0;

	while (k < n && !*eof) {
		ssize_t r = read_full(v->fd, b[k].raw, MIG_BLOCK_SIZE);

		if (r < 0) {
			set_err(v, "reading QEMU's stream: %s", strerror((int)-r));
			return (int)r;
		}
		*eof = r < (ssize_t)MIG_BLOCK_SIZE;
		if (r == 0)
			break;
		b[k].raw_len = (size_t)r;
		b[k].seq = (*seq)++;
		k++;
	}
	return (int)k;
}

/*
 * Worker: the stream, framed, onto the LUN. Compressed (or not) as the cluster's
 * migration settings say, migrate_threads blocks at a time.
 */
static int save_stream(void *arg)
{
	struct vmsave *v = arg;
	size_t cap = IO_CHUNK + mig_frame_bound(MIG_BLOCK_SIZE), len = 0;
	struct zblock *b = batch_new(v->nthreads, v->compress);
	uint8_t *out = malloc(cap + HDR_AREA);
	uint64_t pos = HDR_AREA, seq = 0;
	bool eof = false;
	int rc, k;

	rc = b && out ? take_lun(v) : -ENOMEM;
	rc = rc ?: write_hdr(v, NULL); /* no image until this one is complete */
	while (!rc && !eof) {
		k = batch_read(v, b, v->nthreads, &seq, &eof);
		if (k < 0) {
			rc = k;
			break;
		}
		batch_encode(b, (unsigned int)k);
		for (int i = 0; i < k && !rc; i++) {
			if (b[i].len < 0) {
				set_err(v, "framing block %" PRIu64 ": %s", b[i].seq,
					strerror((int)-b[i].len));
				rc = (int)b[i].len;
				break;
			}
			/* len < IO_CHUNK here: the flush below keeps less than a LUN block */
			memcpy(out + len, b[i].frame, (size_t)b[i].len);
			len += (size_t)b[i].len;
			__atomic_add_fetch(&v->raw, (uint64_t)b[i].raw_len, __ATOMIC_RELAXED);
			__atomic_add_fetch(&v->wire, (uint64_t)b[i].len, __ATOMIC_RELAXED);
			v->frames = b[i].seq + 1;
			if (len >= IO_CHUNK)
				rc = flush_out(v, out, &len, &pos, false);
		}
	}
	if (!rc)
		rc = flush_out(v, out, &len, &pos, true);
	if (!rc) {
		char err[1024];

		rc = lun_flush(v->s, err, sizeof(err));
		if (rc)
			set_err(v, "state LUN: flush: %s", err);
	}
	batch_free(b, v->nthreads);
	free(out);
	close(v->fd);
	v->fd = -1;
	return rc;
}

static void job_done(void *arg, int rc)
{
	struct vmsave *v = arg;
	vmsave_done_fn done = v->done;

	v->done = NULL;
	if (done)
		done(v->arg, rc, v->err);
	if (v->free_after)
		vmsave_free(v);
}

vmsave_t *vmsave_begin(struct hvnoded *d, const struct vm_def *def, int fd, vmsave_done_fn done,
		       void *arg, char *err, size_t errlen)
{
	const struct cluster_settings *cs;
	struct vmsave *v;

	if (!def->state_lun[0]) {
		snprintf(err, errlen, "vm %s has no state LUN", def->name);
		close(fd);
		return NULL;
	}
	v = vmsave_new(d, def, fd);
	if (!v) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	v->done = done;
	v->arg = arg;
	cs = state_settings(d->state);
	v->compress = cs->mig_compress;
	v->nthreads = cs->mig_threads >= 1 && cs->mig_threads <= SAVE_THREADS_MAX ? cs->mig_threads : 1;
	qb_log(LOG_INFO, "vm %s: save to %s: %s, %u compression threads", def->name, v->url,
	       v->compress ? "LZ4" : "uncompressed", v->nthreads);
	if (work_submit(d, save_stream, job_done, v)) {
		snprintf(err, errlen, "cannot start a worker");
		vmsave_free(v);
		return NULL;
	}
	return v;
}

void vmsave_counts(vmsave_t *v, uint64_t *raw, uint64_t *wire)
{
	*raw = __atomic_load_n(&v->raw, __ATOMIC_RELAXED);
	*wire = __atomic_load_n(&v->wire, __ATOMIC_RELAXED);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Worker: the header makes the image; then the LUN goes back. */
static int save_commit(void *arg)
{
	struct vmsave *v = arg;
	struct save_hdr h = { 0 };
	char err[1024];
	int rc;

	memcpy(h.magic, SAVE_MAGIC, sizeof(h.magic));
	h.version = SAVE_VERSION;
	snprintf(h.uuid, sizeof(h.uuid), "%s", v->uuid);
	h.stream_len = v->wire;
	h.raw_len = v->raw;
	h.frames = v->frames;
	h.saved_ms = now_ms();
	h.checksum = XXH3_64bits(&h, offsetof(struct save_hdr, checksum));
	rc = write_hdr(v, &h);
	if (!rc && lun_release(v->s, v->key, err, sizeof(err)))
		qb_log(LOG_WARNING, "vm %s: state LUN %s not released: %s", v->name, v->url, err);
	lun_close(v->s);
	v->s = NULL;
	return rc;
}

int vmsave_commit(vmsave_t *v, vmsave_done_fn done, void *arg)
{
	v->done = done;
	v->arg = arg;
	v->free_after = true;
	return work_submit(v->d, save_commit, job_done, v);
}

static int release_job(void *arg)
{
	struct vmsave *v = arg;
	char err[1024];

	if (v->s && lun_release(v->s, v->key, err, sizeof(err)))
		qb_log(LOG_WARNING, "vm %s: state LUN %s not released: %s", v->name, v->url, err);
	lun_close(v->s);
	v->s = NULL;
	return 0;
}

void vmsave_abort(vmsave_t *v)
{
	v->done = NULL;
	v->free_after = true;
	if (work_submit(v->d, release_job, job_done, v)) {
		v->free_after = false;
		vmsave_free(v); /* no worker: here, on the loop */
	}
}

void vmsave_cut(vmsave_t *v)
{
	if (v->fd >= 0)
		shutdown(v->fd, SHUT_RDWR);
}

/* --- restore ----------------------------------------------------------------------------- */

static int read_hdr(struct vmsave *v, struct save_hdr *h)
{
	uint8_t *buf = malloc(HDR_AREA);
	char err[1024];
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = lun_read(v->s, buf, HDR_AREA, 0, err, sizeof(err));
	if (rc)
		set_err(v, "state LUN: reading its header: %s", err);
	else
		memcpy(h, buf, sizeof(*h));
	free(buf);
	if (rc)
		return rc;
	if (memcmp(h->magic, SAVE_MAGIC, sizeof(h->magic)) || h->version != SAVE_VERSION) {
		set_err(v, "state LUN %s holds no saved state (no complete save was written to it)",
			v->url);
		return -ENOENT;
	}
	if (h->checksum != XXH3_64bits(h, offsetof(struct save_hdr, checksum)) ||
	    memchr(h->uuid, '\0', sizeof(h->uuid)) == NULL) {
		set_err(v, "state LUN %s: its header is damaged (checksum)", v->url);
		return -EBADMSG;
	}
	if (strcmp(h->uuid, v->uuid)) {
		set_err(v, "state LUN %s holds the state of another VM (uuid %s)", v->url, h->uuid);
		return -EINVAL;
	}
	if (h->stream_len > lun_size(v->s) - HDR_AREA) {
		set_err(v, "state LUN %s: its header claims %" PRIu64 " bytes, more than the LUN has",
			v->url, h->stream_len);
		return -EBADMSG;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Worker: frames off the LUN, checked and decoded, into QEMU's fd. */
static int restore_stream(void *arg)
{
	struct vmsave *v = arg;
	size_t cap = IO_CHUNK + mig_frame_bound(MIG_BLOCK_MAX), have = 0;
	uint8_t *in = malloc(cap), *raw = malloc(MIG_BLOCK_MAX);
	struct mig_frame_info fi;
	struct save_hdr h;
	uint64_t pos = HDR_AREA, left, seq = 0, raw_total = 0;
	char err[1024];
	ssize_t n;
	int rc;

	rc = in && raw ? take_lun(v) : -ENOMEM;
	rc = rc ?: read_hdr(v, &h);
	left = rc ? 0 : h.stream_len;
	while (!rc && seq < h.frames) {
		size_t need = MIG_FRAME_HDR;

		if (have >= MIG_FRAME_HDR) {
			n = mig_frame_size(in, have, err, sizeof(err));
			if (n < 0) {
				set_err(v, "state LUN: frame %" PRIu64 ": %s", seq, err);
				rc = (int)n;
				break;
			}
			need = (size_t)n;
		}
		if (have < need) {
			uint32_t bs = lun_block_size(v->s);
			size_t chunk = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
			size_t aligned = (chunk + bs - 1) / bs * bs;

			if (!left || have + aligned > cap) {
				set_err(v, "state LUN: the image ends inside frame %" PRIu64, seq);
				rc = -EBADMSG;
				break;
			}
			rc = lun_read(v->s, in + have, aligned, pos, err, sizeof(err));
			if (rc) {
				set_err(v, "state LUN: read at %" PRIu64 ": %s", pos, err);
				break;
			}
			pos += aligned;
			have += chunk; /* the padding after the stream is not part of it */
			left -= chunk;
			continue;
		}
		n = mig_frame_decode(in, need, raw, MIG_BLOCK_MAX, &fi, err, sizeof(err));
		if (n < 0 || fi.seq != seq) {
			set_err(v, "state LUN: frame %" PRIu64 ": %s", seq,
				n < 0 ? err : "out of sequence");
			rc = -EBADMSG;
			break;
		}
		rc = write_all(v->fd, raw, (size_t)n);
		if (rc) {
			set_err(v, "feeding QEMU: %s", strerror(-rc));
			break;
		}
		raw_total += (uint64_t)n;
		__atomic_store_n(&v->raw, raw_total, __ATOMIC_RELAXED);
		memmove(in, in + need, have - need);
		have -= need;
		seq++;
	}
	if (!rc && raw_total != h.raw_len) {
		set_err(v, "state LUN: the image has %" PRIu64 " bytes of state, its header says %" PRIu64,
			raw_total, h.raw_len);
		rc = -EBADMSG;
	}
	free(in);
	free(raw);
	close(v->fd);
	v->fd = -1;
	release_job(v);
	return rc;
}

int vmsave_restore(struct hvnoded *d, const struct vm_def *def, int fd, int *cut_fd,
		   vmsave_done_fn done, void *arg, char *err, size_t errlen)
{
	struct vmsave *v;

	*cut_fd = -1;
	if (!def->state_lun[0]) {
		snprintf(err, errlen, "vm %s has no state LUN", def->name);
		close(fd);
		return -EINVAL;
	}
	v = vmsave_new(d, def, fd);
	if (!v) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return -ENOMEM;
	}
	*cut_fd = dup(fd);
	v->restore = true;
	v->done = done;
	v->arg = arg;
	v->free_after = true;
	if (work_submit(d, restore_stream, job_done, v)) {
		snprintf(err, errlen, "cannot start a worker");
		if (*cut_fd >= 0)
			close(*cut_fd);
		*cut_fd = -1;
		vmsave_free(v);
		return -EAGAIN;
	}
	return 0;
}
