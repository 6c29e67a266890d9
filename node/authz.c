/*
 * Who may do what, and the record of it. Every hvctl request is checked here
 * against the role bindings of the cluster state (cluster/acl.c) with the
 * client's uid from libqb IPC's peer credentials, resolved to its user and
 * groups on this node. Every mutating request, allowed or denied, lands in the
 * audit log of every node, each record on a CPG message: an allowed change
 * rides on the op that makes it ("who" and "cmd" in the op), a denied one is
 * multicast as audit.denied, and one that no op carried (refused before it
 * was sent, or done by this node alone: pause, resume) as audit.record with
 * its result. Each node appends what it applied to state_dir/audit.log, one
 * JSON object a line.
 */
#include "hvnoded.h"
#include "auditlog.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

#define GROUPS_MAX 64
#define AUDIT_LIMIT_DEFAULT 1000
#define AUDIT_LIMIT_MAX 100000
/* the records of a reply, and room for the rest of it */
#define AUDIT_REPLY_BYTES (HV_IPC_MAX_MSG - 4096)

struct who {
	uint32_t uid;
	char user[64];
	char groups[GROUPS_MAX][64];
	const char *group_ptrs[GROUPS_MAX];
	size_t ngroups;
};

static void resolve(uid_t uid, gid_t gid, struct who *w)
{
	gid_t gids[GROUPS_MAX];
	int n = GROUPS_MAX;
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp;
	char buf[4096];

	memset(w, 0, sizeof(*w));
	w->uid = uid;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) || !pwp)
		return;
	snprintf(w->user, sizeof(w->user), "%s", pw.pw_name);
	if (getgrouplist(pw.pw_name, gid, gids, &n) < 0)
		n = GROUPS_MAX;
	for (int i = 0; i < n && w->ngroups < GROUPS_MAX; i++) {
		if (getgrgid_r(gids[i], &gr, buf, sizeof(buf), &grp) || !grp)
			continue;
		snprintf(w->groups[w->ngroups], sizeof(w->groups[0]), "%s", gr.gr_name);
		w->group_ptrs[w->ngroups] = w->groups[w->ngroups];
		w->ngroups++;
	}
}

/* The VM a request is about, to check a scoped binding: by name, or the definition sent. */
static const struct vm_def *request_vm(struct hvnoded *d, const char *cmd, json_t *args,
				       struct vm_def *tmp)
{
	json_t *def = json_object_get(args, "def");
	const char *s;

	if (!strcmp(cmd, "vm.create")) {
		memset(tmp, 0, sizeof(*tmp));
		snprintf(tmp->name, sizeof(tmp->name), "%s",
			 json_string_value(json_object_get(def, "name")) ?: "");
		snprintf(tmp->owner, sizeof(tmp->owner), "%s",
			 json_string_value(json_object_get(def, "owner")) ?: "");
		snprintf(tmp->app, sizeof(tmp->app), "%s",
			 json_string_value(json_object_get(def, "app")) ?: "");
		return tmp;
	}
	s = json_string_value(json_object_get(args, "name"));
	return s && !strncmp(cmd, "vm.", 3) ? state_vm_find(d->state, s) : NULL;
}

/* "uid 1000 (alice)" */
static const char *who_str(const struct who *w, char *buf, size_t len)
{
	if (w->user[0])
		snprintf(buf, len, "uid %u (%s)", w->uid, w->user);
	else
		snprintf(buf, len, "uid %u", w->uid);
	return buf;
}

static json_t *who_json(struct hvnoded *d, const struct who *w, enum acl_role role)
{
	return json_pack("{s:I,s:s,s:s,s:s}", "uid", (json_int_t)w->uid, "user", w->user, "role",
			 acl_role_name(role), "node", d->cfg.node_name);
}

/* The object a request names, for the audit log. */
static const char *object_of(json_t *args)
{
	const char *s = json_string_value(json_object_get(args, "name"));

	const char *key;
	json_t *v;

	if (!s)
		s = json_string_value(json_object_get(args, "node"));
	/* or the name of what it defines: def, rule, device, binding */
	json_object_foreach(args, key, v) {
		if (s)
			break;
		s = json_string_value(json_object_get(v, "name"));
	}
	return s ? s : "";
}

int authz_check(struct hvnoded *d, struct ipc_request *req, const char *cmd, enum acl_role need,
		bool guest_data, json_t *args, char *err, size_t errlen)
{
	const struct ipc_client *cl = ipc_request_client(req);
	struct vm_def tmp;
	const struct vm_def *vm = request_vm(d, cmd, args, &tmp);
	enum acl_role role = ACL_NONE;
	struct who w;
	char who[128];
	json_t *op;

	resolve(cl->uid, cl->gid, &w);
	if (acl_allows(state_acl(d->state), state_acl_count(d->state),
		       &(struct acl_subject){ .uid = w.uid, .user = w.user[0] ? w.user : NULL,
					      .groups = w.group_ptrs, .ngroups = w.ngroups },
		       need, guest_data, vm, &role)) {
		/* a change: its record goes with the op, or with the reply (ipc.c) */
		if (need > ACL_VIEWER)
			ipc_request_set_audit(req, json_pack("{s:o,s:s,s:s}", "who",
							     who_json(d, &w, role), "cmd", cmd,
							     "object", object_of(args)));
		return 0;
	}
	snprintf(err, errlen, "permission denied: %s has %s%s; %s needs %s%s%s",
		 who_str(&w, who, sizeof(who)), role == ACL_NONE ? "no role" : "role ",
		 role == ACL_NONE ? "" : acl_role_name(role), cmd, acl_role_name(need),
		 vm ? " on vm " : "", vm ? vm->name : "");
	qb_log(LOG_WARNING, "%s", err);
	if (need <= ACL_VIEWER)
		return -EACCES;
	/* every node's audit log gets the refusal; this one's at least, without quorum */
	op = json_pack("{s:s,s:o,s:s,s:s,s:s}", "op", "audit.denied", "who",
		       who_json(d, &w, role), "cmd", cmd, "object", object_of(args), "reason", err);
	if (!op || cluster_send(d, op))
		audit_append(d, op, d->cfg.node_name, -EACCES, err);
	json_decref(op);
	return -EACCES;
}

/* --- the audit log ------------------------------------------------------------- */

void audit_append(struct hvnoded *d, const json_t *op, const char *node, int rc,
		  const char *err)
{
	const char *name = json_string_value(json_object_get(op, "op"));
	json_t *who = json_object_get(op, "who"), *rec, *reason = NULL;
	const char *obj, *cmd, *result;
	struct timespec ts;
	char path[4200], *line;
	int fd;

	if (!who || !name)
		return;
	/* an op carries the hvctl command that asked for it; an older node's, its own name */
	cmd = json_string_value(json_object_get(op, "cmd"));
	if (!strcmp(name, "audit.denied")) {
		result = "denied";
		reason = json_object_get(op, "reason");
	} else if (!strcmp(name, "audit.record")) {
		result = json_string_value(json_object_get(op, "result"));
		if (!result || (strcmp(result, "ok") && strcmp(result, "refused")))
			result = "?";
		reason = json_object_get(op, "reason");
	} else {
		result = rc ? "refused" : "ok";
		if (!cmd)
			cmd = name;
	}
	obj = json_string_value(json_object_get(op, "object"));
	if (!obj)
		obj = object_of((json_t *)op);
	if (!obj[0])
		obj = json_string_value(json_object_get(json_object_get(op, "binding"), "name")) ?: "";
	clock_gettime(CLOCK_REALTIME, &ts);
	rec = json_pack("{s:I,s:s,s:O,s:s,s:s,s:s}", "at_ms",
			(json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "from", node, "who", who,
			"cmd", cmd ? cmd : "?", "object", obj, "result", result);
	if (!rec)
		return;
	if (json_is_string(reason))
		json_object_set(rec, "reason", reason);
	else if (rc)
		json_object_set_new(rec, "reason", json_string(err));
	line = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	snprintf(path, sizeof(path), "%s/audit.log", d->cfg.state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || !line || dprintf(fd, "%s\n", line) < 0)
		qb_log(LOG_ERR, "audit log %s: cannot append: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(line);
}

void audit_reply(struct hvnoded *d, const json_t *rec, int status, const json_t *body)
{
	const char *reason = json_string_value(json_object_get(body, "error"));
	json_t *op;

	op = json_pack("{s:s,s:O,s:O,s:O,s:s}", "op", "audit.record", "who",
		       json_object_get(rec, "who"), "cmd", json_object_get(rec, "cmd"), "object",
		       json_object_get(rec, "object"), "result", status ? "refused" : "ok");
	if (!op) {
		qb_log(LOG_ERR, "audit: out of memory: a record of %s is lost",
		       json_string_value(json_object_get(rec, "cmd")));
		return;
	}
	if (status)
		json_object_set_new(op, "reason", json_string(reason ? reason : strerror(-status)));
	/* without quorum the cluster takes nothing: this node's log at least */
	if (cluster_send(d, op))
		audit_append(d, op, d->cfg.node_name, 0, NULL);
	json_decref(op);
}

/*
 * `hvctl audit [--since MS] [--limit N]`: the newest records of this node's
 * audit log that fit in a reply, oldest first, and whether older ones were
 * left out.
 */
json_t *cmd_audit(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	json_int_t since = json_integer_value(json_object_get(args, "since_ms"));
	json_int_t limit = json_integer_value(json_object_get(args, "limit"));
	json_t *out = NULL;
	char path[4200];
	bool more = false;
	int fd, rc;

	if (limit < 0 || limit > AUDIT_LIMIT_MAX)
		return command_error(status, -EINVAL, "audit: limit must be 1 to %d",
				     AUDIT_LIMIT_MAX);
	if (!limit)
		limit = AUDIT_LIMIT_DEFAULT;
	snprintf(path, sizeof(path), "%s/audit.log", d->cfg.state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT)
		return command_error(status, -errno, "audit log %s: cannot open: %s", path,
				     strerror(errno));
	if (fd >= 0) {
		rc = audit_log_tail(fd, since, (size_t)limit, AUDIT_REPLY_BYTES, &out, &more);
		close(fd);
		if (rc)
			return command_error(status, rc, "audit log %s: cannot read: %s", path,
					     strerror(-rc));
	}
	*status = 0;
	return json_pack("{s:o,s:b,s:I}", "records", out ? out : json_array(), "more", more,
			 "limit", limit);
}

/* --- role bindings ---------------------------------------------------------------- */

json_t *cmd_acl_list(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	json_t *out = json_array();

	for (size_t i = 0; i < state_acl_count(d->state); i++)
		json_array_append_new(out, acl_binding_to_json(&state_acl(d->state)[i]));
	*status = 0;
	return json_pack("{s:o}", "bindings", out);
}

json_t *cmd_acl_add(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	struct acl_binding b;
	char err[1024];
	json_t *op;
	int rc;

	rc = acl_binding_from_json(json_object_get(args, "binding"), &b, err, sizeof(err));
	if (rc)
		return command_error(status, rc, "%s", err);
	op = json_pack("{s:s,s:O}", "op", "acl.add", "binding", json_object_get(args, "binding"));
	rc = op ? cluster_submit(d, op, req, CLUSTER_WAIT_APPLIED, NULL, 0, err, sizeof(err))
		: -ENOMEM;
	json_decref(op);
	if (rc)
		return command_error(status, rc, "binding %s not added: %s", b.name, err);
	qb_log(LOG_NOTICE, "binding %s: %s %s is %s (scope %s%s%s): sent", b.name,
	       b.group ? "group" : "user", b.subject, acl_role_name(b.role),
	       b.scope == ACL_SCOPE_ALL ? "all" : b.scope == ACL_SCOPE_OWNER ? "owner"
					    : b.scope == ACL_SCOPE_APP	     ? "app"
									     : "name",
	       b.value[0] ? " " : "", b.value);
	return NULL;
}

json_t *cmd_acl_del(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	char err[1024];
	json_t *op;
	int rc;

	if (!name)
		return command_error(status, -EINVAL, "a binding name is needed");
	op = json_pack("{s:s,s:s}", "op", "acl.del", "name", name);
	rc = op ? cluster_submit(d, op, req, CLUSTER_WAIT_APPLIED, NULL, 0, err, sizeof(err))
		: -ENOMEM;
	json_decref(op);
	if (rc)
		return command_error(status, rc, "binding %s not deleted: %s", name, err);
	return NULL;
}
