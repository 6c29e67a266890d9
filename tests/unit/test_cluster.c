/* Unit tests of cluster/: membership arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../cluster/members.h"

static void test_merge_intersects_and_sorts(void **state)
{
	/* node 4's hvnoded is in the group but corosync has dropped node 4 */
	uint32_t cpg[] = { 3, 1, 4, 3 };
	uint32_t quorum[] = { 1, 2, 3 };
	uint32_t out[MEMBERS_MAX];
	size_t n = members_merge(cpg, 4, quorum, 3, out, MEMBERS_MAX);

	assert_int_equal(n, 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 3);
}

static void test_merge_bounds(void **state)
{
	uint32_t cpg[] = { 5, 4, 3, 2, 1 };
	uint32_t out[2];

	/* never writes past max; no member without quorum membership */
	assert_int_equal(members_merge(cpg, 5, cpg, 5, out, 2), 2);
	assert_int_equal(members_merge(cpg, 5, NULL, 0, out, 2), 0);
	assert_int_equal(members_merge(NULL, 0, cpg, 5, out, 2), 0);
}

static void test_merge_ignores_zero(void **state)
{
	uint32_t ids[] = { 0, 2 };
	uint32_t out[4];

	assert_int_equal(members_merge(ids, 2, ids, 2, out, 4), 1);
	assert_int_equal(out[0], 2);
}

static void test_leader(void **state)
{
	uint32_t ids[] = { 7, 3, 9 };

	assert_int_equal(members_leader(ids, 3, true), 3);
	/* no leader without quorum */
	assert_int_equal(members_leader(ids, 3, false), 0);
	assert_int_equal(members_leader(NULL, 0, true), 0);
}

static void test_leader_changes_when_lowest_leaves(void **state)
{
	uint32_t before[] = { 1, 2, 3 };
	uint32_t after[] = { 2, 3 };

	assert_int_equal(members_leader(before, 3, true), 1);
	assert_int_equal(members_leader(after, 2, true), 2);
}

static void test_backoff(void **state)
{
	unsigned int ms = 0, seen[8];

	for (int i = 0; i < 8; i++)
		seen[i] = ms = members_backoff_next(ms);
	assert_int_equal(seen[0], 100);
	assert_int_equal(seen[1], 200);
	assert_int_equal(seen[4], 1600);
	assert_int_equal(seen[5], 3200);
	assert_int_equal(seen[6], 5000);
	assert_int_equal(seen[7], 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_intersects_and_sorts),
		cmocka_unit_test(test_merge_bounds),
		cmocka_unit_test(test_merge_ignores_zero),
		cmocka_unit_test(test_leader),
		cmocka_unit_test(test_leader_changes_when_lowest_leaves),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
