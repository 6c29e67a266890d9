/*
 * nbdkit-hviscsi-plugin: the per-VM disk server. It serves one iSCSI LUN over
 * NBD to the VM's QEMU, through one libiscsi session of its own whose I_T
 * nexus is registered with the node's reservation key:
 *
 *   nbdkit --foreground --unix DIR/diskN.sock --threads 1 nbdkit-hviscsi-plugin.so \
 *          url=iscsi://HOST:PORT/TARGET/LUN initiator=IQN purpose=vm:UUID:N key=0x<16 hex>
 *
 * hvnoded holds the LUN's Write Exclusive - Registrants Only reservation with
 * the same key before it starts us. The session logs in and registers in
 * .get_ready, before nbdkit creates its socket: when the socket appears, the
 * disk server can write. Once another node PREEMPTs the key, every write meets
 * RESERVATION CONFLICT and fails with EIO, so QEMU (werror=stop) pauses the VM;
 * the library never registers a preempted key again, even after a re-login.
 *
 * With register=lazy (the target of a migration) the session logs in but
 * registers only before its first write or flush: until the source hands the
 * LUN over, the target's QEMU only reads (it is paused, its images inactive),
 * and no second node's key shows up on the LUN while the source owns it.
 */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "storage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

#define HVISCSI_ERR_MAX 1024
#define HVISCSI_PREFERRED_IO 4096
#define HVISCSI_MAX_IO (32u << 20) /* what NBD clients assume by default */

/* The disk server: one LUN session shared by every NBD connection. */
struct hviscsi {
	char *url;
	char *initiator;
	char *purpose;
	uint64_t key;
	lun_session_t *lun;	/* from .get_ready to .cleanup/.unload */
	bool registered;	/* our nexus registered @key: unregister at the end */
	bool lazy;		/* register=lazy: at the first write or flush */
	uint32_t block_size;
	uint8_t *bounce;	/* one block for unaligned requests: requests are serialized */
};

static struct hviscsi srv;

static int set_once(char **slot, const char *key, const char *value)
{
	if (*slot) {
		nbdkit_error("%s= given twice ('%s', then '%s')", key, *slot, value);
		return -1;
	}
	*slot = strdup(value);
	if (!*slot) {
		nbdkit_error("%s=: %s", key, strerror(errno));
		return -1;
	}
	return 0;
}

static int hviscsi_config(const char *key, const char *value)
{
	if (strcmp(key, "url") == 0)
		return set_once(&srv.url, key, value);
	if (strcmp(key, "initiator") == 0)
		return set_once(&srv.initiator, key, value);
	if (strcmp(key, "purpose") == 0)
		return set_once(&srv.purpose, key, value);
	if (strcmp(key, "key") == 0) {
		if (srv.key) {
			nbdkit_error("key= given twice");
			return -1;
		}
		if (storage_key_parse(value, &srv.key) || srv.key == 0) {
			srv.key = 0;
			nbdkit_error("key=%s: not a reservation key (0x and 1 to 16 hex digits, not zero)",
				     value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "register") == 0) {
		if (strcmp(value, "lazy") && strcmp(value, "start")) {
			nbdkit_error("register=%s: expected start or lazy", value);
			return -1;
		}
		srv.lazy = !strcmp(value, "lazy");
		return 0;
	}
	nbdkit_error("unknown parameter '%s' (known: url, initiator, purpose, key, register)", key);
	return -1;
}

static int hviscsi_config_complete(void)
{
	struct lun_url u;
	char err[HVISCSI_ERR_MAX];

	if (!srv.url || !srv.initiator || !srv.purpose || !srv.key) {
		nbdkit_error("missing parameter%s%s%s%s: url, initiator, purpose and key are all required",
			     srv.url ? "" : " url=", srv.initiator ? "" : " initiator=",
			     srv.purpose ? "" : " purpose=", srv.key ? "" : " key=");
		return -1;
	}
	if (lun_url_parse(srv.url, &u, err, sizeof(err))) {
		nbdkit_error("url=%s: %s", srv.url, err);
		return -1;
	}
	if (strncmp(srv.initiator, "iqn.", 4) != 0 || strlen(srv.initiator) > LUN_TARGET_MAX) {
		nbdkit_error("initiator=%s: not an iSCSI initiator name (iqn...., at most %d characters)",
			     srv.initiator, LUN_TARGET_MAX);
		return -1;
	}
	if (!srv.purpose[0]) {
		nbdkit_error("purpose= is empty (hvnoded passes vm:UUID:DISK)");
		return -1;
	}
	return 0;
}

static void log_to_nbdkit(void *opaque, int level, const char *msg)
{
	if (level <= LOG_WARNING)
		nbdkit_error("%s", msg);
	else
		nbdkit_debug("%s", msg);
}

/* Log out and free; unregister first when we registered. Safe to call twice. */
static void session_end(void)
{
	char err[HVISCSI_ERR_MAX];

	if (!srv.lun)
		return;
	/* a preempted nexus is no longer registered: that unregister is a no-op */
	if (srv.registered && lun_unregister(srv.lun, srv.key, err, sizeof(err)))
		nbdkit_error("%s", err);
	srv.registered = false;
	lun_close(srv.lun);
	srv.lun = NULL;
	free(srv.bounce);
	srv.bounce = NULL;
}

static int register_nexus(void)
{
	char err[HVISCSI_ERR_MAX];

	/* set first: a register that failed half-way must not leave this nexus registered */
	srv.registered = true;
	if (lun_register(srv.lun, srv.key, err, sizeof(err))) {
		nbdkit_error("%s", err);
		return -1;
	}
	return 0;
}

/* A lazy disk server registers once, before the first write (requests are serialized). */
static int registered_for_write(void)
{
	if (srv.registered)
		return 0;
	if (register_nexus()) {
		errno = EIO;
		return -1;
	}
	nbdkit_debug("lun %s: registered key 0x%016" PRIx64 " at the first write", srv.url,
		     srv.key);
	return 0;
}

/* Log in and register before nbdkit listens: no write is served unregistered. */
static int hviscsi_get_ready(void)
{
	char err[HVISCSI_ERR_MAX];

	srv.lun = lun_open(srv.url, srv.initiator, srv.purpose, 0, err, sizeof(err));
	if (!srv.lun) {
		nbdkit_error("%s", err);
		return -1;
	}
	lun_set_log(srv.lun, log_to_nbdkit, NULL);
	srv.block_size = lun_block_size(srv.lun);
	srv.bounce = malloc(srv.block_size);
	if (!srv.bounce) {
		nbdkit_error("lun %s: cannot allocate a %" PRIu32 "-byte block buffer", srv.url,
			     srv.block_size);
		goto err_close;
	}
	if (srv.lazy) {
		nbdkit_debug("lun %s: logged in as %s (purpose %s); registers at the first write",
			     srv.url, srv.initiator, srv.purpose);
		return 0;
	}
	if (register_nexus())
		goto err_close;
	nbdkit_debug("lun %s: %" PRIu64 " bytes in %" PRIu32 "-byte blocks; registered key 0x%016" PRIx64 " as %s (purpose %s)",
		     srv.url, lun_size(srv.lun), srv.block_size, srv.key, srv.initiator,
		     srv.purpose);
	return 0;

err_close:
	session_end();
	return -1;
}

static void hviscsi_cleanup(void)
{
	session_end();
}

static void hviscsi_unload(void)
{
	/* .cleanup is not always reached */
	session_end();
	free(srv.url);
	free(srv.initiator);
	free(srv.purpose);
	memset(&srv, 0, sizeof(srv));
}

static void *hviscsi_open(int readonly)
{
	if (!srv.lun) {
		nbdkit_error("no LUN session");
		return NULL;
	}
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t hviscsi_get_size(void *handle)
{
	return (int64_t)lun_size(srv.lun);
}

static int hviscsi_block_size(void *handle, uint32_t *minimum, uint32_t *preferred,
			      uint32_t *maximum)
{
	*minimum = srv.block_size;
	*preferred = srv.block_size > HVISCSI_PREFERRED_IO ? srv.block_size : HVISCSI_PREFERRED_IO;
	*maximum = HVISCSI_MAX_IO;
	return 0;
}

static int hviscsi_can_write(void *handle)
{
	return 1;
}

static int hviscsi_can_flush(void *handle)
{
	return 1;
}

static int hviscsi_can_fua(void *handle)
{
	return NBDKIT_FUA_NATIVE;
}

/* Every connection goes through the one session: a flush covers all their writes. */
static int hviscsi_can_multi_conn(void *handle)
{
	return 1;
}

/*
 * Every I/O error is EIO to the client: QEMU stops the VM on it (werror=stop).
 * RESERVATION CONFLICT means another node took the LUN over.
 */
static int io_failed(int rc, const char *err)
{
	if (rc == -EBADE)
		nbdkit_error("%s (the reservation key 0x%016" PRIx64 " was preempted: this node no longer owns the LUN)",
			     err, srv.key);
	else
		nbdkit_error("%s", err);
	nbdkit_set_error(EIO);
	return -1;
}

/*
 * The part of one block at @offset that a request covers, @n bytes (less than
 * a block, or not aligned): read the block, then copy out, or patch and write.
 */
static int partial_block(void *rbuf, const void *wbuf, uint32_t n, uint64_t offset, bool fua)
{
	uint64_t base = offset - offset % srv.block_size;
	size_t in = (size_t)(offset - base);
	char err[HVISCSI_ERR_MAX];
	int rc;

	rc = lun_read(srv.lun, srv.bounce, srv.block_size, base, err, sizeof(err));
	if (rc)
		return io_failed(rc, err);
	if (rbuf) {
		memcpy(rbuf, srv.bounce + in, n);
		return 0;
	}
	memcpy(srv.bounce + in, wbuf, n);
	rc = lun_write(srv.lun, srv.bounce, srv.block_size, base, fua, err, sizeof(err));
	return rc ? io_failed(rc, err) : 0;
}

/* How much of [offset, offset + count) to serve next, and whether whole blocks. */
static uint32_t next_piece(uint32_t count, uint64_t offset, bool *whole)
{
	uint32_t in = (uint32_t)(offset % srv.block_size);

	*whole = in == 0 && count >= srv.block_size;
	if (*whole)
		return count - count % srv.block_size;
	return count < srv.block_size - in ? count : srv.block_size - in;
}

static int hviscsi_pread(void *handle, void *buf, uint32_t count, uint64_t offset,
			 uint32_t flags)
{
	char err[HVISCSI_ERR_MAX];
	char *p = buf;
	bool whole;
	int rc;

	while (count) {
		uint32_t n = next_piece(count, offset, &whole);

		if (whole) {
			rc = lun_read(srv.lun, p, n, offset, err, sizeof(err));
			if (rc)
				return io_failed(rc, err);
		} else if (partial_block(p, NULL, n, offset, false)) {
			return -1;
		}
		p += n;
		offset += n;
		count -= n;
	}
	return 0;
}

static int hviscsi_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset,
			  uint32_t flags)
{
	bool fua = flags & NBDKIT_FLAG_FUA;
	char err[HVISCSI_ERR_MAX];
	const char *p = buf;
	bool whole;
	int rc;

	if (registered_for_write())
		return -1;
	while (count) {
		uint32_t n = next_piece(count, offset, &whole);

		if (whole) {
			rc = lun_write(srv.lun, p, n, offset, fua, err, sizeof(err));
			if (rc)
				return io_failed(rc, err);
		} else if (partial_block(NULL, p, n, offset, fua)) {
			return -1;
		}
		p += n;
		offset += n;
		count -= n;
	}
	return 0;
}

static int hviscsi_flush(void *handle, uint32_t flags)
{
	char err[HVISCSI_ERR_MAX];
	int rc;

	if (registered_for_write())
		return -1;
	rc = lun_flush(srv.lun, err, sizeof(err));
	return rc ? io_failed(rc, err) : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "hviscsi",
	.longname = "hvcluster iSCSI disk server",
	.version = "1.0",
	.description = "Serve an iSCSI LUN through a session registered with the node's key",
	.unload = hviscsi_unload,
	.config = hviscsi_config,
	.config_complete = hviscsi_config_complete,
	.config_help = "url=iscsi://HOST[:PORT]/TARGET/LUN (required) the LUN\n"
		       "initiator=IQN (required) this node's initiator name\n"
		       "purpose=vm:UUID:N (required) the session's purpose: its stable ISID\n"
		       "key=0x<16 hex> (required) the node's reservation key",
	.magic_config_key = "url",
	.get_ready = hviscsi_get_ready,
	.cleanup = hviscsi_cleanup,
	.open = hviscsi_open,
	.get_size = hviscsi_get_size,
	.block_size = hviscsi_block_size,
	.can_write = hviscsi_can_write,
	.can_flush = hviscsi_can_flush,
	.can_fua = hviscsi_can_fua,
	.can_multi_conn = hviscsi_can_multi_conn,
	.pread = hviscsi_pread,
	.pwrite = hviscsi_pwrite,
	.flush = hviscsi_flush,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
