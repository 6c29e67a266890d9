/*
 * Pure membership arithmetic: who is a member, who leads.
 *
 * No I/O here, so the rules are tested without corosync.
 */
#ifndef HV_CLUSTER_MEMBERS_H
#define HV_CLUSTER_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMBERS_MAX 64

/*
 * The members of the cluster seen from one node: nodes whose hvnoded is in
 * the CPG group (@cpg) and that are in corosync's current membership
 * (@quorum, as votequorum reports it). Writes them sorted ascending and
 * without duplicates to @out (at most @max); returns the count.
 */
size_t members_merge(const uint32_t *cpg, size_t ncpg, const uint32_t *quorum, size_t nquorum,
		     uint32_t *out, size_t max);

/*
 * The leader: the lowest node id among @ids when @quorate, else 0 (none).
 * Every member computes the same answer from the same membership, so no
 * election messages are needed.
 */
uint32_t members_leader(const uint32_t *ids, size_t n, bool quorate);

/* Reconnect backoff: 100 ms doubling, capped at 5 s. @prev_ms 0 means first. */
unsigned int members_backoff_next(unsigned int prev_ms);

#endif
