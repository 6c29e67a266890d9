#include "rulecheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* For messages: a node the state does not know (yet) still prints. */
static const char *node_label(const cluster_state_t *s, uint32_t id)
{
	const struct node_info *n = id ? state_node_find(s, id) : NULL;

	return n ? n->name : "an unknown node";
}

bool rule_names_vm(const struct rule *r, const struct vm_def *def)
{
	if (r->type == RULE_TIER_SEPARATION)
		return def->app[0] && !strcmp(r->app, def->app);
	for (size_t i = 0; i < r->nvms; i++)
		if (!strcmp(r->vms[i], def->name))
			return true;
	return false;
}

/* Whether two running VMs count as together for @r: same node, or same failure domain. */
static bool together(const cluster_state_t *s, const struct rule *r, uint32_t a, uint32_t b)
{
	const struct node_info *na, *nb;

	if (a == b)
		return true;
	if (r->type != RULE_ANTI_AFFINITY || r->scope != RULE_SCOPE_DOMAIN)
		return false;
	na = state_node_find(s, a);
	nb = state_node_find(s, b);
	return na && nb && na->domain[0] && !strcmp(na->domain, nb->domain);
}

/* The running VMs @r applies to, as state_vm_at() indexes (free()); NULL when out of memory. */
static size_t *running_members(const cluster_state_t *s, const struct rule *r, size_t *n)
{
	size_t *idx = calloc(state_vm_count(s) + 1, sizeof(*idx));

	*n = 0;
	for (size_t i = 0; idx && i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);

		if (rule_names_vm(r, def) && vm_holds_node(state_vm_status(s, def->name)))
			idx[(*n)++] = i;
	}
	return idx;
}

/* Whether VMs @a and @b (running) break @r where they are; then @buf says how. */
static bool pair_breaks(const cluster_state_t *s, const struct rule *r, const struct vm_def *a,
			const struct vm_def *b, char *buf, size_t len)
{
	uint32_t na = state_vm_status(s, a->name)->node, nb = state_vm_status(s, b->name)->node;
	bool with = together(s, r, na, nb);

	if (r->type == RULE_AFFINITY && !with)
		snprintf(buf, len, "%s runs on %s, %s on %s", a->name, node_label(s, na), b->name,
			 node_label(s, nb));
	else if (r->type == RULE_ANTI_AFFINITY && with && na == nb)
		snprintf(buf, len, "%s and %s both run on %s", a->name, b->name, node_label(s, na));
	else if (r->type == RULE_ANTI_AFFINITY && with)
		snprintf(buf, len, "%s runs on %s and %s on %s, both in failure domain %s", a->name,
			 node_label(s, na), b->name, node_label(s, nb),
			 state_node_find(s, na)->domain);
	else if (r->type == RULE_TIER_SEPARATION && with && strcmp(a->tier, b->tier))
		snprintf(buf, len, "%s (tier %s) and %s (tier %s) both run on %s", a->name, a->tier,
			 b->name, b->tier, node_label(s, na));
	else
		return false;
	return true;
}

int rule_broken_by(const cluster_state_t *s, const struct rule *r, char *buf, size_t len)
{
	size_t n, *idx = running_members(s, r, &n);

	buf[0] = '\0';
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			if (pair_breaks(s, r, state_vm_at(s, idx[i]), state_vm_at(s, idx[k]), buf,
					len))
				goto out;
out:
	free(idx);
	return 0;
}
