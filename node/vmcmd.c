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
#include <sys/stat.h>
#include <time.h>
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
	return cluster_vm_json(d, def);
}

/* A filter of vm.list in *@val, NULL when @args has none; false when it is not a string. */
static bool list_filter(json_t *args, const char *key, const char **val)
{
	json_t *v = json_object_get(args, key);

	*val = json_string_value(v);
	return !v || *val;
}

/*
 * Every VM, or those that match all the filters given in @args: "owner" and "app" (exact;
 * "" matches the VMs without one) and "node" (a node the cluster knows: the VMs shown on it).
 */
json_t *cmd_vm_list(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct node_info *node = NULL;
	const char *owner, *app;
	json_t *vms, *res = NULL;

	if (!list_filter(args, "owner", &owner) || !list_filter(args, "app", &app))
		return command_error(status, -EINVAL, "vm.list: owner and app must be strings");
	if (json_object_get(args, "node") && !(node = command_node(d, args, &res, status)))
		return res;
	vms = json_array();
	for (size_t i = 0; vms && i < state_vm_count(d->state); i++) {
		const struct vm_def *def = state_vm_at(d->state, i);
		const char *on;
		json_t *j;

		if ((owner && strcmp(def->owner, owner)) || (app && strcmp(def->app, app)))
			continue;
		j = vm_json(d, def);
		on = json_string_value(json_object_get(j, "node"));
		if (node && (!on || strcmp(on, node->name))) {
			json_decref(j);
			continue;
		}
		json_array_append_new(vms, j);
	}
	return json_pack("{s:o}", "vms", vms);
}

json_t *cmd_vm_show(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct vm_def *def;
	json_t *res = NULL;

	def = find_vm(d, args, &res, status);
	return def ? vm_json(d, def) : res;
}

struct create_job {
	struct hvnoded *d;
	struct ipc_request *req;
	struct vm_def def;
	char err[1024];
};

/* The disks were probed (in a worker): define the VM cluster-wide. */
static void create_done(void *arg, int rc)
{
	struct create_job *job = arg;
	struct hvnoded *d = job->d;
	char err[1024];
	json_t *op;

	if (rc) {
		qb_log(LOG_WARNING, "vm %s: not created: %s", job->def.name, job->err);
		ipc_request_fail(job->req, rc, "vm %s: %s", job->def.name, job->err);
		goto out;
	}
	op = json_pack("{s:s,s:o}", "op", "vm.create", "def", vm_def_to_json(&job->def));
	rc = op ? cluster_submit(d, op, job->req, CLUSTER_WAIT_APPLIED, job->def.name, 0, err,
				 sizeof(err))
		: -ENOMEM;
	json_decref(op);
	if (rc) {
		ipc_request_fail(job->req, rc, "vm %s not created: %s", job->def.name, err);
		goto out;
	}
	qb_log(LOG_NOTICE, "vm %s: create sent: uuid %s, %u vcpus, %" PRIu64 " MiB, %zu disks",
	       job->def.name, job->def.uuid, job->def.vcpus, job->def.memory_mb, job->def.ndisks);
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

	/* before the disks are probed: a node without quorum may not reach them either */
	if (!membership_is_quorate(d->membership))
		return command_error(status, -EAGAIN,
				     "cluster not quorate: changes are refused on this node");
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

/* Send @op for VM @def and answer @req when it is applied (or the VM got to @wait). */
static json_t *submit(struct hvnoded *d, struct ipc_request *req, json_t *op,
		      const struct vm_def *def, int wait, unsigned int timeout, int *status)
{
	char err[1024];
	int rc;

	if (!op)
		return command_error(status, -ENOMEM, "out of memory");
	rc = cluster_submit(d, op, req, wait, def->name, timeout, err, sizeof(err));
	json_decref(op);
	if (rc)
		return command_error(status, rc, "vm %s: %s", def->name, err);
	return NULL;
}

json_t *cmd_vm_delete(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct vm_def *def;
	const struct vm_status *st;
	json_t *res = NULL;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	st = state_vm_status(d->state, def->name);
	if (st->state != VM_HA_STOPPED || st->want_running)
		return command_error(status, -EBUSY, "vm %s is not stopped (%s); stop it first",
				     def->name, vm_ha_state_name(st->state));
	return submit(d, req, json_pack("{s:s,s:s}", "op", "vm.delete", "name", def->name), def,
		      CLUSTER_WAIT_APPLIED, 0, status);
}

/* The last @lines lines of the VM's console log. */
json_t *cmd_vm_console(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct vm_def *def;
	json_int_t lines = json_integer_value(json_object_get(args, "lines"));
	json_t *res = NULL;
	char path[4096], *buf, *p;
	struct stat st;
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
	/* the VM's uid owns the dir: a FIFO there must not block the loop */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return json_pack("{s:s,s:s}", "name", def->name, "text", "");
		return command_error(status, -errno, "vm %s: cannot read console log %s: %s",
				     def->name, path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return command_error(status, -EINVAL, "vm %s: console log %s is not a plain file",
				     def->name, path);
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

static json_t *want(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status,
		    bool running)
{
	json_int_t timeout = json_integer_value(json_object_get(args, "timeout"));
	const struct vm_def *def;
	json_t *res = NULL;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	if (timeout < 0 || timeout > 3600)
		timeout = 0;
	return submit(d, req,
		      json_pack("{s:s,s:s,s:b}", "op", "vm.want", "name", def->name, "running",
				running),
		      def, running ? CLUSTER_WAIT_STARTED : CLUSTER_WAIT_STOPPED,
		      (unsigned int)timeout, status);
}

json_t *cmd_vm_start(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	return want(d, req, args, status, true);
}

json_t *cmd_vm_stop(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	return want(d, req, args, status, false);
}

json_t *cmd_vm_migrate(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const char *to = json_string_value(json_object_get(args, "to"));
	const char *mode = json_string_value(json_object_get(args, "mode"));
	const struct vm_def *def;
	json_t *res = NULL;
	enum mig_mode m;
	struct timespec ts;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	if (mode && mig_mode_parse(mode, &m))
		return command_error(status, -EINVAL, "vm %s: mode '%.32s' unknown (live or quick)",
				     def->name, mode);
	if (to && !vm_name_is_valid(to))
		return command_error(status, -EINVAL, "vm %s: '%.64s' is not a node name", def->name,
				     to);
	clock_gettime(CLOCK_REALTIME, &ts);
	return submit(d, req,
		      json_pack("{s:s,s:s,s:s,s:s,s:I}", "op", "vm.migrate", "name", def->name, "to",
				to ? to : "", "mode", mode ? mode : "live", "ms",
				(json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000),
		      def, CLUSTER_WAIT_APPLIED, 0, status);
}

json_t *cmd_vm_migrate_cancel(struct hvnoded *d, struct ipc_request *req, json_t *args,
			      int *status)
{
	const struct vm_def *def;
	json_t *res = NULL;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	return submit(d, req, json_pack("{s:s,s:s}", "op", "vm.migrate-cancel", "name", def->name),
		      def, CLUSTER_WAIT_APPLIED, 0, status);
}

json_t *cmd_vm_save(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct vm_def *def;
	json_t *res = NULL;
	struct timespec ts;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	clock_gettime(CLOCK_REALTIME, &ts);
	return submit(d, req,
		      json_pack("{s:s,s:s,s:I}", "op", "vm.save", "name", def->name, "ms",
				(json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000),
		      def, CLUSTER_WAIT_STOPPED, 0, status);
}

json_t *cmd_vm_restore(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const char *on = json_string_value(json_object_get(args, "on"));
	const struct vm_def *def;
	json_t *res = NULL;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	if (on && !vm_name_is_valid(on))
		return command_error(status, -EINVAL, "vm %s: '%.64s' is not a node name", def->name,
				     on);
	return submit(d, req,
		      json_pack("{s:s,s:s,s:s}", "op", "vm.restore", "name", def->name, "on",
				on ? on : ""),
		      def, CLUSTER_WAIT_STARTED, 0, status);
}

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

RUN_COMMAND(cmd_vm_pause, vmrun_pause(d, def->name, req))
RUN_COMMAND(cmd_vm_resume, vmrun_resume(d, def->name, req))

json_t *cmd_vm_shutdown(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	json_int_t timeout = json_integer_value(json_object_get(args, "timeout"));
	const struct vm_def *def;
	json_t *res = NULL;
	char err[1024];
	int rc;

	def = find_vm(d, args, &res, status);
	if (!def)
		return res;
	if (timeout <= 0 || timeout > 3600)
		timeout = 120;
	if (!vmrun_is_active(d, def->name)) {
		const struct vm_status *st = state_vm_status(d->state, def->name);
		const struct node_info *n = st->node ? state_node_find(d->state, st->node) : NULL;

		if (n)
			return command_error(status, -EINVAL,
					     "vm %s runs on node %s, not here: run vm shutdown there",
					     def->name, n->name);
		return command_error(status, -EINVAL, "vm %s is not running", def->name);
	}
	rc = vmrun_shutdown(d, def->name, timeout, err, sizeof(err));
	if (rc)
		return command_error(status, rc, "%s", err);
	/* the guest powers off; wanting it stopped keeps the manager from starting it again */
	return submit(d, req,
		      json_pack("{s:s,s:s,s:b}", "op", "vm.want", "name", def->name, "running", 0),
		      def, CLUSTER_WAIT_STOPPED, (unsigned int)timeout + 30, status);
}
