/*
 * hvctl's fencing commands: fence devices and levels (fence.device.*,
 * fence.level.*), the fence history, the nodes (node.list), and an admin's
 * fence of a node (node.fence) or word that a node is off (node.confirm).
 * Changes go to the cluster as ops (cluster_submit); reads use the state.
 *
 * A device is checked before it is sent: its agent must be an executable here
 * and say, in its metadata (action=metadata, run in a worker), that it takes
 * the device's parameters and can power off. Secrets of fence devices are
 * paths of files that the fencing node reads at fence time: no secret passes
 * through here, in a request, an op or a log.
 * Every change of fencing is root's: hvnoded runs the agents as root, and
 * fencing powers hosts off.
 */
#include "hvnoded.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "../cluster/secreport.h"
#include "../fencing/agent.h"

#define METADATA_TIMEOUT_S 20 /* action=metadata of a sane agent takes well under a second */

/* --- helpers ---------------------------------------------------------------------- */

/* A node's name, or "node ID" for one the state does not know. */
static const char *node_label(const cluster_state_t *s, uint32_t id, char *buf, size_t len)
{
	const struct node_info *n = id ? state_node_find(s, id) : NULL;

	if (n)
		return n->name;
	snprintf(buf, len, "node %" PRIu32, id);
	return buf;
}

/* "uid N (name)": who asks, for the ops and the log. */
static void client_label(const struct ipc_client *cl, char *buf, size_t len)
{
	struct passwd pw, *p = NULL;
	char tmp[1024];

	if (getpwuid_r(cl->uid, &pw, tmp, sizeof(tmp), &p) || !p)
		snprintf(buf, len, "uid %u", (unsigned)cl->uid);
	else
		snprintf(buf, len, "uid %u (%.64s)", (unsigned)cl->uid, p->pw_name);
}


/* ISO 8601 local time with its UTC offset: 2024-05-01T12:00:00+02:00. */
static const char *iso_time(uint64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (!localtime_r(&t, &tm) || !(n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm)) ||
	    n < 5 || n + 2 > len) {
		snprintf(buf, len, "@%" PRIu64, ms / 1000);
		return buf;
	}
	/* %z gives +0200; ISO 8601's extended format wants +02:00 */
	memmove(&buf[n - 1], &buf[n - 2], 3);
	buf[n - 2] = ':';
	return buf;
}

/* --- fence devices ------------------------------------------------------------------ */

/*
 * The agent is run by the node that fences (the leader then): it must exist
 * there. This node is where the admin is: check it here at least.
 */
static int agent_check(struct hvnoded *d, const struct fence_device *dev, char *err, size_t len)
{
	struct stat st;
	int rc;

	if (stat(dev->agent, &st) < 0) {
		rc = -errno;
		snprintf(err, len, "fence device %s: agent %s on node %s: %s", dev->name,
			 dev->agent, d->cfg.node_name, strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, len, "fence device %s: agent %s on node %s: not a regular file",
			 dev->name, dev->agent, d->cfg.node_name);
		return -EINVAL;
	}
	if (access(dev->agent, X_OK) < 0 || !(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
		snprintf(err, len,
			 "fence device %s: agent %s on node %s: not executable (mode %04o)",
			 dev->name, dev->agent, d->cfg.node_name, (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	/* whoever may write it would run code as root at the next fence */
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, len,
			 "fence device %s: agent %s on node %s: writable by group or others (mode %04o), and hvnoded runs it as root: chmod go-w it",
			 dev->name, dev->agent, d->cfg.node_name, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static json_t *device_submit(struct hvnoded *d, struct ipc_request *req,
			     const struct fence_device *dev, int *status)
{
	char what[FENCE_NAME_MAX + 32];
	size_t nsecrets = 0;
	json_t *res;

	snprintf(what, sizeof(what), "fence device %s", dev->name);
	res = command_submit(d, req,
			     json_pack("{s:s,s:o}", "op", "fence.device.add", "device",
				       fence_device_to_json(dev)),
			     what, "added", status);
	if (res)
		return res;
	for (size_t i = 0; i < dev->nparams; i++)
		nsecrets += dev->params[i].secret;
	qb_log(LOG_NOTICE, "fence device %s: add sent (agent %s, %zu parameters, %zu secret files)",
	       dev->name, dev->agent, dev->nparams - nsecrets, nsecrets);
	return NULL;
}

/* A device add waiting for its agent's metadata (a worker runs the agent). */
struct device_job {
	struct hvnoded *d;
	struct ipc_request *req;
	struct fence_device dev;
	char err[1024];
};

/*
 * Worker: the agent says which parameters it takes (action=metadata); the
 * device must give the required ones and no other, by the agent's names.
 */
static int device_probe(void *arg)
{
	struct device_job *job = arg;
	const struct fence_device *dev = &job->dev;
	const char *keys[FENCE_PARAMS_MAX];
	struct fence_agent_meta *meta = malloc(sizeof(*meta));
	char why[768];
	int rc;

	if (!meta) {
		snprintf(job->err, sizeof(job->err), "fence device %s: out of memory", dev->name);
		return -ENOMEM;
	}
	rc = fence_agent_metadata(dev->agent, METADATA_TIMEOUT_S, meta, why, sizeof(why));
	if (rc) {
		snprintf(job->err, sizeof(job->err),
			 "fence device %s: %s (an agent of the fence-agents protocol is needed)",
			 dev->name, why);
		goto out;
	}
	if (!fence_agent_meta_has_action(meta, "off") ||
	    !fence_agent_meta_has_action(meta, "status")) {
		snprintf(job->err, sizeof(job->err),
			 "fence device %s: agent %s: its metadata has no action %s: it cannot power a node off and confirm it",
			 dev->name, dev->agent,
			 fence_agent_meta_has_action(meta, "off") ? "status" : "off");
		rc = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < dev->nparams; i++)
		keys[i] = dev->params[i].key;
	rc = fence_agent_check_params(meta, keys, dev->nparams, why, sizeof(why));
	if (rc)
		snprintf(job->err, sizeof(job->err), "fence device %s: %s", dev->name, why);
out:
	free(meta);
	return rc;
}

/* Loop: the agent answered; send the device to the cluster. */
static void device_probed(void *arg, int rc)
{
	struct device_job *job = arg;
	int status = 0;
	json_t *res;

	if (rc) {
		qb_log(LOG_WARNING, "%s", job->err);
		ipc_request_fail(job->req, rc, "%s", job->err);
		goto out;
	}
	/* workers may finish while hvnoded stops: the cluster is gone then */
	if (!job->d->agent || !job->d->membership) {
		ipc_request_fail(job->req, -ESHUTDOWN,
				 "fence device %s not added: hvnoded is stopping", job->dev.name);
		goto out;
	}
	res = device_submit(job->d, job->req, &job->dev, &status);
	if (res) {
		ipc_request_reply(job->req, status, res);
		json_decref(res);
	}
out:
	free(job);
}

/* A plain parameter whose name says secret would be stored and shown: refused. */
static int params_check(const struct fence_device *dev, char *err, size_t len)
{
	for (size_t i = 0; i < dev->nparams; i++) {
		const struct fence_param *p = &dev->params[i];

		if (p->secret || !fence_agent_key_is_secret(p->key))
			continue;
		snprintf(err, len,
			 "fence device %s: parameter %s is a secret: give the path of a file holding it (hvctl: --secret %s=FILE), never its value",
			 dev->name, p->key, p->key);
		return -EINVAL;
	}
	return 0;
}

json_t *cmd_fence_device_add(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	struct device_job *job;
	const char *name;
	char err[1024];
	int rc;

	name = json_string_value(json_object_get(json_object_get(args, "device"), "name"));
	if (!name || !vm_name_is_valid(name))
		return command_error(status, -EINVAL,
				     "fence device '%.64s': not a valid name (1-64 letters, digits, - _ .)",
				     name ? name : "");
	job = calloc(1, sizeof(*job));
	if (!job)
		return command_error(status, -ENOMEM, "out of memory");
	rc = fence_device_from_json(json_object_get(args, "device"), &job->dev, err, sizeof(err));
	if (!rc && fence_device_find(state_fence_conf(d->state), job->dev.name)) {
		snprintf(err, sizeof(err), "fence device %s already exists", job->dev.name);
		rc = -EEXIST;
	}
	rc = rc ?: params_check(&job->dev, err, sizeof(err));
	rc = rc ?: agent_check(d, &job->dev, err, sizeof(err));
	if (rc)
		goto err_job;
	job->d = d;
	job->req = req;
	rc = work_submit(d, device_probe, device_probed, job);
	if (rc) {
		snprintf(err, sizeof(err), "fence device %s: cannot start a worker: %s",
			 job->dev.name, strerror(-rc));
		goto err_job;
	}
	return NULL;
err_job:
	free(job);
	return command_error(status, rc, "%s", err);
}

json_t *cmd_fence_device_list(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const fence_conf_t *fc = state_fence_conf(d->state);
	json_t *devs = json_array(), *res;

	for (size_t i = 0; devs && i < fence_device_count(fc); i++)
		json_array_append_new(devs, fence_device_to_json(fence_device_at(fc, i)));
	res = devs ? json_pack("{s:o}", "devices", devs) : NULL;
	return res ? res : command_error(status, -ENOMEM, "out of memory");
}

/* The first level that names device @name, or NULL. */
static const struct fence_level *level_using(const fence_conf_t *fc, const char *name)
{
	for (size_t i = 0; i < fence_level_count(fc); i++) {
		const struct fence_level *lv = fence_level_at(fc, i);

		for (size_t k = 0; k < lv->ndevices; k++)
			if (!strcmp(lv->devices[k], name))
				return lv;
	}
	return NULL;
}

json_t *cmd_fence_device_del(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	const fence_conf_t *fc = state_fence_conf(d->state);
	const struct fence_level *lv;
	char what[FENCE_NAME_MAX + 32], buf[32];
	json_t *res;

	if (!name || !vm_name_is_valid(name))
		return command_error(status, -EINVAL, "a valid fence device name is needed");
	if (!strcmp(name, FENCE_STORAGE))
		return command_error(status, -EINVAL,
				     "fence device %s is built in: it cannot be deleted",
				     FENCE_STORAGE);
	if (!fence_device_find(fc, name))
		return command_error(status, -ENOENT, "fence device %s does not exist", name);
	lv = level_using(fc, name);
	if (lv)
		return command_error(status, -EBUSY,
				     "fence device %s is used by fence level %u of node %s: delete that level first",
				     name, lv->index,
				     node_label(d->state, lv->node, buf, sizeof(buf)));
	snprintf(what, sizeof(what), "fence device %s", name);
	res = command_submit(d, req, json_pack("{s:s,s:s}", "op", "fence.device.del", "name", name),
			     what, "deleted", status);
	if (!res)
		qb_log(LOG_NOTICE, "fence device %s: delete sent", name);
	return res;
}

/* --- fence levels -------------------------------------------------------------------- */

/* Index 1..99 from @args; 0 with an error reply in *res when missing or out of range. */
static unsigned int level_index(json_t *args, const char *node, json_t **res, int *status)
{
	json_t *v = json_object_get(args, "index");

	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 99) {
		*res = command_error(status, -EINVAL,
				     "fence level of node %s: the index must be 1 to 99", node);
		return 0;
	}
	return (unsigned int)json_integer_value(v);
}

/* Every device of @lv exists and is named once; 0 or -errno with @err. */
static int level_devices_check(const fence_conf_t *fc, const struct fence_level *lv,
			       const char *node, char *err, size_t len)
{
	for (size_t i = 0; i < lv->ndevices; i++) {
		const char *dev = lv->devices[i];

		if (strcmp(dev, FENCE_STORAGE) && !fence_device_find(fc, dev)) {
			snprintf(err, len,
				 "fence level %u of node %s: device %s does not exist (see hvctl fence device list; %s is the built-in one)",
				 lv->index, node, dev, FENCE_STORAGE);
			return -ENOENT;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(lv->devices[k], dev)) {
				snprintf(err, len,
					 "fence level %u of node %s: device %s is named twice",
					 lv->index, node, dev);
				return -EINVAL;
			}
	}
	return 0;
}

static bool level_exists(const fence_conf_t *fc, uint32_t node, unsigned int index)
{
	const struct fence_level *lv[FENCE_LEVELS_MAX];
	size_t n = fence_levels_of(fc, node, lv, FENCE_LEVELS_MAX);

	for (size_t i = 0; i < n; i++)
		if (lv[i]->index == index)
			return true;
	return false;
}

json_t *cmd_fence_level_add(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const fence_conf_t *fc = state_fence_conf(d->state);
	const struct node_info *n;
	struct fence_level lv;
	char err[1024], what[VM_NAME_MAX + 48];
	json_t *res = NULL, *j;
	unsigned int index;
	int rc;

	n = command_node(d, args, &res, status);
	if (!n)
		return res;
	index = level_index(args, n->name, &res, status);
	if (!index)
		return res;
	j = json_pack("{s:I,s:I,s:O?}", "node", (json_int_t)n->id, "index", (json_int_t)index,
		      "devices", json_object_get(args, "devices"));
	if (!j)
		return command_error(status, -ENOMEM, "out of memory");
	rc = fence_level_from_json(j, &lv, err, sizeof(err));
	json_decref(j);
	if (rc)
		return command_error(status, rc, "node %s: %s", n->name, err);
	rc = level_devices_check(fc, &lv, n->name, err, sizeof(err));
	if (rc)
		return command_error(status, rc, "%s", err);
	if (level_exists(fc, n->id, index))
		return command_error(status, -EEXIST,
				     "node %s already has fence level %u (delete it first)",
				     n->name, index);
	snprintf(what, sizeof(what), "fence level %u of node %s", index, n->name);
	res = command_submit(
		d, req,
		json_pack("{s:s,s:o}", "op", "fence.level.add", "level", fence_level_to_json(&lv)),
		what, "added", status);
	if (!res)
		qb_log(LOG_NOTICE, "%s: add sent (%zu devices)", what, lv.ndevices);
	return res;
}

json_t *cmd_fence_level_del(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct node_info *n;
	char what[VM_NAME_MAX + 48];
	json_t *res = NULL;
	unsigned int index;

	n = command_node(d, args, &res, status);
	if (!n)
		return res;
	index = level_index(args, n->name, &res, status);
	if (!index)
		return res;
	if (!level_exists(state_fence_conf(d->state), n->id, index))
		return command_error(status, -ENOENT, "node %s has no fence level %u", n->name,
				     index);
	snprintf(what, sizeof(what), "fence level %u of node %s", index, n->name);
	res = command_submit(d, req,
			     json_pack("{s:s,s:I,s:I}", "op", "fence.level.del", "node",
				       (json_int_t)n->id, "index", (json_int_t)index),
			     what, "deleted", status);
	if (!res)
		qb_log(LOG_NOTICE, "%s: delete sent", what);
	return res;
}

static json_t *level_json(const cluster_state_t *s, const struct fence_level *lv)
{
	json_t *j = fence_level_to_json(lv);
	char buf[32];

	if (j) {
		json_object_set_new(j, "node_id", json_integer((json_int_t)lv->node));
		json_object_set_new(j, "node",
				    json_string(node_label(s, lv->node, buf, sizeof(buf))));
		json_object_set_new(j, "default", json_false());
	}
	return j;
}

/* Every node's levels in order; a node without any is fenced by storage alone. */
json_t *cmd_fence_level_list(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const cluster_state_t *s = d->state;
	const fence_conf_t *fc = state_fence_conf(s);
	const struct fence_level *lv[FENCE_LEVELS_MAX];
	json_t *a = json_array(), *res;

	for (size_t i = 0; a && i < state_node_count(s); i++) {
		const struct node_info *n = state_node_at(s, i);
		size_t nl = fence_levels_of(fc, n->id, lv, FENCE_LEVELS_MAX);

		for (size_t k = 0; k < nl; k++)
			json_array_append_new(a, level_json(s, lv[k]));
		if (!nl) {
			struct fence_level dflt = { .node = n->id, .index = 1, .ndevices = 1 };
			json_t *j;

			snprintf(dflt.devices[0], sizeof(dflt.devices[0]), "%s", FENCE_STORAGE);
			j = level_json(s, &dflt);
			json_object_set_new(j, "default", json_true());
			json_array_append_new(a, j);
		}
	}
	/* levels of nodes the state does not know: shown, not hidden */
	for (size_t i = 0; a && i < fence_level_count(fc); i++)
		if (!state_node_find(s, fence_level_at(fc, i)->node))
			json_array_append_new(a, level_json(s, fence_level_at(fc, i)));
	res = a ? json_pack("{s:o}", "levels", a) : NULL;
	return res ? res : command_error(status, -ENOMEM, "out of memory");
}

/* --- fence history ------------------------------------------------------------------- */

json_t *cmd_fence_history(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const cluster_state_t *s = d->state;
	json_t *a = json_array(), *res;

	for (size_t i = 0; a && i < state_fence_count(s); i++) {
		const struct fence_record *f = state_fence_at(s, i);
		char node[32], by[32], when[64];

		json_array_append_new(a,
				      json_pack("{s:I,s:s,s:s,s:I,s:I,s:s,s:b,s:s}", "at_ms",
						(json_int_t)f->at_ms, "time",
						iso_time(f->at_ms, when, sizeof(when)), "node",
						node_label(s, f->node, node, sizeof(node)),
						"node_id", (json_int_t)f->node, "by_id",
						(json_int_t)f->by, "by",
						f->by ? node_label(s, f->by, by, sizeof(by)) : "-",
						"ok", f->ok, "detail", f->detail));
	}
	res = a ? json_pack("{s:o}", "fences", a) : NULL;
	return res ? res : command_error(status, -ENOMEM, "out of memory");
}

/* --- nodes --------------------------------------------------------------------------- */

/* Each node with its VMs (assigned to it) and effective classification (null: no VM). */
json_t *cmd_node_list(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const cluster_state_t *s = d->state;
	uint32_t local = membership_local_id(d->membership);
	json_t *a = json_array(), *res;

	for (size_t i = 0; a && i < state_node_count(s); i++) {
		const struct node_info *n = state_node_at(s, i);
		json_t *j = node_info_to_json(n);
		size_t vms, running = 0;
		int eff = secreport_host_class(s, n->id, &vms);

		if (!j)
			continue;
		for (size_t k = 0; k < state_vm_count(s); k++) {
			const struct vm_status *st = state_vm_status(s, state_vm_at(s, k)->name);

			running += st->node == n->id && vm_holds_node(st);
		}
		/* in maintenance with VMs still there: the drain is under way (or some stay) */
		json_object_set_new(j, "draining", json_boolean(n->maintenance && running));
		json_object_set_new(j, "vms", json_integer((json_int_t)vms));
		json_object_set_new(j, "effective_classification",
				    eff < 0 ? json_null() : json_string(vm_class_name(eff)));
		json_object_set_new(j, "member", json_boolean(command_is_member(d, n->id)));
		json_object_set_new(j, "local", json_boolean(n->id == local));
		json_array_append_new(a, j);
	}
	res = a ? json_pack("{s:o}", "nodes", a) : NULL;
	return res ? res : command_error(status, -ENOMEM, "out of memory");
}

/* The checks node.fence and node.confirm share; the node, or NULL with an error reply. */
static const struct node_info *admin_node(struct hvnoded *d, struct ipc_request *req, json_t *args,
					  bool confirm, json_t **res, int *status)
{
	const struct node_info *n;

	n = command_node(d, args, res, status);
	if (n && n->id == membership_local_id(d->membership)) {
		*res = command_error(status, -EINVAL, "node %s is this node, and it runs: %s",
				     n->name,
				     confirm ? "nothing to confirm" : "fence it from another node");
		return NULL;
	}
	return n;
}

static json_t *admin_submit(struct hvnoded *d, struct ipc_request *req, const struct node_info *n,
			    const char *opname, const char *verb, int *status)
{
	const struct ipc_client *cl = ipc_request_client(req);
	char by[128], what[VM_NAME_MAX + 8];
	json_t *res;

	client_label(cl, by, sizeof(by));
	snprintf(what, sizeof(what), "node %s", n->name);
	res = command_submit(d, req,
			     json_pack("{s:s,s:I,s:s,s:I}", "op", opname, "id", (json_int_t)n->id,
				       "by", by, "at_ms", (json_int_t)command_wall_ms()),
			     what, verb, status);
	if (!res && !strcmp(opname, "node.confirm"))
		qb_log(LOG_WARNING,
		       "node %s (id %" PRIu32 "): confirmed off (fenced by hand) by %s, pid %d: its VMs may now start elsewhere",
		       n->name, n->id, by, (int)cl->pid);
	else if (!res)
		qb_log(LOG_WARNING, "node %s (id %" PRIu32 "): fence asked by %s, pid %d", n->name,
		       n->id, by, (int)cl->pid);
	return res;
}

json_t *cmd_node_fence(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct node_info *n;
	json_t *res = NULL;

	n = admin_node(d, req, args, false, &res, status);
	if (!n)
		return res;
	if (n->status == NODE_FENCE_PENDING)
		return command_error(status, -EALREADY,
				     "node %s is already being fenced (fence-pending; see hvctl fence history)",
				     n->name);
	return admin_submit(d, req, n, "node.fence", "fenced", status);
}

json_t *cmd_node_confirm(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct node_info *n;
	json_t *res = NULL;

	n = admin_node(d, req, args, true, &res, status);
	if (!n)
		return res;
	/* its hvnoded is in the group: the host is not off, whatever the admin believes */
	if (command_is_member(d, n->id))
		return command_error(status, -EBUSY,
				     "node %s is a member of the cluster now: it is not off; nothing confirmed",
				     n->name);
	if (n->status != NODE_FENCE_PENDING)
		return command_error(status, -EINVAL,
				     "node %s is %s, not fence-pending: nothing to confirm",
				     n->name, node_status_name(n->status));
	return admin_submit(d, req, n, "node.confirm", "confirmed fenced", status);
}
