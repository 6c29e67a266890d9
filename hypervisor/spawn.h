/* QEMU's process: spawn under the VM's uid, and the tail of its stderr. Private to hypervisor/. */
#ifndef HV_HYPERVISOR_SPAWN_H
#define HV_HYPERVISOR_SPAWN_H

#include <sys/types.h>

#include "hypervisor.h"

struct hv_proc {
	pid_t pid;
	off_t stderr_start; /* where this run's output begins in qemu.stderr */
};

/*
 * Check that s->dir is a directory owned by s->uid:s->gid with mode 0700,
 * give console.log and qemu.stderr to that uid (created if missing; refused
 * if not plain files with one link), fork, and exec @argv in a new session
 * as s->uid:s->gid with no supplementary groups, umask 077, no_new_privs,
 * cwd s->dir, stdin /dev/null, stdout and stderr appended to qemu.stderr,
 * and no fd of ours but the tap fds of s->nics. 0 when QEMU was exec'd, or
 * -errno with a message (the child, if any, already reaped).
 */
int hv_spawn(const struct hv_spec *s, char *const argv[], struct hv_proc *out, char *err,
	     size_t errlen);

/*
 * The last @lines lines of DIR/qemu.stderr from offset @from on (at most
 * 4 KiB of them), newline-separated, control characters replaced; "" if none.
 */
void hv_stderr_tail(const char *dir, off_t from, unsigned int lines, char *buf, size_t len);

#endif
