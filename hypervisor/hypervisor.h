/*
 * The QEMU driver. It knows nothing of the cluster or of iSCSI: given a
 * launch spec it builds QEMU's command line, runs QEMU under the VM's own
 * uid in a seccomp sandbox, talks QMP to it on the caller's qb_loop and
 * reports its state, its events and its exit.
 *
 * Files of a VM, all in its private directory spec->dir (created by the
 * caller, 0700, owned by spec->uid:spec->gid; the driver creates nothing
 * outside it):
 *   qmp.sock     QEMU's QMP socket (QEMU creates it with umask 077)
 *   console.log  the serial console, appended to across restarts
 *   qemu.stderr  QEMU's stdout and stderr, appended to across restarts
 */
#ifndef HV_HYPERVISOR_H
#define HV_HYPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <qb/qbloop.h>

#define HV_QMP_SOCKET "qmp.sock"
#define HV_CONSOLE_LOG "console.log"
#define HV_STDERR_LOG "qemu.stderr"

#define HV_NAME_MAX 64 /* [A-Za-z0-9_.-], not starting with '.' or '-' */
#define HV_VCPUS_MAX 256
#define HV_MEMORY_MIN_MB 16ULL
#define HV_MEMORY_MAX_MB (16ULL << 20) /* 16 TiB */
#define HV_DISKS_MAX 16
#define HV_IDE_DISKS_MAX 4 /* two IDE buses of two units on the pc machine */
#define HV_NICS_MAX 8
#define HV_QEMU_DEFAULT "qemu-system-x86_64"

enum hv_disk_bus {
	HV_BUS_VIRTIO = 0,
	HV_BUS_IDE,
};

struct hv_disk {
	const char *nbd_socket; /* absolute path of the unix socket of the VM's disk server */
	const char *file;	/* absolute path of a raw file, for tests; exactly one of the two */
	enum hv_disk_bus bus;
	bool readonly; /* virtio only: IDE disks cannot be read-only */
};

struct hv_nic {
	int tap_fd;	   /* opened by the caller, >= 3, passed to QEMU; -1: a NIC with no link */
	const char *mac;   /* "52:54:00:xx:xx:xx": unicast, stable across moves */
	const char *model; /* NULL: virtio-net-pci */
};

struct hv_spec {
	const char *name;   /* also names the QEMU process and its threads */
	const char *uuid;   /* 8-4-4-4-12 hex, or NULL */
	unsigned int vcpus; /* 1..HV_VCPUS_MAX */
	uint64_t memory_mb; /* HV_MEMORY_MIN_MB..HV_MEMORY_MAX_MB */
	struct hv_disk *disks;
	size_t ndisks;
	struct hv_nic *nics;
	size_t nnics;
	const char *kernel; /* direct boot (absolute paths), optional: else boot from disk 0 */
	const char *initrd;
	const char *append;
	const char *dir; /* absolute; the VM's private dir, see above */
	uid_t uid;	 /* QEMU runs as uid:gid, never 0 */
	gid_t gid;
	const char *qemu_binary; /* NULL: HV_QEMU_DEFAULT, looked up in PATH */
	bool start_paused;	 /* stay paused when ready (else the driver sends cont) */
	bool incoming_defer;	 /* -incoming defer: wait for an incoming migration */
	int incoming_fd;	 /* with incoming_defer, >= 3: an fd QEMU inherits, for
				  * migrate-incoming "fd:N"; 0: none */
};

struct hv_caps {
	bool kvm; /* /dev/kvm opens read-write and speaks KVM API 12 */
};

/* Probe what this host offers (KVM or TCG only). Never fails. */
void hv_probe_caps(struct hv_caps *caps);
/*
 * Whether QEMU running as @uid:@gid (no supplementary groups) may open
 * /dev/kvm, from its owner, group and mode (ACLs are not looked at).
 * qemu_vm_start() falls back to TCG, with a warning, when it may not.
 */
bool hv_kvm_usable_by(uid_t uid, gid_t gid);

/* Check @s; 0, or -EINVAL with a message naming the bad field. */
int hv_spec_validate(const struct hv_spec *s, char *err, size_t errlen);

/*
 * Validate @s and build QEMU's argv (NULL-terminated, argv[0] the binary).
 * QEMU always starts with -S (vCPUs stopped): the driver lets the guest run
 * only once it holds the QMP connection. 0 with *argv_out to free with
 * hv_argv_free(), or -EINVAL / -ENOMEM with a message.
 */
int hv_build_argv(const struct hv_spec *s, const struct hv_caps *caps, char ***argv_out, char *err,
		  size_t errlen);
void hv_argv_free(char **argv);

/* --- one running QEMU ------------------------------------------------------ */

typedef struct qemu_vm qemu_vm_t;

enum qemu_state {
	QEMU_STATE_STARTING, /* spawned, QMP not negotiated yet (or cont in flight) */
	QEMU_STATE_RUNNING,
	QEMU_STATE_PAUSED,	  /* with a reason, see qemu_vm_state() */
	QEMU_STATE_SHUTTING_DOWN, /* stop/shutdown asked, or the guest powered off */
	QEMU_STATE_EXITED,	  /* reaped */
};

enum qemu_event {
	QEMU_EVENT_OTHER, /* an event this driver does not name */
	QEMU_EVENT_SHUTDOWN,
	QEMU_EVENT_POWERDOWN,
	QEMU_EVENT_RESET,
	QEMU_EVENT_STOP,
	QEMU_EVENT_RESUME,
	QEMU_EVENT_SUSPEND,
	QEMU_EVENT_WAKEUP,
	QEMU_EVENT_BLOCK_IO_ERROR,
	QEMU_EVENT_GUEST_PANICKED,
	QEMU_EVENT_WATCHDOG,
	QEMU_EVENT_MIGRATION,
	QEMU_EVENT_MIGRATION_PASS,
};

/* Error classes the driver itself reports to QMP callbacks (QEMU's are passed through). */
#define QEMU_ERR_DISCONNECTED "Disconnected" /* QMP connection lost or QEMU exited */
#define QEMU_ERR_CANCELLED "Cancelled"	     /* qemu_vm_destroy() with the command pending */

/*
 * Reply to a QMP command: @result is QEMU's "return" value and @err_class
 * NULL; or @result NULL and @err_class/@err_desc say why. Everything is
 * valid only during the callback (json_incref @result to keep it).
 */
typedef void (*qemu_qmp_fn)(qemu_vm_t *vm, json_t *result, const char *err_class,
			    const char *err_desc, void *arg);
/* QEMU exited after qemu_vm_shutdown(); @forced: it had to be SIGKILLed. */
typedef void (*qemu_shutdown_fn)(qemu_vm_t *vm, bool forced, void *arg);

/*
 * Callbacks run on the loop, never from inside the call that caused them.
 * Any of them may call qemu_vm_destroy(); then no other callback follows.
 */
struct qemu_vm_ops {
	/* QMP is up and the guest runs (or stays paused: start_paused, incoming_defer). Once. */
	void (*ready)(qemu_vm_t *vm, void *arg);
	/* A QMP event; @data is never NULL (an empty object when QEMU sent none), borrowed. */
	void (*event)(qemu_vm_t *vm, enum qemu_event ev, json_t *data, void *arg);
	/* Optional: the state changed (qemu_vm_state() gives it with its reason). */
	void (*state_changed)(qemu_vm_t *vm, void *arg);
	/*
	 * QEMU is gone (from qemu_vm_reaped()). @expected: after qemu_vm_stop(),
	 * qemu_vm_shutdown(), or a clean exit after the guest powered off;
	 * anything else (a crash, a kill by someone else, a failed start) is
	 * unexpected and already logged at error. @stderr_tail: the last lines
	 * QEMU wrote to qemu.stderr in this run ("" if none), valid only during
	 * the callback.
	 */
	void (*exited)(qemu_vm_t *vm, int wstatus, bool expected, const char *stderr_tail,
		       void *arg);
};

/*
 * Spawn QEMU for @s under s->uid:s->gid (after checking that s->dir is a
 * directory owned by them with mode 0700) and connect to its QMP socket
 * from @loop. @s and everything it points to are copied. The child is not
 * reaped here: the caller owns SIGCHLD and calls qemu_vm_reaped() with
 * QEMU's status. NULL with errno set and a message in @err when QEMU could
 * not be started (nothing left running then).
 */
qemu_vm_t *qemu_vm_start(qb_loop_t *loop, const struct hv_spec *s, const struct qemu_vm_ops *ops,
			 void *arg, char *err, size_t errlen);

/*
 * Free @vm. Does not kill QEMU (a restarted hvnoded must not kill its VMs).
 * Pending QMP commands complete with QEMU_ERR_CANCELLED inside this call;
 * no other callback runs after it.
 */
void qemu_vm_destroy(qemu_vm_t *vm);

/* QEMU's pid; 0 once reaped. */
pid_t qemu_vm_pid(const qemu_vm_t *vm);
const char *qemu_vm_name(const qemu_vm_t *vm);

/*
 * The state as the driver knows it (from events, resynchronised with
 * query-status whenever QMP (re)connects). For QEMU_STATE_PAUSED, *reason
 * (if @reason) is QEMU's run state: "user" (paused through QMP), "io-error",
 * "prelaunch", "inmigrate", "postmigrate", "guest-panicked", ...; "" in the
 * other states. The string lives until the next state change.
 */
enum qemu_state qemu_vm_state(const qemu_vm_t *vm, const char **reason);
const char *qemu_state_name(enum qemu_state st);
const char *qemu_event_name(enum qemu_event ev);

/*
 * Send QMP command @cmd with @args (an object or NULL; borrowed: it is
 * serialised at once). Commands sent before QMP is negotiated, or while it
 * reconnects, are queued. @cb (may be NULL) is called exactly once: with the
 * reply, or QEMU_ERR_DISCONNECTED when the connection or QEMU is lost first,
 * or QEMU_ERR_CANCELLED from qemu_vm_destroy(). 0, or -ESRCH when QEMU has
 * exited, -EINVAL, -ENOMEM (then @cb is never called).
 */
int qemu_vm_qmp(qemu_vm_t *vm, const char *cmd, json_t *args, qemu_qmp_fn cb, void *arg);

/* The same, passing a copy of @fd with it (for getfd); @fd stays the caller's. */
int qemu_vm_qmp_fd(qemu_vm_t *vm, const char *cmd, json_t *args, int fd, qemu_qmp_fn cb,
		   void *arg);

/* Pause (QMP stop) and resume (QMP cont); as qemu_vm_qmp(). */
int qemu_vm_pause(qemu_vm_t *vm, qemu_qmp_fn cb, void *arg);
int qemu_vm_resume(qemu_vm_t *vm, qemu_qmp_fn cb, void *arg);

/* Hard stop: SIGKILL now; the exit is expected. 0, or -ESRCH when already reaped. */
int qemu_vm_stop(qemu_vm_t *vm);

/*
 * Clean stop: ACPI power button (system_powerdown), SIGKILL after
 * @timeout_ms if QEMU is still there. @cb (may be NULL) runs when QEMU has
 * exited, just before ops->exited. 0, -ESRCH when already reaped, -EALREADY
 * when a shutdown is already under way.
 */
int qemu_vm_shutdown(qemu_vm_t *vm, unsigned int timeout_ms, qemu_shutdown_fn cb, void *arg);

/* The caller reaped QEMU's pid with @wstatus: reports ops->exited. */
void qemu_vm_reaped(qemu_vm_t *vm, int wstatus);

#endif
