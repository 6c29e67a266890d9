/* Unit tests of cluster/placement: what an admin checks after a failover or a rule change. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/placement.h"

/*
 * Allocation failure injection: the Makefile links this test with
 * -Wl,--wrap=calloc, so the engine's calloc() calls come here (cmocka's, in a
 * shared library, do not). Linked without it, __real_calloc stays NULL and
 * test_out_of_memory says so.
 */
void *__real_calloc(size_t n, size_t size) __attribute__((weak));
void *__wrap_calloc(size_t n, size_t size);

static int calloc_fail_in = -1; /* fail the call this many calls ahead, -1 never */
static int calloc_calls;

void *__wrap_calloc(size_t n, size_t size)
{
	calloc_calls++;
	if (calloc_fail_in >= 0 && calloc_fail_in-- == 0)
		return NULL;
	return __real_calloc(n, size);
}

#define MAXN 64
#define MAXV 512
#define MAXR 64

/* One scenario: arrays the tests fill in, and the solver's answer. */
struct scn {
	struct pl_node nodes[MAXN];
	struct pl_vm vms[MAXV];
	struct pl_rule rules[MAXR];
	struct pl_input in;
	struct pl_result out[MAXV];
	/* what random_scenario() makes up */
	char names[MAXN + MAXV + MAXR][16];
	const char *lists[MAXV][2];
	const char *members[MAXR][4];
};

static struct scn *scn_new(void)
{
	struct scn *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->in.nodes = s->nodes;
	s->in.vms = s->vms;
	s->in.rules = s->rules;
	s->in.params.cpu_overcommit_pct = 100;
	s->in.params.mem_overcommit_pct = 100;
	return s;
}

static struct pl_node *add_node(struct scn *s, const char *name, unsigned int vcpus, uint64_t mb)
{
	struct pl_node *n = &s->nodes[s->in.nnodes];

	assert_true(s->in.nnodes < MAXN);
	*n = (struct pl_node){ .name = name, .id = (uint32_t)s->in.nnodes + 1, .vcpus = vcpus,
			       .memory_mb = mb, .clearance = 3, .usable = true };
	s->in.nnodes++;
	return n;
}

static struct pl_vm *add_vm(struct scn *s, const char *name, unsigned int vcpus, uint64_t mb)
{
	struct pl_vm *v = &s->vms[s->in.nvms];

	assert_true(s->in.nvms < MAXV);
	*v = (struct pl_vm){ .name = name, .vcpus = vcpus, .memory_mb = mb, .priority = 1,
			     .app = "", .tier = "", .current = -1, .wanted = true };
	s->in.nvms++;
	return v;
}

static struct pl_rule *add_rule(struct scn *s, const char *name, enum pl_rule_type type, bool hard,
				const char *const *vms, size_t nvms)
{
	struct pl_rule *r = &s->rules[s->in.nrules];

	assert_true(s->in.nrules < MAXR);
	*r = (struct pl_rule){ .name = name, .type = type, .hard = hard, .vms = vms, .nvms = nvms };
	s->in.nrules++;
	return r;
}

static struct pl_rule *add_tier_rule(struct scn *s, const char *name, bool hard, const char *app)
{
	struct pl_rule *r = add_rule(s, name, PL_RULE_TIER_SEPARATION, hard, NULL, 0);

	r->app = app;
	return r;
}

static int node_index(const struct scn *s, const char *name)
{
	for (size_t i = 0; i < s->in.nnodes; i++)
		if (!strcmp(s->nodes[i].name, name))
			return (int)i;
	fail_msg("no node %s in the scenario", name);
	return -1;
}

static void run_on(struct scn *s, const char *vm, const char *node)
{
	for (size_t i = 0; i < s->in.nvms; i++)
		if (!strcmp(s->vms[i].name, vm))
			s->vms[i].current = node_index(s, node);
}

static const struct pl_result *res(const struct scn *s, const char *vm)
{
	for (size_t i = 0; i < s->in.nvms; i++)
		if (!strcmp(s->vms[i].name, vm))
			return &s->out[i];
	fail_msg("no VM %s in the scenario", vm);
	return &s->out[0]; /* not reached */
}

/* Where @vm went: a node name, or "-" when not placed. */
static const char *where(const struct scn *s, const char *vm)
{
	const struct pl_result *r = res(s, vm);

	return r->node < 0 ? "-" : s->nodes[r->node].name;
}

static void solve(struct scn *s)
{
	int ret = placement_solve(&s->in, s->out);

	if (ret)
		fail_msg("placement_solve: %d (%s)", ret, strerror(-ret));
}

#define assert_contains(hay, needle)                                                         \
	do {                                                                                 \
		if (!strstr((hay), (needle)))                                                \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));             \
	} while (0)

static bool rule_names(const struct pl_rule *r, const char *vm)
{
	for (size_t k = 0; k < r->nvms; k++)
		if (!strcmp(r->vms[k], vm))
			return true;
	return false;
}

static bool same_domain(const struct scn *s, int a, int b)
{
	const char *da = s->nodes[a].domain, *db = s->nodes[b].domain;

	return a == b || (da && db && *da && !strcmp(da, db));
}

static bool is_tiered(const struct pl_vm *v, const char *app)
{
	return v->app && !strcmp(v->app, app) && v->tier && *v->tier;
}

/* Hard rule @r holds between VMs @i and @j, wherever they went. */
static void assert_pair_keeps(const struct scn *s, const struct pl_rule *r, size_t i, size_t j)
{
	const struct pl_vm *a = &s->vms[i], *b = &s->vms[j];
	int na = s->out[i].node, nb = s->out[j].node;
	bool both = r->type != PL_RULE_TIER_SEPARATION && rule_names(r, a->name) &&
		    rule_names(r, b->name);

	if (na < 0 || nb < 0 || !r->hard)
		return;
	if (r->type == PL_RULE_TIER_SEPARATION && na == nb && is_tiered(a, r->app) &&
	    is_tiered(b, r->app) && strcmp(a->tier, b->tier))
		fail_msg("rule %s: %s and %s share %s", r->name, a->name, b->name,
			 s->nodes[na].name);
	if (r->type == PL_RULE_AFFINITY && both && na != nb)
		fail_msg("rule %s: %s and %s apart", r->name, a->name, b->name);
	if (r->type == PL_RULE_ANTI_AFFINITY && both &&
	    (r->scope == PL_SCOPE_DOMAIN ? same_domain(s, na, nb) : na == nb))
		fail_msg("rule %s: %s and %s together", r->name, a->name, b->name);
}

/* A wanted VM is placed with a why where it may run, or not placed with a reason. */
static void assert_vm_ok(const struct scn *s, size_t i)
{
	const struct pl_vm *v = &s->vms[i];
	const struct pl_result *r = &s->out[i];
	bool possible = !v->npossible;

	if (!v->wanted || r->node < 0) {
		if (v->wanted != !!r->reason[0] || (!v->wanted && r->node != -1))
			fail_msg("%s: node %d, reason '%s'", v->name, r->node, r->reason);
		return;
	}
	if (!r->why[0] || r->reason[0])
		fail_msg("%s: placed, why '%s', reason '%s'", v->name, r->why, r->reason);
	assert_true(s->nodes[r->node].usable);
	assert_true(v->classification <= s->nodes[r->node].clearance);
	for (size_t k = 0; k < v->npossible; k++)
		possible |= !strcmp(v->possible[k], s->nodes[r->node].name);
	if (!possible)
		fail_msg("%s on %s: not a possible node", v->name, s->nodes[r->node].name);
}

/* Every hard constraint holds in @s->out. Used on hand-made and on random inputs. */
static void assert_hard_constraints(const struct scn *s)
{
	const struct pl_input *in = &s->in;
	uint64_t cpu[MAXN] = { 0 }, mem[MAXN] = { 0 };

	for (size_t i = 0; i < in->nvms; i++) {
		assert_vm_ok(s, i);
		if (s->out[i].node >= 0) {
			cpu[s->out[i].node] += s->vms[i].vcpus;
			mem[s->out[i].node] += s->vms[i].memory_mb;
		}
	}
	for (size_t n = 0; n < in->nnodes; n++) {
		uint64_t ccpu = (uint64_t)s->nodes[n].vcpus * in->params.cpu_overcommit_pct / 100;
		uint64_t cmem = s->nodes[n].memory_mb * in->params.mem_overcommit_pct / 100;

		if (cpu[n] > ccpu || mem[n] > cmem)
			fail_msg("%s over capacity", s->nodes[n].name);
	}
	for (size_t k = 0; k < in->nrules; k++)
		for (size_t i = 0; i < in->nvms; i++)
			for (size_t j = i + 1; j < in->nvms; j++)
				assert_pair_keeps(s, &s->rules[k], i, j);
}

/* --- stickiness ------------------------------------------------------------------ */

static void test_running_vms_stay(void **state)
{
	static const char *const ab[] = { "a", "b" };
	static const char *const pref_n3[] = { "n3" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_node(s, "n3", 8, 8192);
	add_vm(s, "a", 2, 2048);
	add_vm(s, "b", 2, 2048);
	add_vm(s, "c", 2, 2048)->preferred = pref_n3;
	s->vms[2].npreferred = 1;
	/* all crowded on n1, a soft rule added since, a preference elsewhere: no one moves */
	run_on(s, "a", "n1");
	run_on(s, "b", "n1");
	run_on(s, "c", "n1");
	add_rule(s, "ab-apart", PL_RULE_ANTI_AFFINITY, false, ab, 2);
	solve(s);
	assert_string_equal(where(s, "a"), "n1");
	assert_string_equal(where(s, "b"), "n1");
	assert_string_equal(where(s, "c"), "n1");
	assert_false(res(s, "a")->moved);
	assert_false(res(s, "c")->moved);
	assert_string_equal(res(s, "a")->why, "stays on n1 (running there)");
	assert_string_equal(res(s, "a")->broken, "anti-affinity ab-apart");
	assert_string_equal(res(s, "b")->broken, "anti-affinity ab-apart");
	assert_string_equal(res(s, "c")->broken, "");
	assert_hard_constraints(s);
	free(s);
}

static void test_hard_rule_added_since_moves_one(void **state)
{
	static const char *const web[] = { "web1", "web2" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_vm(s, "web1", 1, 512)->priority = 0;
	add_vm(s, "web2", 1, 512)->priority = 2;
	run_on(s, "web1", "n1");
	run_on(s, "web2", "n1");
	add_rule(s, "web-aa", PL_RULE_ANTI_AFFINITY, true, web, 2);
	solve(s);
	/* the higher priority one keeps its place */
	assert_string_equal(where(s, "web2"), "n1");
	assert_false(res(s, "web2")->moved);
	assert_string_equal(where(s, "web1"), "n2");
	assert_true(res(s, "web1")->moved);
	assert_contains(res(s, "web1")->why, "cannot stay on n1: hard anti-affinity rule web-aa");
	assert_hard_constraints(s);
	free(s);
}

static void test_capacity_shrank_moves_lowest_priority(void **state)
{
	struct scn *s = scn_new();

	add_node(s, "n1", 4, 4096);
	add_node(s, "n2", 4, 4096);
	add_vm(s, "hi", 2, 1024)->priority = 2;
	add_vm(s, "mid", 2, 1024)->priority = 1;
	add_vm(s, "lo", 2, 1024)->priority = 0;
	run_on(s, "hi", "n1");
	run_on(s, "mid", "n1");
	run_on(s, "lo", "n1");
	/* n1 ran them at 150% vcpu overcommit; the admin lowers it to none */
	solve(s);
	assert_string_equal(where(s, "hi"), "n1");
	assert_string_equal(where(s, "mid"), "n1");
	assert_string_equal(where(s, "lo"), "n2");
	assert_true(res(s, "lo")->moved);
	assert_contains(res(s, "lo")->why, "cannot stay on n1: not enough capacity");
	free(s);
}

/* --- failover and anti-affinity ---------------------------------------------------- */

static void test_failover_respects_hard_anti_affinity(void **state)
{
	static const char *const web[] = { "web1", "web2", "web3" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_node(s, "n3", 8, 8192);
	add_vm(s, "web1", 1, 512);
	add_vm(s, "web2", 1, 512);
	add_vm(s, "web3", 1, 512);
	add_vm(s, "mail", 1, 512);
	run_on(s, "web1", "n1");
	run_on(s, "web2", "n2");
	run_on(s, "web3", "n3");
	run_on(s, "mail", "n3");
	add_rule(s, "web-aa", PL_RULE_ANTI_AFFINITY, true, web, 3);
	s->nodes[2].usable = false; /* n3 died */
	solve(s);
	assert_string_equal(where(s, "web1"), "n1");
	assert_string_equal(where(s, "web2"), "n2");
	assert_string_equal(where(s, "web3"), "-");
	assert_string_equal(res(s, "web3")->reason, "hard anti-affinity rule web-aa: "
						    "web1 on n1, web2 on n2; n3: not usable");
	assert_false(res(s, "web3")->moved);
	/* the rest of n3 comes back elsewhere; a failover is not a "move" */
	assert_string_not_equal(where(s, "mail"), "-");
	assert_false(res(s, "mail")->moved);
	assert_contains(res(s, "mail")->why, "n3 is not usable; ");

	/* a fourth node: web3 comes back there */
	add_node(s, "n4", 8, 8192);
	solve(s);
	assert_string_equal(where(s, "web3"), "n4");
	assert_hard_constraints(s);
	free(s);
}

static void test_soft_anti_affinity_broken_only_when_unavoidable(void **state)
{
	static const char *const web[] = { "web1", "web2", "web3" };
	struct scn *s = scn_new();

	/* n1 is far emptier: least-loaded alone would stack everything there */
	add_node(s, "n1", 64, 65536);
	add_node(s, "n2", 4, 4096);
	add_vm(s, "web1", 1, 512);
	add_vm(s, "web2", 1, 512);
	add_rule(s, "web-aa", PL_RULE_ANTI_AFFINITY, false, web, 3);
	solve(s);
	assert_string_not_equal(where(s, "web1"), where(s, "web2"));
	assert_string_equal(res(s, "web1")->broken, "");
	assert_string_equal(res(s, "web2")->broken, "");
	assert_contains(res(s, "web2")->why, "avoids nodes that break soft rules");

	/* three members, two nodes: one pair must share, and says so */
	add_vm(s, "web3", 1, 512);
	solve(s);
	assert_string_not_equal(where(s, "web3"), "-");
	assert_string_equal(res(s, "web3")->broken, "anti-affinity web-aa");
	assert_contains(res(s, "web3")->why, "every node that fits breaks a soft rule");
	if (!strcmp(where(s, "web1"), where(s, "web3")))
		assert_string_equal(res(s, "web2")->broken, "");
	else
		assert_string_equal(res(s, "web1")->broken, "");
	free(s);
}

static void test_domain_scope(void **state)
{
	static const char *const db[] = { "db1", "db2", "db3", "db4" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192)->domain = "rack1";
	add_node(s, "n2", 8, 8192)->domain = "rack1";
	add_node(s, "n3", 8, 8192)->domain = "rack2";
	add_node(s, "n4", 8, 8192)->domain = ""; /* a domain of its own */
	add_vm(s, "db1", 1, 512);
	add_vm(s, "db2", 1, 512);
	add_vm(s, "db3", 1, 512);
	add_vm(s, "db4", 1, 512);
	add_rule(s, "db-racks", PL_RULE_ANTI_AFFINITY, true, db, 4)->scope = PL_SCOPE_DOMAIN;
	solve(s);
	assert_hard_constraints(s);
	/* three domains, four members: exactly one waits, naming the rule */
	assert_string_equal(where(s, "db4"), "-");
	assert_contains(res(s, "db4")->reason,
			"hard anti-affinity rule db-racks (failure domains): ");
	assert_contains(res(s, "db4")->reason, "(domain rack1)");

	/* soft: the fourth goes where it shares a domain, and says so */
	s->rules[0].hard = false;
	solve(s);
	assert_string_not_equal(where(s, "db4"), "-");
	assert_string_equal(res(s, "db4")->broken, "anti-affinity db-racks");

	/* node scope would spread them over all four nodes */
	s->rules[0].scope = PL_SCOPE_NODE;
	s->rules[0].hard = true;
	solve(s);
	assert_string_not_equal(where(s, "db4"), "-");
	assert_hard_constraints(s);
	free(s);
}

/* --- tier separation -------------------------------------------------------------- */

static void add_shop(struct scn *s)
{
	static const char *const names[] = { "app1", "app2", "db1", "db2", "web1", "web2" };

	for (int i = 0; i < 6; i++) {
		struct pl_vm *v = add_vm(s, names[i], 1, 512);

		v->app = "shop";
		v->tier = i < 2 ? "app" : i < 4 ? "db" : "web";
	}
}

static void test_tier_separation_three_nodes(void **state)
{
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_node(s, "n3", 8, 8192);
	add_shop(s);
	add_vm(s, "other", 1, 512)->app = "blog"; /* another app: unbound */
	add_tier_rule(s, "shop-tiers", true, "shop");
	solve(s);
	assert_hard_constraints(s);
	/* three tiers, three nodes: one tier per node, both VMs of a tier together */
	assert_string_equal(where(s, "app1"), where(s, "app2"));
	assert_string_equal(where(s, "db1"), where(s, "db2"));
	assert_string_equal(where(s, "web1"), where(s, "web2"));
	assert_string_not_equal(where(s, "app1"), where(s, "db1"));
	assert_string_not_equal(where(s, "app1"), where(s, "web1"));
	assert_string_not_equal(where(s, "db1"), where(s, "web1"));
	free(s);
}

static void test_tier_separation_two_nodes(void **state)
{
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_shop(s);
	add_tier_rule(s, "shop-tiers", true, "shop");
	solve(s);
	assert_hard_constraints(s);
	/* hard: the tier placed last (by name) has no node left */
	assert_string_not_equal(where(s, "app1"), "-");
	assert_string_not_equal(where(s, "db1"), "-");
	assert_string_equal(where(s, "web1"), "-");
	assert_string_equal(where(s, "web2"), "-");
	assert_contains(res(s, "web1")->reason, "hard tier-separation rule shop-tiers: ");
	assert_contains(res(s, "web1")->reason, "tier app on ");
	assert_contains(res(s, "web1")->reason, "tier db on ");

	/* soft: everything runs, and the VMs sharing a node with another tier say so */
	s->rules[0].hard = false;
	solve(s);
	for (size_t i = 0; i < s->in.nvms; i++) {
		bool shares = false;

		assert_int_not_equal(s->out[i].node, -1);
		for (size_t j = 0; j < s->in.nvms; j++)
			shares |= s->out[j].node == s->out[i].node &&
				  strcmp(s->vms[i].tier, s->vms[j].tier);
		assert_string_equal(s->out[i].broken, shares ? "tier-separation shop-tiers" : "");
	}
	assert_string_equal(where(s, "app1"), where(s, "app2"));
	free(s);
}

/* --- affinity ----------------------------------------------------------------------- */

static void test_hard_affinity_keeps_group_together(void **state)
{
	static const char *const db[] = { "db1", "db2", "db3" };
	struct scn *s = scn_new();

	add_node(s, "n1", 16, 16384);
	add_node(s, "n2", 2, 4096); /* has room for one of them only */
	add_node(s, "n3", 8, 8192);
	add_vm(s, "db1", 2, 2048);
	add_vm(s, "db2", 2, 2048);
	add_vm(s, "db3", 2, 2048);
	add_vm(s, "big", 8, 8192)->priority = 2; /* takes n1 first */
	add_rule(s, "db-together", PL_RULE_AFFINITY, true, db, 3);
	solve(s);
	assert_hard_constraints(s);
	assert_string_equal(where(s, "big"), "n1");
	assert_string_equal(where(s, "db1"), "n3"); /* n1: 8 vcpus left but less memory free */
	assert_string_equal(where(s, "db2"), "n3");
	assert_string_equal(where(s, "db3"), "n3");
	assert_contains(res(s, "db2")->why, "with its hard affinity group (rule db-together)");

	/* the group does not fit anywhere: all three wait, with the group named */
	s->nodes[0].usable = false;
	s->nodes[2].memory_mb = 4096;
	solve(s);
	assert_string_equal(where(s, "db1"), "-");
	assert_string_equal(where(s, "db3"), "-");
	assert_string_equal(res(s, "db1")->reason,
			    "hard affinity group db1, db2, db3 (rule db-together): needs 6 vcpus, "
			    "6144 MiB; n3: 4096 MiB free, n2: 2 vcpus, 4096 MiB free; "
			    "n1: not usable");
	free(s);
}

static void test_split_group_gathers(void **state)
{
	static const char *const abc[] = { "a", "b", "c" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_node(s, "n3", 16, 16384);
	add_vm(s, "a", 1, 512);
	add_vm(s, "b", 1, 512);
	add_vm(s, "c", 1, 512);
	run_on(s, "a", "n1");
	run_on(s, "b", "n2");
	run_on(s, "c", "n2");
	add_rule(s, "abc", PL_RULE_AFFINITY, true, abc, 3);
	solve(s);
	/* the rule is new: the group gathers where most of it runs, one move */
	assert_string_equal(where(s, "a"), "n2");
	assert_string_equal(where(s, "b"), "n2");
	assert_string_equal(where(s, "c"), "n2");
	assert_true(res(s, "a")->moved);
	assert_false(res(s, "b")->moved);
	assert_string_equal(res(s, "a")->why, "joins its hard affinity group on n2 (rule abc)");
	assert_string_equal(res(s, "b")->why, "stays on n2 (running there)");

	/* n2 cannot hold all three: the fewest moves still win over the emptier n3 */
	s->nodes[1].vcpus = 2;
	solve(s);
	assert_string_equal(where(s, "a"), "n1");
	assert_string_equal(where(s, "c"), "n1");
	assert_false(res(s, "a")->moved);
	assert_true(res(s, "b")->moved);
	assert_true(res(s, "c")->moved);
	assert_string_equal(res(s, "a")->why, "stays on n1 (running there)");
	free(s);
}

static void test_group_holding_two_tiers(void **state)
{
	static const char *const pair[] = { "web1", "db1" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_shop(s);
	add_rule(s, "web-db", PL_RULE_AFFINITY, true, pair, 2);
	add_tier_rule(s, "shop-tiers", true, "shop");
	solve(s);
	assert_hard_constraints(s);
	assert_string_equal(where(s, "web1"), "-");
	assert_string_equal(res(s, "db1")->reason,
			    "hard affinity group db1, web1 (rule web-db): hard tier-separation "
			    "rule shop-tiers forbids db1 and web1 on one node, but hard affinity "
			    "rule web-db keeps them together");
	/* soft separation gives way to the hard affinity, and says so */
	s->rules[1].hard = false;
	solve(s);
	assert_string_equal(where(s, "web1"), where(s, "db1"));
	assert_string_equal(res(s, "web1")->broken, "tier-separation shop-tiers");
	free(s);
}

static void test_soft_affinity_follows(void **state)
{
	static const char *const xy[] = { "x", "y" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 16384);
	add_vm(s, "x", 1, 1024)->priority = 2;
	add_vm(s, "y", 1, 1024);
	add_rule(s, "xy", PL_RULE_AFFINITY, false, xy, 2);
	s->vms[0].possible = (const char *const[]){ "n1" };
	s->vms[0].npossible = 1;
	solve(s);
	/* y follows x to the fuller node */
	assert_string_equal(where(s, "x"), "n1");
	assert_string_equal(where(s, "y"), "n1");
	assert_string_equal(res(s, "y")->why, "joins x (soft affinity rule xy)");
	assert_string_equal(res(s, "y")->broken, "");

	/* no room next to x: placed anyway, the rule named broken on both */
	s->vms[1].memory_mb = 8000;
	solve(s);
	assert_string_equal(where(s, "y"), "n2");
	assert_string_equal(res(s, "y")->broken, "affinity xy");
	assert_string_equal(res(s, "x")->broken, "affinity xy");
	free(s);
}

static void test_affinity_against_anti_affinity_in_solve(void **state)
{
	static const char *const ab[] = { "a", "b" };
	struct scn *s = scn_new();

	/* placement_rule_check refuses this; a state that has it anyway must not crash */
	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_vm(s, "a", 1, 512);
	add_vm(s, "b", 1, 512);
	add_rule(s, "ab-together", PL_RULE_AFFINITY, true, ab, 2);
	add_rule(s, "ab-apart", PL_RULE_ANTI_AFFINITY, true, ab, 2);
	solve(s);
	assert_string_equal(where(s, "a"), "-");
	assert_string_equal(res(s, "b")->reason,
			    "hard affinity group a, b (rule ab-together): hard anti-affinity rule "
			    "ab-apart forbids a and b on one node, but hard affinity rule "
			    "ab-together keeps them together");
	free(s);
}

/* --- capacity, priority, clearance, nodes ------------------------------------------------- */

static void test_least_loaded(void **state)
{
	struct scn *s = scn_new();

	/* two equal nodes: the first name, and it was not the only one */
	add_node(s, "n1", 8, 4096);
	add_node(s, "n2", 8, 4096);
	add_vm(s, "a", 1, 1024);
	solve(s);
	assert_string_equal(where(s, "a"), "n1");
	assert_string_equal(res(s, "a")->why, "least loaded (75% memory free after)");
	free(s);

	/* the same vcpus free after; memory decides, then vcpus, then the name */
	s = scn_new();
	add_node(s, "n1", 8, 4096);
	add_node(s, "n2", 8, 8192);
	add_node(s, "n3", 8, 8192);
	add_vm(s, "a", 1, 1024);
	solve(s);
	assert_string_equal(where(s, "a"), "n2");
	assert_string_equal(res(s, "a")->why, "least loaded (87% memory free after)");
	s->nodes[2].vcpus = 16;
	solve(s);
	assert_string_equal(where(s, "a"), "n3");
	free(s);

	/* a perfect tie goes to the first name, whatever the input order */
	s = scn_new();
	add_node(s, "nb", 8, 8192)->clearance = 3;
	add_node(s, "na", 8, 8192)->clearance = 2;
	add_vm(s, "a", 1, 1024);
	solve(s);
	assert_string_equal(where(s, "a"), "na");
	assert_string_equal(res(s, "a")->why, "least loaded (87% memory free after)");

	/* equal nodes, equal VMs: one each */
	add_node(s, "nc", 8, 8192);
	add_vm(s, "b", 1, 1024);
	add_vm(s, "c", 1, 1024);
	solve(s);
	assert_string_not_equal(where(s, "a"), where(s, "b"));
	assert_string_not_equal(where(s, "a"), where(s, "c"));
	assert_string_not_equal(where(s, "b"), where(s, "c"));
	free(s);
}

static void test_priority_wins_when_short(void **state)
{
	struct scn *s = scn_new();

	add_node(s, "n1", 4, 1024);
	add_node(s, "n2", 2, 256);
	add_vm(s, "lo", 2, 512)->priority = 0;
	add_vm(s, "mid", 2, 512)->priority = 1;
	add_vm(s, "hi", 2, 512)->priority = 2;
	solve(s);
	assert_string_equal(where(s, "hi"), "n1");
	assert_string_equal(where(s, "mid"), "n1");
	assert_string_equal(where(s, "lo"), "-");
	assert_string_equal(res(s, "lo")->reason,
			    "no node has capacity: needs 2 vcpus, 512 MiB; n2: 256 MiB free, n1: 0 "
			    "vcpus, 0 MiB free");
	assert_string_equal(res(s, "lo")->why, "");
	free(s);
}

static void test_overcommit(void **state)
{
	struct scn *s = scn_new();
	int placed = 0;

	add_node(s, "n1", 2, 4096);
	for (int i = 0; i < 4; i++)
		add_vm(s, (const char *[]){ "a", "b", "c", "d" }[i], 1, 512);
	solve(s);
	for (int i = 0; i < 4; i++)
		placed += s->out[i].node == 0;
	assert_int_equal(placed, 2);
	assert_contains(s->out[3].reason, "n1: 0 vcpus free");

	s->in.params.cpu_overcommit_pct = 200; /* 2 vcpus per core */
	solve(s);
	for (int i = 0; i < 4; i++)
		assert_int_equal(s->out[i].node, 0);

	s->in.params.mem_overcommit_pct = 25; /* 1024 MiB usable: two fit */
	solve(s);
	assert_int_equal(s->out[2].node, -1);
	assert_contains(s->out[2].reason, "n1: 0 MiB free");

	s->in.params.mem_overcommit_pct = 0; /* unset means none */
	solve(s);
	assert_int_equal(s->out[3].node, 0);
	free(s);
}

static void test_clearance(void **state)
{
	struct scn *s = scn_new();

	add_node(s, "pub", 8, 8192)->clearance = 0;
	add_node(s, "sec", 1, 1024)->clearance = 3;
	add_vm(s, "vault", 1, 512)->classification = 3;
	add_vm(s, "www", 1, 512)->classification = 0;
	solve(s);
	assert_string_equal(where(s, "vault"), "sec");
	assert_hard_constraints(s);

	s->nodes[1].usable = false;
	solve(s);
	assert_string_equal(where(s, "vault"), "-");
	assert_string_equal(res(s, "vault")->reason,
			    "sec: not usable; pub: clearance below secret");
	assert_string_equal(where(s, "www"), "pub");
	free(s);
}

static void test_possible_and_preferred(void **state)
{
	static const char *const only_n3[] = { "n3" };
	static const char *const gone[] = { "n9" };
	static const char *const pref[] = { "n2", "n1" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 1, 1024);
	add_node(s, "n3", 1, 1024);
	add_vm(s, "pinned", 1, 512)->possible = only_n3;
	s->vms[0].npossible = 1;
	add_vm(s, "lost", 1, 512)->possible = gone;
	s->vms[1].npossible = 1;
	add_vm(s, "picky", 1, 512)->preferred = pref;
	s->vms[2].npreferred = 2;
	solve(s);
	/* hard: n3 though n1 is emptier; a possible list of a removed node: nowhere */
	assert_string_equal(where(s, "pinned"), "n3");
	assert_string_equal(where(s, "lost"), "-");
	assert_string_equal(res(s, "lost")->reason, "n1, n2, n3: not among its possible nodes");
	/* soft, in order */
	assert_string_equal(where(s, "picky"), "n2");
	assert_string_equal(res(s, "picky")->why, "preferred node n2");

	s->nodes[1].vcpus = 0; /* the first choice cannot take it: the second */
	solve(s);
	assert_string_equal(where(s, "picky"), "n1");
	assert_string_equal(res(s, "picky")->why, "preferred node n1 (choice 2)");
	free(s);
}

static void test_unwanted_uses_nothing(void **state)
{
	struct scn *s = scn_new();

	add_node(s, "n1", 1, 1024);
	add_vm(s, "old", 1, 1024)->wanted = false;
	add_vm(s, "new", 1, 1024);
	run_on(s, "old", "n1");
	solve(s);
	assert_int_equal(res(s, "old")->node, -1);
	assert_string_equal(res(s, "old")->reason, "");
	assert_false(res(s, "old")->moved);
	assert_string_equal(where(s, "new"), "n1");
	free(s);
}

/* --- determinism ---------------------------------------------------------------------- */

static uint64_t rnd_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A crowded mixed scenario: every kind of rule, preferences, domains, failures. */
static void random_scenario(struct scn *s, uint64_t seed)
{
	static const char *const apps[] = { "shop", "blog", "crm" };
	static const char *const tiers[] = { "web", "app", "db" };
	static const char *const racks[] = { "r1", "r2", "r3", "" };
	char(*node_names)[16] = s->names, (*vm_names)[16] = s->names + MAXN;
	char(*rule_names)[16] = s->names + MAXN + MAXV;
	uint64_t x = seed;
	int nn = 12, nv = 150;

	for (int i = 0; i < nn; i++) {
		struct pl_node *n;

		snprintf(node_names[i], 16, "n%02d", i);
		n = add_node(s, node_names[i], 8 + 8 * (unsigned)(rnd_next(&x) % 3),
			     16384 << (seed & 1));
		n->domain = racks[i % 4];
		n->clearance = (int)(rnd_next(&x) % 4);
		n->usable = rnd_next(&x) % 10 != 0;
	}
	for (int i = 0; i < nv; i++) {
		unsigned int vcpus = 1 + (unsigned int)(rnd_next(&x) % 4);
		struct pl_vm *v;

		snprintf(vm_names[i], 16, "vm%03d", i);
		v = add_vm(s, vm_names[i], vcpus, 512 * (1 + rnd_next(&x) % 8));
		v->priority = (int)(rnd_next(&x) % 3);
		v->classification = (int)(rnd_next(&x) % 3);
		v->wanted = rnd_next(&x) % 20 != 0;
		v->current = rnd_next(&x) % 2 ? (int)(rnd_next(&x) % (uint64_t)nn) : -1;
		if (i < 60) {
			v->app = apps[i % 3];
			v->tier = tiers[(i / 3) % 3];
		}
		s->lists[i][0] = node_names[rnd_next(&x) % (uint64_t)nn];
		s->lists[i][1] = node_names[rnd_next(&x) % (uint64_t)nn];
		if (i % 7 == 0) {
			v->preferred = s->lists[i];
			v->npreferred = 2;
		} else if (i % 11 == 0) {
			v->possible = s->lists[i];
			v->npossible = 2;
		}
	}
	/* members spread over all VMs: rules overlap and contradict now and then */
	for (int k = 0; k < 30; k++) {
		enum pl_rule_type type = k % 5 == 4 ? PL_RULE_AFFINITY : PL_RULE_ANTI_AFFINITY;
		int n = 2 + (int)(rnd_next(&x) % 3);

		snprintf(rule_names[k], 16, "r%02d", k);
		for (int i = 0; i < n; i++)
			s->members[k][i] = vm_names[(k * 7 + i * 17) % nv];
		add_rule(s, rule_names[k], type, k % 2 == 0, s->members[k], (size_t)n)->scope =
			k % 3 == 0 ? PL_SCOPE_DOMAIN : PL_SCOPE_NODE;
	}
	add_tier_rule(s, "t-shop", true, "shop");
	add_tier_rule(s, "t-blog", false, "blog");
	add_tier_rule(s, "t-crm", true, "crm");
	s->in.params.cpu_overcommit_pct = 200;
}

/* A copy of @s with nodes, VMs and rules in another order (current remapped). */
static struct scn *shuffled(const struct scn *s, uint64_t seed, int *vperm)
{
	struct scn *t = scn_new();
	int nperm[MAXN], inv[MAXN], rperm[MAXR];
	uint64_t x = seed;

	t->in = s->in;
	t->in.nodes = t->nodes;
	t->in.vms = t->vms;
	t->in.rules = t->rules;
	for (size_t i = 0; i < s->in.nnodes; i++)
		nperm[i] = (int)i;
	for (size_t i = 0; i < s->in.nvms; i++)
		vperm[i] = (int)i;
	for (size_t i = 0; i < s->in.nrules; i++)
		rperm[i] = (int)i;
	for (size_t i = s->in.nnodes; i > 1; i--) {
		size_t j = rnd_next(&x) % i;
		int tmp = nperm[i - 1];

		nperm[i - 1] = nperm[j];
		nperm[j] = tmp;
	}
	for (size_t i = s->in.nvms; i > 1; i--) {
		size_t j = rnd_next(&x) % i;
		int tmp = vperm[i - 1];

		vperm[i - 1] = vperm[j];
		vperm[j] = tmp;
	}
	for (size_t i = s->in.nrules; i > 1; i--) {
		size_t j = rnd_next(&x) % i;
		int tmp = rperm[i - 1];

		rperm[i - 1] = rperm[j];
		rperm[j] = tmp;
	}
	for (size_t i = 0; i < s->in.nnodes; i++) {
		t->nodes[i] = s->nodes[nperm[i]];
		inv[nperm[i]] = (int)i;
	}
	for (size_t i = 0; i < s->in.nvms; i++) {
		t->vms[i] = s->vms[vperm[i]];
		if (t->vms[i].current >= 0)
			t->vms[i].current = inv[t->vms[i].current];
	}
	for (size_t i = 0; i < s->in.nrules; i++)
		t->rules[i] = s->rules[rperm[i]];
	return t;
}

static void assert_same_result(const char *vm, const struct scn *s, const struct pl_result *a,
			       const struct scn *t, const struct pl_result *b)
{
	const char *na = a->node < 0 ? "-" : s->nodes[a->node].name;
	const char *nb = b->node < 0 ? "-" : t->nodes[b->node].name;

	if (strcmp(na, nb) || a->moved != b->moved || strcmp(a->reason, b->reason) ||
	    strcmp(a->broken, b->broken) || strcmp(a->why, b->why))
		fail_msg("%s: %s '%s' '%s' '%s' vs %s '%s' '%s' '%s'", vm, na, a->why, a->reason,
			 a->broken, nb, b->why, b->reason, b->broken);
}

static void test_deterministic_whatever_the_order(void **state)
{
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct scn *s = scn_new();
		int placed = 0, vperm[MAXV];

		random_scenario(s, seed * 0x9e3779b97f4a7c15ULL);
		solve(s);
		assert_hard_constraints(s);
		for (size_t i = 0; i < s->in.nvms; i++)
			placed += s->out[i].node >= 0;
		assert_true(placed > 50); /* the scenario is crowded, not empty */
		for (uint64_t k = 1; k <= 3; k++) {
			struct scn *t = shuffled(s, seed * 31 + k, vperm);

			solve(t);
			for (size_t i = 0; i < t->in.nvms; i++)
				assert_same_result(t->vms[i].name, s, &s->out[vperm[i]], t,
						   &t->out[i]);
			free(t);
		}
		free(s);
	}
}

/* Solving the answer again changes nothing: the placement is its own fixed point. */
static void test_no_churn_on_resolve(void **state)
{
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct scn *s = scn_new();
		int before[MAXV];

		random_scenario(s, seed * 0x2545f4914f6cdd1dULL);
		solve(s);
		for (size_t i = 0; i < s->in.nvms; i++) {
			before[i] = s->out[i].node;
			s->vms[i].current = s->out[i].node;
		}
		solve(s);
		for (size_t i = 0; i < s->in.nvms; i++) {
			if (before[i] >= 0 && s->out[i].node != before[i])
				fail_msg("seed %llu: %s moved from %s on a re-solve: %s",
					 (unsigned long long)seed, s->vms[i].name,
					 s->nodes[before[i]].name, s->out[i].why);
			assert_false(s->out[i].moved);
		}
		free(s);
	}
}

/* --- rule checks --------------------------------------------------------------------- */

static void expect_refused(struct scn *s, const struct pl_rule *r, const char *msg)
{
	char err[512] = "";

	assert_int_equal(placement_rule_check(&s->in, r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, msg);
}

static const char *const db12[] = { "db1", "db2" };
static const char *const db13[] = { "db1", "db3" };
static const char *const db23[] = { "db2", "db3" };
static const char *const web_db[] = { "web1", "db1" };

/* The shop (app, db and web tiers, two VMs each) and a third db VM. */
static struct scn *shop_scn(void)
{
	struct scn *s = scn_new();

	add_shop(s);
	add_vm(s, "db3", 1, 512)->app = "shop";
	s->vms[6].tier = "db";
	return s;
}

static void test_rule_check_affinity_against_anti_affinity(void **state)
{
	static const char *const db21[] = { "db2", "db1" };
	struct scn *s = shop_scn();
	struct pl_rule r = { .name = "db-together", .type = PL_RULE_AFFINITY, .hard = true,
			     .vms = db21, .nvms = 2 };
	char err[256] = "x";

	add_rule(s, "db-apart", PL_RULE_ANTI_AFFINITY, false, db12, 2);
	expect_refused(s, &r, "rule db-together (affinity) contradicts rule db-apart "
			      "(anti-affinity): both name db1 and db2");
	r.vms = db13;
	assert_int_equal(placement_rule_check(&s->in, &r, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	/* a chain of affinity rules keeps db1 and db2 together just the same */
	add_rule(s, "db13", PL_RULE_AFFINITY, false, db13, 2);
	r = (struct pl_rule){ .name = "db23", .type = PL_RULE_AFFINITY, .vms = db23, .nvms = 2 };
	expect_refused(s, &r, "rule db23 (affinity) contradicts rule db-apart (anti-affinity): "
			      "with rule db13 it keeps db1 and db2 on one node");
	free(s);

	/* the other way round: the anti-affinity comes last */
	s = shop_scn();
	add_rule(s, "db13", PL_RULE_AFFINITY, false, db13, 2);
	add_rule(s, "db23", PL_RULE_AFFINITY, true, db23, 2);
	r = (struct pl_rule){ .name = "db-apart", .type = PL_RULE_ANTI_AFFINITY, .vms = db12,
			      .nvms = 2 };
	expect_refused(s, &r, "rule db-apart (anti-affinity) contradicts rules db13, db23 "
			      "(affinity): together they keep db1 and db2 on one node");
	free(s);
}

static void test_rule_check_affinity_against_tiers(void **state)
{
	struct scn *s = shop_scn();
	struct pl_rule r = { .name = "shop-tiers", .type = PL_RULE_TIER_SEPARATION, .app = "shop" };

	assert_int_equal(placement_rule_check(&s->in, &r, NULL, 0), 0);
	add_rule(s, "web-db", PL_RULE_AFFINITY, false, web_db, 2);
	expect_refused(s, &r, "rule shop-tiers (tier-separation) contradicts rule web-db "
			      "(affinity): it keeps db1 (tier db) and web1 (tier web) of app shop "
			      "on one node");
	r.app = "blog"; /* another app: no contradiction */
	assert_int_equal(placement_rule_check(&s->in, &r, NULL, 0), 0);
	free(s);

	s = shop_scn();
	add_tier_rule(s, "shop-tiers", true, "shop");
	r = (struct pl_rule){ .name = "web-db", .type = PL_RULE_AFFINITY, .vms = web_db,
			      .nvms = 2 };
	expect_refused(s, &r, "rule web-db (affinity) contradicts rule shop-tiers "
			      "(tier-separation): it keeps db1 (tier db) and web1 (tier web) of "
			      "app shop on one node");
	/* one tier together is what tier separation allows */
	r.name = "db-pair";
	r.vms = db12;
	assert_int_equal(placement_rule_check(&s->in, &r, NULL, 0), 0);
	free(s);
}

static void test_rule_check_refusals(void **state)
{
	static const char *const unknown[] = { "db1", "db9" };
	static const char *const twice[] = { "db1", "db1" };
	struct scn *s = shop_scn();
	struct pl_rule r = { .name = "db-pair", .type = PL_RULE_ANTI_AFFINITY, .vms = unknown,
			     .nvms = 2 };

	add_rule(s, "db13", PL_RULE_AFFINITY, false, db13, 2);
	expect_refused(s, &r, "rule db-pair names unknown VM db9");
	r.vms = twice;
	expect_refused(s, &r, "rule db-pair names VM db1 twice");
	r.vms = db12;
	r.nvms = 1;
	expect_refused(s, &r, "rule db-pair: an anti-affinity rule needs at least 2 VMs");
	r.nvms = 2;
	r.name = "db13";
	expect_refused(s, &r, "rule db13 already exists");
	r.name = "";
	expect_refused(s, &r, "a rule needs a name");
	r = (struct pl_rule){ .name = "t", .type = PL_RULE_TIER_SEPARATION };
	expect_refused(s, &r, "rule t: a tier-separation rule needs an app");
	free(s);
}

/* --- bad input ------------------------------------------------------------------------- */

static void expect_einval(struct scn *s)
{
	memset(s->out, 0x5a, sizeof(s->out[0]) * (s->in.nvms ? s->in.nvms : 1));
	assert_int_equal(placement_solve(&s->in, s->out), -EINVAL);
	assert_int_equal((unsigned char)s->out[0].why[0], 0x5a); /* not written */
}

static void test_bad_input(void **state)
{
	static const char *const ab[] = { "a", "b" };
	struct scn *s = scn_new();

	add_node(s, "n1", 8, 8192);
	add_node(s, "n2", 8, 8192);
	add_vm(s, "a", 1, 512);
	add_vm(s, "b", 1, 512);
	add_rule(s, "r", PL_RULE_ANTI_AFFINITY, true, ab, 2);
	solve(s);

	assert_int_equal(placement_solve(NULL, s->out), -EINVAL);
	assert_int_equal(placement_solve(&s->in, NULL), -EINVAL);
	s->nodes[1].name = "n1";
	expect_einval(s);
	s->nodes[1].name = "n2";
	s->vms[1].name = "a";
	expect_einval(s);
	s->vms[1].name = "";
	expect_einval(s);
	s->vms[1].name = "b";
	s->vms[1].current = 2; /* dangling index */
	expect_einval(s);
	s->vms[1].current = -1;
	s->vms[1].classification = 4;
	expect_einval(s);
	s->vms[1].classification = 0;
	s->nodes[0].clearance = -1;
	expect_einval(s);
	s->nodes[0].clearance = 3;
	s->rules[1] = s->rules[0]; /* duplicate rule name */
	s->in.nrules = 2;
	expect_einval(s);
	s->rules[1] = (struct pl_rule){ .name = "t", .type = PL_RULE_TIER_SEPARATION };
	expect_einval(s);
	s->in.nrules = 1;
	s->vms[0].npossible = 1; /* a count with no list */
	expect_einval(s);
	s->vms[0].npossible = 0;
	s->vms[0].memory_mb = 1ULL << 41; /* 2 EiB: not a real VM */
	expect_einval(s);
	s->vms[0].memory_mb = 512;
	s->nodes[0].memory_mb = 1ULL << 41;
	expect_einval(s);
	s->nodes[0].memory_mb = 8192;
	s->in.params.cpu_overcommit_pct = 100000;
	expect_einval(s);
	s->in.params.cpu_overcommit_pct = 100;
	solve(s);

	/* a rule naming a VM that no longer exists binds the others still */
	s->rules[0].vms = (const char *const[]){ "a", "gone", "b" };
	s->rules[0].nvms = 3;
	solve(s);
	assert_int_not_equal(s->out[0].node, s->out[1].node);
	free(s);
}

/* Every allocation of a solve and a rule check failing in turn: -ENOMEM, nothing written. */
static void test_out_of_memory(void **state)
{
	static const char *const ab[] = { "a", "b" };
	struct scn *s = scn_new();
	struct pl_rule r = { .name = "ab", .type = PL_RULE_AFFINITY, .vms = ab, .nvms = 2 };
	int calls, ret;
	char err[128];

	if (!__real_calloc) {
		free(s);
		skip(); /* not linked with -Wl,--wrap=calloc: nothing to inject into */
	}
	random_scenario(s, 7);
	calloc_calls = 0;
	solve(s);
	calls = calloc_calls;
	assert_true(calls > 20);
	for (int k = 0; k < calls; k++) {
		memset(s->out, 0x5a, sizeof(s->out));
		calloc_fail_in = k;
		ret = placement_solve(&s->in, s->out);
		calloc_fail_in = -1;
		assert_int_equal(ret, -ENOMEM);
		assert_int_equal((unsigned char)s->out[0].why[0], 0x5a);
	}
	s->vms[0].name = "a";
	s->vms[1].name = "b";
	calloc_calls = 0;
	assert_int_equal(placement_rule_check(&s->in, &r, err, sizeof(err)), 0);
	calls = calloc_calls;
	for (int k = 0; k < calls; k++) {
		calloc_fail_in = k;
		ret = placement_rule_check(&s->in, &r, err, sizeof(err));
		calloc_fail_in = -1;
		assert_int_equal(ret, -ENOMEM);
	}
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_running_vms_stay),
		cmocka_unit_test(test_hard_rule_added_since_moves_one),
		cmocka_unit_test(test_capacity_shrank_moves_lowest_priority),
		cmocka_unit_test(test_failover_respects_hard_anti_affinity),
		cmocka_unit_test(test_soft_anti_affinity_broken_only_when_unavoidable),
		cmocka_unit_test(test_domain_scope),
		cmocka_unit_test(test_tier_separation_three_nodes),
		cmocka_unit_test(test_tier_separation_two_nodes),
		cmocka_unit_test(test_hard_affinity_keeps_group_together),
		cmocka_unit_test(test_split_group_gathers),
		cmocka_unit_test(test_group_holding_two_tiers),
		cmocka_unit_test(test_soft_affinity_follows),
		cmocka_unit_test(test_affinity_against_anti_affinity_in_solve),
		cmocka_unit_test(test_least_loaded),
		cmocka_unit_test(test_priority_wins_when_short),
		cmocka_unit_test(test_overcommit),
		cmocka_unit_test(test_clearance),
		cmocka_unit_test(test_possible_and_preferred),
		cmocka_unit_test(test_unwanted_uses_nothing),
		cmocka_unit_test(test_deterministic_whatever_the_order),
		cmocka_unit_test(test_no_churn_on_resolve),
		cmocka_unit_test(test_rule_check_affinity_against_anti_affinity),
		cmocka_unit_test(test_rule_check_affinity_against_tiers),
		cmocka_unit_test(test_rule_check_refusals),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_out_of_memory),
	};

	return cmocka_run_group_tests_name("placement", tests, NULL, NULL);
}
