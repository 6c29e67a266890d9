/*
 * hvctl's commands as hvnoded runs them. Each handler validates its args
 * and returns a JSON result or an error naming the object and the cause.
 */
#include "hvnoded.h"
#include "vmmig.h"
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <qb/qblog.h>

#include "../storage/storage.h"

typedef json_t *(*command_fn)(struct hvnoded *d, struct ipc_request *req, json_t *args,
			      int *status);

json_t *command_error(int *status, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*status = err;
	return json_pack("{s:s}", "error", msg);
}

const struct node_info *command_node(struct hvnoded *d, json_t *args, json_t **res, int *status)
{
	const char *name = json_string_value(json_object_get(args, "node"));
	const struct node_info *n;

	if (!name || !vm_name_is_valid(name)) {
		*res = command_error(status, -EINVAL, "a valid node name is needed");
		return NULL;
	}
	n = state_node_by_name(d->state, name);
	if (!n)
		*res = command_error(status, -ENOENT,
				     "node %s does not exist (the cluster knows %zu nodes; see hvctl node list)",
				     name, state_node_count(d->state));
	return n;
}

uint64_t command_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool command_is_member(struct hvnoded *d, uint32_t id)
{
	struct member m[MEMBERS_MAX];
	size_t n = membership_members(d->membership, m, MEMBERS_MAX);

	for (size_t i = 0; i < n; i++)
		if (m[i].id == id)
			return true;
	return false;
}

json_t *command_submit(struct hvnoded *d, struct ipc_request *req, json_t *op, const char *what,
		       const char *verb, int *status)
{
	char err[1024];
	int rc;

	if (!op)
		return command_error(status, -ENOMEM, "%s: out of memory", what);
	rc = cluster_submit(d, op, req, CLUSTER_WAIT_APPLIED, NULL, 0, err, sizeof(err));
	json_decref(op);
	if (rc)
		return command_error(status, rc, "%s not %s: %s", what, verb, err);
	return NULL;
}

static json_t *status_nodes(struct hvnoded *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < state_node_count(d->state); i++) {
		const struct node_info *n = state_node_at(d->state, i);
		size_t vms = 0;

		for (size_t k = 0; k < state_vm_count(d->state); k++)
			vms += state_vm_status(d->state, state_vm_at(d->state, k)->name)->node == n->id;
		json_array_append_new(a, json_pack("{s:I,s:s,s:s,s:b,s:I,s:I,s:I}", "id",
						   (json_int_t)n->id, "name", n->name, "state",
						   node_status_name(n->status), "maintenance",
						   n->maintenance, "vcpus", (json_int_t)n->vcpus,
						   "memory", (json_int_t)n->memory_mb, "vms",
						   (json_int_t)vms));
	}
	return a;
}

static json_t *status_vms(struct hvnoded *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < state_vm_count(d->state); i++) {
		const struct vm_def *def = state_vm_at(d->state, i);
		const struct vm_status *st = state_vm_status(d->state, def->name);
		const struct node_info *n = st->node ? state_node_find(d->state, st->node) : NULL;

		json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:I,s:s}", "name", def->name,
						   "state", vm_ha_state_name(st->state), "node",
						   n ? json_string(n->name) : json_null(), "epoch",
						   (json_int_t)st->epoch, "reason", st->reason));
	}
	return a;
}

static json_t *cmd_status(struct hvnoded *d, struct ipc_request *req, json_t *args,
			  int *status)
{
	membership_t *m = d->membership;
	struct member members[MEMBERS_MAX];
	size_t n = membership_members(m, members, MEMBERS_MAX);
	uint32_t leader = membership_leader(m);
	uint32_t local = membership_local_id(m);
	json_t *arr = json_array(), *res;

	if (!arr)
		return command_error(status, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		/* this node's name is the one its own config gives */
		const char *name = members[i].id == local ? d->cfg.node_name : members[i].name;

		json_array_append_new(arr, json_pack("{s:I,s:s}", "id", (json_int_t)members[i].id,
						     "name", name));
	}
	res = json_pack("{s:s,s:s,s:{s:I,s:s},s:s,s:b,s:o,s:o}", "version", HV_VERSION,
			"cluster", d->cfg.cluster_name, "node", "id", (json_int_t)local, "name",
			d->cfg.node_name, "corosync",
			membership_is_available(m) ? "connected" : "unavailable", "quorate",
			membership_is_quorate(m), "leader",
			leader ? json_integer(leader) : json_null(), "members", arr);
	if (!res)
		return command_error(status, -ENOMEM, "out of memory");
	if (!membership_is_available(m))
		json_object_set_new(res, "corosync_error",
				    json_string(membership_unavailable_reason(m)));
	if (local) {
		/* what an admin compares with sg_persist / lun-tool output on the target */
		char key[24], initiator[256];

		snprintf(key, sizeof(key), "0x%016" PRIx64,
			 storage_node_key(d->cfg.cluster_name, local));
		storage_initiator_name(initiator, sizeof(initiator), d->cfg.cluster_name,
				       d->cfg.node_name);
		json_object_set_new(res, "reservation_key", json_string(key));
		json_object_set_new(res, "initiator", json_string(initiator));
		json_object_set_new(res, "migration_endpoint", json_string(vmmig_endpoint(d)));
		json_object_set_new(res, "migration_key", json_string(vmmig_pubkey(d)));
	}
	json_object_set_new(res, "nodes", status_nodes(d));
	json_object_set_new(res, "vms", status_vms(d));
	json_object_set_new(res, "state_version", json_integer((json_int_t)state_version(d->state)));
	json_object_set_new(res, "state_sync", json_string(cluster_state_sync(d)));
	if (d->state_needed)
		json_object_set_new(res, "state_corrupt_moved_to", json_string(d->state_moved));
	if (leader)
		json_object_set_new(res, "leader_name",
				    json_string(leader == local ? d->cfg.node_name
								: membership_node_name(m, leader)));
	*status = 0;
	return res;
}

/* {"set": {...}} changes cluster-wide settings; without it, shows them. */
static json_t *cmd_settings(struct hvnoded *d, struct ipc_request *req, json_t *args,
			    int *status)
{
	json_t *set = json_object_get(args, "set"), *op;
	struct cluster_settings c = *state_settings(d->state);
	char err[1024];
	int rc;

	if (!set) {
		*status = 0;
		return settings_to_json(state_settings(d->state));
	}
	rc = settings_from_json(set, &c, err, sizeof(err));
	if (rc)
		return command_error(status, rc, "%s", err);
	op = json_pack("{s:s,s:O}", "op", "settings.set", "settings", set);
	rc = op ? cluster_submit(d, op, req, CLUSTER_WAIT_APPLIED, NULL, 0, err, sizeof(err))
		: -ENOMEM;
	json_decref(op);
	if (rc)
		return command_error(status, rc, "settings not changed: %s", err);
	return NULL;
}

static const struct {
	const char *name;
	command_fn fn;
	enum acl_role need;
} commands[] = {
	{ "settings", cmd_settings, ACL_VIEWER },
	{ "status", cmd_status, ACL_VIEWER },
	{ "vm.create", cmd_vm_create, ACL_VM_ADMIN },
	{ "vm.delete", cmd_vm_delete, ACL_VM_ADMIN },
	{ "vm.list", cmd_vm_list, ACL_VIEWER },
	{ "vm.show", cmd_vm_show, ACL_VIEWER },
	{ "vm.console", cmd_vm_console, ACL_VIEWER },
	{ "vm.start", cmd_vm_start, ACL_OPERATOR },
	{ "vm.stop", cmd_vm_stop, ACL_OPERATOR },
	{ "vm.shutdown", cmd_vm_shutdown, ACL_OPERATOR },
	{ "vm.pause", cmd_vm_pause, ACL_OPERATOR },
	{ "vm.resume", cmd_vm_resume, ACL_OPERATOR },
	{ "vm.migrate", cmd_vm_migrate, ACL_OPERATOR },
	{ "vm.migrate-cancel", cmd_vm_migrate_cancel, ACL_OPERATOR },
	{ "vm.save", cmd_vm_save, ACL_OPERATOR },
	{ "vm.restore", cmd_vm_restore, ACL_OPERATOR },
	{ "vm.explain", cmd_vm_explain, ACL_VIEWER },
	{ "rule.add", cmd_rule_add, ACL_ADMIN },
	{ "rule.list", cmd_rule_list, ACL_VIEWER },
	{ "rule.show", cmd_rule_show, ACL_VIEWER },
	{ "rule.del", cmd_rule_del, ACL_ADMIN },
	{ "plan", cmd_plan, ACL_VIEWER },
	{ "fence.device.add", cmd_fence_device_add, ACL_ADMIN },
	{ "fence.device.list", cmd_fence_device_list, ACL_VIEWER },
	{ "fence.device.del", cmd_fence_device_del, ACL_ADMIN },
	{ "fence.level.add", cmd_fence_level_add, ACL_ADMIN },
	{ "fence.level.list", cmd_fence_level_list, ACL_VIEWER },
	{ "fence.level.del", cmd_fence_level_del, ACL_ADMIN },
	{ "fence.history", cmd_fence_history, ACL_VIEWER },
	{ "node.list", cmd_node_list, ACL_VIEWER },
	{ "node.fence", cmd_node_fence, ACL_ADMIN },
	{ "node.confirm", cmd_node_confirm, ACL_ADMIN },
	{ "node.drain", cmd_node_drain, ACL_ADMIN },
	{ "node.resume", cmd_node_resume, ACL_ADMIN },
	{ "node.impact", cmd_node_impact, ACL_VIEWER },
	{ "audit", cmd_audit, ACL_VIEWER },
	{ "security.report", cmd_security_report, ACL_VIEWER },
	{ "acl.list", cmd_acl_list, ACL_VIEWER },
	{ "acl.add", cmd_acl_add, ACL_ADMIN },
	{ "acl.del", cmd_acl_del, ACL_ADMIN },
};

json_t *command_run(struct hvnoded *d, struct ipc_request *req, const char *cmd, json_t *args,
		    int *status)
{
	const struct ipc_client *cl = ipc_request_client(req);

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		enum acl_role need = commands[i].need;
		char err[1024];
		int rc;

		if (strcmp(commands[i].name, cmd))
			continue;
		/* reading the settings is for all, changing them for admins */
		if (!strcmp(cmd, "settings") && json_object_get(args, "set"))
			need = ACL_ADMIN;
		/* what a guest wrote is read in the caller's scope only (a read of the
		 * cluster is not scoped) */
		rc = authz_check(d, req, cmd, need, !strcmp(cmd, "vm.console"), args, err,
				 sizeof(err));
		if (rc)
			return command_error(status, rc, "%s", err);
		return commands[i].fn(d, req, args, status);
	}
	qb_log(LOG_WARNING, "client pid %d uid %u: unknown command '%.64s'", (int)cl->pid,
	       (unsigned)cl->uid, cmd);
	return command_error(status, -EOPNOTSUPP, "unknown command '%.64s'", cmd);
}
