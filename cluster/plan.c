#include "plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

/* Everything the placement input borrows, freed after the call. */
struct plan_buf {
	struct pl_node *nodes;
	struct pl_vm *vms;
	struct pl_rule *rules;
	const char **names; /* node names, rule VM lists, preferred/possible lists */
	size_t nnames, cap;
	struct pl_result *res;
};

static const char **names_take(struct plan_buf *b, size_t n)
{
	const char **p;

	if (b->nnames + n > b->cap)
		return NULL;
	p = &b->names[b->nnames];
	b->nnames += n;
	return p;
}

static int node_index(const cluster_state_t *s, uint32_t id)
{
	for (size_t i = 0; i < state_node_count(s); i++)
		if (state_node_at(s, i)->id == id)
			return (int)i;
	return -1;
}

static int fill_vm(const cluster_state_t *s, struct plan_buf *b, size_t i,
		   const struct plan_vm_req *req, const bool *usable)
{
	const struct vm_def *def = state_vm_at(s, i);
	const struct vm_status *st = state_vm_status(s, def->name);
	const struct node_info *away = req->avoid ? state_node_find(s, req->avoid) : NULL;
	struct pl_vm *v = &b->vms[i];
	size_t nn = state_node_count(s);
	const char **p;

	v->name = def->name;
	v->vcpus = def->vcpus;
	v->memory_mb = def->memory_mb;
	v->priority = (int)def->priority;
	v->classification = (int)def->classification;
	v->app = def->app;
	v->tier = def->tier;
	v->wanted = req->need != PLAN_IGNORE;
	v->current = -1;
	if (req->need == PLAN_STAY) {
		const struct vm_migration *m = &st->mig;
		int idx = node_index(s, st->node), to = m->to ? node_index(s, m->to) : -1;

		/* a migration on its way: the VM holds its target's room (rules and capacity) */
		if ((m->phase == MIG_QUEUED || m->phase == MIG_RUNNING) && to >= 0 && usable[to])
			idx = to;
		v->current = idx >= 0 && usable[idx] ? idx : -1;
		/* on a node that takes nothing (maintenance, joining): it stays, and uses nothing here */
		if (idx >= 0 && !usable[idx])
			v->wanted = false;
	}
	p = names_take(b, def->npreferred);
	if (!p)
		return -ENOMEM;
	for (size_t k = 0; k < def->npreferred; k++)
		p[k] = def->preferred[k];
	v->preferred = p;
	v->npreferred = def->npreferred;
	v->leaving = away ? away->name : NULL;
	if (!req->avoid && !req->only && !def->npossible)
		return 0;
	/* possible nodes: the definition's (or every node), less the one to avoid */
	p = names_take(b, def->npossible ? def->npossible : nn);
	if (!p)
		return -ENOMEM;
	v->possible = p;
	v->npossible = 0;
	if (def->npossible) {
		for (size_t k = 0; k < def->npossible; k++) {
			const struct node_info *n = state_node_by_name(s, def->possible[k]);

			if (!n || (n->id != req->avoid && (!req->only || n->id == req->only)))
				p[v->npossible++] = def->possible[k];
		}
	} else {
		for (size_t k = 0; k < nn; k++) {
			const struct node_info *n = state_node_at(s, k);

			if (n->id != req->avoid && (!req->only || n->id == req->only))
				p[v->npossible++] = n->name;
		}
	}
	/* an empty list would mean "any node": name one that does not exist instead */
	if (!v->npossible)
		p[v->npossible++] = "";
	return 0;
}

static void fill_rule(const cluster_state_t *s, struct plan_buf *b, size_t i)
{
	const struct rule *r = state_rule_at(s, i);
	struct pl_rule *pr = &b->rules[i];
	const char **p = names_take(b, r->nvms);

	pr->name = r->name;
	pr->type = r->type == RULE_ANTI_AFFINITY ? PL_RULE_ANTI_AFFINITY
		   : r->type == RULE_AFFINITY	 ? PL_RULE_AFFINITY
						 : PL_RULE_TIER_SEPARATION;
	pr->hard = r->hard;
	pr->scope = r->scope == RULE_SCOPE_DOMAIN ? PL_SCOPE_DOMAIN : PL_SCOPE_NODE;
	pr->app = r->app;
	for (size_t k = 0; p && k < r->nvms; k++)
		p[k] = r->vms[k];
	pr->vms = p;
	pr->nvms = p ? r->nvms : 0;
}

static int plan_alloc(const cluster_state_t *s, struct plan_buf *b)
{
	size_t nv = state_vm_count(s), nn = state_node_count(s), nr = state_rule_count(s);

	b->cap = nv * (2 * VM_MAX_NODES + nn + 1) + nr * RULE_MAX_VMS + 1;
	b->nodes = calloc(nn ? nn : 1, sizeof(*b->nodes));
	b->vms = calloc(nv ? nv : 1, sizeof(*b->vms));
	b->rules = calloc(nr ? nr : 1, sizeof(*b->rules));
	b->names = calloc(b->cap, sizeof(*b->names));
	b->res = calloc(nv ? nv : 1, sizeof(*b->res));
	return b->nodes && b->vms && b->rules && b->names && b->res ? 0 : -ENOMEM;
}

static void plan_free(struct plan_buf *b)
{
	free(b->nodes);
	free(b->vms);
	free(b->rules);
	free(b->names);
	free(b->res);
}

int plan_compute(const cluster_state_t *s, const bool *usable, const struct plan_vm_req *vms,
		 struct plan_entry *out)
{
	size_t nv = state_vm_count(s), nn = state_node_count(s), nr = state_rule_count(s);
	const struct cluster_settings *cs = state_settings(s);
	struct plan_buf b = { 0 };
	struct pl_input in;
	int rc;

	rc = plan_alloc(s, &b);
	if (rc)
		goto out;
	for (size_t i = 0; i < nn; i++) {
		const struct node_info *n = state_node_at(s, i);

		b.nodes[i] = (struct pl_node){ .name = n->name, .id = n->id, .vcpus = n->vcpus,
					       .memory_mb = n->memory_mb, .domain = n->domain,
					       .clearance = (int)n->clearance,
					       .usable = usable[i] };
	}
	for (size_t i = 0; i < nv; i++) {
		rc = fill_vm(s, &b, i, &vms[i], usable);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < nr; i++)
		fill_rule(s, &b, i);
	in = (struct pl_input){ .nodes = b.nodes, .nnodes = nn, .vms = b.vms, .nvms = nv,
				.rules = b.rules, .nrules = nr,
				.params = { .cpu_overcommit_pct = cs->cpu_overcommit_pct,
					    .mem_overcommit_pct = cs->mem_overcommit_pct } };
	rc = placement_solve(&in, b.res);
	if (rc)
		goto out;
	for (size_t i = 0; i < nv; i++) {
		struct plan_entry *e = &out[i];
		const struct pl_result *r = &b.res[i];

		memset(e, 0, sizeof(*e));
		e->node = r->node >= 0 ? state_node_at(s, (size_t)r->node)->id : 0;
		e->moved = r->moved;
		snprintf(e->reason, sizeof(e->reason), "%s", r->reason);
		snprintf(e->broken, sizeof(e->broken), "%s", r->broken);
		snprintf(e->why, sizeof(e->why), "%s", r->why);
	}
out:
	plan_free(&b);
	return rc;
}
