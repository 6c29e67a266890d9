/* Private to cluster/: the helpers and op handlers ops.c and ops_mig.c share. */
#ifndef HV_CLUSTER_OPS_INT_H
#define HV_CLUSTER_OPS_INT_H

#include "ops.h"

const char *ops_op_name(const json_t *op);
const char *ops_str_arg(const json_t *op, const char *key);
/* The VM named by "name", or NULL with @err. */
const struct vm_def *ops_named_vm(const cluster_state_t *s, const json_t *op, char *err,
				  size_t errlen);

int op_vm_migrate(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_vm_migrate_cancel(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_mig_progress(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		    size_t errlen);
int op_mig_handoff(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		   size_t errlen);
int op_mig_end(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
	       size_t errlen);
int op_mgr_mig(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_mgr_mig_cancel(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_vm_save(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_vm_restore(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_mig_saved(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		 size_t errlen);
int op_mgr_move(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_node_drain(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		  size_t errlen);
int op_node_resume(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
int op_node_freeze(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		   size_t errlen);
int op_node_leave(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		  size_t errlen);
int op_mgr_held(cluster_state_t *s, const json_t *op, char *err, size_t errlen);
/* End @st's queued (not yet started) migration as cancelled, with @reason. */
void mig_cancel_queued(struct vm_status *st, const char *reason);
/* Node @node reports @st running, @resume_ms after its QEMU had loaded a migration's stream. */
void mig_target_resumed(struct vm_status *st, uint32_t node, uint64_t resume_ms);
/* After every applied op: end migrations whose VM left the state they need. */
void mig_settle(cluster_state_t *s);

#endif
