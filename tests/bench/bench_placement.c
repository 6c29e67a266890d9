/*
 * Placement at scale: 10,000 VMs on 1,000 nodes with a few hundred rules, the
 * size the design promises to solve in well under 100 ms. Prints one table row
 * per scenario; the input is made from a fixed seed, so runs are comparable.
 *
 *   bench_placement [runs]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../cluster/placement.h"

#define NODES 1000
#define VMS 10000
#define RACKS 50
#define APPS 300
#define TIER_VMS 3 /* per tier: 300 apps x 3 tiers x 3 = 2,700 tiered VMs */
#define ANTI_RULES 250
#define AFFINITY_RULES 50
#define RULES (APPS + ANTI_RULES + AFFINITY_RULES)
#define FAILED_NODES (NODES / 100)

static const char *const tiers[] = { "web", "app", "db" };

struct world {
	struct pl_node nodes[NODES];
	struct pl_vm vms[VMS];
	struct pl_rule rules[RULES];
	char node_names[NODES][24], rack_names[RACKS][24], vm_names[VMS][24];
	char app_names[APPS][24], rule_names[RULES][24];
	const char *members[ANTI_RULES + AFFINITY_RULES][3];
	const char *lists[VMS][8];
	struct pl_result out[VMS];
	struct pl_input in;
};

static uint64_t rnd(uint64_t *x) /* xorshift64: the same numbers everywhere */
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void build(struct world *w, uint64_t seed)
{
	uint64_t x = seed;
	size_t nr = 0;

	for (int i = 0; i < RACKS; i++)
		snprintf(w->rack_names[i], sizeof(w->rack_names[i]), "rack%02d", i);
	for (int i = 0; i < NODES; i++) {
		uint64_t c = rnd(&x) % 10;

		snprintf(w->node_names[i], sizeof(w->node_names[i]), "n%04d", i);
		w->nodes[i] = (struct pl_node){
			.name = w->node_names[i],
			.id = (uint32_t)i + 1,
			.vcpus = rnd(&x) % 2 ? 64 : 32,
			.memory_mb = (rnd(&x) % 2 ? 512 : 256) * 1024,
			.domain = w->rack_names[i % RACKS],
			.clearance = c < 1 ? 0 : c < 3 ? 1 : c < 7 ? 2 : 3,
			.usable = true,
		};
	}
	for (int i = 0; i < APPS; i++)
		snprintf(w->app_names[i], sizeof(w->app_names[i]), "app%03d", i);
	for (int i = 0; i < VMS; i++) {
		struct pl_vm *v = &w->vms[i];

		snprintf(w->vm_names[i], sizeof(w->vm_names[i]), "vm%05d", i);
		*v = (struct pl_vm){
			.name = w->vm_names[i],
			.vcpus = 1 + (unsigned int)(rnd(&x) % 8),
			.memory_mb = (1 + rnd(&x) % 32) * 1024,
			.priority = (int)(rnd(&x) % 3),
			.classification = rnd(&x) % 20 == 0 ? 3 : (int)(rnd(&x) % 3),
			.app = "",
			.tier = "",
			.current = -1,
			.wanted = true,
		};
		if (i < APPS * 3 * TIER_VMS) {
			v->app = w->app_names[i / (3 * TIER_VMS)];
			v->tier = tiers[i / TIER_VMS % 3];
		}
		for (int k = 0; k < 8; k++)
			w->lists[i][k] = w->node_names[rnd(&x) % NODES];
		if (rnd(&x) % 5 == 0) {
			v->preferred = w->lists[i];
			v->npreferred = 2;
		} else if (rnd(&x) % 20 == 0) {
			v->possible = w->lists[i];
			v->npossible = 8;
		}
	}
	for (int i = 0; i < APPS; i++) {
		snprintf(w->rule_names[nr], sizeof(w->rule_names[nr]), "tiers%03d", i);
		w->rules[nr] = (struct pl_rule){ .name = w->rule_names[nr],
						 .type = PL_RULE_TIER_SEPARATION,
						 .hard = i % 3 != 0, .app = w->app_names[i] };
		nr++;
	}
	/* anti-affinity pairs and triples, and affinity pairs, among untiered VMs */
	for (int i = 0; i < ANTI_RULES + AFFINITY_RULES; i++) {
		bool anti = i < ANTI_RULES;
		size_t n = anti && i % 3 == 0 ? 3 : 2;

		for (size_t k = 0; k < n; k++)
			w->members[i][k] = w->vm_names[APPS * 9 + (i * 3 + (int)k) * 2];
		snprintf(w->rule_names[nr], sizeof(w->rule_names[nr]), "%s%03d", anti ? "aa" : "af",
			 i);
		w->rules[nr] = (struct pl_rule){
			.name = w->rule_names[nr],
			.type = anti ? PL_RULE_ANTI_AFFINITY : PL_RULE_AFFINITY,
			.hard = i % 2 == 0,
			.scope = anti && i % 4 == 1 ? PL_SCOPE_DOMAIN : PL_SCOPE_NODE,
			.vms = w->members[i],
			.nvms = n,
		};
		nr++;
	}
	w->in = (struct pl_input){ .nodes = w->nodes, .nnodes = NODES, .vms = w->vms, .nvms = VMS,
				   .rules = w->rules, .nrules = nr };
	w->in.params.cpu_overcommit_pct = 400; /* 4 vcpus per core, memory not overcommitted */
	w->in.params.mem_overcommit_pct = 100;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Solve @runs times; print the row; 0 or the solver's error. */
static int scenario(struct world *w, const char *name, int runs)
{
	double ms[64];
	int placed = 0, unplaced = 0, relocated = 0, ret = 0;

	for (int r = 0; r < runs; r++) {
		double t0 = now_ms();

		ret = placement_solve(&w->in, w->out);
		ms[r] = now_ms() - t0;
		if (ret) {
			fprintf(stderr, "%s: placement_solve: %s\n", name, strerror(-ret));
			return ret;
		}
	}
	qsort(ms, (size_t)runs, sizeof(double), cmp_double);
	for (size_t i = 0; i < w->in.nvms; i++) {
		placed += w->out[i].node >= 0;
		unplaced += w->vms[i].wanted && w->out[i].node < 0;
		/* running before, placed elsewhere now: moves and failover restarts */
		relocated += w->out[i].node >= 0 && w->vms[i].current >= 0 &&
			     w->out[i].node != w->vms[i].current;
	}
	printf("%-16s %6zu %6zu %6zu %7d %8d %9d %8.2f %9.2f\n", name, w->in.nvms, w->in.nnodes,
	       w->in.nrules, placed, unplaced, relocated, ms[0], ms[runs / 2]);
	return 0;
}

/* The last answer becomes what runs now. */
static void adopt(struct world *w)
{
	for (size_t i = 0; i < w->in.nvms; i++)
		w->vms[i].current = w->out[i].node;
}

int main(int argc, char **argv)
{
	struct world *w = calloc(1, sizeof(*w));
	int runs = argc > 1 ? atoi(argv[1]) : 7;
	uint64_t x = 42;

	if (!w)
		return 1;
	if (runs < 1 || runs > 64)
		runs = 7;
	build(w, 0x5eed5eed5eedULL);
	printf("%-16s %6s %6s %6s %7s %8s %9s %8s %9s\n", "scenario", "VMs", "nodes", "rules",
	       "placed", "unplaced", "relocated", "min ms", "median ms");
	if (scenario(w, "cold", runs))
		return 1;
	adopt(w);
	if (scenario(w, "steady", runs))
		return 1;
	/* 1% of the nodes fail with their VMs on them */
	for (int i = 0; i < FAILED_NODES; i++)
		w->nodes[rnd(&x) % NODES].usable = false;
	if (scenario(w, "failover 1%", runs))
		return 1;
	/* memory cut to a quarter: many VMs wait, each with its reason */
	for (int i = 0; i < NODES; i++) {
		w->nodes[i].usable = true;
		w->nodes[i].memory_mb /= 4;
	}
	for (int i = 0; i < VMS; i++)
		w->vms[i].current = -1;
	if (scenario(w, "cold, short", runs))
		return 1;
	free(w);
	return 0;
}
