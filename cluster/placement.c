/*
 * The placement engine: one greedy pass in a fixed order.
 *
 *  1. Units. VMs joined by hard affinity rules form one unit, placed as a
 *     whole (union-find); every other wanted VM is a unit of its own. Units go
 *     by priority (their highest), then by their lead VM's name.
 *  2. Sticky units (a member runs on a usable node) stay where most of them run
 *     if every hard constraint holds there. Nothing moves for a soft reason.
 *  3. The rest go, in order, to the best valid node: fewest members moved,
 *     fewest soft rules broken, best preferred rank, a node its own tier holds
 *     already (tier separation), least loaded, node name.
 *
 * Per unit, its rules, preferences and members mark the nodes (or failure
 * domains) they block, penalise or favour, in epoch-stamped scratch arrays that
 * are never cleared. Marked nodes are weighed one by one; the unmarked ones
 * differ by load alone, and per class of equal nodes a tournament tree yields
 * the roomiest that fits. A unit costs O(marks + classes x log nodes), not
 * O(nodes x rules). Rules get ids in name order, VMs and nodes name ranks:
 * every tie is broken by name, never by input order or hash order.
 */
#include "placement.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE INT_MAX
#define LIST_MAX 4 /* names listed in one part of a reason, then "and N more" */
#define CLASS_MAX 3
/* Bounds that keep every capacity exact in a double (the load comparison's fast path). */
#define MEMORY_MAX (1ULL << 40) /* MiB: 1 EiB */
#define PCT_MAX 10000

static const char *const type_names[] = { "anti-affinity", "affinity", "tier-separation" };
static const char *const class_names[] = { "public", "internal", "confidential", "secret" };

const char *placement_rule_type_name(enum pl_rule_type t)
{
	return (unsigned int)t <= PL_RULE_TIER_SEPARATION ? type_names[t] : "?";
}

static const char *str(const char *s)
{
	return s ? s : "";
}

/* --- bounded text ---------------------------------------------------------- */

struct text {
	char *buf;
	size_t cap, len;
};

static void text_init(struct text *t, char *buf, size_t cap)
{
	t->buf = buf;
	t->cap = cap;
	t->len = 0;
	if (cap)
		buf[0] = '\0';
}

/* Append; a text that does not fit ends in "..." rather than mid-word silence. */
static void __attribute__((format(printf, 2, 3))) text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len + 1 >= t->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	t->len += (size_t)n;
	if (t->len >= t->cap) {
		t->len = t->cap - 1;
		if (t->cap > 4)
			memcpy(t->buf + t->cap - 4, "...", 4);
	}
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

/* --- memory: everything one call allocates goes at once ------------------------ */

struct ablock {
	struct ablock *next;
	max_align_t data[];
};

struct arena {
	struct ablock *head;
	int err; /* -ENOMEM once an allocation failed */
};

/* Zeroed memory for @n items of @size, freed by arena_free(); NULL (and a->err) on failure. */
static void *alloc0(struct arena *a, size_t n, size_t size)
{
	struct ablock *b = NULL;

	if (!a->err && (!n || size <= (SIZE_MAX - sizeof(*b)) / n))
		b = calloc(1, sizeof(*b) + n * size);
	if (!b) {
		a->err = -ENOMEM;
		return NULL;
	}
	b->next = a->head;
	a->head = b;
	return b->data;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct ablock *b = a->head;

		a->head = b->next;
		free(b);
	}
}

/* --- hash maps ------------------------------------------------------------- */

struct strmap {
	const char **key;
	int *val;
	size_t mask;
};

struct u64map {
	uint64_t *key;
	int *val; /* -1: empty slot */
	size_t mask;
};

static size_t table_size(size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap <<= 1;
	return cap;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static int strmap_init(struct arena *a, struct strmap *m, size_t n)
{
	size_t cap = table_size(n);

	m->key = alloc0(a, cap, sizeof(*m->key));
	m->val = alloc0(a, cap, sizeof(*m->val));
	m->mask = cap - 1;
	return a->err;
}

/* The value of @k, or -1. */
static int strmap_get(const struct strmap *m, const char *k)
{
	for (size_t i = hash_str(k) & m->mask;; i = (i + 1) & m->mask) {
		if (!m->key[i])
			return -1;
		if (!strcmp(m->key[i], k))
			return m->val[i];
	}
}

/* Add @k -> @v unless @k is there: its value then, or -1 when added. */
static int strmap_put(struct strmap *m, const char *k, int v)
{
	size_t i;

	for (i = hash_str(k) & m->mask; m->key[i]; i = (i + 1) & m->mask)
		if (!strcmp(m->key[i], k))
			return m->val[i];
	m->key[i] = k;
	m->val[i] = v;
	return -1;
}

static int u64map_init(struct arena *a, struct u64map *m, size_t n)
{
	size_t cap = table_size(n);

	m->key = alloc0(a, cap, sizeof(*m->key));
	m->val = alloc0(a, cap, sizeof(*m->val));
	m->mask = cap - 1;
	if (!a->err)
		memset(m->val, 0xff, cap * sizeof(*m->val));
	return a->err;
}

static int u64map_get(const struct u64map *m, uint64_t k)
{
	for (size_t i = hash_u64(k) & m->mask;; i = (i + 1) & m->mask) {
		if (m->val[i] < 0)
			return -1;
		if (m->key[i] == k)
			return m->val[i];
	}
}

static void u64map_put(struct u64map *m, uint64_t k, int v)
{
	size_t i;

	for (i = hash_u64(k) & m->mask; m->val[i] >= 0; i = (i + 1) & m->mask)
		if (m->key[i] == k)
			return;
	m->key[i] = k;
	m->val[i] = v;
}

/* Union-find with path halving. */
static int uf_find(int *parent, int x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

static void uf_join(int *parent, int a, int b)
{
	a = uf_find(parent, a);
	b = uf_find(parent, b);
	if (a != b)
		parent[a < b ? b : a] = a < b ? a : b;
}

/* --- the solver's context ---------------------------------------------------- */

/* What the node loop reads for every unit: kept small, free rather than used. */
struct pnode {
	uint64_t free_cpu, free_mem, cap_cpu, cap_mem;
	int dom, rank, clear, cls;
	bool usable;
};

/* Per node and per domain, valid only while nep[]/dep[] equal the context's epoch. */
struct nscr {
	uint32_t pass; /* a marking pass counts a node once */
	int soft;	   /* soft rules broken here (may go negative: soft affinity draws) */
	int hard;	   /* smallest hard rule id forbidding it, NONE */
	int poss;	   /* members for which it is a possible node */
	int pref;	   /* the lead's preferred rank, NONE */
	int stay;	   /* members running here now */
	int pack;	   /* runs the unit's own tier of a tier-separated app */
	int tgroup;	   /* the tier group that made a tier rule block it */
};

struct dscr {
	uint32_t pass;
	int soft, hard;
};

struct unit {
	int first, count; /* members: umem[first..first+count) by name */
	int lead, prio;
	bool sticky, done;
	int fcause, frule; /* why it could not stay (phase 2's explanation) */
};

struct gent {
	int node, next;
};

/*
 * Usable nodes of one capacity and clearance. Within a class "least loaded
 * after placing X" orders the nodes the same way for every X (most memory
 * free, then most vcpus, then name), so a tournament tree finds the best one
 * that fits in O(log n) instead of looking at every node.
 */
struct cls {
	int base, size; /* tree nodes c->tree[base + 1 .. base + 2 * size) */
	int clear;
};

struct tnode {
	int best;	 /* the subtree's best node, -1 none */
	uint64_t maxcpu; /* the most vcpus free in the subtree */
};

struct appscr {
	uint32_t seen, done;
	int g, x, y; /* the unit's tier group in this app; y: a member of another tier */
};

enum cause { C_OK, C_UNUSABLE, C_POSSIBLE, C_CLEARANCE, C_RULE, C_CAPACITY };

struct ctx {
	const struct pl_input *in;
	struct pl_result *out;
	struct arena ar;
	int nn, nv, nr, nd, ng, na, nu;
	struct strmap nodemap, vmmap, rulemap, dommap, appmap;
	struct pnode *node;
	int *node_by_name;
	int *vrank;		   /* VM name rank */
	int *rule_in;		   /* rule id (name order) -> index in input */
	int *rmem_off, *rmem;	   /* rule id -> wanted member VMs, by name */
	int *vrule_off, *vrule;	   /* VM -> its anti-affinity and affinity rule ids */
	int *vposs_off, *vposs;	   /* VM -> possible node indices */
	int *vpref_off, *vpref;	   /* VM -> preferred node indices, in order */
	int *vgroup;		   /* VM -> tier group (app, tier), -1 none */
	int *gvm_off, *gvm;	   /* group -> its VMs; groups sorted by app, then tier */
	int *gapp, *app_goff;	   /* group -> app; app -> its groups (contiguous) */
	int *rapp;		   /* tier rule id -> app, -1 */
	int *arule_off, *arule;	   /* app -> tier rule ids */
	int *ghead, ngent;	   /* group -> nodes where it runs (linked gent) */
	struct gent *gent;
	struct u64map gnode;	   /* (group << 32 | node) -> gent */
	int *vunit, *umem, *uorder;
	struct unit *unit;
	int *vnode;
	struct nscr *ns, blank_ns;
	struct dscr *ds, blank_ds;
	uint32_t *nep, *dep; /* dense, apart from ns/ds: the node loop reads only these */
	int *touched, ntouched;	  /* nodes marked in this epoch */
	int *dtouched, ndtouched; /* domains marked in this epoch */
	int *dom_off, *dom_nodes; /* domain -> its nodes */
	struct cls *cls;
	int ncls, *leaf;	  /* node -> its leaf in tree[], -1 unusable */
	struct tnode *tree;
	struct appscr *as;
	uint32_t ep, pass, *rseen, *rhit;
	int *hits;
};

struct ueval {
	int u;
	uint64_t cpu, mem;
	int maxclass, need_poss, nsticky, base;
	int bad_rule, bad_x, bad_y;	/* a hard rule the unit breaks by itself */
	int aff_rule, aff_node, aff_vm; /* a soft affinity rule drawing it to one node */
};

struct cand {
	int n, moves, soft, pref, pack, rank;
	double load; /* memory free after, as a fraction: decides most comparisons */
	uint64_t fcpu, ccpu, fmem, cmem;
};

static const struct pl_rule *rule_of(const struct ctx *c, int rid)
{
	return &c->in->rules[c->rule_in[rid]];
}

static const struct pl_vm *vm_of(const struct ctx *c, int v)
{
	return &c->in->vms[v];
}

static const char *node_name(const struct ctx *c, int n)
{
	return c->in->nodes[n].name;
}

static bool is_sticky(const struct ctx *c, int v)
{
	int cur = vm_of(c, v)->current;

	return cur >= 0 && c->node[cur].usable;
}

/* More memory free, then more vcpus, then the name; -1 (no node) loses. */
static bool roomier(const struct ctx *c, int a, int b)
{
	const struct pnode *x, *y;

	if (a < 0 || b < 0)
		return b < 0 && a >= 0;
	x = &c->node[a];
	y = &c->node[b];
	if (x->free_mem != y->free_mem)
		return x->free_mem > y->free_mem;
	if (x->free_cpu != y->free_cpu)
		return x->free_cpu > y->free_cpu;
	return x->rank < y->rank;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t scale_pct(uint64_t v, unsigned int pct)
{
	unsigned __int128 x = (unsigned __int128)v * (pct ? pct : 100) / 100;

	return x > UINT64_MAX ? UINT64_MAX : (uint64_t)x;
}


/* --- input checks -------------------------------------------------------------- */

static bool names_ok(const char *const *names, size_t n)
{
	if (n && !names)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!names[i])
			return false;
	return true;
}

/* Sums of list lengths become int offsets: refuse what would not fit. */
static bool lists_fit(const struct pl_input *in)
{
	size_t pref = 0, poss = 0, mem = 0;

	for (size_t i = 0; i < in->nvms; i++) {
		pref += in->vms[i].npreferred;
		poss += in->vms[i].npossible;
	}
	for (size_t i = 0; i < in->nrules; i++)
		mem += in->rules[i].nvms;
	return pref <= INT_MAX / 4 && poss <= INT_MAX / 4 && mem <= INT_MAX / 4;
}

static int check_input(const struct pl_input *in)
{
	if ((in->nnodes && !in->nodes) || (in->nvms && !in->vms) || (in->nrules && !in->rules))
		return -EINVAL;
	if (in->nnodes > INT_MAX / 4 || in->nvms > INT_MAX / 4 || in->nrules > INT_MAX / 4)
		return -EINVAL;
	if (in->params.cpu_overcommit_pct > PCT_MAX || in->params.mem_overcommit_pct > PCT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < in->nnodes; i++) {
		const struct pl_node *n = &in->nodes[i];

		if (!n->name || !*n->name || n->clearance < 0 || n->clearance > CLASS_MAX ||
		    n->memory_mb > MEMORY_MAX)
			return -EINVAL;
	}
	for (size_t i = 0; i < in->nvms; i++) {
		const struct pl_vm *v = &in->vms[i];

		if (!v->name || !*v->name || v->classification < 0 ||
		    v->classification > CLASS_MAX || v->memory_mb > MEMORY_MAX)
			return -EINVAL;
		if (v->priority < 0 || v->priority > 2)
			return -EINVAL;
		if (v->current < -1 || (v->current >= 0 && (size_t)v->current >= in->nnodes))
			return -EINVAL;
		if (!names_ok(v->preferred, v->npreferred) || !names_ok(v->possible, v->npossible))
			return -EINVAL;
	}
	for (size_t i = 0; i < in->nrules; i++) {
		const struct pl_rule *r = &in->rules[i];

		if (!r->name || !*r->name || (unsigned int)r->type > PL_RULE_TIER_SEPARATION)
			return -EINVAL;
		if ((unsigned int)r->scope > PL_SCOPE_DOMAIN || !names_ok(r->vms, r->nvms))
			return -EINVAL;
		if (r->type == PL_RULE_TIER_SEPARATION && !*str(r->app))
			return -EINVAL;
	}
	return lists_fit(in) ? 0 : -EINVAL;
}

/* --- building the context -------------------------------------------------------- */

static int cmp_node_name(const void *a, const void *b, void *arg)
{
	const struct pl_node *n = arg;

	return strcmp(n[*(const int *)a].name, n[*(const int *)b].name);
}

static int cmp_vm_name(const void *a, const void *b, void *arg)
{
	const struct pl_vm *v = arg;

	return strcmp(v[*(const int *)a].name, v[*(const int *)b].name);
}

static int cmp_rule_name(const void *a, const void *b, void *arg)
{
	const struct pl_rule *r = arg;

	return strcmp(r[*(const int *)a].name, r[*(const int *)b].name);
}

static int cmp_by_rank(const void *a, const void *b, void *arg)
{
	const int *rank = arg;

	return rank[*(const int *)a] - rank[*(const int *)b];
}

static int cmp_tier(const void *a, const void *b, void *arg)
{
	const struct pl_vm *x = &((const struct pl_vm *)arg)[*(const int *)a];
	const struct pl_vm *y = &((const struct pl_vm *)arg)[*(const int *)b];
	int d = strcmp(x->app, y->app);

	return d ? d : strcmp(x->tier, y->tier);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int build_nodes(struct ctx *c)
{
	const struct pl_input *in = c->in;

	c->node = alloc0(&c->ar, (size_t)c->nn, sizeof(*c->node));
	c->node_by_name = alloc0(&c->ar, (size_t)c->nn, sizeof(int));
	if (strmap_init(&c->ar, &c->nodemap, c->nn) || strmap_init(&c->ar, &c->dommap, c->nn))
		return c->ar.err;
	for (int i = 0; i < c->nn; i++) {
		const struct pl_node *n = &in->nodes[i];
		struct pnode *p = &c->node[i];

		if (strmap_put(&c->nodemap, n->name, i) >= 0)
			return -EINVAL;
		p->free_cpu = p->cap_cpu = scale_pct(n->vcpus, in->params.cpu_overcommit_pct);
		p->free_mem = p->cap_mem = scale_pct(n->memory_mb, in->params.mem_overcommit_pct);
		p->clear = n->clearance;
		p->usable = n->usable;
		/* a node without a domain is a domain of its own */
		p->dom = *str(n->domain) ? strmap_put(&c->dommap, n->domain, c->nd) : -1;
		if (p->dom < 0)
			p->dom = c->nd++;
		c->node_by_name[i] = i;
	}
	qsort_r(c->node_by_name, (size_t)c->nn, sizeof(int), cmp_node_name, (void *)in->nodes);
	for (int i = 0; i < c->nn; i++)
		c->node[c->node_by_name[i]].rank = i;
	return 0;
}

/* Node names to indices, CSR style; names of unknown nodes never match. */
static int resolve_nodes(struct ctx *c, bool preferred, int **off_out, int **idx_out)
{
	int total = 0, *off, *idx;

	for (int v = 0; v < c->nv; v++)
		total += (int)(preferred ? vm_of(c, v)->npreferred : vm_of(c, v)->npossible);
	off = *off_out = alloc0(&c->ar, (size_t)c->nv + 1, sizeof(int));
	idx = *idx_out = alloc0(&c->ar, (size_t)total, sizeof(int));
	if (c->ar.err)
		return c->ar.err;
	for (int v = 0, k = 0; v < c->nv; v++) {
		const struct pl_vm *vm = vm_of(c, v);
		const char *const *names = preferred ? vm->preferred : vm->possible;
		size_t n = preferred ? vm->npreferred : vm->npossible;

		for (size_t i = 0; i < n; i++) {
			int node = strmap_get(&c->nodemap, names[i]);

			if (node >= 0)
				idx[k++] = node;
		}
		off[v + 1] = k;
	}
	return 0;
}

static int build_vms(struct ctx *c)
{
	int *order = alloc0(&c->ar, (size_t)c->nv, sizeof(int));

	c->vrank = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	c->vnode = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	if (strmap_init(&c->ar, &c->vmmap, c->nv))
		return c->ar.err;
	for (int v = 0; v < c->nv; v++) {
		order[v] = v;
		c->vnode[v] = -1;
		if (strmap_put(&c->vmmap, vm_of(c, v)->name, v) >= 0)
			return -EINVAL;
	}
	qsort_r(order, (size_t)c->nv, sizeof(int), cmp_vm_name, (void *)c->in->vms);
	for (int i = 0; i < c->nv; i++)
		c->vrank[order[i]] = i;
	if (resolve_nodes(c, false, &c->vposs_off, &c->vposs))
		return c->ar.err;
	return resolve_nodes(c, true, &c->vpref_off, &c->vpref);
}

/* Counts in off[1..n] become offsets; returns a fill cursor per slot (NULL: a->err). */
static int *csr_cursor(struct arena *a, int *off, int n)
{
	int *pos;

	for (int i = 0; i < n; i++)
		off[i + 1] += off[i];
	pos = alloc0(a, (size_t)n, sizeof(int));
	if (pos)
		memcpy(pos, off, (size_t)n * sizeof(int));
	return pos;
}

/* Rule ids in name order; members: wanted VMs that exist, each once, by name. */
static int build_rules(struct ctx *c)
{
	const struct pl_input *in = c->in;
	int total = 0, k = 0, *pos;

	c->rule_in = alloc0(&c->ar, (size_t)c->nr, sizeof(int));
	c->rmem_off = alloc0(&c->ar, (size_t)c->nr + 1, sizeof(int));
	c->vrule_off = alloc0(&c->ar, (size_t)c->nv + 1, sizeof(int));
	c->rseen = alloc0(&c->ar, (size_t)c->nr, sizeof(uint32_t));
	c->rhit = alloc0(&c->ar, (size_t)c->nr, sizeof(uint32_t));
	c->hits = alloc0(&c->ar, (size_t)c->nr, sizeof(int));
	if (strmap_init(&c->ar, &c->rulemap, c->nr))
		return c->ar.err;
	for (int i = 0; i < c->nr; i++) {
		if (strmap_put(&c->rulemap, in->rules[i].name, i) >= 0)
			return -EINVAL;
		c->rule_in[i] = i;
		total += (int)in->rules[i].nvms;
	}
	qsort_r(c->rule_in, (size_t)c->nr, sizeof(int), cmp_rule_name, (void *)in->rules);
	c->rmem = alloc0(&c->ar, (size_t)total, sizeof(int));
	if (c->ar.err)
		return c->ar.err;
	for (int rid = 0; rid < c->nr; rid++) {
		const struct pl_rule *r = rule_of(c, rid);
		int start = k, w = k;

		for (size_t i = 0; r->type != PL_RULE_TIER_SEPARATION && i < r->nvms; i++) {
			int v = strmap_get(&c->vmmap, r->vms[i]);

			/* a rule may outlive a VM; an unwanted VM is bound by nothing */
			if (v >= 0 && vm_of(c, v)->wanted)
				c->rmem[k++] = v;
		}
		qsort_r(c->rmem + start, (size_t)(k - start), sizeof(int), cmp_by_rank, c->vrank);
		for (int i = start; i < k; i++) /* a VM named twice counts once */
			if (i == start || c->rmem[i] != c->rmem[w - 1])
				c->rmem[w++] = c->rmem[i];
		k = c->rmem_off[rid + 1] = w;
		for (int i = start; i < k; i++)
			c->vrule_off[c->rmem[i] + 1]++;
	}
	/* VM -> rules, in rule id order */
	c->vrule = alloc0(&c->ar, (size_t)k, sizeof(int));
	pos = csr_cursor(&c->ar, c->vrule_off, c->nv);
	if (c->ar.err)
		return c->ar.err;
	for (int rid = 0; rid < c->nr; rid++)
		for (int i = c->rmem_off[rid]; i < c->rmem_off[rid + 1]; i++)
			c->vrule[pos[c->rmem[i]]++] = rid;
	return 0;
}

/* Tier groups (app, tier) of wanted VMs, in name order; apps in name order. */
static int build_tiers(struct ctx *c)
{
	const struct pl_vm *vms = c->in->vms;
	int n = 0, *order, *pos;

	order = c->gvm = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	c->vgroup = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	c->gvm_off = alloc0(&c->ar, (size_t)c->nv + 1, sizeof(int));
	c->gapp = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	c->app_goff = alloc0(&c->ar, (size_t)c->nv + 1, sizeof(int));
	c->rapp = alloc0(&c->ar, (size_t)c->nr, sizeof(int));
	c->arule_off = alloc0(&c->ar, (size_t)c->nv + 1, sizeof(int));
	c->arule = alloc0(&c->ar, (size_t)c->nr, sizeof(int));
	if (strmap_init(&c->ar, &c->appmap, c->nv))
		return c->ar.err;
	for (int v = 0; v < c->nv; v++) {
		c->vgroup[v] = -1;
		/* a VM without a tier is in none: tier separation does not bind it */
		if (vms[v].wanted && *str(vms[v].app) && *str(vms[v].tier))
			order[n++] = v;
	}
	qsort_r(order, (size_t)n, sizeof(int), cmp_tier, (void *)vms);
	for (int i = 0; i < n; i++) {
		const struct pl_vm *v = &vms[order[i]], *p = i ? &vms[order[i - 1]] : NULL;
		bool new_app = !p || strcmp(p->app, v->app);

		if (new_app) {
			strmap_put(&c->appmap, v->app, c->na);
			c->app_goff[c->na++] = c->ng;
		}
		if (new_app || strcmp(p->tier, v->tier)) {
			c->gvm_off[c->ng] = i;
			c->gapp[c->ng++] = c->na - 1;
		}
		c->vgroup[order[i]] = c->ng - 1;
	}
	c->gvm_off[c->ng] = n;
	c->app_goff[c->na] = c->ng;
	/* app -> tier rules, in rule id order */
	for (int rid = 0; rid < c->nr; rid++) {
		const struct pl_rule *r = rule_of(c, rid);

		c->rapp[rid] = -1;
		if (r->type == PL_RULE_TIER_SEPARATION)
			c->rapp[rid] = strmap_get(&c->appmap, r->app);
		if (c->rapp[rid] >= 0)
			c->arule_off[c->rapp[rid] + 1]++;
	}
	pos = csr_cursor(&c->ar, c->arule_off, c->na);
	c->ghead = alloc0(&c->ar, (size_t)c->ng, sizeof(int));
	c->gent = alloc0(&c->ar, (size_t)c->nv, sizeof(*c->gent));
	c->as = alloc0(&c->ar, (size_t)c->na, sizeof(*c->as));
	if (u64map_init(&c->ar, &c->gnode, c->nv))
		return c->ar.err;
	for (int rid = 0; rid < c->nr; rid++)
		if (c->rapp[rid] >= 0)
			c->arule[pos[c->rapp[rid]]++] = rid;
	for (int g = 0; g < c->ng; g++)
		c->ghead[g] = -1;
	return 0;
}

static int cmp_unit(const void *a, const void *b, void *arg)
{
	const struct ctx *c = arg;
	const struct unit *x = &c->unit[*(const int *)a], *y = &c->unit[*(const int *)b];

	if (x->prio != y->prio)
		return y->prio - x->prio;
	return c->vrank[x->lead] - c->vrank[y->lead];
}

/* Hard affinity joins VMs into units; members by name, the lead first by priority. */
static int build_units(struct ctx *c)
{
	int *parent = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	int *uid = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	int *byname = alloc0(&c->ar, (size_t)c->nv, sizeof(int));

	c->vunit = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	c->unit = alloc0(&c->ar, (size_t)c->nv, sizeof(*c->unit));
	c->umem = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	c->uorder = alloc0(&c->ar, (size_t)c->nv, sizeof(int));
	if (c->ar.err)
		return c->ar.err;
	for (int v = 0; v < c->nv; v++) {
		parent[v] = v;
		uid[v] = c->vunit[v] = -1;
		byname[c->vrank[v]] = v;
	}
	for (int rid = 0; rid < c->nr; rid++) {
		const struct pl_rule *r = rule_of(c, rid);

		if (r->type != PL_RULE_AFFINITY || !r->hard)
			continue;
		for (int i = c->rmem_off[rid] + 1; i < c->rmem_off[rid + 1]; i++)
			uf_join(parent, c->rmem[c->rmem_off[rid]], c->rmem[i]);
	}
	for (int k = 0; k < c->nv; k++) {
		int v = byname[k], root = uf_find(parent, v);

		if (!vm_of(c, v)->wanted)
			continue;
		if (uid[root] < 0) {
			uid[root] = c->nu++;
			c->unit[uid[root]].lead = v;
		}
		c->vunit[v] = uid[root];
		c->unit[uid[root]].count++;
	}
	for (int u = 1; u < c->nu; u++)
		c->unit[u].first = c->unit[u - 1].first + c->unit[u - 1].count;
	for (int u = 0; u < c->nu; u++)
		uid[u] = c->unit[u].first; /* from here on a fill cursor per unit */
	for (int k = 0; k < c->nv; k++) {
		int v = byname[k], u = c->vunit[v];
		struct unit *un = u < 0 ? NULL : &c->unit[u];

		if (!un)
			continue;
		c->umem[uid[u]++] = v;
		if (vm_of(c, v)->priority > vm_of(c, un->lead)->priority)
			un->lead = v;
		un->prio = vm_of(c, un->lead)->priority;
		un->sticky |= is_sticky(c, v);
	}
	for (int u = 0; u < c->nu; u++)
		c->uorder[u] = u;
	qsort_r(c->uorder, (size_t)c->nu, sizeof(int), cmp_unit, c);
	return 0;
}

static int build_scratch(struct ctx *c)
{
	c->ns = alloc0(&c->ar, (size_t)c->nn, sizeof(*c->ns));
	c->ds = alloc0(&c->ar, (size_t)c->nd, sizeof(*c->ds));
	c->nep = alloc0(&c->ar, (size_t)c->nn, sizeof(*c->nep));
	c->dep = alloc0(&c->ar, (size_t)c->nd, sizeof(*c->dep));
	c->touched = alloc0(&c->ar, (size_t)c->nn, sizeof(int));
	c->dtouched = alloc0(&c->ar, (size_t)c->nd, sizeof(int));
	c->blank_ns.hard = c->blank_ns.pref = NONE;
	c->blank_ns.tgroup = -1;
	c->blank_ds.hard = NONE;
	return c->ar.err;
}

static int cmp_class(const void *a, const void *b, void *arg)
{
	const struct pnode *x = &((const struct pnode *)arg)[*(const int *)a];
	const struct pnode *y = &((const struct pnode *)arg)[*(const int *)b];

	if (x->cap_cpu != y->cap_cpu)
		return x->cap_cpu < y->cap_cpu ? -1 : 1;
	if (x->cap_mem != y->cap_mem)
		return x->cap_mem < y->cap_mem ? -1 : 1;
	return x->clear != y->clear ? x->clear - y->clear : x->rank - y->rank;
}

static void tree_pull(struct ctx *c, int base, int t)
{
	struct tnode *x = &c->tree[base + t];
	const struct tnode *l = &c->tree[base + 2 * t], *r = &c->tree[base + 2 * t + 1];

	x->best = roomier(c, r->best, l->best) ? r->best : l->best;
	x->maxcpu = l->maxcpu > r->maxcpu ? l->maxcpu : r->maxcpu;
}

/* Node @n's free capacity changed: walk up its class's tree. */
static void tree_update(struct ctx *c, int n)
{
	const struct cls *k;
	int t;

	if (c->leaf[n] < 0)
		return;
	k = &c->cls[c->node[n].cls];
	t = c->leaf[n] - k->base;
	c->tree[c->leaf[n]].maxcpu = c->node[n].free_cpu;
	for (t >>= 1; t >= 1; t >>= 1)
		tree_pull(c, k->base, t);
}

/* Classes of usable nodes with their trees; each domain's nodes. */
static int build_index(struct ctx *c)
{
	int n = 0, total = 0, *pos, *order = alloc0(&c->ar, (size_t)c->nn, sizeof(int));

	c->leaf = alloc0(&c->ar, (size_t)c->nn, sizeof(int));
	c->cls = alloc0(&c->ar, (size_t)c->nn, sizeof(*c->cls));
	c->dom_off = alloc0(&c->ar, (size_t)c->nd + 1, sizeof(int));
	c->dom_nodes = alloc0(&c->ar, (size_t)c->nn, sizeof(int));
	if (c->ar.err)
		return c->ar.err;
	for (int i = 0; i < c->nn; i++) {
		c->leaf[i] = -1;
		c->dom_off[c->node[i].dom + 1]++;
		if (c->node[i].usable)
			order[n++] = i;
	}
	pos = csr_cursor(&c->ar, c->dom_off, c->nd);
	if (!pos)
		return c->ar.err;
	for (int i = 0; i < c->nn; i++)
		c->dom_nodes[pos[c->node[i].dom]++] = i;
	qsort_r(order, (size_t)n, sizeof(int), cmp_class, c->node);
	for (int i = 0, j; i < n; i = j) {
		struct cls *k = &c->cls[c->ncls++];

		for (j = i + 1; j < n; j++) {
			const struct pnode *x = &c->node[order[i]], *y = &c->node[order[j]];

			if (x->cap_cpu != y->cap_cpu || x->cap_mem != y->cap_mem ||
			    x->clear != y->clear)
				break;
		}
		for (k->size = 1; k->size < j - i; k->size <<= 1)
			;
		k->base = total;
		k->clear = c->node[order[i]].clear;
		total += 2 * k->size;
		for (int m = i; m < j; m++) {
			c->node[order[m]].cls = (int)(k - c->cls);
			c->leaf[order[m]] = k->base + k->size + m - i;
		}
	}
	c->tree = alloc0(&c->ar, (size_t)total, sizeof(*c->tree));
	if (!c->tree)
		return c->ar.err;
	for (int t = 0; t < total; t++)
		c->tree[t].best = -1;
	for (int i = 0; i < n; i++) {
		c->tree[c->leaf[order[i]]].best = order[i];
		c->tree[c->leaf[order[i]]].maxcpu = c->node[order[i]].free_cpu;
	}
	for (int k = 0; k < c->ncls; k++)
		for (int t = c->cls[k].size - 1; t >= 1; t--)
			tree_pull(c, c->cls[k].base, t);
	return 0;
}

/* --- evaluating a unit ------------------------------------------------------------- */

/* Forget every mark: the scratch of an older epoch reads as blank. */
static void new_epoch(struct ctx *c)
{
	c->ep++;
	c->ntouched = c->ndtouched = 0;
}

static struct nscr *touch(struct ctx *c, int n)
{
	if (c->nep[n] != c->ep) {
		c->ns[n] = c->blank_ns;
		c->nep[n] = c->ep;
		c->touched[c->ntouched++] = n;
	}
	return &c->ns[n];
}

static struct dscr *dtouch(struct ctx *c, int d)
{
	if (c->dep[d] != c->ep) {
		c->ds[d] = c->blank_ds;
		c->dep[d] = c->ep;
		c->dtouched[c->ndtouched++] = d;
	}
	return &c->ds[d];
}

static const struct nscr *peek(const struct ctx *c, int n)
{
	return c->nep[n] == c->ep ? &c->ns[n] : &c->blank_ns;
}

static const struct dscr *dpeek(const struct ctx *c, int d)
{
	return c->dep[d] == c->ep ? &c->ds[d] : &c->blank_ds;
}

/* A hard rule blocks the node (the smallest id names it); a soft one counts once per pass. */
static void mark_node(struct ctx *c, int n, int rid, bool hard, int tg)
{
	struct nscr *s = touch(c, n);

	if (hard) {
		if (rid < s->hard) {
			s->hard = rid;
			s->tgroup = tg;
		}
	} else if (s->pass != c->pass) {
		s->pass = c->pass;
		s->soft++;
	}
}

static void mark_domain(struct ctx *c, int d, int rid, bool hard)
{
	struct dscr *s = dtouch(c, d);

	if (hard) {
		if (rid < s->hard)
			s->hard = rid;
	} else if (s->pass != c->pass) {
		s->pass = c->pass;
		s->soft++;
	}
}

static void unit_breaks(struct ueval *ev, int rid, bool hard, int x, int y)
{
	if (!hard)
		ev->base++;
	else if (rid < ev->bad_rule) {
		ev->bad_rule = rid;
		ev->bad_x = x;
		ev->bad_y = y;
	}
}

static void eval_anti(struct ctx *c, struct ueval *ev, int rid)
{
	const struct pl_rule *r = rule_of(c, rid);
	int inside = 0, x = -1, y = -1;

	for (int i = c->rmem_off[rid]; i < c->rmem_off[rid + 1]; i++) {
		if (c->vunit[c->rmem[i]] != ev->u)
			continue;
		if (inside++ == 0)
			x = c->rmem[i];
		else if (inside == 2)
			y = c->rmem[i];
	}
	if (inside >= 2) { /* two of its own members: every node breaks it */
		unit_breaks(ev, rid, r->hard, x, y);
		return;
	}
	c->pass++;
	for (int i = c->rmem_off[rid]; i < c->rmem_off[rid + 1]; i++) {
		int n = c->vnode[c->rmem[i]];

		if (n < 0)
			continue;
		if (r->scope == PL_SCOPE_DOMAIN)
			mark_domain(c, c->node[n].dom, rid, r->hard);
		else
			mark_node(c, n, rid, r->hard, -1);
	}
}

/* Soft affinity: every node but the one its placed members share breaks it. */
static void eval_affinity(struct ctx *c, struct ueval *ev, int rid)
{
	int where = -1, who = -1;

	for (int i = c->rmem_off[rid]; i < c->rmem_off[rid + 1]; i++) {
		int m = c->rmem[i], n = c->vnode[m];

		if (n < 0)
			continue;
		if (where < 0) {
			where = n;
			who = m;
		} else if (n != where) {
			ev->base++; /* broken already, wherever this unit goes */
			return;
		}
	}
	if (where < 0)
		return;
	ev->base++;
	touch(c, where)->soft--;
	if (rid < ev->aff_rule) {
		ev->aff_rule = rid;
		ev->aff_node = where;
		ev->aff_vm = who;
	}
}

static void eval_tier_rules(struct ctx *c, struct ueval *ev, int app, const struct appscr *a)
{
	for (int k = c->arule_off[app]; k < c->arule_off[app + 1]; k++) {
		int rid = c->arule[k];
		bool hard = rule_of(c, rid)->hard;

		if (a->y >= 0) { /* the unit itself holds two tiers of the app */
			unit_breaks(ev, rid, hard, a->x, a->y);
			continue;
		}
		c->pass++;
		for (int g = c->app_goff[app]; g < c->app_goff[app + 1]; g++) {
			if (g == a->g)
				continue;
			for (int e = c->ghead[g]; e >= 0; e = c->gent[e].next)
				mark_node(c, c->gent[e].node, rid, hard, g);
		}
	}
}

/*
 * A tier placed on a node takes that node away from the app's other tiers:
 * packing a tier onto the nodes it already holds keeps nodes free for them
 * (three tiers on three nodes fit only that way).
 */
static void pack_tier(struct ctx *c, int app, const struct appscr *a)
{
	if (a->y >= 0 || c->arule_off[app] == c->arule_off[app + 1])
		return;
	for (int e = c->ghead[a->g]; e >= 0; e = c->gent[e].next)
		touch(c, c->gent[e].node)->pack = 1;
}

static void eval_tiers(struct ctx *c, struct ueval *ev)
{
	const struct unit *un = &c->unit[ev->u];
	const int *mem = c->umem + un->first;

	for (int i = 0; i < un->count; i++) {
		int g = c->vgroup[mem[i]];
		struct appscr *a;

		if (g < 0)
			continue;
		a = &c->as[c->gapp[g]];
		if (a->seen != c->ep) {
			a->seen = c->ep;
			a->g = g;
			a->x = mem[i];
			a->y = -1;
		} else if (g != a->g && a->y < 0) {
			a->y = mem[i];
		}
	}
	for (int i = 0; i < un->count; i++) {
		int g = c->vgroup[mem[i]];

		if (g < 0 || c->as[c->gapp[g]].done == c->ep)
			continue;
		c->as[c->gapp[g]].done = c->ep;
		eval_tier_rules(c, ev, c->gapp[g], &c->as[c->gapp[g]]);
		pack_tier(c, c->gapp[g], &c->as[c->gapp[g]]);
	}
}

/* Mark, for this unit only, what every node offers and forbids. */
static void unit_prepare(struct ctx *c, struct ueval *ev, int u)
{
	const struct unit *un = &c->unit[u];
	const int *mem = c->umem + un->first;

	memset(ev, 0, sizeof(*ev));
	ev->u = u;
	ev->bad_rule = ev->aff_rule = NONE;
	ev->bad_x = ev->bad_y = ev->aff_node = ev->aff_vm = -1;
	new_epoch(c);
	for (int i = 0; i < un->count; i++) {
		const struct pl_vm *vm = vm_of(c, mem[i]);

		ev->cpu += vm->vcpus;
		ev->mem = sat_add(ev->mem, vm->memory_mb);
		if (vm->classification > ev->maxclass)
			ev->maxclass = vm->classification;
		if (is_sticky(c, mem[i])) {
			ev->nsticky++;
			touch(c, vm->current)->stay++;
		}
		if (!vm->npossible)
			continue;
		ev->need_poss++;
		c->pass++;
		for (int k = c->vposs_off[mem[i]]; k < c->vposs_off[mem[i] + 1]; k++) {
			struct nscr *s = touch(c, c->vposs[k]);

			if (s->pass != c->pass) {
				s->pass = c->pass;
				s->poss++;
			}
		}
	}
	for (int k = c->vpref_off[un->lead]; k < c->vpref_off[un->lead + 1]; k++) {
		struct nscr *s = touch(c, c->vpref[k]);

		if (k - c->vpref_off[un->lead] < s->pref)
			s->pref = k - c->vpref_off[un->lead];
	}
	for (int i = 0; i < un->count; i++) {
		for (int k = c->vrule_off[mem[i]]; k < c->vrule_off[mem[i] + 1]; k++) {
			int rid = c->vrule[k];
			const struct pl_rule *r = rule_of(c, rid);

			if (c->rseen[rid] == c->ep)
				continue;
			c->rseen[rid] = c->ep;
			if (r->type == PL_RULE_ANTI_AFFINITY)
				eval_anti(c, ev, rid);
			else if (!r->hard) /* hard affinity is the unit itself */
				eval_affinity(c, ev, rid);
		}
	}
	eval_tiers(c, ev);
}

/* The first hard constraint node @n breaks for the unit, C_OK if none. */
static enum cause node_cause(const struct ctx *c, const struct ueval *ev, int n, int *rid)
{
	const struct pnode *p = &c->node[n];
	const struct nscr *s = peek(c, n);
	const struct dscr *d = dpeek(c, p->dom);

	if (!p->usable)
		return C_UNUSABLE;
	if (ev->need_poss && s->poss != ev->need_poss)
		return C_POSSIBLE;
	if (p->clear < ev->maxclass)
		return C_CLEARANCE;
	*rid = s->hard < d->hard ? s->hard : d->hard;
	if (*rid != NONE)
		return C_RULE;
	if (ev->cpu > p->free_cpu || ev->mem > p->free_mem)
		return C_CAPACITY;
	return C_OK;
}

/* a/ca against b/cb without dividing; no capacity counts as nothing free. */
static int frac_cmp(uint64_t a, uint64_t ca, uint64_t b, uint64_t cb)
{
	unsigned __int128 l = (unsigned __int128)a * (cb ? cb : 1);
	unsigned __int128 r = (unsigned __int128)b * (ca ? ca : 1);

	return l > r ? 1 : l < r ? -1 : 0;
}

/*
 * Division is correctly rounded, hence monotonic: different doubles order the
 * fractions right; equal ones may hide a difference below one ulp, which the
 * exact comparison settles. Most comparisons never get that far.
 */
static double frac(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0.0;
}

static bool better(const struct cand *a, const struct cand *b)
{
	int f;

	if (a->moves != b->moves)
		return a->moves < b->moves;
	if (a->soft != b->soft)
		return a->soft < b->soft;
	if (a->pref != b->pref)
		return a->pref < b->pref;
	if (a->pack != b->pack)
		return a->pack > b->pack;
	if (a->load != b->load)
		return a->load > b->load;
	f = frac_cmp(a->fmem, a->cmem, b->fmem, b->cmem);
	if (!f)
		f = frac_cmp(a->fcpu, a->ccpu, b->fcpu, b->ccpu);
	return f ? f > 0 : a->rank < b->rank;
}

struct choice {
	struct cand best;
	int ncand;   /* nodes that fit, at least; exact when 0 or 1 */
	int maxsoft; /* the most soft rules a node that fits breaks */
};

/* Node @n as a home for the unit: counted and kept if it fits and beats the best so far. */
static void consider(const struct ctx *c, const struct ueval *ev, struct choice *ch, int n)
{
	const struct pnode *p = &c->node[n];
	const struct nscr *s = peek(c, n);
	const struct dscr *d = dpeek(c, p->dom);
	struct cand k;

	if (!p->usable || p->clear < ev->maxclass || ev->cpu > p->free_cpu || ev->mem > p->free_mem)
		return;
	if ((ev->need_poss && s->poss != ev->need_poss) || s->hard != NONE || d->hard != NONE)
		return;
	k = (struct cand){ .n = n, .moves = ev->nsticky - s->stay, .pref = s->pref,
			   .soft = ev->base + s->soft + d->soft, .pack = s->pack, .rank = p->rank,
			   .fcpu = p->free_cpu - ev->cpu, .ccpu = p->cap_cpu,
			   .fmem = p->free_mem - ev->mem, .cmem = p->cap_mem };
	k.load = frac(k.fmem, k.cmem);
	if (k.soft > ch->maxsoft)
		ch->maxsoft = k.soft;
	if (!ch->ncand++ || better(&k, &ch->best))
		ch->best = k;
}

static bool fits_unmarked(const struct ctx *c, int n, uint64_t cpu, uint64_t mem)
{
	const struct pnode *p = &c->node[n];

	return p->free_cpu >= cpu && p->free_mem >= mem && c->nep[n] != c->ep &&
	       c->dep[p->dom] != c->ep;
}

/*
 * The roomiest node of a class that fits and that nothing marked for this unit
 * (so its key differs from its class mates' by load alone), except @skip.
 * Branch and bound: a subtree whose best node is no roomier than @found, or
 * that lacks the memory or vcpus, is not entered.
 */
static int tree_best(const struct ctx *c, const struct cls *k, int t, const struct ueval *ev,
		     int skip, int found)
{
	const struct tnode *x = &c->tree[k->base + t];
	int b = x->best, l = 2 * t, r = 2 * t + 1;

	if (b < 0 || c->node[b].free_mem < ev->mem || x->maxcpu < ev->cpu ||
	    (found >= 0 && !roomier(c, b, found)))
		return found;
	if (b != skip && fits_unmarked(c, b, ev->cpu, ev->mem))
		return b;
	if (t >= k->size)
		return found;
	if (roomier(c, c->tree[k->base + r].best, c->tree[k->base + l].best)) {
		l = r;
		r = 2 * t;
	}
	found = tree_best(c, k, l, ev, skip, found);
	return tree_best(c, k, r, ev, skip, found);
}

/*
 * The best home for the unit. Nodes its rules, preferences or members marked
 * are weighed one by one; among the others only load differs, and each class
 * tree offers its roomiest. O(marked + classes x log n) per unit, not O(n).
 */
static bool choose(const struct ctx *c, const struct ueval *ev, struct choice *ch)
{
	int any = -1;

	memset(ch, 0, sizeof(*ch));
	ch->maxsoft = INT_MIN;
	if (ev->bad_rule != NONE)
		return false;
	for (int i = 0; i < c->ntouched; i++)
		consider(c, ev, ch, c->touched[i]);
	for (int i = 0; i < c->ndtouched; i++) {
		int d = c->dtouched[i];

		for (int j = c->dom_off[d]; j < c->dom_off[d + 1]; j++)
			if (c->nep[c->dom_nodes[j]] != c->ep)
				consider(c, ev, ch, c->dom_nodes[j]);
	}
	for (int k = 0; !ev->need_poss && k < c->ncls; k++) {
		const struct cls *cl = &c->cls[k];
		int b = cl->clear >= ev->maxclass ? tree_best(c, cl, 1, ev, -1, -1) : -1;

		if (b >= 0) {
			any = b;
			consider(c, ev, ch, b);
		}
	}
	/* "the only node that fits" must be true: look for a second one */
	for (int k = 0; ch->ncand == 1 && any >= 0 && k < c->ncls; k++) {
		const struct cls *cl = &c->cls[k];

		if (cl->clear >= ev->maxclass && tree_best(c, cl, 1, ev, any, -1) >= 0)
			ch->ncand++;
	}
	return ch->ncand > 0;
}

static void place(struct ctx *c, const struct ueval *ev, int n)
{
	struct unit *un = &c->unit[ev->u];

	for (int i = 0; i < un->count; i++) {
		int v = c->umem[un->first + i], g = c->vgroup[v];
		uint64_t key = (uint64_t)g << 32 | (uint32_t)n;

		c->vnode[v] = n;
		c->out[v].node = n;
		c->out[v].moved = is_sticky(c, v) && vm_of(c, v)->current != n;
		if (g < 0 || u64map_get(&c->gnode, key) >= 0)
			continue;
		c->gent[c->ngent] = (struct gent){ .node = n, .next = c->ghead[g] };
		c->ghead[g] = c->ngent;
		u64map_put(&c->gnode, key, c->ngent++);
	}
	c->node[n].free_cpu -= ev->cpu;
	c->node[n].free_mem -= ev->mem;
	tree_update(c, n);
	un->done = true;
}

/* --- explaining ---------------------------------------------------------------------- */

static int first_hard_affinity(const struct ctx *c, int v)
{
	for (int k = c->vrule_off[v]; k < c->vrule_off[v + 1]; k++) {
		const struct pl_rule *r = rule_of(c, c->vrule[k]);

		if (r->type == PL_RULE_AFFINITY && r->hard)
			return c->vrule[k];
	}
	return NONE;
}

static const char *affinity_name(const struct ctx *c, int v)
{
	int rid = first_hard_affinity(c, v);

	return rid == NONE ? "?" : rule_of(c, rid)->name;
}

static unsigned int pct(uint64_t part, uint64_t whole)
{
	return whole ? (unsigned int)((unsigned __int128)part * 100 / whole) : 0;
}

static void explain_stay(struct ctx *c, int u, int n)
{
	const struct unit *un = &c->unit[u];

	for (int i = 0; i < un->count; i++) {
		int v = c->umem[un->first + i];
		struct text t;

		text_init(&t, c->out[v].why, PL_WHY_MAX);
		if (vm_of(c, v)->current == n)
			text_add(&t, "stays on %s (running there)", node_name(c, n));
		else
			text_add(&t, "joins its hard affinity group on %s (rule %s)",
				 node_name(c, n), affinity_name(c, v));
	}
}

/* Why a sticky unit could not stay, short: the detail is in `hvctl vm explain`'s why. */
static void say_cause(const struct ctx *c, struct text *t, int cause, int rid, int maxclass)
{
	switch (cause) {
	case C_POSSIBLE:
		text_add(t, "not among its possible nodes");
		break;
	case C_CLEARANCE:
		text_add(t, "clearance below %s", class_names[maxclass]);
		break;
	case C_RULE:
		text_add(t, "hard %s rule %s", type_names[rule_of(c, rid)->type],
			 rule_of(c, rid)->name);
		break;
	case C_CAPACITY:
		text_add(t, "not enough capacity");
		break;
	default:
		text_add(t, "not usable");
	}
}

static void explain_choice(struct ctx *c, const struct ueval *ev, const struct choice *ch, int v)
{
	const struct pl_vm *vm = vm_of(c, v);
	const struct unit *un = &c->unit[ev->u];
	const struct cand *b = &ch->best;
	const char *name = node_name(c, b->n);
	struct text t;

	text_init(&t, c->out[v].why, PL_WHY_MAX);
	if (vm->current == b->n) { /* a split group gathers where most of it runs */
		text_add(&t, "stays on %s (running there)", name);
		return;
	}
	if (vm->current >= 0 && !c->node[vm->current].usable) {
		text_add(&t, "%s is not usable; ", node_name(c, vm->current));
	} else if (vm->current >= 0 && un->count == 1) {
		text_add(&t, "cannot stay on %s: ", node_name(c, vm->current));
		say_cause(c, &t, un->fcause, un->frule, ev->maxclass);
		text_add(&t, "; ");
	}
	if (un->count > 1)
		text_add(&t, "with its hard affinity group (rule %s): ", affinity_name(c, v));
	if (ch->ncand == 1)
		text_add(&t, "the only node that fits");
	else if (ev->aff_node == b->n)
		text_add(&t, "joins %s (soft affinity rule %s)", vm_of(c, ev->aff_vm)->name,
			 rule_of(c, ev->aff_rule)->name);
	else if (b->pref == 0)
		text_add(&t, "preferred node %s", name);
	else if (b->pref != NONE)
		text_add(&t, "preferred node %s (choice %d)", name, b->pref + 1);
	else if (b->pack)
		text_add(&t, "with the rest of tier %s of app %s (leaves nodes to other tiers)",
			 str(vm->tier), str(vm->app));
	else if (c->vpref_off[un->lead + 1] > c->vpref_off[un->lead])
		text_add(&t, "least loaded (%u%% memory free after); none of its preferred nodes",
			 pct(b->fmem, b->cmem));
	else
		text_add(&t, "least loaded (%u%% memory free after)", pct(b->fmem, b->cmem));
	if (ch->ncand > 1 && ev->aff_node != b->n && ch->maxsoft > b->soft)
		text_add(&t, "; avoids nodes that break soft rules");
	if (b->soft > 0)
		text_add(&t, "; every node that fits breaks a soft rule");
}

struct nlist {
	int n, idx[LIST_MAX];
};

static void nlist_add(struct nlist *l, int n)
{
	if (l->n < LIST_MAX)
		l->idx[l->n] = n;
	l->n++;
}

static void nlist_say(const struct ctx *c, struct text *t, const struct nlist *l, const char *what,
		      const char *arg)
{
	for (int i = 0; i < l->n && i < LIST_MAX; i++)
		text_add(t, "%s%s", i ? ", " : "", node_name(c, l->idx[i]));
	if (l->n > LIST_MAX)
		text_add(t, " and %d more", l->n - LIST_MAX);
	text_add(t, ": %s%s", what, arg);
}

/* Keep the nodes closest to fitting, the roomiest first; ties stay in name order. */
static void caplist_add(const struct ctx *c, struct nlist *l, int n)
{
	int i = l->n < LIST_MAX ? l->n : LIST_MAX;

	l->n++;
	for (; i > 0 && roomier(c, n, l->idx[i - 1]); i--)
		if (i < LIST_MAX)
			l->idx[i] = l->idx[i - 1];
	if (i < LIST_MAX)
		l->idx[i] = n;
}

static void say_capacity(const struct ctx *c, const struct ueval *ev, struct text *t,
			 const struct nlist *l)
{
	if (l->n == c->nn)
		text_add(t, "no node has capacity: ");
	text_add(t, "needs %" PRIu64 " vcpu%s, %" PRIu64 " MiB; ", ev->cpu, plural(ev->cpu),
		 ev->mem);
	for (int i = 0; i < l->n && i < LIST_MAX; i++) {
		const struct pnode *p = &c->node[l->idx[i]];
		uint64_t cpu = p->free_cpu, mem = p->free_mem;

		text_add(t, "%s%s: ", i ? ", " : "", node_name(c, l->idx[i]));
		if (ev->cpu > cpu && ev->mem > mem)
			text_add(t, "%" PRIu64 " vcpu%s, %" PRIu64 " MiB free", cpu, plural(cpu),
				 mem);
		else if (ev->cpu > cpu)
			text_add(t, "%" PRIu64 " vcpu%s free", cpu, plural(cpu));
		else
			text_add(t, "%" PRIu64 " MiB free", mem);
	}
	if (l->n > LIST_MAX)
		text_add(t, " and %d more", l->n - LIST_MAX);
}

/* A hard rule that blocks nodes: where its members run, or which tiers block which nodes. */
static void say_rule(const struct ctx *c, const struct ueval *ev, struct text *t, int rid)
{
	const struct pl_rule *r = rule_of(c, rid);
	int shown = 0, other;

	text_add(t, "hard %s rule %s", type_names[r->type], r->name);
	if (r->type == PL_RULE_ANTI_AFFINITY) {
		text_add(t, "%s: ", r->scope == PL_SCOPE_DOMAIN ? " (failure domains)" : "");
		for (int i = c->rmem_off[rid]; i < c->rmem_off[rid + 1]; i++) {
			int m = c->rmem[i], n = c->vnode[m];

			if (n < 0 || shown++ >= LIST_MAX)
				continue;
			text_add(t, "%s%s on %s", shown > 1 ? ", " : "", vm_of(c, m)->name,
				 node_name(c, n));
			if (r->scope == PL_SCOPE_DOMAIN && *str(c->in->nodes[n].domain))
				text_add(t, " (domain %s)", c->in->nodes[n].domain);
		}
	} else {
		text_add(t, ": ");
		for (int k = 0; k < c->nn; k++) {
			int n = c->node_by_name[k], g;

			if (node_cause(c, ev, n, &other) != C_RULE || other != rid ||
			    shown++ >= LIST_MAX)
				continue;
			g = peek(c, n)->tgroup; /* the tier whose presence blocks it */
			text_add(t, "%stier %s on %s", shown > 1 ? ", " : "",
				 vm_of(c, c->gvm[c->gvm_off[g]])->tier, node_name(c, n));
		}
	}
	if (shown > LIST_MAX)
		text_add(t, " and %d more", shown - LIST_MAX);
}

/* Parts of a reason are separated by "; ". */
static void next_part(struct text *t, size_t start)
{
	if (t->len > start)
		text_add(t, "; ");
}

/* Whether node @n is the one a VM of unit @un moves away from (pl_vm.leaving). */
static bool unit_leaves(const struct ctx *c, const struct unit *un, int n)
{
	for (int i = 0; i < un->count; i++) {
		const char *l = vm_of(c, c->umem[un->first + i])->leaving;

		if (l && !strcmp(l, node_name(c, n)))
			return true;
	}
	return false;
}

/*
 * Why no node fits: per node the first hard constraint it breaks, grouped by
 * constraint, rules first. The node lists are short: the first names (the
 * roomiest for capacity), then how many more.
 */
static void explain_unplaced(struct ctx *c, const struct ueval *ev, char *buf, size_t len)
{
	const struct unit *un = &c->unit[ev->u];
	const int *mem = c->umem + un->first;
	struct nlist unusable = { 0 }, impossible = { 0 }, uncleared = { 0 }, full = { 0 };
	struct nlist left = { 0 };
	struct text t;
	int nhits = 0, rid = NONE;
	size_t start;

	text_init(&t, buf, len);
	if (un->count > 1) {
		text_add(&t, "hard affinity group ");
		for (int i = 0; i < un->count && i < LIST_MAX; i++)
			text_add(&t, "%s%s", i ? ", " : "", vm_of(c, mem[i])->name);
		if (un->count > LIST_MAX)
			text_add(&t, " and %d more", un->count - LIST_MAX);
		text_add(&t, " (rule %s): ", affinity_name(c, un->lead));
	}
	if (ev->bad_rule != NONE) {
		const struct pl_rule *r = rule_of(c, ev->bad_rule);

		text_add(&t,
			 "hard %s rule %s forbids %s and %s on one node, but hard affinity rule %s keeps them together",
			 type_names[r->type], r->name, vm_of(c, ev->bad_x)->name,
			 vm_of(c, ev->bad_y)->name, affinity_name(c, ev->bad_x));
		return;
	}
	start = t.len;
	if (!c->nn) {
		text_add(&t, "no nodes");
		return;
	}
	c->pass++;
	for (int k = 0; k < c->nn; k++) {
		int n = c->node_by_name[k];
		const struct pnode *p = &c->node[n];

		/* nothing marked it: the unit is not placed, so what is left is capacity */
		if (p->usable && c->nep[n] != c->ep && c->dep[p->dom] != c->ep &&
		    !ev->need_poss && p->clear >= ev->maxclass) {
			caplist_add(c, &full, n);
			continue;
		}
		switch (node_cause(c, ev, n, &rid)) {
		case C_UNUSABLE:
			nlist_add(&unusable, n);
			break;
		case C_POSSIBLE:
			nlist_add(unit_leaves(c, un, n) ? &left : &impossible, n);
			break;
		case C_CLEARANCE:
			nlist_add(&uncleared, n);
			break;
		case C_RULE:
			if (c->rhit[rid] != c->pass) {
				c->rhit[rid] = c->pass;
				c->hits[nhits++] = rid;
			}
			break;
		case C_CAPACITY:
			caplist_add(c, &full, n);
			break;
		case C_OK:
			break;
		}
	}
	qsort(c->hits, (size_t)nhits, sizeof(int), cmp_int);
	for (int i = 0; i < nhits; i++) {
		next_part(&t, start);
		say_rule(c, ev, &t, c->hits[i]);
	}
	if (full.n) {
		next_part(&t, start);
		say_capacity(c, ev, &t, &full);
	}
	if (unusable.n) {
		next_part(&t, start);
		nlist_say(c, &t, &unusable, "not usable", "");
	}
	if (left.n) {
		next_part(&t, start);
		nlist_say(c, &t, &left, "the node it leaves", "");
	}
	if (impossible.n) {
		next_part(&t, start);
		nlist_say(c, &t, &impossible, "not among its possible nodes", "");
	}
	if (uncleared.n) {
		next_part(&t, start);
		nlist_say(c, &t, &uncleared, "clearance below ", class_names[ev->maxclass]);
	}
}

/* --- the passes ------------------------------------------------------------------------ */

/* Where most of a sticky unit runs; ties by node name. */
static int unit_home(const struct ctx *c, int u)
{
	const struct unit *un = &c->unit[u];
	int home = -1;

	for (int i = 0; i < un->count; i++) {
		int v = c->umem[un->first + i], n = vm_of(c, v)->current, d;

		if (!is_sticky(c, v) || n == home)
			continue;
		d = home < 0 ? 1 : peek(c, n)->stay - peek(c, home)->stay;
		if (d > 0 || (d == 0 && c->node[n].rank < c->node[home].rank))
			home = n;
	}
	return home;
}

/* Running VMs stay unless a hard constraint forbids it: no churn for soft reasons. */
static void place_sticky(struct ctx *c)
{
	for (int k = 0; k < c->nu; k++) {
		int u = c->uorder[k], home, rid = NONE;
		struct unit *un = &c->unit[u];
		struct ueval ev;
		enum cause cause;

		if (!un->sticky)
			continue;
		unit_prepare(c, &ev, u);
		home = unit_home(c, u);
		if (ev.bad_rule != NONE) {
			cause = C_RULE;
			rid = ev.bad_rule;
		} else {
			cause = node_cause(c, &ev, home, &rid);
		}
		if (cause == C_OK) {
			place(c, &ev, home);
			explain_stay(c, u, home);
			continue;
		}
		un->fcause = cause;
		un->frule = rid;
	}
}

static void place_rest(struct ctx *c)
{
	char reason[PL_REASON_MAX];

	for (int k = 0; k < c->nu; k++) {
		int u = c->uorder[k];
		const struct unit *un = &c->unit[u];
		struct choice ch;
		struct ueval ev;

		if (un->done)
			continue;
		unit_prepare(c, &ev, u);
		if (choose(c, &ev, &ch)) {
			place(c, &ev, ch.best.n);
			for (int i = 0; i < un->count; i++)
				explain_choice(c, &ev, &ch, c->umem[un->first + i]);
			continue;
		}
		explain_unplaced(c, &ev, reason, sizeof(reason));
		for (int i = 0; i < un->count; i++)
			memcpy(c->out[c->umem[un->first + i]].reason, reason, sizeof(reason));
	}
}

static void add_broken(struct ctx *c, int v, int rid)
{
	struct pl_result *o = &c->out[v];
	struct text t = { .buf = o->broken, .cap = sizeof(o->broken), .len = strlen(o->broken) };
	const struct pl_rule *r = rule_of(c, rid);

	text_add(&t, "%s%s %s", t.len ? ", " : "", type_names[r->type], r->name);
}

static void broken_anti(struct ctx *c, int rid)
{
	bool dom = rule_of(c, rid)->scope == PL_SCOPE_DOMAIN;
	int from = c->rmem_off[rid], to = c->rmem_off[rid + 1];

	new_epoch(c);
	for (int i = from; i < to; i++) {
		int n = c->vnode[c->rmem[i]];

		if (n >= 0 && dom)
			dtouch(c, c->node[n].dom)->soft++;
		else if (n >= 0)
			touch(c, n)->soft++;
	}
	for (int i = from; i < to; i++) {
		int n = c->vnode[c->rmem[i]];

		if (n >= 0 && (dom ? dpeek(c, c->node[n].dom)->soft : peek(c, n)->soft) > 1)
			add_broken(c, c->rmem[i], rid);
	}
}

static void broken_affinity(struct ctx *c, int rid)
{
	int where = -1, from = c->rmem_off[rid], to = c->rmem_off[rid + 1];
	bool split = false;

	for (int i = from; i < to; i++) {
		int n = c->vnode[c->rmem[i]];

		if (n >= 0 && where >= 0 && n != where)
			split = true;
		if (n >= 0)
			where = n;
	}
	for (int i = from; split && i < to; i++)
		if (c->vnode[c->rmem[i]] >= 0)
			add_broken(c, c->rmem[i], rid);
}

/* Does another tier of app @a than group @g run on node @n? */
static bool other_tier_on(const struct ctx *c, int a, int g, int n)
{
	for (int h = c->app_goff[a]; h < c->app_goff[a + 1]; h++)
		if (h != g && u64map_get(&c->gnode, (uint64_t)h << 32 | (uint32_t)n) >= 0)
			return true;
	return false;
}

static void broken_tiers(struct ctx *c, int rid)
{
	int a = c->rapp[rid];

	if (a < 0) /* no VM of its app has a tier */
		return;
	for (int g = c->app_goff[a]; g < c->app_goff[a + 1]; g++) {
		for (int i = c->gvm_off[g]; i < c->gvm_off[g + 1]; i++) {
			int v = c->gvm[i];

			if (c->vnode[v] >= 0 && other_tier_on(c, a, g, c->vnode[v]))
				add_broken(c, v, rid);
		}
	}
}

/* Soft rules the final placement breaks, named on each VM involved, in rule name order. */
static void note_broken(struct ctx *c)
{
	for (int rid = 0; rid < c->nr; rid++) {
		const struct pl_rule *r = rule_of(c, rid);

		if (r->hard)
			continue;
		if (r->type == PL_RULE_ANTI_AFFINITY)
			broken_anti(c, rid);
		else if (r->type == PL_RULE_AFFINITY)
			broken_affinity(c, rid);
		else
			broken_tiers(c, rid);
	}
}

int placement_solve(const struct pl_input *in, struct pl_result *out)
{
	struct ctx c = { .in = in };
	int ret;

	if (!in || (in->nvms && !out))
		return -EINVAL;
	ret = check_input(in);
	if (ret)
		return ret;
	c.nn = (int)in->nnodes;
	c.nv = (int)in->nvms;
	c.nr = (int)in->nrules;
	ret = build_nodes(&c);
	if (!ret)
		ret = build_vms(&c);
	if (!ret)
		ret = build_rules(&c);
	if (!ret)
		ret = build_tiers(&c);
	if (!ret)
		ret = build_units(&c);
	if (!ret)
		ret = build_scratch(&c);
	if (!ret)
		ret = build_index(&c);
	if (ret)
		goto out;
	c.out = out;
	for (int v = 0; v < c.nv; v++) { /* not memset: 10,000 results are 10 MB */
		out[v].node = -1;
		out[v].moved = false;
		out[v].reason[0] = out[v].broken[0] = out[v].why[0] = '\0';
	}
	place_sticky(&c);
	place_rest(&c);
	note_broken(&c);
out:
	arena_free(&c.ar);
	return ret;
}

/* --- rule checks ---------------------------------------------------------------------- */

struct check {
	struct arena ar;
	const struct pl_input *in;
	const struct pl_rule *rule; /* the new one, at slot nr */
	int nv, nr;
	struct strmap vms;
	int *off, *mem;	    /* slot -> member VMs, unknown names skipped */
	int *vr_off, *vr;   /* VM -> affinity slots */
	int *uf0, *uf1;	    /* affinity components without and with the new rule */
	int *first, *parent, *prule, *queue, *path;
	uint32_t *seen, *visited, stamp;
};

static const struct pl_rule *slot_rule(const struct check *k, int s)
{
	return s < k->nr ? &k->in->rules[s] : k->rule;
}

static bool has_members(const struct pl_rule *r)
{
	return r->type != PL_RULE_TIER_SEPARATION && names_ok(r->vms, r->nvms);
}

/* The new rule on its own: names, type, scope, app. */
static int check_alone(const struct pl_input *in, const struct pl_rule *r, struct text *t)
{
	if (!r->name || !*r->name) {
		text_add(t, "a rule needs a name");
		return -EINVAL;
	}
	if ((unsigned int)r->type > PL_RULE_TIER_SEPARATION ||
	    (unsigned int)r->scope > PL_SCOPE_DOMAIN) {
		text_add(t, "rule %s: unknown type or scope", r->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < in->nrules; i++) {
		if (in->rules[i].name && !strcmp(in->rules[i].name, r->name)) {
			text_add(t, "rule %s already exists", r->name);
			return -EINVAL;
		}
	}
	if (r->type == PL_RULE_TIER_SEPARATION && !*str(r->app)) {
		text_add(t, "rule %s: a tier-separation rule needs an app", r->name);
		return -EINVAL;
	}
	if (r->type != PL_RULE_TIER_SEPARATION && !names_ok(r->vms, r->nvms)) {
		text_add(t, "rule %s: bad VM list", r->name);
		return -EINVAL;
	}
	return 0;
}

/* Members of every slot; the new rule's must all exist, each once, at least two. */
static int check_members(struct check *k, struct text *t)
{
	const struct pl_rule *nr = k->rule;
	int total = 0, n = 0;

	for (int s = 0; s <= k->nr; s++)
		total += has_members(slot_rule(k, s)) ? (int)slot_rule(k, s)->nvms : 0;
	k->off = alloc0(&k->ar, (size_t)k->nr + 2, sizeof(int));
	k->mem = alloc0(&k->ar, (size_t)total, sizeof(int));
	if (k->ar.err)
		return k->ar.err;
	k->stamp++;
	for (int s = 0; s <= k->nr; s++) {
		const struct pl_rule *r = slot_rule(k, s);

		k->off[s] = n;
		for (size_t i = 0; has_members(r) && i < r->nvms; i++) {
			int v = strmap_get(&k->vms, r->vms[i]);

			if (s < k->nr) {
				if (v >= 0)
					k->mem[n++] = v;
				continue;
			}
			if (v < 0) {
				text_add(t, "rule %s names unknown VM %s", nr->name, r->vms[i]);
				return -EINVAL;
			}
			if (k->seen[v] == k->stamp) {
				text_add(t, "rule %s names VM %s twice", nr->name, r->vms[i]);
				return -EINVAL;
			}
			k->seen[v] = k->stamp;
			k->mem[n++] = v;
		}
	}
	k->off[k->nr + 1] = n;
	if (has_members(nr) && n - k->off[k->nr] < 2) {
		text_add(t, "rule %s: an %s rule needs at least 2 VMs", nr->name,
			 type_names[nr->type]);
		return -EINVAL;
	}
	return 0;
}

static int check_build(struct check *k, struct text *t)
{
	int err, *pos;
	size_t nv = (size_t)k->nv;

	k->uf0 = alloc0(&k->ar, nv, sizeof(int));
	k->uf1 = alloc0(&k->ar, nv, sizeof(int));
	k->first = alloc0(&k->ar, nv, sizeof(int));
	k->parent = alloc0(&k->ar, nv, sizeof(int));
	k->prule = alloc0(&k->ar, nv, sizeof(int));
	k->queue = alloc0(&k->ar, nv, sizeof(int));
	k->path = alloc0(&k->ar, (size_t)k->nr + 1, sizeof(int));
	k->seen = alloc0(&k->ar, nv, sizeof(uint32_t));
	k->visited = alloc0(&k->ar, nv, sizeof(uint32_t));
	k->vr_off = alloc0(&k->ar, nv + 1, sizeof(int));
	if (strmap_init(&k->ar, &k->vms, nv))
		return k->ar.err;
	for (int v = 0; v < k->nv; v++) {
		const char *name = k->in->vms[v].name;

		if (!name || !*name || strmap_put(&k->vms, name, v) >= 0) {
			text_add(t, "VM %s: missing or duplicate name", str(name));
			return -EINVAL;
		}
		k->uf0[v] = k->uf1[v] = v;
	}
	err = check_members(k, t);
	if (err)
		return err;
	/* affinity components, and VM -> affinity slots for the paths between two VMs */
	for (int s = 0; s <= k->nr; s++) {
		if (slot_rule(k, s)->type != PL_RULE_AFFINITY)
			continue;
		for (int i = k->off[s]; i < k->off[s + 1]; i++) {
			if (s < k->nr)
				uf_join(k->uf0, k->mem[k->off[s]], k->mem[i]);
			uf_join(k->uf1, k->mem[k->off[s]], k->mem[i]);
			k->vr_off[k->mem[i] + 1]++;
		}
	}
	pos = csr_cursor(&k->ar, k->vr_off, k->nv);
	k->vr = alloc0(&k->ar, (size_t)k->vr_off[k->nv], sizeof(int));
	if (k->ar.err)
		return k->ar.err;
	for (int s = 0; s <= k->nr; s++) {
		if (slot_rule(k, s)->type != PL_RULE_AFFINITY)
			continue;
		for (int i = k->off[s]; i < k->off[s + 1]; i++)
			k->vr[pos[k->mem[i]]++] = s;
	}
	return 0;
}

/* Two members of slot @s in one component of @uf, not already together in @old. */
static bool find_pair(struct check *k, int s, int *uf, int *old, int *x, int *y)
{
	k->stamp++;
	for (int i = k->off[s]; i < k->off[s + 1]; i++) {
		int m = k->mem[i], root = uf_find(uf, m);

		if (k->seen[root] != k->stamp) {
			k->seen[root] = k->stamp;
			k->first[root] = m;
		} else if (!old || uf_find(old, k->first[root]) != uf_find(old, m)) {
			*x = k->first[root];
			*y = m;
			return true;
		}
	}
	return false;
}

/* Two VMs of @app with different tiers in one component of @uf, not already in @old. */
static bool find_tiers(struct check *k, const char *app, int *uf, int *old, int *x, int *y)
{
	const struct pl_vm *vms = k->in->vms;

	k->stamp++;
	for (int v = 0; v < k->nv; v++) {
		int root;

		if (strcmp(str(vms[v].app), app) || !*str(vms[v].tier))
			continue;
		root = uf_find(uf, v);
		if (k->seen[root] != k->stamp) {
			k->seen[root] = k->stamp;
			k->first[root] = v;
		} else if (strcmp(vms[k->first[root]].tier, vms[v].tier) &&
			   (!old || uf_find(old, k->first[root]) != uf_find(old, v))) {
			*x = k->first[root];
			*y = v;
			return true;
		}
	}
	return false;
}

/* The affinity rules that chain @x to @y (breadth first: the shortest chain). */
static int find_path(struct check *k, int x, int y, bool with_new)
{
	int head = 0, tail = 0, n = 0;

	k->stamp++;
	k->visited[x] = k->stamp;
	k->queue[tail++] = x;
	while (head < tail && k->visited[y] != k->stamp) {
		int cur = k->queue[head++];

		for (int i = k->vr_off[cur]; i < k->vr_off[cur + 1]; i++) {
			int s = k->vr[i];

			for (int j = k->off[s]; (with_new || s < k->nr) && j < k->off[s + 1]; j++) {
				int m = k->mem[j];

				if (k->visited[m] == k->stamp)
					continue;
				k->visited[m] = k->stamp;
				k->parent[m] = cur;
				k->prule[m] = s;
				k->queue[tail++] = m;
			}
		}
	}
	for (int v = y; v != x && k->visited[y] == k->stamp; v = k->parent[v])
		k->path[n++] = k->prule[v];
	return n;
}

static void say_slots(struct check *k, struct text *t, int n, int skip)
{
	int said = 0;

	for (int i = n - 1; i >= 0; i--) {
		if (k->path[i] == skip)
			continue;
		if (said++ < LIST_MAX)
			text_add(t, "%s%s", said > 1 ? ", " : "", slot_rule(k, k->path[i])->name);
	}
	if (said > LIST_MAX)
		text_add(t, " and %d more", said - LIST_MAX);
}

static int contradicts(struct check *k, struct text *t, int other, int x, int y, bool with_new)
{
	const struct pl_rule *nr = k->rule, *o = slot_rule(k, other);
	const struct pl_vm *a = &k->in->vms[x], *b = &k->in->vms[y];
	int n = find_path(k, x, y, with_new);
	char what[3 * PL_BROKEN_MAX];

	if (strcmp(a->name, b->name) > 0) {
		const struct pl_vm *tmp = a;

		a = b;
		b = tmp;
	}
	if (nr->type == PL_RULE_TIER_SEPARATION || o->type == PL_RULE_TIER_SEPARATION)
		snprintf(what, sizeof(what), "%s (tier %s) and %s (tier %s) of app %s", a->name,
			 a->tier, b->name, b->tier, a->app);
	else
		snprintf(what, sizeof(what), "%s and %s", a->name, b->name);
	text_add(t, "rule %s (%s) contradicts ", nr->name, type_names[nr->type]);
	if (!with_new) { /* the new rule forbids what existing affinity rules keep together */
		text_add(t, "rule%s ", n > 1 ? "s" : "");
		say_slots(k, t, n, -1);
		if (n == 1 && nr->type == PL_RULE_ANTI_AFFINITY)
			text_add(t, " (affinity): both name %s", what);
		else if (n == 1)
			text_add(t, " (affinity): it keeps %s on one node", what);
		else
			text_add(t, " (affinity): together they keep %s on one node", what);
		return -EINVAL;
	}
	text_add(t, "rule %s (%s): ", o->name, type_names[o->type]);
	if (n > 1) {
		text_add(t, "with rule%s ", n > 2 ? "s" : "");
		say_slots(k, t, n, k->nr);
		text_add(t, " it keeps %s on one node", what);
	} else if (o->type == PL_RULE_ANTI_AFFINITY) {
		text_add(t, "both name %s", what);
	} else {
		text_add(t, "it keeps %s on one node", what);
	}
	return -EINVAL;
}

int placement_rule_check(const struct pl_input *in, const struct pl_rule *rule, char *err,
			 size_t errlen)
{
	struct check k = { .in = in, .rule = rule };
	char dummy[1];
	struct text t;
	int ret, x, y;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	text_init(&t, err, errlen);
	if (!in || !rule || (in->nvms && !in->vms) || (in->nrules && !in->rules) ||
	    in->nvms > INT_MAX / 4 || in->nrules > INT_MAX / 4) {
		text_add(&t, "bad input");
		return -EINVAL;
	}
	ret = check_alone(in, rule, &t);
	if (ret)
		return ret;
	k.nv = (int)in->nvms;
	k.nr = (int)in->nrules;
	ret = check_build(&k, &t);
	if (ret)
		goto out;
	if (rule->type == PL_RULE_ANTI_AFFINITY) {
		if (find_pair(&k, k.nr, k.uf0, NULL, &x, &y))
			ret = contradicts(&k, &t, k.nr, x, y, false);
	} else if (rule->type == PL_RULE_TIER_SEPARATION) {
		if (find_tiers(&k, rule->app, k.uf0, NULL, &x, &y))
			ret = contradicts(&k, &t, k.nr, x, y, false);
	} else {
		for (int s = 0; !ret && s < k.nr; s++) {
			const struct pl_rule *r = &in->rules[s];

			bool hit = false;

			if (r->type == PL_RULE_ANTI_AFFINITY)
				hit = find_pair(&k, s, k.uf1, k.uf0, &x, &y);
			else if (r->type == PL_RULE_TIER_SEPARATION && r->app)
				hit = find_tiers(&k, r->app, k.uf1, k.uf0, &x, &y);
			if (hit)
				ret = contradicts(&k, &t, s, x, y, true);
		}
	}
out:
	arena_free(&k.ar);
	return ret;
}
