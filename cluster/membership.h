/*
 * Cluster membership on corosync: the CPG group of hvnoded processes and
 * votequorum's quorate flag, joined to the daemon's qb_loop.
 *
 * When corosync goes away the membership reports itself unavailable (not
 * quorate, no members, no leader) and reconnects with backoff; it never
 * gives up and never exits the process.
 */
#ifndef HV_CLUSTER_MEMBERSHIP_H
#define HV_CLUSTER_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <qb/qbloop.h>

#include "members.h"

typedef struct membership membership_t;

#define MEMBER_NAME_MAX 65

struct member {
	uint32_t id;
	char name[MEMBER_NAME_MAX]; /* from corosync's nodelist; "node<id>" if it has none */
};

struct membership_ops {
	/* Availability, quorum or the member set changed. */
	void (*changed)(membership_t *m, void *arg);
	/*
	 * A message from the group, in agreed order. @msg is valid only during
	 * the callback; it comes from the network and must be validated.
	 */
	void (*deliver)(membership_t *m, uint32_t nodeid, uint32_t pid, const void *msg,
			size_t len, void *arg);
	/*
	 * The CPG group's members changed (in order with deliver): the hvnoded
	 * processes of @ids (process ids @pids). Called before changed().
	 */
	void (*confchg)(membership_t *m, const uint32_t *ids, const uint32_t *pids, size_t n,
			void *arg);
};

/*
 * Start tracking the membership of @cluster_name; connects at once and keeps
 * reconnecting while corosync is unavailable. Returns NULL with errno set
 * only on allocation failure.
 */
membership_t *membership_create(qb_loop_t *loop, const char *cluster_name,
				const struct membership_ops *ops, void *arg);
void membership_destroy(membership_t *m);

bool membership_is_available(const membership_t *m);
bool membership_is_quorate(const membership_t *m);
/* This node's corosync node id; 0 until first connected. */
uint32_t membership_local_id(const membership_t *m);
/* Lowest node id of the quorate membership, 0 when there is none. */
uint32_t membership_leader(const membership_t *m);
/* Members, ascending by id; returns the count (at most @max written). */
size_t membership_members(membership_t *m, struct member *out, size_t max);
/* Name of node @id as corosync knows it; "node<id>" if unknown. */
const char *membership_node_name(membership_t *m, uint32_t id);
/* Node @id's ring0_addr in corosync's nodelist (an address or a host name); false if unknown. */
bool membership_node_addr(membership_t *m, uint32_t id, char *out, size_t outlen);
/*
 * The knet crypto corosync runs with (totem.crypto_cipher, totem.crypto_hash:
 * "aes256", "sha256", ... or "none", also when unset). 0, or -ENOTCONN while
 * corosync is unavailable, or -errno when cmap refuses.
 */
int membership_crypto(membership_t *m, char *cipher, size_t cipherlen, char *hash,
		      size_t hashlen);
/* Why corosync is unavailable, for status output ("" when available). */
const char *membership_unavailable_reason(const membership_t *m);

/* Multicast @iov to the group in agreed order; 0 or -errno (-ENOTCONN when unavailable). */
int membership_send(membership_t *m, const struct iovec *iov, unsigned int iovcnt);

#endif
