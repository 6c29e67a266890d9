/*
 * hvctl's placement commands: rules (rule.add, rule.list, rule.show,
 * rule.del), and what the placement engine says about the cluster as it is
 * (vm.explain) or would be (plan: some nodes fail). Rules change through ops
 * (cluster_submit); the rest only reads the state and runs plan_compute().
 */
#include "hvnoded.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qb/qblog.h>

#include "../cluster/ops.h"
#include "../cluster/plan.h"
#include "../cluster/rulecheck.h"

static const char *node_name(const cluster_state_t *s, uint32_t id)
{
	const struct node_info *n = id ? state_node_find(s, id) : NULL;

	return n ? n->name : NULL;
}

static json_t *node_name_json(const cluster_state_t *s, uint32_t id)
{
	const char *name = node_name(s, id);

	return name ? json_string(name) : json_null();
}

/* May receive VMs: what the manager asks of a node (it also wants it in the membership). */
static bool is_usable(const struct node_info *n)
{
	return n->status == NODE_ONLINE && !n->maintenance;
}

/* Run the placement engine; an array of state_vm_count() entries (free()), or NULL with *rc. */
static struct plan_entry *plan_run(const cluster_state_t *s, const bool *usable,
				   const struct plan_vm_req *reqs, int *rc)
{
	size_t nv = state_vm_count(s);
	struct plan_entry *out = calloc(nv ? nv : 1, sizeof(*out));

	if (!out) {
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = plan_compute(s, usable, reqs, out);
	if (*rc) {
		free(out);
		return NULL;
	}
	return out;
}

/* --- rules ------------------------------------------------------------------------- */

/* The rule named in @args, or NULL with an error reply in *res. */
static const struct rule *find_rule(struct hvnoded *d, json_t *args, json_t **res, int *status)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	const struct rule *r;

	if (!name || !vm_name_is_valid(name)) {
		*res = command_error(status, -EINVAL, "a valid rule name is needed");
		return NULL;
	}
	r = state_rule_find(d->state, name);
	if (!r)
		*res = command_error(status, -ENOENT, "rule %s does not exist", name);
	return r;
}

json_t *cmd_rule_add(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	json_t *rule = json_object_get(args, "rule"), *op;
	const char *name = json_string_value(json_object_get(rule, "name"));
	char err[1024];
	struct rule r;
	int rc;

	if (!name || !vm_name_is_valid(name))
		return command_error(status, -EINVAL,
				     "rule '%.64s': not a valid name (1-64 letters, digits, - _ .)",
				     name ? name : "");
	rc = rule_from_json(rule, &r, err, sizeof(err));
	if (rc)
		return command_error(status, rc, "%s", err);
	/* refused here with the reason rather than on every node once sent */
	rc = state_rule_check(d->state, &r, err, sizeof(err));
	if (rc)
		return command_error(status, rc, "%s", err);
	op = json_pack("{s:s,s:o}", "op", "rule.add", "rule", rule_to_json(&r));
	if (!op)
		return command_error(status, -ENOMEM, "rule %s: out of memory", r.name);
	rc = cluster_submit(d, op, req, CLUSTER_WAIT_APPLIED, NULL, 0, err, sizeof(err));
	json_decref(op);
	if (rc)
		return command_error(status, rc, "rule %s not added: %s", r.name, err);
	qb_log(LOG_NOTICE, "rule %s: add sent (%s, %s)", r.name, rule_type_name(r.type),
	       r.hard ? "hard" : "soft");
	return NULL;
}

json_t *cmd_rule_del(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct rule *r;
	json_t *res = NULL, *op;
	char err[1024], name[VM_NAME_MAX + 1];
	int rc;

	r = find_rule(d, args, &res, status);
	if (!r)
		return res;
	snprintf(name, sizeof(name), "%s", r->name);
	op = json_pack("{s:s,s:s}", "op", "rule.del", "name", name);
	if (!op)
		return command_error(status, -ENOMEM, "rule %s: out of memory", name);
	rc = cluster_submit(d, op, req, CLUSTER_WAIT_APPLIED, NULL, 0, err, sizeof(err));
	json_decref(op);
	if (rc)
		return command_error(status, rc, "rule %s not deleted: %s", name, err);
	qb_log(LOG_NOTICE, "rule %s: delete sent", name);
	return NULL;
}

json_t *cmd_rule_list(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	json_t *rules = json_array(), *res;

	if (!rules)
		return command_error(status, -ENOMEM, "out of memory");
	for (size_t i = 0; i < state_rule_count(d->state); i++)
		json_array_append_new(rules, rule_to_json(state_rule_at(d->state, i)));
	res = json_pack("{s:o}", "rules", rules);
	return res ? res : command_error(status, -ENOMEM, "out of memory");
}

static json_t *member_json(const cluster_state_t *s, const char *name)
{
	const struct vm_def *def = state_vm_find(s, name);
	const struct vm_status *st;

	if (!def)
		return json_pack("{s:s,s:b}", "name", name, "exists", 0);
	st = state_vm_status(s, name);
	return json_pack("{s:s,s:b,s:s,s:s,s:o}", "name", name, "exists", 1, "tier", def->tier,
			 "state", vm_ha_state_name(st->state), "node", node_name_json(s, st->node));
}

/* The VMs a rule applies to: those it names (a rule may outlive a VM), or those of its app. */
static json_t *rule_members(const cluster_state_t *s, const struct rule *r)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < r->nvms; i++)
		json_array_append_new(a, member_json(s, r->vms[i]));
	for (size_t i = 0; a && r->type == RULE_TIER_SEPARATION && i < state_vm_count(s); i++)
		if (rule_names_vm(r, state_vm_at(s, i)))
			json_array_append_new(a, member_json(s, state_vm_at(s, i)->name));
	return a;
}

json_t *cmd_rule_show(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const struct rule *r;
	json_t *res = NULL;
	char now[512];

	r = find_rule(d, args, &res, status);
	if (!r)
		return res;
	res = rule_to_json(r);
	if (!res)
		return command_error(status, -ENOMEM, "rule %s: out of memory", r->name);
	if (rule_broken_by(d->state, r, now, sizeof(now))) {
		json_decref(res);
		return command_error(status, -ENOMEM, "rule %s: out of memory", r->name);
	}
	json_object_set_new(res, "members", rule_members(d->state, r));
	json_object_set_new(res, "kept", json_boolean(!now[0]));
	if (now[0])
		json_object_set_new(res, "broken_by", json_string(now));
	return res;
}

/* --- vm explain ---------------------------------------------------------------------- */

static json_t *nodes_json(const cluster_state_t *s, const bool *usable)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < state_node_count(s); i++) {
		const struct node_info *n = state_node_at(s, i);

		json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:b}", "name", n->name, "state",
						   node_status_name(n->status), "maintenance",
						   n->maintenance, "usable", usable[i]));
	}
	return a;
}

static json_t *entry_json(const cluster_state_t *s, enum plan_need need, const struct plan_entry *e)
{
	return json_pack("{s:s,s:o,s:b,s:s,s:s,s:s}", "need", need == PLAN_STAY ? "stay" : "place",
			 "node", node_name_json(s, e->node), "moved", e->moved, "why", e->why,
			 "reason", e->reason, "broken", e->broken);
}

static json_t *explain_json(const cluster_state_t *s, const struct vm_def *def, const bool *usable,
			    enum plan_need need, const struct plan_entry *e)
{
	const struct vm_status *st = state_vm_status(s, def->name);
	json_t *res, *rules = json_array();

	for (size_t i = 0; rules && i < state_rule_count(s); i++)
		if (rule_names_vm(state_rule_at(s, i), def))
			json_array_append_new(rules, rule_to_json(state_rule_at(s, i)));
	res = json_pack("{s:s,s:s,s:o,s:I,s:b,s:b,s:s,s:I,s:o,s:o,s:o}", "name", def->name, "state",
			vm_ha_state_name(st->state), "node", node_name_json(s, st->node), "epoch",
			(json_int_t)st->epoch, "want_running", st->want_running, "ha", def->ha,
			"reason", st->reason, "restarts", (json_int_t)st->restarts, "placement",
			entry_json(s, need, e), "rules", rules, "nodes", nodes_json(s, usable));
	if (res && st->event != VM_EVENT_NONE)
		json_object_set_new(
			res, "event",
			json_pack("{s:s,s:I,s:o,s:s}", "event", vm_event_name(st->event), "epoch",
				  (json_int_t)st->event_epoch, "node",
				  node_name_json(s, st->event_node), "reason", st->event_reason));
	return res;
}

json_t *cmd_vm_explain(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	const cluster_state_t *s = d->state;
	size_t nv = state_vm_count(s), self = nv;
	bool usable[STATE_MAX_NODES];
	struct plan_vm_req *reqs;
	struct plan_entry *plan;
	json_t *res;
	int rc;

	if (!name || !vm_name_is_valid(name))
		return command_error(status, -EINVAL, "a valid VM name is needed");
	if (!state_vm_find(s, name))
		return command_error(status, -ENOENT, "vm %s does not exist", name);
	for (size_t i = 0; i < state_node_count(s); i++)
		usable[i] = is_usable(state_node_at(s, i));
	reqs = calloc(nv, sizeof(*reqs));
	if (!reqs)
		return command_error(status, -ENOMEM, "vm %s: out of memory", name);
	for (size_t i = 0; i < nv; i++) {
		const struct vm_def *def = state_vm_at(s, i);
		bool running = vm_holds_node(state_vm_status(s, def->name));

		if (!strcmp(def->name, name)) {
			self = i;
			reqs[i].need = running ? PLAN_STAY : PLAN_PLACE;
		} else {
			reqs[i].need = running ? PLAN_STAY : PLAN_IGNORE;
		}
	}
	plan = plan_run(s, usable, reqs, &rc);
	if (!plan) {
		free(reqs);
		return command_error(status, rc, "vm %s: the placement engine failed: %s", name,
				     strerror(-rc));
	}
	res = explain_json(s, state_vm_at(s, self), usable, reqs[self].need, &plan[self]);
	free(plan);
	free(reqs);
	return res ? res : command_error(status, -ENOMEM, "vm %s: out of memory", name);
}

/* --- plan --fail ----------------------------------------------------------------------- */

/* Mark the nodes named in @fail (an array of names) in @failed; 0 or an error reply in *res. */
static int parse_fail(const cluster_state_t *s, json_t *fail, bool *failed, json_t **res,
		      int *status)
{
	json_t *v;
	size_t i;

	if (!json_is_array(fail) || !json_array_size(fail)) {
		*res = command_error(status, -EINVAL, "plan: fail must list at least one node");
		return -EINVAL;
	}
	json_array_foreach(fail, i, v) {
		const char *name = json_string_value(v);
		const struct node_info *n = name ? state_node_by_name(s, name) : NULL;

		if (!name || !vm_name_is_valid(name)) {
			*res = command_error(status, -EINVAL, "plan: fail[%zu] is not a node name",
					     i);
			return -EINVAL;
		}
		if (!n) {
			*res = command_error(status, -ENOENT,
					     "node %s does not exist (the cluster knows %zu nodes; "
					     "see hvctl status)",
					     name, state_node_count(s));
			return -ENOENT;
		}
		for (size_t k = 0; k < state_node_count(s); k++)
			if (state_node_at(s, k) == n)
				failed[k] = true;
	}
	return 0;
}

static bool on_failed_node(const cluster_state_t *s, const bool *failed, uint32_t id)
{
	for (size_t i = 0; i < state_node_count(s); i++)
		if (failed[i] && state_node_at(s, i)->id == id)
			return true;
	return false;
}

/*
 * What becomes of each VM of the failed nodes: as the manager would do it, a
 * VM that is HA and wanted running is recovered (placed); the others stay down
 * (not HA, or not wanted running).
 */
static void fail_reqs(const cluster_state_t *s, const bool *failed, struct plan_vm_req *reqs,
		      bool *affected)
{
	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);
		const struct vm_status *st = state_vm_status(s, def->name);

		affected[i] = vm_holds_node(st) && on_failed_node(s, failed, st->node);
		if (!vm_holds_node(st))
			reqs[i].need = PLAN_IGNORE;
		else if (!affected[i])
			reqs[i].need = PLAN_STAY;
		else
			reqs[i].need = def->ha && st->want_running ? PLAN_PLACE : PLAN_IGNORE;
	}
}

static json_t *fail_vm_json(const cluster_state_t *s, const struct vm_def *def,
			    const struct plan_vm_req *rq, const struct plan_entry *e)
{
	const struct vm_status *st = state_vm_status(s, def->name);
	const char *reason = e->node ? e->why : e->reason;

	if (rq->need == PLAN_IGNORE)
		reason = !def->ha ? "not HA: the cluster does not restart it elsewhere"
				  : "not wanted running: the cluster does not restart it elsewhere";
	return json_pack("{s:s,s:o,s:o,s:s,s:s,s:b}", "name", def->name, "from",
			 node_name_json(s, st->node), "to", node_name_json(s, e->node), "reason",
			 reason, "broken", e->broken, "recover", rq->need != PLAN_IGNORE);
}

static json_t *plan_json(const cluster_state_t *s, const bool *failed,
			 const struct plan_vm_req *reqs, const bool *affected,
			 const struct plan_entry *plan)
{
	json_t *fail = json_array(), *vms = json_array(), *moves = json_array();
	json_int_t unplaced = 0;

	for (size_t i = 0; fail && i < state_node_count(s); i++)
		if (failed[i])
			json_array_append_new(fail, json_string(state_node_at(s, i)->name));
	for (size_t i = 0; vms && moves && i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);

		if (affected[i]) {
			json_array_append_new(vms, fail_vm_json(s, def, &reqs[i], &plan[i]));
			unplaced += !plan[i].node;
		} else if (reqs[i].need == PLAN_STAY && (plan[i].moved || !plan[i].node)) {
			/* a hard constraint no longer lets it stay where it runs */
			json_array_append_new(moves, fail_vm_json(s, def, &reqs[i], &plan[i]));
		}
	}
	return json_pack("{s:o,s:o,s:I,s:o}", "fail", fail, "vms", vms, "unplaced", unplaced,
			 "moves", moves);
}

json_t *cmd_plan(struct hvnoded *d, struct ipc_request *req, json_t *args, int *status)
{
	const cluster_state_t *s = d->state;
	size_t nv = state_vm_count(s);
	bool failed[STATE_MAX_NODES] = { false }, usable[STATE_MAX_NODES];
	struct plan_vm_req *reqs;
	struct plan_entry *plan;
	json_t *res = NULL;
	bool *affected;
	int rc;

	if (parse_fail(s, json_object_get(args, "fail"), failed, &res, status))
		return res;
	for (size_t i = 0; i < state_node_count(s); i++)
		usable[i] = is_usable(state_node_at(s, i)) && !failed[i];
	reqs = calloc(nv ? nv : 1, sizeof(*reqs));
	affected = calloc(nv ? nv : 1, sizeof(*affected));
	if (!reqs || !affected) {
		res = command_error(status, -ENOMEM, "plan: out of memory");
		goto out;
	}
	fail_reqs(s, failed, reqs, affected);
	plan = plan_run(s, usable, reqs, &rc);
	if (!plan) {
		res = command_error(status, rc, "plan: the placement engine failed: %s",
				    strerror(-rc));
		goto out;
	}
	res = plan_json(s, failed, reqs, affected, plan);
	free(plan);
	if (!res)
		res = command_error(status, -ENOMEM, "plan: out of memory");
out:
	free(affected);
	free(reqs);
	return res;
}
