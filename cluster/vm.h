/*
 * The definition of a VM, as the cluster state holds it: what it is, not
 * where or whether it runs. Validated strictly on the way in (from hvctl's
 * JSON, from a state file, later from a CPG message): a definition that
 * exists is a valid one.
 */
#ifndef HV_CLUSTER_VM_H
#define HV_CLUSTER_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define VM_NAME_MAX 64
#define VM_MAX_DISKS 8
#define VM_MAX_NICS 8
#define VM_MAX_NODES 16
#define VM_URL_MAX 512
#define VM_PATH_MAX 512
#define VM_TEXT_MAX 256
#define VM_APPEND_MAX 1024

enum vm_priority {
	VM_PRIO_LOW,
	VM_PRIO_MEDIUM,
	VM_PRIO_HIGH,
};

enum vm_disk_bus {
	VM_BUS_VIRTIO,
	VM_BUS_IDE,
};

/* Back to the node a drain moved it off, once that node leaves maintenance. */
enum vm_failback {
	VM_FAILBACK_NONE,      /* stays where the drain put it */
	VM_FAILBACK_IMMEDIATE, /* at once, live */
	VM_FAILBACK_WINDOW,    /* live, when the time of day (UTC) is in [from, to) */
};

/* Data classification, ordered: a host's clearance bounds its guests' level. */
enum vm_class {
	VM_CLASS_PUBLIC,
	VM_CLASS_INTERNAL,
	VM_CLASS_CONFIDENTIAL,
	VM_CLASS_SECRET,
};

struct vm_disk {
	char url[VM_URL_MAX]; /* iscsi://host[:port]/iqn/lun */
	enum vm_disk_bus bus;
};

struct vm_nic {
	char bridge[16]; /* IFNAMSIZ */
	char mac[18];	 /* 52:54:00:xx:xx:xx, kept across moves */
};

struct vm_def {
	char name[VM_NAME_MAX + 1];
	char uuid[37];
	unsigned int vcpus;
	uint64_t memory_mb;
	struct vm_disk disks[VM_MAX_DISKS];
	size_t ndisks;
	struct vm_nic nics[VM_MAX_NICS];
	size_t nnics;
	char kernel[VM_PATH_MAX]; /* direct boot when set */
	char initrd[VM_PATH_MAX];
	char append[VM_APPEND_MAX];
	char state_lun[VM_URL_MAX]; /* save/restore: where `vm save` writes its state; "" none */
	enum vm_priority priority;
	bool ha;
	/* false: the admin accepts LUNs without persistent reservations; only power fencing protects it */
	bool fence_storage;
	char owner[VM_TEXT_MAX];
	char contact[VM_TEXT_MAX];
	char app[VM_NAME_MAX + 1];
	char tier[VM_NAME_MAX + 1];
	enum vm_class classification;
	char preferred[VM_MAX_NODES][VM_NAME_MAX + 1]; /* ordered */
	size_t npreferred;
	char possible[VM_MAX_NODES][VM_NAME_MAX + 1]; /* empty: any node */
	size_t npossible;
	enum vm_failback failback;
	uint16_t failback_from, failback_to; /* minutes of the day, UTC (window) */
};

/* Letters, digits, '-', '_', '.'; 1..64 characters; not "." or "..". */
bool vm_name_is_valid(const char *name);

/* "512" (MiB), "512M", "2G", "1048576K", "1T" -> MiB; -EINVAL or -ERANGE with a message. */
int vm_size_parse_mb(const char *s, uint64_t *mb, char *err, size_t errlen);

/*
 * Build a definition from the JSON object hvctl sends (or the state holds):
 * every key checked for type and range, unknown keys refused, 0 or -EINVAL
 * with a message naming the field. A missing uuid or NIC MAC stays empty:
 * vm_def_assign_identity() fills them.
 */
int vm_def_from_json(const json_t *j, struct vm_def *def, char *err, size_t errlen);

/*
 * Give a new VM its identity: a version-4 uuid from @random (16 random bytes
 * the caller read) when it has none, and every NIC without a MAC a stable
 * locally administered one derived from the uuid and the NIC's index.
 */
void vm_def_assign_identity(struct vm_def *def, const uint8_t random[16]);

/*
 * The identity of the LUN @url names, for comparing: "host:port/target/lun"
 * with the host and target lower-cased and the port defaulting to 3260, so
 * two spellings of one LUN compare equal. @url is a validated disk URL.
 */
void vm_lun_identity(const char *url, char *out, size_t len);

/* The definition as a JSON object (new reference), every field included. */
json_t *vm_def_to_json(const struct vm_def *def);

const char *vm_priority_name(enum vm_priority p);
/* "none", "immediate" or "HH:MM-HH:MM" into @buf. */
const char *vm_failback_str(const struct vm_def *def, char *buf, size_t len);
/* Is minute @min of the day (UTC) in @def's failback window (immediate: always; none: never)? */
bool vm_failback_now(const struct vm_def *def, unsigned int min);
const char *vm_class_name(enum vm_class c);
int vm_class_parse(const char *s, enum vm_class *c);

#endif
