/*
 * Migrations on this node (private to node/): the keys and the migration
 * server (target side), and the source's work for each outgoing migration:
 * QMP getfd + migrate into a socket whose other end the stream sender
 * (migrate/) reads, progress for the cluster state, the handoff or the
 * recovery. What to do comes from the cluster state; vmmig_reconcile()
 * looks at it whenever the agent reconciles.
 */
#ifndef HV_NODE_VMMIG_H
#define HV_NODE_VMMIG_H

#include <stddef.h>
#include <stdint.h>

struct hvnoded;

/* Keys (made at first start) and the server; 0 or -errno with @err (hvnoded runs on without). */
int vmmig_init(struct hvnoded *d, char *err, size_t errlen);
/* Daemon stop, in this order: vmmig_stop(), vmrun_fini() (its drain ends our jobs), vmmig_fini(). */
void vmmig_stop(struct hvnoded *d);
void vmmig_fini(struct hvnoded *d);

/* What node.hello publishes: "" when this node has no migration server. */
const char *vmmig_endpoint(struct hvnoded *d);
const char *vmmig_pubkey(struct hvnoded *d);

/* Start, cancel, hand off, clean up what the state asks of this node. */
void vmmig_reconcile(struct hvnoded *d);

/* The public key of the client the ZAP handler lets in: every online node's. */
void vmmig_update_peers(struct hvnoded *d);

#endif
