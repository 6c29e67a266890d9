#include "members.h"

#include <stdlib.h>

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool contains(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

size_t members_merge(const uint32_t *cpg, size_t ncpg, const uint32_t *quorum, size_t nquorum,
		     uint32_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ncpg && n < max; i++) {
		if (cpg[i] == 0 || !contains(quorum, nquorum, cpg[i]) || contains(out, n, cpg[i]))
			continue;
		out[n++] = cpg[i];
	}
	qsort(out, n, sizeof(*out), cmp_u32);
	return n;
}

uint32_t members_leader(const uint32_t *ids, size_t n, bool quorate)
{
	uint32_t lowest = 0;

	if (!quorate)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] != 0 && (lowest == 0 || ids[i] < lowest))
			lowest = ids[i];
	return lowest;
}

unsigned int members_backoff_next(unsigned int prev_ms)
{
	if (prev_ms == 0)
		return 100;
	if (prev_ms >= 2500)
		return 5000;
	return prev_ms * 2;
}
