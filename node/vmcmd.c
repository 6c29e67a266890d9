/*
 * hvctl's vm.* commands: definitions (create, delete, show, list, console)
 * here, the running of VMs in vmrun.c.
 */
#include "hvnoded.h"
#include "statefile.h"
#include "vmrun.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <qb/qblog.h>

#define CONSOLE_MAX (256 * 1024)

/* The VM named in @args, or NULL with an error reply in *res. */
static const struct vm_def *find_vm(struct hvnoded *d, json_t *args, json_t **res, int *status)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	const struct vm_def *def;

	if (!name || !vm_name_is_valid(name)) {
		*res = command_error(status, -EINVAL, "a valid VM name is needed");
		return NULL;
	}
	def = state_vm_find(d->state, name);
	if (!def)
		*res = command_error(status, -ENOENT, "vm %s does not exist", name);
	return def;
}

static json_t *vm_json(struct hvnoded *d, const struct vm_def *def)
{
	json_t *j = vm_def_to_json(def);

	if (j)
		vmrun_describe(d, def->name, j);
	return j;
}

json_t *cmd_vm_list(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	json_t *vms = json_array();

	for (size_t i = 0; vms && i < state_vm_count(d->state); i++)
		json_array_append_new(vms, vm_json(d, state_vm_at(d->state, i)));
	return json_pack("{s:o}", "vms", vms);
}

json_t *cmd_vm_show(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct vm_def *def;
	json_t *res = NULL;

	def = find_vm(d, args, &res, status);
	return def ? vm_json(d, def) : res;
}

/* Persist, or undo: a definition that is not on disk was not created. */
static int save_state(struct hvnoded *d, char *err, size_t errlen)
{
	return statefile_save(d->state_path, d->state, err, errlen);
}

struct create_job {
	struct hvnoded *d;
	struct ipc_request *req;
	struct vm_def def;
	char err[1024];
};

static void create_done(void *arg, int rc)
{
	struct create_job *job = arg;
	struct hvnoded *d = job->d;
	char err[1024];
	json_t *res;

	if (rc) {
		qb_log(LOG_WARNING, "vm %s: not created: %s", job->def.name, job->err);
		ipc_request_fail(job->req, rc, "vm %s: %s", job->def.name, job->err);
		goto out;
	}
	/* checked again: another create may have won while the disks were probed */
	rc = state_vm_add(d->state, &job->def, err, sizeof(err));
	if (!rc) {
		rc = save_state(d, err, sizeof(err));
		if (rc)
			state_vm_del(d->state, job->def.name);
	}
	if (rc) {
		ipc_request_fail(job->req, rc, "%s", err);
		goto out;
	}
	qb_log(LOG_NOTICE, "vm %s created: uuid %s, %u vcpus, %" PRIu64 " MiB, %zu disks",
	       job->def.name, job->def.uuid, job->def.vcpus, job->def.memory_mb, job->def.ndisks);
	res = vm_json(d, state_vm_find(d->state, job->def.name));
	ipc_request_reply(job->req, 0, res);
	json_decref(res);
out:
	free(job);
}

static int create_probe(void *arg)
{
	struct create_job *job = arg;

	return vm_disks_probe(job->d, &job->def, job->err, sizeof(job->err));
}

json_t *cmd_vm_create(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	struct create_job *job;
	uint8_t rnd[16];
	char err[512];
	int rc;

	job = calloc(1, sizeof(*job));
	if (!job)
		return command_error(status, -ENOMEM, "out of memory");
	rc = vm_def_from_json(json_object_get(args, "def"), &job->def, err, sizeof(err));
	if (rc) {
		const char *name = json_string_value(
			json_object_get(json_object_get(args, "def"), "name"));

		free(job);
		return command_error(status, rc, "vm %.64s: %s", name ? name : "?", err);
	}
	if (state_vm_find(d->state, job->def.name)) {
		json_t *res = command_error(status, -EEXIST, "vm %s already exists", job->def.name);

		free(job);
		return res;
	}
	if (job->def.uuid[0] == '\0' && getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		free(job);
		return command_error(status, -EIO, "cannot read random bytes for a uuid");
	}
	vm_def_assign_identity(&job->def, rnd);
	job->d = d;
	job->req = req;
	rc = work_submit(d, create_probe, create_done, job);
	if (rc) {
		free(job);
		return command_error(status, rc, "cannot start a worker: %s", strerror(-rc));
	}
	return NULL;
}

json_t *cmd_vm_delete(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct vm_def *def;
	struct vm_def copy;
	json_t *res = NULL;
	char err[1024];
	int rc;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	if (vmrun_is_active(d, def->name))
		return command_error(status, -EBUSY, "vm %s is not stopped; stop it first",
				     def->name);
	copy = *def;
	state_vm_del(d->state, copy.name);
	rc = save_state(d, err, sizeof(err));
	if (rc) {
		state_vm_add(d->state, &copy, err, sizeof(err));
		return command_error(status, rc, "vm %s not deleted: %s", copy.name, err);
	}
	qb_log(LOG_NOTICE, "vm %s deleted (uuid %s)", copy.name, copy.uuid);
	return json_pack("{s:s,s:s}", "name", copy.name, "uuid", copy.uuid);
}

/* The last @lines lines of the VM's console log. */
json_t *cmd_vm_console(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct vm_def *def;
	json_int_t lines = json_integer_value(json_object_get(args, "lines"));
	json_t *res = NULL;
	char path[4096], *buf, *p;
	off_t size, from;
	ssize_t n;
	int fd;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	if (lines <= 0)
		lines = 50;
	vmrun_dir(d, def->name, path, sizeof(path));
	strncat(path, "/console.log", sizeof(path) - strlen(path) - 1);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return json_pack("{s:s,s:s}", "name", def->name, "text", "");
		return command_error(status, -errno, "vm %s: cannot read console log %s: %s",
				     def->name, path, strerror(errno));
	}
	size = lseek(fd, 0, SEEK_END);
	from = size > CONSOLE_MAX ? size - CONSOLE_MAX : 0;
	buf = malloc(CONSOLE_MAX + 1);
	n = buf ? pread(fd, buf, size - from, from) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return command_error(status, -EIO, "vm %s: cannot read console log", def->name);
	}
	buf[n] = '\0';
	/* keep the last @lines lines; the guest's bytes are not trusted to be text */
	p = buf + n;
	if (p > buf && p[-1] == '\n')
		p--;
	while (p > buf && lines > 0)
		if (*--p == '\n')
			lines--;
	if (*p == '\n')
		p++;
	for (char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t')
			*c = '?';
	res = json_pack("{s:s,s:s}", "name", def->name, "text", p);
	free(buf);
	if (!res)
		return command_error(status, -EINVAL, "vm %s: console log is not valid text",
				     def->name);
	return res;
}

/* start/stop/...: look the VM up, hand over to vmrun, which replies later. */
#define RUN_COMMAND(fn, call)                                                                    \
	json_t *fn(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)       \
	{                                                                                       \
		const struct vm_def *def;                                                       \
		json_t *res = NULL;                                                             \
                                                                                                \
		def = find_vm(d, args, &res, status);                                           \
		if (!def)                                                                       \
			return res;                                                             \
		call;                                                                           \
		return NULL;                                                                    \
	}

RUN_COMMAND(cmd_vm_start, vmrun_start(d, def, req))
RUN_COMMAND(cmd_vm_stop, vmrun_stop(d, def->name, req))
RUN_COMMAND(cmd_vm_pause, vmrun_pause(d, def->name, req))
RUN_COMMAND(cmd_vm_resume, vmrun_resume(d, def->name, req))

json_t *cmd_vm_shutdown(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	json_int_t timeout = json_integer_value(json_object_get(args, "timeout"));
	const struct vm_def *def;
	json_t *res = NULL;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	if (timeout <= 0 || timeout > 3600)
		timeout = 120;
	vmrun_shutdown(d, def->name, timeout, req);
	return NULL;
}
