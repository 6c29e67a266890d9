/*
 * The security report: what an auditor asks of the cluster, computed from
 * the replicated state and a few facts only the asking node knows (the
 * corosync crypto it runs with). Pure: no I/O, so it is tested on states
 * built from ops. `hvctl security report` prints it.
 */
#ifndef HV_CLUSTER_SECREPORT_H
#define HV_CLUSTER_SECREPORT_H

#include <jansson.h>

#include "state.h"

/* The checks, in the order they are reported (the "check" of each finding). */
#define SECREPORT_CLEARANCE "clearance"		      /* a guest above its host's clearance */
#define SECREPORT_OWNER "owner-contact"		      /* a VM without owner or contact */
#define SECREPORT_RULES "rules"			      /* anti-affinity, tier separation broken */
#define SECREPORT_COROSYNC "corosync-crypto"	      /* cluster messages in clear */
#define SECREPORT_MIGKEYS "migration-keys"	      /* a node without a CURVE key */
#define SECREPORT_STORAGE "storage-reservations"      /* LUNs without standing reservations */
#define SECREPORT_FENCING "fencing"		      /* a node without a (usable) fence level */

/* What the asking node knows that the state does not. */
struct secreport_local {
	const char *node;      /* its name, for the findings about what it read */
	int crypto_rc;	       /* 0: the two below are what corosync runs with; else -errno */
	char crypto_cipher[32]; /* totem.crypto_cipher, "none" when unset */
	char crypto_hash[32];
};

/*
 * The report as a new JSON object, or NULL when out of memory:
 *   findings: [{check, severity ("problem"|"warning"), object, detail, ...}]
 *   hosts:    [{name, clearance, effective_classification (null: no VM), vms}]
 *   checks:   {check: "ok"|"findings"} for every check above
 *   corosync: {crypto_cipher, crypto_hash} when known
 * A finding may carry more fields (vm, node, classification, clearance; a
 * storage-reservations finding: disks, the LUNs without reservations, and state_lun
 * when the VM has one).
 */
json_t *secreport_build(const cluster_state_t *s, const struct secreport_local *local);

/*
 * Node @id's effective classification: the highest classification of the VMs assigned to
 * it (running, starting, stopping, or waiting for its fence), as an enum vm_class; -1 when
 * it has none. *@nvms gets how many VMs that is. The report's hosts and node.list use it.
 */
int secreport_host_class(const cluster_state_t *s, uint32_t id, size_t *nvms);

#endif
