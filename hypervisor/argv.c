/*
 * The launch spec: validation and QEMU's command line. Pure but for
 * hv_probe_caps(); unit-tested.
 *
 * Choices, and why:
 *  - machine pc (i440fx): legacy IDE at 0x1f0 for guests without drivers
 *    (the test guest); q35 only has AHCI. mem-merge=off: the guest's RAM is
 *    not offered to KSM, so no page is ever shared with another guest (a
 *    merged page is a side channel across VMs: copy-on-write timing).
 *  - -S always: the guest runs only once the driver holds QMP (it sends cont).
 *  - disks as -blockdev in JSON (no comma escaping of paths), the device on
 *    top with write-cache=on: the guest sees a volatile cache and must flush,
 *    its FLUSH goes through QEMU (cache.no-flush=off) as NBD_CMD_FLUSH to the
 *    disk server, which turns it into SYNCHRONIZE CACHE on the LUN. QEMU's
 *    NBD client keeps no data of its own, so nothing acknowledged to the
 *    guest as flushed is only in QEMU. werror=stop,rerror=stop: an I/O error
 *    (a LUN taken over by another node) pauses the VM instead of letting the
 *    guest see a failed write.
 *  - the serial console in DIR/console.log with append=on: it survives
 *    restarts, for post-mortems.
 */
#include "hypervisor.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/kvm.h>

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define MODEL_MAX 32

void hv_probe_caps(struct hv_caps *caps)
{
	int fd;

	memset(caps, 0, sizeof(*caps));
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	caps->kvm = ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
	close(fd);
}

bool hv_kvm_usable_by(uid_t uid, gid_t gid)
{
	struct stat st;

	if (stat("/dev/kvm", &st) < 0 || !S_ISCHR(st.st_mode))
		return false;
	if (st.st_uid == uid)
		return (st.st_mode & 0600) == 0600;
	if (st.st_gid == gid)
		return (st.st_mode & 0060) == 0060;
	return (st.st_mode & 0006) == 0006;
}

/* --- validation ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int invalid(char *err, size_t errlen, const char *fmt,
							 ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > HV_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

static bool hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool uuid_ok(const char *u)
{
	static const size_t groups[] = {8, 4, 4, 4, 12};

	for (size_t g = 0; g < 5; g++) {
		if (!hex_run(u, groups[g]))
			return false;
		u += groups[g];
		if (*u != (g < 4 ? '-' : '\0'))
			return false;
		u++;
	}
	return true;
}

/* xx:xx:xx:xx:xx:xx, unicast, not all zero. */
static bool mac_ok(const char *mac)
{
	unsigned long first;

	if (!mac || strlen(mac) != 17)
		return false;
	for (int i = 0; i < 6; i++) {
		if (!hex_run(mac + 3 * i, 2))
			return false;
		if (i < 5 && mac[3 * i + 2] != ':')
			return false;
	}
	first = strtoul(mac, NULL, 16);
	return !(first & 1) && strcmp(mac, "00:00:00:00:00:00") != 0;
}

static bool model_ok(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > MODEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)m[i]) && !isdigit((unsigned char)m[i]) && m[i] != '-')
			return false;
	return true;
}

static bool abs_path_ok(const char *p)
{
	return p && p[0] == '/' && !strchr(p, '\n');
}

static int validate_disk(const struct hv_disk *d, size_t i, char *err, size_t errlen)
{
	if (!d->nbd_socket == !d->file)
		return invalid(err, errlen,
			       "disk %zu: needs exactly one of an NBD socket and a file", i);
	if (d->bus != HV_BUS_VIRTIO && d->bus != HV_BUS_IDE)
		return invalid(err, errlen, "disk %zu: unknown bus %d", i, (int)d->bus);
	if (d->nbd_socket && !abs_path_ok(d->nbd_socket))
		return invalid(err, errlen, "disk %zu: NBD socket '%s' is not an absolute path", i,
			       d->nbd_socket);
	if (d->nbd_socket && strlen(d->nbd_socket) > SUN_PATH_MAX)
		return invalid(err, errlen, "disk %zu: NBD socket path longer than %zu bytes", i,
			       SUN_PATH_MAX);
	if (d->file && !abs_path_ok(d->file))
		return invalid(err, errlen, "disk %zu: file '%s' is not an absolute path", i,
			       d->file);
	if (d->readonly && d->bus == HV_BUS_IDE)
		return invalid(err, errlen, "disk %zu: an IDE disk cannot be read-only", i);
	return 0;
}

static int validate_disks(const struct hv_spec *s, char *err, size_t errlen)
{
	size_t ide = 0;
	int rc;

	if (s->ndisks > HV_DISKS_MAX)
		return invalid(err, errlen, "%zu disks: at most %d", s->ndisks, HV_DISKS_MAX);
	if (s->ndisks && !s->disks)
		return invalid(err, errlen, "%zu disks but no disk array", s->ndisks);
	for (size_t i = 0; i < s->ndisks; i++) {
		rc = validate_disk(&s->disks[i], i, err, errlen);
		if (rc)
			return rc;
		ide += s->disks[i].bus == HV_BUS_IDE;
	}
	if (ide > HV_IDE_DISKS_MAX)
		return invalid(err, errlen, "%zu IDE disks: at most %d", ide, HV_IDE_DISKS_MAX);
	if (!s->ndisks && !s->kernel)
		return invalid(err, errlen, "nothing to boot: no disk and no kernel");
	return 0;
}

static int validate_nics(const struct hv_spec *s, char *err, size_t errlen)
{
	if (s->nnics > HV_NICS_MAX)
		return invalid(err, errlen, "%zu NICs: at most %d", s->nnics, HV_NICS_MAX);
	if (s->nnics && !s->nics)
		return invalid(err, errlen, "%zu NICs but no NIC array", s->nnics);
	for (size_t i = 0; i < s->nnics; i++) {
		const struct hv_nic *n = &s->nics[i];

		if (n->tap_fd != -1 && n->tap_fd < 3)
			return invalid(err, errlen, "nic %zu: tap fd %d (must be >= 3, or -1)", i,
				       n->tap_fd);
		if (!mac_ok(n->mac))
			return invalid(err, errlen,
				       "nic %zu: MAC '%s' is not a unicast xx:xx:xx:xx:xx:xx", i,
				       n->mac ? n->mac : "(none)");
		if (n->model && !model_ok(n->model))
			return invalid(err, errlen, "nic %zu: bad model '%s'", i, n->model);
		for (size_t j = 0; j < i; j++)
			if (n->tap_fd >= 0 && s->nics[j].tap_fd == n->tap_fd)
				return invalid(err, errlen,
					       "nic %zu: tap fd %d already used by nic %zu", i,
					       n->tap_fd, j);
	}
	return 0;
}

static int validate_boot(const struct hv_spec *s, char *err, size_t errlen)
{
	if (s->kernel && !abs_path_ok(s->kernel))
		return invalid(err, errlen, "kernel '%s' is not an absolute path", s->kernel);
	if (s->initrd && !abs_path_ok(s->initrd))
		return invalid(err, errlen, "initrd '%s' is not an absolute path", s->initrd);
	if ((s->initrd || s->append) && !s->kernel)
		return invalid(err, errlen, "initrd or append given without a kernel");
	return 0;
}

int hv_spec_validate(const struct hv_spec *s, char *err, size_t errlen)
{
	int rc;

	if (!name_ok(s->name))
		return invalid(err, errlen,
			       "bad VM name '%s': 1 to %d of A-Z a-z 0-9 _ . -, not starting "
			       "with . or -",
			       s->name ? s->name : "(none)", HV_NAME_MAX);
	if (s->uuid && !uuid_ok(s->uuid))
		return invalid(err, errlen, "bad UUID '%s'", s->uuid);
	if (s->vcpus < 1 || s->vcpus > HV_VCPUS_MAX)
		return invalid(err, errlen, "vcpus %u out of range 1..%d", s->vcpus, HV_VCPUS_MAX);
	if (s->memory_mb < HV_MEMORY_MIN_MB || s->memory_mb > HV_MEMORY_MAX_MB)
		return invalid(err, errlen, "memory %" PRIu64 " MiB out of range %llu MiB..16 TiB",
			       s->memory_mb, HV_MEMORY_MIN_MB);
	if (s->uid == 0 || s->gid == 0)
		return invalid(err, errlen, "QEMU must not run as root (uid %u, gid %u)",
			       (unsigned)s->uid, (unsigned)s->gid);
	if (!abs_path_ok(s->dir))
		return invalid(err, errlen, "VM directory '%s' is not an absolute path",
			       s->dir ? s->dir : "(none)");
	if (strlen(s->dir) + 1 + strlen(HV_QMP_SOCKET) > SUN_PATH_MAX)
		return invalid(err, errlen, "VM directory '%s' too long for a unix socket path",
			       s->dir);
	if (s->qemu_binary && !s->qemu_binary[0])
		return invalid(err, errlen, "empty QEMU binary");
	rc = validate_disks(s, err, errlen);
	if (!rc)
		rc = validate_nics(s, err, errlen);
	if (!rc)
		rc = validate_boot(s, err, errlen);
	return rc;
}

/* --- argv ------------------------------------------------------------------ */

struct argv_buf {
	char **v;
	size_t n, cap;
	bool nomem;
};

static void push(struct argv_buf *a, char *item)
{
	char **nv;

	if (!item) {
		a->nomem = true;
		return;
	}
	if (a->n + 2 > a->cap) {
		nv = realloc(a->v, (a->cap ? a->cap * 2 : 64) * sizeof(*nv));
		if (!nv) {
			free(item);
			a->nomem = true;
			return;
		}
		a->v = nv;
		a->cap = a->cap ? a->cap * 2 : 64;
	}
	a->v[a->n++] = item;
	a->v[a->n] = NULL;
}

__attribute__((format(printf, 2, 3))) static void add(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	push(a, s);
}

/* A value inside QEMU's key=value,... options: commas are doubled. */
static char *opt_escape(const char *s)
{
	size_t n = strlen(s), extra = 0;
	char *out, *o;

	for (size_t i = 0; i < n; i++)
		extra += s[i] == ',';
	out = malloc(n + extra + 1);
	if (!out)
		return NULL;
	o = out;
	for (size_t i = 0; i < n; i++) {
		*o++ = s[i];
		if (s[i] == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

/* "-chardev KIND,id=ID,path=DIR/FILE,TAIL" with the path escaped. */
static void add_chardev(struct argv_buf *a, const char *kind, const char *id, const char *dir,
			const char *file, const char *tail)
{
	char *edir = opt_escape(dir);

	if (!edir) {
		a->nomem = true;
		return;
	}
	add(a, "-chardev");
	add(a, "%s,id=%s,path=%s/%s,%s", kind, id, edir, file, tail);
	free(edir);
}

static json_t *blockdev_json(const struct hv_disk *d, size_t i)
{
	char node[32];

	snprintf(node, sizeof(node), "disk%zu", i);
	if (d->nbd_socket)
		return json_pack("{s:s, s:s, s:{s:s, s:s}, s:b, s:{s:b, s:b}}", "driver", "nbd",
				 "node-name", node, "server", "type", "unix", "path", d->nbd_socket,
				 "read-only", d->readonly, "cache", "direct", 0, "no-flush", 0);
	return json_pack("{s:s, s:s, s:s, s:b, s:{s:b, s:b}}", "driver", "file", "node-name", node,
			 "filename", d->file, "read-only", d->readonly, "cache", "direct", 0,
			 "no-flush", 0);
}

static void add_disk(struct argv_buf *a, const struct hv_spec *s, size_t i, size_t *ide)
{
	const struct hv_disk *d = &s->disks[i];
	const char *boot = (i == 0 && !s->kernel) ? ",bootindex=1" : "";
	json_t *j = blockdev_json(d, i);

	add(a, "-blockdev");
	push(a, j ? json_dumps(j, JSON_COMPACT) : NULL);
	json_decref(j);
	add(a, "-device");
	if (d->bus == HV_BUS_IDE) {
		add(a,
		    "ide-hd,drive=disk%zu,id=disk%zu-dev,bus=ide.%zu,unit=%zu,write-cache=on,"
		    "werror=stop,rerror=stop%s",
		    i, i, *ide / 2, *ide % 2, boot);
		(*ide)++;
	} else {
		add(a,
		    "virtio-blk-pci,drive=disk%zu,id=disk%zu-dev,write-cache=on,werror=stop,"
		    "rerror=stop%s",
		    i, i, boot);
	}
}

static void add_nic(struct argv_buf *a, const struct hv_nic *n, size_t i)
{
	const char *model = n->model ? n->model : "virtio-net-pci";

	if (n->tap_fd >= 0) {
		add(a, "-netdev");
		add(a, "tap,id=net%zu,fd=%d", i, n->tap_fd);
		add(a, "-device");
		add(a, "%s,id=nic%zu,netdev=net%zu,mac=%s", model, i, i, n->mac);
	} else {
		add(a, "-device");
		add(a, "%s,id=nic%zu,mac=%s", model, i, n->mac);
	}
}

int hv_build_argv(const struct hv_spec *s, const struct hv_caps *caps, char ***argv_out, char *err,
		  size_t errlen)
{
	struct argv_buf a = {0};
	size_t ide = 0;
	int rc;

	*argv_out = NULL;
	rc = hv_spec_validate(s, err, errlen);
	if (rc)
		return rc;

	add(&a, "%s", s->qemu_binary ? s->qemu_binary : HV_QEMU_DEFAULT);
	add(&a, "-name");
	add(&a, "guest=%s,debug-threads=on", s->name);
	if (s->uuid) {
		add(&a, "-uuid");
		add(&a, "%s", s->uuid);
	}
	add(&a, "-nodefaults");
	add(&a, "-no-user-config");
	add(&a, "-display");
	add(&a, "none");
	add(&a, "-machine");
	add(&a, "pc,mem-merge=off");
	add(&a, "-accel");
	add(&a, "%s", caps->kvm ? "kvm" : "tcg");
	add(&a, "-smp");
	add(&a, "%u", s->vcpus);
	add(&a, "-m");
	add(&a, "%" PRIu64 "M", s->memory_mb);
	add(&a, "-sandbox");
	add(&a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	add(&a, "-msg");
	add(&a, "timestamp=on");
	add_chardev(&a, "socket", "qmp", s->dir, HV_QMP_SOCKET, "server=on,wait=off");
	add(&a, "-mon");
	add(&a, "chardev=qmp,mode=control");
	add_chardev(&a, "file", "serial0", s->dir, HV_CONSOLE_LOG, "append=on");
	add(&a, "-serial");
	add(&a, "chardev:serial0");
	for (size_t i = 0; i < s->ndisks; i++)
		add_disk(&a, s, i, &ide);
	for (size_t i = 0; i < s->nnics; i++)
		add_nic(&a, &s->nics[i], i);
	if (s->kernel) {
		add(&a, "-kernel");
		add(&a, "%s", s->kernel);
	}
	if (s->initrd) {
		add(&a, "-initrd");
		add(&a, "%s", s->initrd);
	}
	if (s->append) {
		add(&a, "-append");
		add(&a, "%s", s->append);
	}
	add(&a, "-S");
	if (s->incoming_defer) {
		add(&a, "-incoming");
		add(&a, "defer");
	}
	if (a.nomem) {
		hv_argv_free(a.v);
		snprintf(err, errlen, "out of memory building QEMU's command line");
		return -ENOMEM;
	}
	*argv_out = a.v;
	return 0;
}

void hv_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}
