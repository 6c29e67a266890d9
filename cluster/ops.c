#include "ops_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "jsonv.h"

const char *ops_op_name(const json_t *op)
{
	const char *s = json_string_value(json_object_get(op, "op"));

	return s ? s : "?";
}

const char *ops_str_arg(const json_t *op, const char *key)
{
	return json_string_value(json_object_get(op, key));
}

const struct vm_def *ops_named_vm(const cluster_state_t *s, const json_t *op, char *err,
				  size_t errlen)
{
	const char *name = ops_str_arg(op, "name");
	const struct vm_def *def;

	if (!name || !vm_name_is_valid(name)) {
		jv_fail(err, errlen, "%s: a valid VM name is needed", ops_op_name(op));
		return NULL;
	}
	def = state_vm_find(s, name);
	if (!def)
		jv_fail(err, errlen, "vm %s does not exist", name);
	return def;
}

static bool rule_has(const struct rule *r, const char *vm)
{
	for (size_t i = 0; i < r->nvms; i++)
		if (!strcmp(r->vms[i], vm))
			return true;
	return false;
}

/* Two VMs that @a keeps together and @b keeps apart: 0, or the first pair. */
static bool shared_pair(const struct rule *a, const struct rule *b, const char **x,
			const char **y)
{
	*x = NULL;
	for (size_t i = 0; i < a->nvms; i++) {
		if (!rule_has(b, a->vms[i]))
			continue;
		if (!*x) {
			*x = a->vms[i];
			continue;
		}
		*y = a->vms[i];
		return true;
	}
	return false;
}

/* Two VMs of @aff that belong to @app with different tiers. */
static bool tiers_differ(const cluster_state_t *s, const struct rule *aff, const char *app,
			 const char **x, const char **y)
{
	for (size_t i = 0; i < aff->nvms; i++) {
		const struct vm_def *a = state_vm_find(s, aff->vms[i]);

		if (!a || strcmp(a->app, app))
			continue;
		for (size_t k = i + 1; k < aff->nvms; k++) {
			const struct vm_def *b = state_vm_find(s, aff->vms[k]);

			if (b && !strcmp(b->app, app) && strcmp(a->tier, b->tier)) {
				*x = a->name;
				*y = b->name;
				return true;
			}
		}
	}
	return false;
}

static int contradiction(const cluster_state_t *s, const struct rule *r, const struct rule *o,
			 char *err, size_t errlen)
{
	const struct rule *aff = NULL, *other = NULL;
	const char *x = NULL, *y = NULL;

	if (r->type == RULE_AFFINITY) {
		aff = r;
		other = o;
	} else if (o->type == RULE_AFFINITY) {
		aff = o;
		other = r;
	}
	if (!aff || other->type == RULE_AFFINITY)
		return 0;
	if (other->type == RULE_ANTI_AFFINITY && shared_pair(aff, other, &x, &y))
		return jv_fail(err, errlen,
			       "rule %s (%s) contradicts rule %s (%s): both name %s and %s",
			       r->name, rule_type_name(r->type), o->name, rule_type_name(o->type),
			       x, y);
	if (other->type == RULE_TIER_SEPARATION && tiers_differ(s, aff, other->app, &x, &y))
		return jv_fail(err, errlen,
			       "rule %s (%s) contradicts rule %s (%s): %s and %s are different "
			       "tiers of app %s",
			       r->name, rule_type_name(r->type), o->name, rule_type_name(o->type),
			       x, y, other->app);
	return 0;
}

int state_rule_check(const cluster_state_t *s, const struct rule *r, char *err, size_t errlen)
{
	int rc;

	if (state_rule_find(s, r->name)) {
		jv_fail(err, errlen, "rule %s already exists", r->name);
		return -EEXIST;
	}
	for (size_t i = 0; i < r->nvms; i++) {
		if (!state_vm_find(s, r->vms[i])) {
			jv_fail(err, errlen, "rule %s names vm %s, which does not exist", r->name,
				r->vms[i]);
			return -ENOENT;
		}
	}
	for (size_t i = 0; i < state_rule_count(s); i++) {
		rc = contradiction(s, r, state_rule_at(s, i), err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* --- client ops -------------------------------------------------------------- */

/* The LUNs of @def (disks, then its state LUN) with what each is, for messages. */
static size_t def_luns(const struct vm_def *def, const char **urls, char (*what)[32])
{
	size_t n = 0;

	for (size_t i = 0; i < def->ndisks; i++) {
		urls[n] = def->disks[i].url;
		snprintf(what[n++], sizeof(what[0]), "disk %zu", i);
	}
	if (def->state_lun[0]) {
		urls[n] = def->state_lun;
		snprintf(what[n++], sizeof(what[0]), "the state LUN");
	}
	return n;
}

/* A LUN belongs to one disk of one VM: two writers on it would be the end of its data. */
static int lun_taken(const cluster_state_t *s, const struct vm_def *def, char *err, size_t errlen)
{
	const char *mine[VM_MAX_DISKS + 1], *theirs[VM_MAX_DISKS + 1];
	char mw[VM_MAX_DISKS + 1][32], tw[VM_MAX_DISKS + 1][32], a[1024], b[1024];
	size_t n = def_luns(def, mine, mw), m;

	for (size_t i = 0; i < n; i++) {
		vm_lun_identity(mine[i], a, sizeof(a));
		for (size_t k = i + 1; k < n; k++) {
			vm_lun_identity(mine[k], b, sizeof(b));
			if (!strcmp(a, b))
				return jv_fail(err, errlen, "vm %s: %s and %s are the same LUN %s",
					       def->name, mw[i], mw[k], mine[i]);
		}
		for (size_t v = 0; v < state_vm_count(s); v++) {
			const struct vm_def *o = state_vm_at(s, v);

			m = def_luns(o, theirs, tw);
			for (size_t k = 0; k < m; k++) {
				vm_lun_identity(theirs[k], b, sizeof(b));
				if (!strcmp(a, b)) {
					jv_fail(err, errlen, "vm %s: LUN %s is already %s of vm %s",
						def->name, mine[i], tw[k], o->name);
					return -EEXIST;
				}
			}
		}
	}
	return 0;
}

static int op_vm_create(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "def", NULL };
	struct vm_def def;
	char msg[400];
	int rc;

	rc = jv_check_keys(op, keys, "vm.create", err, errlen);
	if (rc)
		return rc;
	rc = vm_def_from_json(json_object_get(op, "def"), &def, msg, sizeof(msg));
	if (!rc && !def.uuid[0])
		rc = jv_fail(msg, sizeof(msg), "uuid: missing");
	if (rc) {
		const char *name = json_string_value(
			json_object_get(json_object_get(op, "def"), "name"));

		return jv_fail(err, errlen, "vm %.64s: %s", name ? name : "?", msg);
	}
	/* a taken name says so first; then a taken LUN */
	rc = state_vm_find(s, def.name) ? 0 : lun_taken(s, &def, err, errlen);
	return rc ?: state_vm_add(s, &def, err, errlen);
}

static int op_vm_delete(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", NULL };
	const struct vm_def *def;
	const struct vm_status *st;
	int rc;

	rc = jv_check_keys(op, keys, "vm.delete", err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status(s, def->name);
	if (st->state != VM_HA_STOPPED || st->want_running) {
		jv_fail(err, errlen, "vm %s is not stopped (%s); stop it first", def->name,
			vm_ha_state_name(st->state));
		return -EBUSY;
	}
	return state_vm_del(s, def->name);
}

static int op_vm_want(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", "running", NULL };
	const struct vm_def *def;
	struct vm_status *st;
	bool running = false;
	int rc;

	rc = jv_check_keys(op, keys, "vm.want", err, errlen);
	rc = rc ?: jv_bool(op, "running", &running, err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	st->want_running = running;
	state_bump(s);
	return 0;
}

static int op_rule_add(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "rule", NULL };
	struct rule r;
	int rc;

	rc = jv_check_keys(op, keys, "rule.add", err, errlen);
	rc = rc ?: rule_from_json(json_object_get(op, "rule"), &r, err, errlen);
	rc = rc ?: state_rule_check(s, &r, err, errlen);
	return rc ?: state_rule_add(s, &r, err, errlen);
}

static int op_rule_del(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "name", NULL };
	const char *name = ops_str_arg(op, "name");
	int rc;

	rc = jv_check_keys(op, keys, "rule.del", err, errlen);
	if (rc)
		return rc;
	if (!name || state_rule_del(s, name)) {
		jv_fail(err, errlen, "rule %.64s does not exist", name ? name : "?");
		return -ENOENT;
	}
	return 0;
}

static int op_settings_set(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "settings", NULL };
	struct cluster_settings c = *state_settings(s);
	int rc;

	rc = jv_check_keys(op, keys, "settings.set", err, errlen);
	rc = rc ?: settings_from_json(json_object_get(op, "settings"), &c, err, errlen);
	if (rc)
		return rc;
	*state_settings_mut(s) = c;
	state_bump(s);
	return 0;
}

/* --- fencing configuration and admin fencing ----------------------------------------- */

static int op_fence_device(cluster_state_t *s, const json_t *op, bool add, char *err,
			   size_t errlen)
{
	static const char *const keys[] = { "op", "req", "device", "name", NULL };
	struct fence_device dev;
	const char *name;
	int rc;

	rc = jv_check_keys(op, keys, add ? "fence.device.add" : "fence.device.del", err, errlen);
	if (rc)
		return rc;
	if (add) {
		rc = fence_device_from_json(json_object_get(op, "device"), &dev, err, errlen);
		rc = rc ?: fence_device_add(state_fence_conf_mut(s), &dev, err, errlen);
	} else {
		name = ops_str_arg(op, "name");
		if (!name)
			return jv_fail(err, errlen, "fence.device.del: name missing");
		rc = fence_device_del(state_fence_conf_mut(s), name, err, errlen);
	}
	if (!rc)
		state_bump(s);
	return rc;
}

static int op_fence_level(cluster_state_t *s, const json_t *op, bool add, char *err,
			  size_t errlen)
{
	static const char *const keys[] = { "op", "req", "level", "node", "index", NULL };
	struct fence_level lv;
	uint32_t node = 0;
	unsigned int index = 0;
	int rc;

	rc = jv_check_keys(op, keys, add ? "fence.level.add" : "fence.level.del", err, errlen);
	if (rc)
		return rc;
	if (add) {
		rc = fence_level_from_json(json_object_get(op, "level"), &lv, err, errlen);
		if (!rc && !state_node_find(s, lv.node))
			rc = jv_fail(err, errlen, "fence level: node %u is not a node of the cluster",
				     lv.node);
		rc = rc ?: fence_level_add(state_fence_conf_mut(s), &lv, err, errlen);
	} else {
		rc = jv_u32(op, "node", &node, err, errlen);
		rc = rc ?: jv_uint(op, "index", &index, err, errlen);
		rc = rc ?: fence_level_del(state_fence_conf_mut(s), node, index, err, errlen);
	}
	if (!rc)
		state_bump(s);
	return rc;
}

/* An admin asks: fence this node now (node.fence), or: I powered it off (node.confirm). */
static int op_node_admin(cluster_state_t *s, const json_t *op, bool confirm,
			 const struct op_ctx *ctx, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "id", "by", "at_ms", NULL };
	struct fence_record f = { .by = ctx->sender, .ok = true };
	char by[128] = "";
	struct node_info *n;
	uint32_t id = 0;
	uint64_t at = 0;
	int rc;

	rc = jv_check_keys(op, keys, confirm ? "node.confirm" : "node.fence", err, errlen);
	rc = rc ?: jv_u32(op, "id", &id, err, errlen);
	rc = rc ?: jv_str(op, "by", by, sizeof(by), err, errlen);
	rc = rc ?: jv_u64(op, "at_ms", &at, err, errlen);
	if (rc)
		return rc;
	n = state_node_mut(s, id);
	if (!n)
		return jv_fail(err, errlen, "node %u is not a node of the cluster", id);
	if (!confirm) {
		if (n->status == NODE_FENCE_PENDING)
			return jv_fail(err, errlen, "node %s is already being fenced", n->name);
		n->status = NODE_FENCE_PENDING;
		n->ready = false;
		n->left_ms = at;
		state_bump(s);
		return 0;
	}
	if (n->status != NODE_FENCE_PENDING)
		return jv_fail(err, errlen, "node %s is %s, not fence-pending: nothing to confirm",
			       n->name, node_status_name(n->status));
	n->status = NODE_FENCED;
	n->fenced_ms = at;
	f.node = id;
	f.at_ms = at;
	snprintf(f.detail, sizeof(f.detail), "confirmed by an admin (%.100s): powered off by hand",
		 by[0] ? by : "unknown");
	state_fence_record(s, &f);
	state_bump(s);
	return 0;
}

/* --- access control ------------------------------------------------------------------ */

static int op_acl(cluster_state_t *s, const json_t *op, bool add, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "binding", "name", NULL };
	struct acl_binding b;
	const char *name;
	int rc;

	rc = jv_check_keys(op, keys, add ? "acl.add" : "acl.del", err, errlen);
	if (rc)
		return rc;
	if (add) {
		rc = acl_binding_from_json(json_object_get(op, "binding"), &b, err, errlen);
		rc = rc ?: state_acl_add(s, &b, err, errlen);
	} else {
		name = ops_str_arg(op, "name");
		rc = name ? state_acl_del(s, name) : -EINVAL;
		if (rc)
			jv_fail(err, errlen, "binding %.64s does not exist", name ? name : "?");
	}
	if (!rc)
		state_bump(s);
	return rc;
}

/* --- node ops -------------------------------------------------------------------- */

static int op_node_hello(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx,
			 char *err, size_t errlen)
{
	static const char *const keys[] = { "op",	  "req",    "id",	 "name",
					     "vcpus", "memory", "domain", "clearance",
					     "watchdog_s", "mig_endpoint", "mig_key", NULL };
	struct node_info n = { 0 }, *slot;
	const char *cl;
	int rc;

	rc = jv_check_keys(op, keys, "node.hello", err, errlen);
	rc = rc ?: jv_u32(op, "id", &n.id, err, errlen);
	rc = rc ?: jv_str(op, "name", n.name, sizeof(n.name), err, errlen);
	rc = rc ?: jv_uint(op, "vcpus", &n.vcpus, err, errlen);
	rc = rc ?: jv_u64(op, "memory", &n.memory_mb, err, errlen);
	rc = rc ?: jv_str(op, "domain", n.domain, sizeof(n.domain), err, errlen);
	rc = rc ?: jv_uint(op, "watchdog_s", &n.watchdog_s, err, errlen);
	rc = rc ?: jv_str(op, "mig_endpoint", n.mig_endpoint, sizeof(n.mig_endpoint), err, errlen);
	rc = rc ?: jv_str(op, "mig_key", n.mig_key, sizeof(n.mig_key), err, errlen);
	if (rc)
		return rc;
	if (n.mig_key[0] && strlen(n.mig_key) != 40)
		return jv_fail(err, errlen, "node.hello: mig_key is not a Z85 CURVE key");
	if (n.mig_endpoint[0] && strncmp(n.mig_endpoint, "tcp://", 6))
		return jv_fail(err, errlen, "node.hello: mig_endpoint must be tcp://ADDR:PORT");
	if (n.watchdog_s > 3600)
		return jv_fail(err, errlen, "node.hello: watchdog_s out of range");
	if (n.id != ctx->sender)
		return jv_fail(err, errlen, "node.hello for node %u sent by node %u", n.id,
			       ctx->sender);
	if (!vm_name_is_valid(n.name) || !n.vcpus || !n.memory_mb)
		return jv_fail(err, errlen, "node.hello of node %u: name, vcpus and memory needed",
			       n.id);
	cl = ops_str_arg(op, "clearance");
	if (vm_class_parse(cl ? cl : "public", &n.clearance))
		return jv_fail(err, errlen, "node %s: clearance '%.32s' unknown", n.name, cl);
	for (size_t i = 0; i < state_node_count(s); i++) {
		const struct node_info *o = state_node_at(s, i);

		if (o->id != n.id && !strcmp(o->name, n.name))
			return jv_fail(err, errlen, "node %u calls itself %s, the name of node %u",
				       n.id, n.name, o->id);
	}
	slot = state_node_upsert(s, n.id);
	if (!slot)
		return jv_fail(err, errlen, "node %u: the cluster already has %d nodes", n.id,
			       STATE_MAX_NODES);
	memcpy(slot->name, n.name, sizeof(slot->name));
	slot->vcpus = n.vcpus;
	slot->memory_mb = n.memory_mb;
	memcpy(slot->domain, n.domain, sizeof(slot->domain));
	slot->clearance = n.clearance;
	slot->watchdog_s = n.watchdog_s;
	memcpy(slot->mig_endpoint, n.mig_endpoint, sizeof(slot->mig_endpoint));
	memcpy(slot->mig_key, n.mig_key, sizeof(slot->mig_key));
	slot->ready = true;
	slot->leaving = false;
	state_bump(s);
	return 0;
}

static int op_vm_report(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx,
			char *err, size_t errlen)
{
	static const char *const keys[] = { "op",     "req",	"name",	     "epoch",
					     "event", "reason", "resume_ms", NULL };
	const struct vm_def *def;
	struct vm_status *st;
	enum vm_event ev;
	uint64_t epoch = 0, resume_ms = 0;
	char reason[STATE_REASON_MAX] = "";
	int rc;

	rc = jv_check_keys(op, keys, "vm.report", err, errlen);
	rc = rc ?: jv_u64(op, "epoch", &epoch, err, errlen);
	rc = rc ?: jv_str(op, "reason", reason, sizeof(reason), err, errlen);
	rc = rc ?: jv_u64(op, "resume_ms", &resume_ms, err, errlen);
	if (rc)
		return rc;
	if (vm_event_parse(ops_str_arg(op, "event"), &ev) || ev == VM_EVENT_NONE)
		return jv_fail(err, errlen, "vm.report: event unknown");
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (st->node != ctx->sender || st->epoch != epoch) {
		jv_fail(err, errlen,
			"vm %s: stale report '%s' from node %u epoch %" PRIu64
			" (assigned to node %u, epoch %" PRIu64 ")",
			def->name, vm_event_name(ev), ctx->sender, epoch, st->node, st->epoch);
		return -ESTALE;
	}
	if (ev == VM_EVENT_RUNNING && resume_ms &&
	    !(st->event == ev && st->event_epoch == epoch && st->event_node == ctx->sender))
		mig_target_resumed(st, ctx->sender, resume_ms);
	st->event = ev;
	st->event_epoch = epoch;
	st->event_node = ctx->sender;
	memcpy(st->event_reason, reason, sizeof(reason));
	state_bump(s);
	return 0;
}

/* --- leader ops ---------------------------------------------------------------- */

static int leader_only(const json_t *op, const struct op_ctx *ctx, char *err, size_t errlen)
{
	if (ctx->sender && ctx->sender == ctx->leader)
		return 0;
	jv_fail(err, errlen, "%s from node %u refused: only the leader (node %u) decides",
		ops_op_name(op), ctx->sender, ctx->leader);
	return -EPERM;
}

static int op_mgr_vm(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op",	 "req",	     "name",	 "expect_epoch",
					     "state",	 "node",     "epoch",	 "takeover",
					     "restarts", "window_ms", "failed_node", "reason",
					     "want_running", "expect_want", NULL };
	const struct vm_def *def;
	struct vm_status *st, n;
	uint64_t expect = 0;
	bool expect_want;
	const char *state;
	int rc;

	rc = jv_check_keys(op, keys, "mgr.vm", err, errlen);
	rc = rc ?: jv_u64(op, "expect_epoch", &expect, err, errlen);
	if (rc)
		return rc;
	def = ops_named_vm(s, op, err, errlen);
	if (!def)
		return -ENOENT;
	st = state_vm_status_mut(s, def->name);
	if (st->epoch != expect) {
		jv_fail(err, errlen, "vm %s: decision for epoch %" PRIu64 " is stale (now %" PRIu64 ")",
			def->name, expect, st->epoch);
		return -ESTALE;
	}
	/* a vm.want applied since the decision was made: the manager decides again */
	expect_want = st->want_running;
	rc = jv_bool(op, "expect_want", &expect_want, err, errlen);
	if (rc)
		return rc;
	if (expect_want != st->want_running) {
		jv_fail(err, errlen, "vm %s: decision made while it was %s is stale", def->name,
			expect_want ? "wanted" : "not wanted");
		return -ESTALE;
	}
	n = *st;
	state = ops_str_arg(op, "state");
	if (state && vm_ha_state_parse(state, &n.state))
		return jv_fail(err, errlen, "mgr.vm: state '%.32s' unknown", state);
	rc = jv_u32(op, "node", &n.node, err, errlen);
	rc = rc ?: jv_u64(op, "epoch", &n.epoch, err, errlen);
	rc = rc ?: jv_bool(op, "takeover", &n.takeover, err, errlen);
	rc = rc ?: jv_u32(op, "restarts", &n.restarts, err, errlen);
	rc = rc ?: jv_u64(op, "window_ms", &n.window_ms, err, errlen);
	rc = rc ?: jv_u32(op, "failed_node", &n.failed_node, err, errlen);
	rc = rc ?: jv_str(op, "reason", n.reason, sizeof(n.reason), err, errlen);
	rc = rc ?: jv_bool(op, "want_running", &n.want_running, err, errlen);
	if (rc)
		return rc;
	if (n.epoch < st->epoch)
		return jv_fail(err, errlen, "vm %s: epoch may not go back", def->name);
	if (n.node && !state_node_find(s, n.node))
		return jv_fail(err, errlen, "vm %s: node %u is not a node of the cluster",
			       def->name, n.node);
	/* frozen: only while it waits (fence) for the node that froze it */
	if (n.state != VM_HA_FENCE)
		n.frozen = false;
	/* held says why it stays on its node: not once it is off it (fence, recovery...) */
	if (n.node != st->node || (n.state != VM_HA_STARTING && n.state != VM_HA_STARTED &&
				   n.state != VM_HA_STOPPING))
		n.held[0] = '\0';
	*st = n;
	state_bump(s);
	return 0;
}

static int op_mgr_node(cluster_state_t *s, const json_t *op, char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "id", "expect", "status", "at_ms", NULL };
	enum node_status expect, status;
	struct node_info *n;
	uint32_t id = 0;
	uint64_t at = 0;
	int rc;

	rc = jv_check_keys(op, keys, "mgr.node", err, errlen);
	rc = rc ?: jv_u32(op, "id", &id, err, errlen);
	rc = rc ?: jv_u64(op, "at_ms", &at, err, errlen);
	if (rc)
		return rc;
	if (node_status_parse(ops_str_arg(op, "expect"), &expect) ||
	    node_status_parse(ops_str_arg(op, "status"), &status))
		return jv_fail(err, errlen, "mgr.node: expect and status must be node states");
	n = state_node_mut(s, id);
	if (!n)
		return jv_fail(err, errlen, "mgr.node: node %u unknown", id);
	if (n->status != expect) {
		jv_fail(err, errlen, "node %s: decision for state %s is stale (now %s)", n->name,
			node_status_name(expect), node_status_name(n->status));
		return -ESTALE;
	}
	n->status = status;
	/* a node that left must say again that it is clean before it gets anything */
	if (status == NODE_FENCE_PENDING || status == NODE_OFFLINE) {
		n->ready = false;
		n->left_ms = at;
		if (n->maintenance && n->maint_auto == MAINT_BY_SHUTDOWN)
			n->maint_auto = MAINT_NODE_LEFT;
	}
	state_bump(s);
	return 0;
}

static int op_mgr_fenced(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx,
			 char *err, size_t errlen)
{
	static const char *const keys[] = { "op", "req", "id", "ok", "detail", "at_ms", "left_ms",
					     NULL };
	struct fence_record f = { .by = ctx->sender };
	struct node_info *n;
	uint64_t left = 0;
	int rc;

	rc = jv_check_keys(op, keys, "mgr.fenced", err, errlen);
	rc = rc ?: jv_u64(op, "left_ms", &left, err, errlen);
	rc = rc ?: jv_u32(op, "id", &f.node, err, errlen);
	rc = rc ?: jv_bool(op, "ok", &f.ok, err, errlen);
	rc = rc ?: jv_u64(op, "at_ms", &f.at_ms, err, errlen);
	rc = rc ?: jv_str(op, "detail", f.detail, sizeof(f.detail), err, errlen);
	if (rc)
		return rc;
	n = state_node_mut(s, f.node);
	if (!n)
		return jv_fail(err, errlen, "mgr.fenced: node %u unknown", f.node);
	/* a fence started for an earlier departure says nothing of this one */
	if (json_object_get(op, "left_ms") && left != n->left_ms) {
		jv_fail(err, errlen, "node %s: fence result of an earlier departure: ignored",
			n->name);
		return -ESTALE;
	}
	state_fence_record(s, &f);
	if (f.ok && n->status == NODE_FENCE_PENDING) {
		n->status = NODE_FENCED;
		n->fenced_ms = f.at_ms;
	}
	state_bump(s);
	return 0;
}

static int apply(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		 size_t errlen);

int state_apply(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		size_t errlen)
{
	json_t *copy;
	int rc;

	if (!json_is_object(op))
		return jv_fail(err, errlen, "an op must be a JSON object");
	if (!json_object_get(op, "who")) {
		rc = apply(s, op, ctx, err, errlen);
		if (!rc)
			mig_settle(s);
		return rc;
	}
	/* "who" and "cmd" (the hvctl command) are for the audit log, not part of the change */
	copy = json_copy((json_t *)op);
	if (!copy)
		return jv_fail(err, errlen, "out of memory");
	json_object_del(copy, "who");
	json_object_del(copy, "cmd");
	rc = apply(s, copy, ctx, err, errlen);
	json_decref(copy);
	if (!rc)
		mig_settle(s);
	return rc;
}

static int apply(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		 size_t errlen)
{
	const char *name = ops_op_name(op);
	int rc;

	if (!strcmp(name, "vm.create"))
		return op_vm_create(s, op, err, errlen);
	if (!strcmp(name, "vm.delete"))
		return op_vm_delete(s, op, err, errlen);
	if (!strcmp(name, "vm.want"))
		return op_vm_want(s, op, err, errlen);
	if (!strcmp(name, "rule.add"))
		return op_rule_add(s, op, err, errlen);
	if (!strcmp(name, "rule.del"))
		return op_rule_del(s, op, err, errlen);
	if (!strcmp(name, "settings.set"))
		return op_settings_set(s, op, err, errlen);
	if (!strcmp(name, "acl.add") || !strcmp(name, "acl.del"))
		return op_acl(s, op, name[4] == 'a', err, errlen);
	/* a request denied, or refused before any op, or done on one node (pause, resume):
	 * for every node's audit log; changes nothing */
	if (!strcmp(name, "audit.denied") || !strcmp(name, "audit.record"))
		return 0;
	if (!strcmp(name, "fence.device.add") || !strcmp(name, "fence.device.del"))
		return op_fence_device(s, op, name[13] == 'a', err, errlen);
	if (!strcmp(name, "fence.level.add") || !strcmp(name, "fence.level.del"))
		return op_fence_level(s, op, name[12] == 'a', err, errlen);
	if (!strcmp(name, "node.fence") || !strcmp(name, "node.confirm"))
		return op_node_admin(s, op, name[5] == 'c', ctx, err, errlen);
	if (!strcmp(name, "node.hello"))
		return op_node_hello(s, op, ctx, err, errlen);
	if (!strcmp(name, "vm.report"))
		return op_vm_report(s, op, ctx, err, errlen);
	if (!strcmp(name, "vm.migrate"))
		return op_vm_migrate(s, op, err, errlen);
	if (!strcmp(name, "vm.migrate-cancel"))
		return op_vm_migrate_cancel(s, op, err, errlen);
	if (!strcmp(name, "mig.progress"))
		return op_mig_progress(s, op, ctx, err, errlen);
	if (!strcmp(name, "mig.handoff"))
		return op_mig_handoff(s, op, ctx, err, errlen);
	if (!strcmp(name, "mig.end"))
		return op_mig_end(s, op, ctx, err, errlen);
	if (!strcmp(name, "vm.save"))
		return op_vm_save(s, op, err, errlen);
	if (!strcmp(name, "vm.restore"))
		return op_vm_restore(s, op, err, errlen);
	if (!strcmp(name, "mig.saved"))
		return op_mig_saved(s, op, ctx, err, errlen);
	if (!strcmp(name, "node.drain"))
		return op_node_drain(s, op, ctx, err, errlen);
	if (!strcmp(name, "node.resume"))
		return op_node_resume(s, op, err, errlen);
	if (!strcmp(name, "node.freeze"))
		return op_node_freeze(s, op, ctx, err, errlen);
	if (!strcmp(name, "node.leave"))
		return op_node_leave(s, op, ctx, err, errlen);
	if (strncmp(name, "mgr.", 4))
		return jv_fail(err, errlen, "unknown op '%.32s'", name);
	rc = leader_only(op, ctx, err, errlen);
	if (rc)
		return rc;
	if (!strcmp(name, "mgr.vm"))
		return op_mgr_vm(s, op, err, errlen);
	if (!strcmp(name, "mgr.node"))
		return op_mgr_node(s, op, err, errlen);
	if (!strcmp(name, "mgr.fenced"))
		return op_mgr_fenced(s, op, ctx, err, errlen);
	if (!strcmp(name, "mgr.mig"))
		return op_mgr_mig(s, op, err, errlen);
	if (!strcmp(name, "mgr.mig-end"))
		return op_mig_end(s, op, ctx, err, errlen);
	if (!strcmp(name, "mgr.mig-cancel"))
		return op_mgr_mig_cancel(s, op, err, errlen);
	if (!strcmp(name, "mgr.move"))
		return op_mgr_move(s, op, err, errlen);
	if (!strcmp(name, "mgr.held"))
		return op_mgr_held(s, op, err, errlen);
	if (!strcmp(name, "mgr.resume"))
		return op_node_resume(s, op, err, errlen);
	return jv_fail(err, errlen, "unknown op '%.32s'", name);
}
