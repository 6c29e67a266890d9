/*
 * Changes of the cluster state ("ops"): JSON objects {"op": NAME, ...} that
 * travel in CPG agreed order and are applied by every node with
 * state_apply(), so every node holds the same state. Applying is
 * deterministic: it depends only on the state, the op and its context, never
 * on the clock or on local facts.
 *
 *   vm.create  {def}                       any node (for hvctl); def has its uuid
 *   vm.delete  {name}                      only a stopped VM
 *   vm.want    {name, running}             desired state (hvctl vm start/stop)
 *   settings.set {settings}               cluster-wide settings (overcommit, restart limit)
 *   rule.add   {rule} / rule.del {name}    rules naming unknown VMs or contradicting
 *                                          another rule are refused
 *   fence.device.add {device} / fence.device.del {name}
 *   fence.level.add {level} / fence.level.del {node, index}
 *   node.fence {id, by, at_ms}             an admin asks to fence a node now
 *   node.confirm {id, by, at_ms}           an admin confirms a node is off: fenced
 *   node.hello {id, name, vcpus, memory, domain, clearance, watchdog_s}
 *                                          from that node: it is clean (no leftover
 *                                          VM, keys re-registered) and has this capacity
 *   vm.report  {name, epoch, event, reason}
 *                                          from the node the VM is assigned to
 *   mgr.vm     {name, expect_epoch, expect_want, ...}
 *                                          leader only: the manager's decision for a
 *                                          VM; refused when the epoch moved meanwhile
 *   mgr.node   {id, expect, status}        leader only
 *   mgr.fenced {id, ok, detail, at_ms}     leader only: the fence of node id
 *
 *   acl.add {binding} / acl.del {name}     role bindings (see acl.h)
 *   audit.denied {...}                     a refused request, for the audit logs: no change
 *
 * Every op may carry "req" (a number) for the requester to match its reply,
 * and "who" ({uid, user, role, node}) for the audit log; neither changes it.
 */
#ifndef HV_CLUSTER_OPS_H
#define HV_CLUSTER_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "state.h"

struct op_ctx {
	uint32_t sender; /* the node the op came from */
	uint32_t leader; /* the leader of the configuration it was delivered in */
};

/*
 * Apply @op. 0: applied, the version bumped. -errno: refused, @s unchanged,
 * @err says why (naming the object). Never crashes on any JSON value.
 */
int state_apply(cluster_state_t *s, const json_t *op, const struct op_ctx *ctx, char *err,
		size_t errlen);

/*
 * Whether @r may be added to @s: every VM it names exists, it does not
 * contradict a rule already there. 0 or -EINVAL/-ENOENT/-EEXIST with @err.
 */
int state_rule_check(const cluster_state_t *s, const struct rule *r, char *err, size_t errlen);

#endif
