/*
 * hvsim: the scenario simulator of the cluster brain (tests/sim).
 *
 * It drives the real pure code (state_apply, manager_step, plan, placement)
 * with scripted events on a virtual clock, and simulates around it what the
 * real daemon does (node/cluster.c): nodes with power and network, the agent
 * of each node (hello, start, stop, report, stop on quorum loss), the leader
 * (runs the manager, fences), corosync (membership, quorum, total order).
 * Planned maintenance (migrations as the agents carry them out, hvnoded's
 * clean stop, drains) is in simmaint.c.
 *
 * Model, step by step (one step every STEP_MS virtual ms):
 *   1. membership: the powered-on, connected nodes; quorate iff more than half
 *      of all nodes. A node that was powered off or cut off misses at least
 *      one membership (corosync always notices a reboot). The leader is the
 *      lowest id of a quorate membership.
 *   2. every node agent acts on the state as it was at the start of the step;
 *      then the leader completes fence jobs and runs manager_step() on the
 *      same state. Every op they send goes to one global queue.
 *   3. the queue is delivered at the end of the step, in send order (client
 *      ops from the script first, then agents by node id, then the leader),
 *      to the one state every member holds (total order: one state stands
 *      for all of them). An op whose sender is no longer a member is dropped.
 *      `set lag-ms` delays delivery by whole steps; the leader then decides
 *      again only once its previous decisions are applied (as node/cluster.c).
 *   4. invariants: a VM runs (starting or running, not fenced) on at most one
 *      node; a VM is never started while another node runs it or while the
 *      node it last ran on is fence-pending; a VM handed off by a migration's
 *      source no longer runs there; no node has more migrations in flight
 *      than migrate_max_per_node.
 * Script commands run between steps; `wait MS` runs MS/STEP_MS steps.
 *
 * The log (stdout) holds only virtual times and names, so it is the same on
 * every run: the expected logs of the scenarios are compared line by line.
 * Exit: 0 all expectations held, 1 an expectation failed or an invariant was
 * broken, 2 a bad script or usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../cluster/manager.h"
#include "../../cluster/ops.h"
#include "../../cluster/state.h"
#include "../../fencing/fence.h"
#include "fake_fence.h"
#include "sim.h"

#define MAX_TOKENS 32

void sim_say(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	printf("[%4" PRIu64 ".%03" PRIu64 "] ", s->now / 1000, s->now % 1000);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void sim_script_error(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s:%u: ", s->script, s->line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void sim_violated(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	printf("[%4" PRIu64 ".%03" PRIu64 "] INVARIANT VIOLATED: ", s->now / 1000, s->now % 1000);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(1);
}

/* --- lookups ------------------------------------------------------------------- */

struct simnode *sim_node_by_id(struct sim *s, uint32_t id)
{
	return id >= 1 && id <= s->nnodes ? &s->nodes[id - 1] : NULL;
}

struct simnode *sim_node_arg(struct sim *s, const char *name)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (!strcmp(s->nodes[i].name, name))
			return &s->nodes[i];
	sim_script_error(s, "no node '%s'", name);
}

const char *sim_id_name(struct sim *s, uint32_t id)
{
	struct simnode *n = sim_node_by_id(s, id);

	return n ? n->name : "none";
}

static int vm_index(struct sim *s, const char *name)
{
	for (size_t i = 0; i < s->nvms; i++)
		if (!strcmp(s->vms[i].name, name))
			return (int)i;
	return -1;
}

int sim_vm_arg(struct sim *s, const char *name)
{
	int v = vm_index(s, name);

	if (v < 0)
		sim_script_error(s, "no vm '%s' (declare it with `vm`)", name);
	return v;
}

bool sim_is_member(struct sim *s, uint32_t id)
{
	for (size_t i = 0; i < s->nmembers; i++)
		if (s->members[i] == id)
			return true;
	return false;
}

/* The node where @v has a live (not fenced) process, other than @except; NULL none. */
static struct simnode *live_run_elsewhere(struct sim *s, int v, uint32_t except)
{
	for (size_t i = 0; i < s->nnodes; i++) {
		struct simnode *n = &s->nodes[i];

		if (n->id != except && n->power && n->runs[v].used && !n->runs[v].fenced)
			return n;
	}
	return NULL;
}

/* --- the op queue (CPG agreed order) ---------------------------------------------- */

void sim_send_op(struct sim *s, uint32_t sender, json_t *op)
{
	if (!op) {
		fprintf(stderr, "hvsim: out of memory\n");
		exit(2);
	}
	if (s->nqueue == s->qcap) {
		s->qcap = s->qcap ? s->qcap * 2 : 64;
		s->queue = realloc(s->queue, s->qcap * sizeof(*s->queue));
		if (!s->queue) {
			fprintf(stderr, "hvsim: out of memory\n");
			exit(2);
		}
	}
	s->queue[s->nqueue++] = (struct qop){ .sender = sender, .due = s->now + s->lag_ms, .op = op };
}

static void after_apply(struct sim *s, const struct qop *q, int rc)
{
	const char *name = json_string_value(json_object_get(q->op, "op"));
	const char *event = json_string_value(json_object_get(q->op, "event"));
	struct simnode *n =
		sim_node_by_id(s, (uint32_t)json_integer_value(json_object_get(q->op, "id")));
	int v;

	if (!name)
		return;
	/* as node/cluster.c: a decision about a node makes it say hello again if needed */
	if (n && !strcmp(name, "mgr.node") && !rc)
		n->hello_sent = false;
	if (n && !strcmp(name, "mgr.fenced"))
		n->fencing = false;
	/* the cluster now knows that the VM no longer runs on its last node */
	v = vm_index(s, json_string_value(json_object_get(q->op, "name")) ?: "");
	if (!strcmp(name, "vm.report") && !rc && v >= 0 && event && strcmp(event, "running") &&
	    s->vms[v].last_host == q->sender)
		s->vms[v].last_host = 0;
	/* ... or that its source handed it over (its QEMU is gone, its LUNs released) */
	if (!strcmp(name, "mig.handoff") && !rc && v >= 0 && s->vms[v].last_host == q->sender)
		s->vms[v].last_host = 0;
}

static void deliver(struct sim *s)
{
	struct op_ctx ctx = { .leader = s->leader };
	char err[1024];
	size_t kept = 0;

	for (size_t i = 0; i < s->nqueue; i++) {
		struct qop *q = &s->queue[i];
		const char *name = json_string_value(json_object_get(q->op, "op"));
		int rc;

		/* total order: a later op waits for the earlier ones */
		if (kept || q->due > s->now) {
			s->queue[kept++] = *q;
			continue;
		}
		if (!sim_is_member(s, q->sender) || !s->quorate) {
			sim_say(s, "dropped %s from %s: not in the quorate membership", name,
				sim_id_name(s, q->sender));
			after_apply(s, q, -ENOTCONN);
			json_decref(q->op);
			continue;
		}
		ctx.sender = q->sender;
		rc = state_apply(s->st, q->op, &ctx, err, sizeof(err));
		if (rc)
			sim_say(s, "refused %s from %s: %s", name, sim_id_name(s, q->sender), err);
		after_apply(s, q, rc);
		json_decref(q->op);
	}
	s->nqueue = kept;
}

/* Decisions of the leader not yet applied: it decides again only after them (node/cluster.c). */
static bool leader_inflight(struct sim *s)
{
	for (size_t i = 0; i < s->nqueue; i++) {
		const char *name = json_string_value(json_object_get(s->queue[i].op, "op"));

		if (s->queue[i].sender == s->leader && name && !strncmp(name, "mgr.", 4))
			return true;
	}
	return false;
}

/* --- membership ------------------------------------------------------------------- */

static void compute_membership(struct sim *s)
{
	char text[256];
	size_t len = 0;

	s->nmembers = 0;
	for (size_t i = 0; i < s->nnodes; i++) {
		struct simnode *n = &s->nodes[i];

		if (n->power && n->connected && !n->missed)
			s->members[s->nmembers++] = n->id;
		n->missed = false;
	}
	s->quorate = s->nmembers * 2 > s->nnodes;
	s->leader = s->quorate && s->nmembers ? s->members[0] : 0;
	for (size_t i = 0; i < s->nnodes; i++)
		s->nodes[i].quorate = s->quorate && sim_is_member(s, s->nodes[i].id);
	len += (size_t)snprintf(text + len, sizeof(text) - len, "membership:");
	for (size_t i = 0; i < s->nmembers && len < sizeof(text); i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, " %s",
					sim_id_name(s, s->members[i]));
	if (len < sizeof(text) && s->quorate)
		snprintf(text + len, sizeof(text) - len, " (quorate, leader %s)",
			 sim_id_name(s, s->leader));
	else if (len < sizeof(text))
		snprintf(text + len, sizeof(text) - len, "%s(not quorate: %zu of %zu nodes)",
			 s->nmembers ? " " : " none ", s->nmembers, s->nnodes);
	if (strcmp(text, s->last_membership)) {
		sim_say(s, "%s", text);
		snprintf(s->last_membership, sizeof(s->last_membership), "%s", text);
	}
}

/* --- the node agent (node/cluster.c) ------------------------------------------------- */

/* The reservation key of node @id (storage_node_key() of a cluster named "sim"). */
uint64_t sim_node_key(uint32_t id)
{
	return 0x73696d0000000000ULL | id;
}

/* A start takes the VM's LUNs over with the node's key (vmrun's lun_acquire, takeover). */
static void take_luns(struct sim *s, struct simnode *n, int v)
{
	const struct vm_def *def = state_vm_find(s->st, s->vms[v].name);

	if (!def || !def->fence_storage)
		return; /* no persistent reservation at all */
	for (size_t k = 0; k < def->ndisks; k++)
		fake_lun_take(def->disks[k].url, sim_node_key(n->id));
}

/* Whether the process of @v on @n can no longer write: its key is gone from its LUNs. */
static bool luns_fenced(struct sim *s, struct simnode *n, int v)
{
	const struct vm_def *def = state_vm_find(s->st, s->vms[v].name);

	if (!def || !def->fence_storage || !def->ndisks)
		return false;
	for (size_t k = 0; k < def->ndisks; k++)
		if (fake_lun_has_key(def->disks[k].url, sim_node_key(n->id)))
			return false;
	return true;
}

void sim_report(struct sim *s, struct simnode *n, int v, uint64_t epoch, enum vm_event ev,
		const char *reason)
{
	struct agent_vm *a = &n->av[v];

	if (a->rep_epoch == epoch && a->rep_event == ev)
		return;
	a->rep_epoch = epoch;
	a->rep_event = ev;
	sim_send_op(s, n->id,
		    json_pack("{s:s,s:s,s:I,s:s,s:s}", "op", "vm.report", "name", s->vms[v].name,
			      "epoch", (json_int_t)epoch, "event", vm_event_name(ev), "reason",
			      reason ? reason : ""));
}

/* The status of @v when it is assigned to @n, else NULL. */
static const struct vm_status *mine(struct sim *s, struct simnode *n, int v)
{
	const struct vm_status *st = state_vm_status(s->st, s->vms[v].name);

	return st && st->node == n->id ? st : NULL;
}

void sim_run_stop(struct sim *s, struct simnode *n, int v, const char *why)
{
	struct run *r = &n->runs[v];

	sim_say(s, "%s: vm %s stopped (epoch %" PRIu64 "%s): %s", n->name, s->vms[v].name, r->epoch,
		r->fenced ? ", fenced" : "", why);
	memset(r, 0, sizeof(*r));
}

static void agent_lost_quorum(struct sim *s, struct simnode *n)
{
	if (!n->lost_quorum) {
		n->lost_quorum = true;
		n->quorum_lost_ms = s->now;
		if (n->was_quorate)
			sim_say(s, "%s: lost quorum", n->name);
	}
	n->hello_sent = false;
	/* what died meanwhile cannot be reported (node/cluster.c's report fails unsynced) */
	for (size_t v = 0; v < s->nvms; v++)
		n->av[v].gone = VM_EVENT_NONE;
	if (s->now - n->quorum_lost_ms < s->quorum_loss_ms)
		return;
	for (size_t v = 0; v < s->nvms; v++) {
		if (!n->runs[v].used)
			continue;
		sim_run_stop(s, n, (int)v, "this node lost quorum");
		/* its migration's stream broke; the mig.end cannot be sent now */
		n->av[v].mig_id = 0;
		n->av[v].mig_done = n->av[v].handed_off = false;
	}
}

/* Boot progress, and what died since the last step: reported for the current epoch only. */
static void agent_progress(struct sim *s, struct simnode *n)
{
	for (size_t v = 0; v < s->nvms; v++) {
		struct run *r = &n->runs[v];
		struct agent_vm *a = &n->av[v];
		const struct vm_status *st = mine(s, n, (int)v);

		if (a->gone != VM_EVENT_NONE) {
			if (st && st->epoch == a->gone_epoch)
				sim_report(s, n, (int)v, a->gone_epoch, a->gone, a->gone_reason);
			a->gone = VM_EVENT_NONE;
		}
		if (!r->used || r->phase != RUN_STARTING || s->now < r->ready_ms)
			continue;
		r->phase = RUN_RUNNING;
		sim_say(s, "%s: vm %s running (epoch %" PRIu64 ")", n->name, s->vms[v].name,
			r->epoch);
		if (st && st->epoch == r->epoch)
			sim_report(s, n, (int)v, r->epoch, VM_EVENT_RUNNING, NULL);
	}
}

/* Local runs the state does not want here (any more) stop; true when none was found. */
static bool agent_stop_strays(struct sim *s, struct simnode *n)
{
	bool clean = true;

	for (size_t v = 0; v < s->nvms; v++) {
		struct run *r = &n->runs[v];
		const struct vm_status *st = state_vm_status(s->st, s->vms[v].name);
		char why[256];
		uint64_t epoch = r->epoch;

		if (!r->used)
			continue;
		if (st && st->node == n->id && st->epoch == r->epoch &&
		    (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED))
			continue;
		clean = false;
		if (st && st->node == n->id && st->epoch == r->epoch && st->state == VM_HA_STOPPING)
			snprintf(why, sizeof(why), "asked to");
		else if (!st)
			snprintf(why, sizeof(why), "leftover: the vm was deleted");
		else
			snprintf(why, sizeof(why), "leftover: it is %s on %s (epoch %" PRIu64 ")",
				 vm_ha_state_name(st->state), sim_id_name(s, st->node), st->epoch);
		sim_run_stop(s, n, (int)v, why);
		if (mine(s, n, (int)v) && st->epoch == epoch)
			sim_report(s, n, (int)v, epoch, VM_EVENT_STOPPED, NULL);
	}
	return clean;
}

static void agent_hello(struct sim *s, struct simnode *n)
{
	const struct node_info *ni = state_node_find(s->st, n->id);
	char endpoint[64], key[41];

	if ((ni && ni->ready) || n->hello_sent)
		return;
	n->hello_sent = true;
	sim_say(s, "%s: no leftover VM: hello", n->name);
	/* its migration server and CURVE key (node/vmmig.c): a node without them takes no VM */
	snprintf(endpoint, sizeof(endpoint), "tcp://198.51.100.%u:7460", n->id);
	snprintf(key, sizeof(key), "simcurvekey%029u", n->id);
	sim_send_op(s, n->id,
		    json_pack("{s:s,s:I,s:s,s:I,s:I,s:s,s:s,s:I,s:s,s:s}", "op", "node.hello", "id",
			      (json_int_t)n->id, "name", n->name, "vcpus", (json_int_t)n->vcpus,
			      "memory", (json_int_t)n->memory_mb, "domain", n->domain, "clearance",
			      n->clearance, "watchdog_s", (json_int_t)n->watchdog_s, "mig_endpoint",
			      endpoint, "mig_key", key));
}

static void check_start(struct sim *s, struct simnode *n, int v)
{
	struct simnode *other = live_run_elsewhere(s, v, n->id);
	const struct node_info *prev;

	if (other)
		sim_violated(s, "vm %s started on %s while it runs on %s", s->vms[v].name, n->name,
			     other->name);
	prev = s->vms[v].last_host && s->vms[v].last_host != n->id
		       ? state_node_find(s->st, s->vms[v].last_host)
		       : NULL;
	if (prev && prev->status == NODE_FENCE_PENDING)
		sim_violated(s, "vm %s started on %s while %s, where it ran before, is not fenced",
			     s->vms[v].name, n->name, prev->name);
}

static void agent_start(struct sim *s, struct simnode *n)
{
	uint64_t mig_id;
	uint32_t mig_from;
	bool resume;

	for (size_t v = 0; v < s->nvms; v++) {
		const struct vm_status *st = mine(s, n, (int)v);
		struct simvm *vm = &s->vms[v];
		struct run *r = &n->runs[v];

		if (!st)
			continue;
		if (st->state == VM_HA_STOPPING && !r->used) {
			sim_report(s, n, (int)v, st->epoch, VM_EVENT_STOPPED, NULL);
			continue;
		}
		if (s->agent_reports_lost && !r->used &&
		    (st->state == VM_HA_STARTED || (st->state == VM_HA_STARTING &&
						     n->av[v].start_epoch == st->epoch))) {
			/*
			 * Assigned here, once started, and not running: it was stopped while this
			 * node had no quorum (the report could not be sent then), or the node
			 * restarted. node/cluster.c does not do this yet: see tests/sim/README.md.
			 */
			sim_report(s, n, (int)v, st->epoch, VM_EVENT_FAILED,
				   "not running here: this node lost quorum or restarted");
			continue;
		}
		if (st->state != VM_HA_STARTING || r->used || n->av[v].start_epoch == st->epoch)
			continue;
		n->av[v].start_epoch = st->epoch;
		check_start(s, n, (int)v);
		resume = sim_agent_resumes(s, n, (int)v, &mig_id, &mig_from);
		if (vm->fail_starts) {
			vm->fail_starts--;
			sim_say(s, "%s: vm %s failed to %s (epoch %" PRIu64 ")", n->name, vm->name,
				resume ? "resume" : "start", st->epoch);
			sim_report(s, n, (int)v, st->epoch, VM_EVENT_FAILED,
				   "qemu failed to start (scripted)");
			continue;
		}
		/* a resume after a handoff is QEMU's `cont`: running at the next step */
		*r = (struct run){ .used = true, .phase = RUN_STARTING, .epoch = st->epoch,
				   .ready_ms = s->now + (resume ? 0 : s->start_ms) };
		vm->last_host = n->id;
		take_luns(s, n, (int)v);
		if (resume)
			sim_say(s,
				"%s: vm %s resuming (epoch %" PRIu64 "): migration %" PRIu64
				" from %s",
				n->name, vm->name, st->epoch, mig_id, sim_id_name(s, mig_from));
		else
			sim_say(s, "%s: vm %s starting (epoch %" PRIu64 "%s)", n->name, vm->name,
				st->epoch, st->takeover ? ", takeover" : "");
	}
}

static void agent_step(struct sim *s, struct simnode *n)
{
	if (!n->power)
		return;
	if (n->shutdown != SIM_SHUTDOWN_NONE && sim_agent_shutdown(s, n))
		return;
	if (!n->quorate) {
		agent_lost_quorum(s, n);
		return;
	}
	if (n->lost_quorum && n->was_quorate)
		sim_say(s, "%s: quorate again", n->name);
	n->lost_quorum = false;
	n->was_quorate = true;
	agent_progress(s, n);
	if (agent_stop_strays(s, n))
		agent_hello(s, n);
	sim_agent_migrate(s, n);
	agent_start(s, n);
}

/* --- the leader: fencing and the manager ------------------------------------------------ */

/* Power @n on or off (the script, or a fence device). */
void sim_power_set(struct sim *s, struct simnode *n, bool on)
{
	n->power = on;
	n->missed = true;
	if (on)
		return;
	n->shutdown = SIM_SHUTDOWN_NONE;
	for (size_t v = 0; v < s->nvms; v++)
		if (n->runs[v].used)
			sim_say(s, "%s: vm %s killed (power off)", n->name, s->vms[v].name);
	/* a powered-off node forgets everything it ran and knew (not its script settings) */
	memset(n->runs, 0, sizeof(n->runs));
	memset(n->av, 0, sizeof(n->av));
	n->quorate = n->was_quorate = n->lost_quorum = n->hello_sent = false;
	n->quorum_lost_ms = 0;
}

/* fake_fence: a fence device powered @plug off. */
static void fence_powered_off(void *arg, const char *device, const char *plug)
{
	struct sim *s = arg;

	for (size_t i = 0; i < s->nnodes; i++) {
		struct simnode *n = &s->nodes[i];

		if (strcmp(n->name, plug) || !n->power)
			continue;
		sim_say(s, "%s: powered off by fence device %s", n->name, device);
		sim_power_set(s, n, false);
	}
}

/* What fencing @node needs, as node/cluster.c's fence_target_fill() copies it. */
static int fence_target_fill(struct sim *s, uint32_t node, struct fence_target *t)
{
	t->key = sim_node_key(node);
	t->mykey = sim_node_key(s->leader);
	snprintf(t->initiator, sizeof(t->initiator), "iqn.2026-01.test.sim:%s",
		 sim_id_name(s, s->leader));
	t->agent_timeout_s = 30;
	return fence_target_from_state(t, s->st, node, sim_is_member(s, node), s->now);
}

static void fence_job_end(struct simnode *t)
{
	free(t->ft);
	t->ft = NULL;
}

/* The job's time is up: fence_run() on the target copied at its start, as the worker does. */
static void fence_finish(struct sim *s, struct simnode *t)
{
	char detail[STATE_REASON_MAX];
	uint64_t left_ms = t->ft->left_ms;
	bool ok;

	if (t->fence_fail) {
		/* the whole job fails, before any level (the abstract model's failure) */
		t->fence_fail--;
		ok = false;
		snprintf(detail, sizeof(detail), "scripted fence failure");
	} else {
		ok = fence_run(t->ft, detail, sizeof(detail)) == 0;
	}
	fence_job_end(t);
	/* whatever it runs whose key was preempted can no longer write */
	for (size_t v = 0; v < s->nvms; v++) {
		if (!t->power || !t->runs[v].used || t->runs[v].fenced || !luns_fenced(s, t, (int)v))
			continue;
		t->runs[v].fenced = true;
		sim_say(s, "%s: vm %s fenced: its key is preempted, it cannot write", t->name,
			s->vms[v].name);
	}
	if (ok) {
		/* whatever it ran before can no longer write */
		for (size_t v = 0; v < s->nvms; v++)
			if (s->vms[v].last_host == t->id)
				s->vms[v].last_host = 0;
		t->fence_backoff_ms = 0;
	} else if (s->fence_levels) {
		/* node/cluster.c: the delay doubles after each failure, up to a maximum */
		t->fence_backoff_ms = !t->fence_backoff_ms ? s->fence_retry_ms
				      : t->fence_backoff_ms * 2 > s->fence_retry_max_ms
					      ? s->fence_retry_max_ms
					      : t->fence_backoff_ms * 2;
		t->fence_retry_ms = s->now + t->fence_backoff_ms;
	} else {
		t->fence_retry_ms = s->now + s->fence_retry_ms;
	}
	if (!s->fence_levels)
		sim_say(s, "fence %s: %s (%s)", t->name, ok ? "ok" : "FAILED",
			ok ? (t->power ? "storage: key preempted on all LUNs"
				       : "node is powered off")
			   : detail);
	else if (ok)
		sim_say(s, "fence %s: ok: %s", t->name, detail);
	else
		sim_say(s, "fence %s: FAILED: %s; next try in %" PRIu64 " ms", t->name, detail,
			t->fence_backoff_ms);
	t->fence_reported = true;
	sim_send_op(s, s->leader,
		    json_pack("{s:s,s:I,s:b,s:s,s:I,s:I}", "op", "mgr.fenced", "id",
			      (json_int_t)t->id, "ok", ok, "detail", detail, "at_ms",
			      (json_int_t)s->now, "left_ms", (json_int_t)left_ms));
}

static void fence_start(struct sim *s, uint32_t id)
{
	struct simnode *t = sim_node_by_id(s, id);

	if (!t || t->fencing || s->now < t->fence_retry_ms)
		return;
	if (id == s->leader) {
		/* node/cluster.c: the leader itself, back before anyone fenced it: clean is enough */
		const struct node_info *self = state_node_find(s->st, id);

		for (size_t v = 0; v < s->nvms; v++)
			if (t->runs[v].used)
				return;
		sim_say(s, "fence %s: this node, clean: confirmed", t->name);
		t->fencing = true;
		t->fence_reported = true;
		sim_send_op(s, id,
			json_pack("{s:s,s:I,s:b,s:s,s:I,s:I}", "op", "mgr.fenced", "id",
				  (json_int_t)id, "ok", 1, "detail",
				  "self: the leader is this node, back and clean (no VM runs here)",
				  "at_ms", (json_int_t)s->now, "left_ms",
				  (json_int_t)(self ? self->left_ms : 0)));
		return;
	}
	t->ft = calloc(1, sizeof(*t->ft));
	if (!t->ft) {
		fprintf(stderr, "hvsim: out of memory\n");
		exit(2);
	}
	if (fence_target_fill(s, id, t->ft)) {
		sim_say(s, "fence %s: too many LUNs or levels to fence in one job", t->name);
		fence_job_end(t);
		return;
	}
	t->fencing = true;
	t->fence_reported = false;
	t->fence_by = s->leader;
	t->fence_done_ms = s->now + s->fence_ms;
	if (!s->fence_levels)
		sim_say(s, "fence %s: started by %s", t->name, sim_id_name(s, s->leader));
	else
		sim_say(s, "fence %s: started by %s: %zu levels, %zu LUNs%s%s", t->name,
			sim_id_name(s, s->leader), t->ft->nlevels ? t->ft->nlevels : 1,
			t->ft->nluns, t->ft->nopr_vm[0] ? ", vm without storage fencing: " : "",
			t->ft->nopr_vm);
}

static void mgr_log(void *arg, const char *line)
{
	sim_say(arg, "manager: %s", line);
}

static void leader_step(struct sim *s)
{
	struct mgr_env env = { .now_ms = s->now, .members = s->members, .nmembers = s->nmembers };
	struct mgr_result res;
	size_t i;
	json_t *op;

	if (leader_inflight(s))
		return;
	for (i = 0; i < s->nnodes; i++) {
		struct simnode *t = &s->nodes[i];

		if (!t->fencing || t->fence_reported)
			continue;
		if (t->fence_by != s->leader) {
			/* its leader is gone: the new one fences again */
			sim_say(s, "fence %s: abandoned (%s no longer leads)", t->name,
				sim_id_name(s, t->fence_by));
			t->fencing = false;
			fence_job_end(t);
		} else if (s->now >= t->fence_done_ms) {
			fence_finish(s, t);
		}
	}
	if (manager_step(s->st, &env, &res, mgr_log, s)) {
		fprintf(stderr, "hvsim: manager_step failed\n");
		exit(2);
	}
	json_array_foreach(res.ops, i, op)
		sim_send_op(s, s->leader, json_incref(op));
	json_decref(res.ops);
	for (i = 0; i < res.nfence; i++)
		fence_start(s, res.fence[i]);
}

/* --- a step -------------------------------------------------------------------------- */

static void check_invariants(struct sim *s)
{
	for (size_t v = 0; v < s->nvms; v++) {
		struct simnode *a = live_run_elsewhere(s, (int)v, 0), *b;

		if (!a)
			continue;
		b = live_run_elsewhere(s, (int)v, a->id);
		if (b && b != a)
			sim_violated(s, "vm %s runs on %s and on %s, neither fenced",
				     s->vms[v].name, a->name, b->name);
	}
	sim_check_migrations(s);
}

static void step(struct sim *s)
{
	s->now += STEP_MS;
	s->stepped = true;
	compute_membership(s);
	for (size_t i = 0; i < s->nnodes; i++)
		agent_step(s, &s->nodes[i]);
	if (s->leader)
		leader_step(s);
	deliver(s);
	check_invariants(s);
}

/* --- script: building ops ------------------------------------------------------------- */

uint64_t sim_num_arg(struct sim *s, const char *tok)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(tok, &end, 10);
	if (errno || end == tok || *end)
		sim_script_error(s, "'%s' is not a number", tok);
	return v;
}

static json_t *name_list(const char *csv)
{
	json_t *a = json_array();
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", csv);
	for (char *t = strtok_r(buf, ",", &save); t && a; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

/*
 * A client op, as hvctl on node @from would send it (NULL: the lowest node of
 * the quorate side). Refused like hvnoded refuses it when that node is not in
 * the quorate partition; judged on the world as it is now, between steps.
 */
void sim_client_op(struct sim *s, const char *from, json_t *op)
{
	struct simnode *n = from ? sim_node_arg(s, from) : NULL;
	size_t up = 0;

	for (size_t i = 0; i < s->nnodes; i++) {
		struct simnode *m = &s->nodes[i];

		if (!m->power || !m->connected || m->missed)
			continue;
		up++;
		if (!from && !n)
			n = m;
	}
	if (!n || !n->power || !n->connected || n->missed || up * 2 <= s->nnodes) {
		sim_say(s, "  refused: %s is not in the quorate partition",
			n ? n->name : "no node");
		json_decref(op);
		return;
	}
	sim_send_op(s, n->id, op);
}

static const char *opt_from(struct sim *s, char **tok, int ntok, int at)
{
	if (ntok == at)
		return NULL;
	if (ntok == at + 2 && !strcmp(tok[at], "from"))
		return tok[at + 1];
	sim_script_error(s, "expected `from NODE` or nothing after %s", tok[at - 1]);
}

static void cmd_vm(struct sim *s, char **tok, int ntok)
{
	char uuid[40], url[128];
	json_t *def;
	struct simvm *vm;

	if (ntok < 2)
		sim_script_error(s, "vm NAME [KEY VALUE]... [nofence]");
	if (vm_index(s, tok[1]) >= 0 || s->nvms == SIM_MAX_VMS)
		sim_script_error(s, "vm %s: declared twice, or too many VMs", tok[1]);
	vm = &s->vms[s->nvms++];
	snprintf(vm->name, sizeof(vm->name), "%s", tok[1]);
	snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012x", ++s->uuid_seq);
	snprintf(url, sizeof(url), "iscsi://192.0.2.1/iqn.2026-01.test.sim:disks/%u", s->uuid_seq);
	def = json_pack("{s:s,s:s,s:i,s:i,s:[s]}", "name", tok[1], "uuid", uuid, "vcpus", 1,
			"memory", 512, "disks", url);
	for (int i = 2; def && i < ntok; i += 2) {
		const char *k = tok[i], *v = i + 1 < ntok ? tok[i + 1] : NULL;

		if (!strcmp(k, "nofence")) {
			/* hvctl vm create --no-fence-storage: no persistent reservation */
			json_object_set_new(def, "fence_storage", json_false());
			s->fence_levels = true;
			i--;
			continue;
		}
		if (!v)
			sim_script_error(s, "vm: '%s' without a value", k);
		if (!strcmp(k, "vcpus") || !strcmp(k, "memory"))
			json_object_set_new(def, k, json_integer((json_int_t)sim_num_arg(s, v)));
		else if (!strcmp(k, "priority") || !strcmp(k, "app") || !strcmp(k, "tier"))
			json_object_set_new(def, k, json_string(v));
		else if (!strcmp(k, "class"))
			json_object_set_new(def, "classification", json_string(v));
		else if (!strcmp(k, "ha"))
			json_object_set_new(def, "ha", json_boolean(strcmp(v, "off") != 0));
		else if (!strcmp(k, "prefer"))
			json_object_set_new(def, "preferred", name_list(v));
		else if (!strcmp(k, "allow"))
			json_object_set_new(def, "possible", name_list(v));
		else if (!strcmp(k, "failback"))
			json_object_set_new(def, "failback", json_string(v));
		else
			sim_script_error(s, "vm: unknown key '%s'", k);
	}
	sim_client_op(s, NULL, json_pack("{s:s,s:o}", "op", "vm.create", "def", def));
}

static void cmd_rule(struct sim *s, char **tok, int ntok)
{
	json_t *r;

	if (ntok == 3 && !strcmp(tok[1], "del")) {
		sim_client_op(s, NULL, json_pack("{s:s,s:s}", "op", "rule.del", "name", tok[2]));
		return;
	}
	if (ntok != 5 && !(ntok == 7 && !strcmp(tok[5], "scope")))
		sim_script_error(s, "rule TYPE NAME VMS|APP hard|soft [scope node|domain]");
	if (strcmp(tok[4], "hard") && strcmp(tok[4], "soft"))
		sim_script_error(s, "rule: hard or soft, not '%s'", tok[4]);
	r = json_pack("{s:s,s:s,s:b}", "name", tok[2], "type", tok[1], "hard",
		      !strcmp(tok[4], "hard"));
	if (r && !strcmp(tok[1], "tier-separation"))
		json_object_set_new(r, "app", json_string(tok[3]));
	else if (r)
		json_object_set_new(r, "vms", name_list(tok[3]));
	if (r && ntok == 7)
		json_object_set_new(r, "scope", json_string(tok[6]));
	sim_client_op(s, NULL, json_pack("{s:s,s:o}", "op", "rule.add", "rule", r));
}

static void cmd_nodes(struct sim *s, char **tok, int ntok)
{
	uint64_t n = ntok == 2 ? sim_num_arg(s, tok[1]) : 0;

	if (s->nnodes || n < 1 || n > SIM_MAX_NODES)
		sim_script_error(s, "nodes N (1..%d), once, first", SIM_MAX_NODES);
	for (uint32_t i = 0; i < n; i++) {
		struct simnode *nd = &s->nodes[i];

		nd->id = i + 1;
		snprintf(nd->name, sizeof(nd->name), "n%u", i + 1);
		nd->vcpus = 4;
		nd->memory_mb = 8192;
		snprintf(nd->clearance, sizeof(nd->clearance), "public");
		nd->power = nd->connected = true;
	}
	s->nnodes = n;
}

static void cmd_node(struct sim *s, char **tok, int ntok)
{
	struct simnode *n;

	if (ntok < 2 || ntok % 2)
		sim_script_error(s, "node NAME [vcpus N] [memory MB] [domain D] [clearance C]");
	n = sim_node_arg(s, tok[1]);
	for (int i = 2; i < ntok; i += 2) {
		if (!strcmp(tok[i], "vcpus"))
			n->vcpus = (unsigned int)sim_num_arg(s, tok[i + 1]);
		else if (!strcmp(tok[i], "memory"))
			n->memory_mb = sim_num_arg(s, tok[i + 1]);
		else if (!strcmp(tok[i], "domain"))
			snprintf(n->domain, sizeof(n->domain), "%s", tok[i + 1]);
		else if (!strcmp(tok[i], "clearance"))
			snprintf(n->clearance, sizeof(n->clearance), "%s", tok[i + 1]);
		else
			sim_script_error(s, "node: unknown key '%s'", tok[i]);
	}
}

static void cmd_set(struct sim *s, char **tok, int ntok)
{
	struct cluster_settings *cs = state_settings_mut(s->st);
	uint64_t v;

	if (ntok != 3)
		sim_script_error(s, "set KEY VALUE");
	if (sim_set_maint(s, tok[1], tok[2]))
		return;
	v = sim_num_arg(s, tok[2]);
	/* the cluster's settings have no op yet: set in the state every node holds */
	if (!strcmp(tok[1], "restart-max"))
		cs->restart_max = (unsigned int)v;
	else if (!strcmp(tok[1], "restart-window-s"))
		cs->restart_window_s = (unsigned int)v;
	else if (!strcmp(tok[1], "cpu-overcommit"))
		cs->cpu_overcommit_pct = (unsigned int)v;
	else if (!strcmp(tok[1], "mem-overcommit"))
		cs->mem_overcommit_pct = (unsigned int)v;
	else if (!strcmp(tok[1], "start-ms"))
		s->start_ms = v;
	else if (!strcmp(tok[1], "fence-ms"))
		s->fence_ms = v;
	else if (!strcmp(tok[1], "fence-retry-ms"))
		s->fence_retry_ms = v;
	else if (!strcmp(tok[1], "fence-retry-max-ms"))
		s->fence_retry_max_ms = v;
	else if (!strcmp(tok[1], "quorum-loss-ms"))
		s->quorum_loss_ms = v;
	else if (!strcmp(tok[1], "lag-ms") && v % STEP_MS)
		sim_script_error(s, "set lag-ms: a multiple of %d", STEP_MS);
	else if (!strcmp(tok[1], "lag-ms"))
		s->lag_ms = v;
	else if (!strcmp(tok[1], "agent-reports-lost"))
		s->agent_reports_lost = v != 0;
	else
		sim_script_error(s, "set: unknown key '%s'", tok[1]);
}

/* --- script: world events --------------------------------------------------------------- */

static void cmd_power(struct sim *s, struct simnode *n, bool on)
{
	if (n->power == on)
		sim_script_error(s, "%s is already powered %s", n->name, on ? "on" : "off");
	sim_power_set(s, n, on);
}

/* QEMU of @v exits on its node: it died (@ev failed) or its guest powered off. */
static void cmd_exit(struct sim *s, int v, enum vm_event ev)
{
	struct simnode *n = live_run_elsewhere(s, v, 0);
	struct agent_vm *a;

	if (!n) {
		s->failed++;
		sim_say(s, "FAIL: vm %s runs nowhere", s->vms[v].name);
		return;
	}
	a = &n->av[v];
	a->gone = ev;
	a->gone_epoch = n->runs[v].epoch;
	snprintf(a->gone_reason, sizeof(a->gone_reason), "%s",
		 ev == VM_EVENT_FAILED ? "qemu died (scripted crash)" : "the guest powered off");
	sim_say(s, "%s: vm %s %s (epoch %" PRIu64 ")", n->name, s->vms[v].name,
		ev == VM_EVENT_FAILED ? "died" : "powered off by its guest", n->runs[v].epoch);
	memset(&n->runs[v], 0, sizeof(n->runs[v]));
}

static void cmd_link(struct sim *s, struct simnode *n, bool up)
{
	if (n->connected == up)
		sim_script_error(s, "%s is already %s", n->name, up ? "connected" : "partitioned");
	n->connected = up;
	n->missed = true;
}

unsigned int sim_opt_count(struct sim *s, char **tok, int ntok)
{
	if (ntok == 2)
		return 1;
	if (ntok == 4 && !strcmp(tok[2], "count"))
		return (unsigned int)sim_num_arg(s, tok[3]);
	sim_script_error(s, "%s NAME [count N]", tok[0]);
}

/* --- script: fencing levels ------------------------------------------------------------ */

/* device, level, device-fail, storage-fail, watchdog, confirm, manual-fence */
static void cmd_fencing(struct sim *s, char **tok, int ntok)
{
	const char *c = tok[0];

	s->fence_levels = true;
	if (!strcmp(c, "device")) {
		sim_client_op(s, NULL,
			      json_pack("{s:s,s:{s:s,s:s}}", "op", "fence.device.add", "device",
					"name", tok[1], "agent", "/usr/sbin/fence_fake"));
	} else if (!strcmp(c, "level")) {
		if (ntok != 4)
			sim_script_error(s, "level NODE INDEX DEV[,DEV]");
		sim_client_op(s, NULL,
			      json_pack("{s:s,s:{s:I,s:I,s:o}}", "op", "fence.level.add", "level",
					"node", (json_int_t)sim_node_arg(s, tok[1])->id, "index",
					(json_int_t)sim_num_arg(s, tok[2]), "devices",
					name_list(tok[3])));
	} else if (!strcmp(c, "device-fail")) {
		fake_fence_device_fail(tok[1], sim_opt_count(s, tok, ntok));
	} else if (!strcmp(c, "storage-fail")) {
		fake_fence_storage_fail(sim_node_key(sim_node_arg(s, tok[1])->id),
					sim_opt_count(s, tok, ntok));
	} else if (!strcmp(c, "watchdog")) {
		if (ntok != 3)
			sim_script_error(s, "watchdog NODE SECONDS");
		sim_node_arg(s, tok[1])->watchdog_s = (unsigned int)sim_num_arg(s, tok[2]);
	} else if (!strcmp(c, "confirm") || !strcmp(c, "manual-fence")) {
		sim_client_op(s, NULL,
			      json_pack("{s:s,s:I,s:s,s:I}", "op",
					!strcmp(c, "confirm") ? "node.confirm" : "node.fence", "id",
					(json_int_t)sim_node_arg(s, tok[1])->id, "by", "admin",
					"at_ms", (json_int_t)s->now));
	}
}

/* --- script: expectations --------------------------------------------------------------- */

void sim_verdict(struct sim *s, bool ok, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ok)
		s->ok++;
	else
		s->failed++;
	sim_say(s, "%s: %s", ok ? "ok" : "FAIL", msg);
}

static void expect_node(struct sim *s, char **tok, int ntok)
{
	const struct node_info *ni;
	struct simnode *n;

	if (ntok != 4)
		sim_script_error(s, "expect node NAME STATUS");
	n = sim_node_arg(s, tok[2]);
	ni = state_node_find(s->st, n->id);
	if (ni && !strcmp(node_status_name(ni->status), tok[3]))
		sim_verdict(s, true, "node %s %s", n->name, tok[3]);
	else
		sim_verdict(s, false, "node %s %s, but it is %s", n->name, tok[3],
			    ni ? node_status_name(ni->status) : "unknown");
}

static void expect_runs(struct sim *s, int v, const char *where)
{
	char list[256] = "";
	size_t len = 0;
	bool ok;

	for (size_t i = 0; i < s->nnodes && len < sizeof(list); i++) {
		struct run *r = &s->nodes[i].runs[v];

		if (s->nodes[i].power && r->used && !r->fenced)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
						len ? "," : "", s->nodes[i].name);
	}
	ok = !strcmp(where, "none") ? !list[0] : !strcmp(list, where);
	sim_verdict(s, ok, "%s runs %s%s%s", s->vms[v].name, where, ok ? "" : ", but it runs ",
		    ok ? "" : list[0] ? list : "nowhere");
}

static void expect_vm(struct sim *s, char **tok, int ntok)
{
	int v = sim_vm_arg(s, tok[1]);
	const struct vm_status *st = state_vm_status(s->st, tok[1]);
	char text[1024];
	size_t len = 0;
	bool ok;

	if (ntok >= 3 && !strcmp(tok[2], "runs") && ntok == 4) {
		expect_runs(s, v, tok[3]);
		return;
	}
	if (ntok >= 4 && !strcmp(tok[2], "reason")) {
		for (int i = 3; i < ntok && len < sizeof(text); i++)
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s",
						i > 3 ? " " : "", tok[i]);
		ok = st && strstr(st->reason, text);
		sim_verdict(s, ok, "%s reason has '%s'%s%s", tok[1], text, ok ? "" : "; it is: ",
			    ok ? "" : st ? st->reason : "(no such vm)");
		return;
	}
	if (ntok != 3 && ntok != 4)
		sim_script_error(s, "expect VM STATE [NODE] | VM runs NODE|none | VM reason TEXT");
	ok = st && !strcmp(vm_ha_state_name(st->state), tok[2]) &&
		(ntok == 3 || !strcmp(sim_id_name(s, st->node), tok[3]));
	if (!ok) {
		sim_verdict(s, false, "%s %s%s%s, but it is %s%s%s (epoch %" PRIu64 ")%s%s", tok[1],
			    tok[2], ntok == 4 ? " on " : "", ntok == 4 ? tok[3] : "",
			    st ? vm_ha_state_name(st->state) : "deleted",
			    st && st->node ? " on " : "",
			    st && st->node ? sim_id_name(s, st->node) : "", st ? st->epoch : 0,
			    st && st->reason[0] ? ": " : "", st ? st->reason : "");
		return;
	}
	/* started: it must really run on its node, in that epoch */
	if (st->state == VM_HA_STARTED) {
		struct simnode *n = sim_node_by_id(s, st->node);
		struct run *r = n ? &n->runs[v] : NULL;

		if (!r || !n->power || !r->used || r->fenced || r->phase != RUN_RUNNING ||
		    r->epoch != st->epoch) {
			sim_verdict(s, false,
				    "%s started on %s, but it does not run there (epoch %" PRIu64
				    ")",
				    tok[1], sim_id_name(s, st->node), st->epoch);
			return;
		}
	}
	sim_verdict(s, true, "%s %s%s%s", tok[1], tok[2], ntok == 4 ? " on " : "",
		    ntok == 4 ? tok[3] : "");
}

static void cmd_show(struct sim *s)
{
	for (size_t i = 0; i < state_node_count(s->st); i++) {
		const struct node_info *n = state_node_at(s->st, i);
		char maint[256];

		sim_show_node_maint(s, n, maint, sizeof(maint));
		sim_say(s, "  node %s: %s%s%s", n->name, node_status_name(n->status),
			n->ready ? ", ready" : "", maint);
	}
	for (size_t i = 0; i < state_vm_count(s->st); i++) {
		const struct vm_def *d = state_vm_at(s->st, i);
		const struct vm_status *st = state_vm_status(s->st, d->name);
		char maint[1024];

		sim_show_vm_maint(s, st, maint, sizeof(maint));
		sim_say(s, "  vm %s: %s%s%s (epoch %" PRIu64 ", %s)%s%s%s", d->name,
			vm_ha_state_name(st->state), st->node ? " on " : "",
			st->node ? sim_id_name(s, st->node) : "", st->epoch,
			st->want_running ? "wanted" : "not wanted", st->reason[0] ? ": " : "",
			st->reason, maint);
	}
}

/* --- script: the interpreter ------------------------------------------------------------ */

static void echo(struct sim *s, char **tok, int ntok)
{
	char line[1024];
	size_t len = 0;

	for (int i = 0; i < ntok && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "",
					tok[i]);
	sim_say(s, "%s", line);
}

static bool is_command(const char *c)
{
	static const char *const names[] = {
		"nodes", "node", "set", "vm", "rule", "show", "start", "stop", "delete", "power-off",
		"power-on", "partition", "heal", "crash", "guest-poweroff", "fail-start", "fence-fail",
		"device", "level", "device-fail", "storage-fail", "watchdog", "confirm", "manual-fence",
		"drain", "resume", "migrate", "migrate-cancel", "migrate-fail", "shutdown",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(c, names[i]))
			return true;
	return false;
}

static bool takes_one_name(const char *c)
{
	return !strcmp(c, "power-off") || !strcmp(c, "power-on") || !strcmp(c, "partition") ||
	       !strcmp(c, "heal") || !strcmp(c, "crash") || !strcmp(c, "guest-poweroff") ||
	       !strcmp(c, "device") || !strcmp(c, "confirm") || !strcmp(c, "manual-fence") ||
	       !strcmp(c, "resume") || !strcmp(c, "migrate-cancel");
}

static void command(struct sim *s, char **tok, int ntok)
{
	const char *c = tok[0];

	if (!strcmp(c, "expect")) {
		if (sim_expect_maint(s, tok, ntok))
			return;
		if (ntok >= 2 && !strcmp(tok[1], "node"))
			expect_node(s, tok, ntok);
		else if (ntok >= 3)
			expect_vm(s, tok, ntok);
		else
			sim_script_error(s, "expect what?");
		return;
	}
	if (!strcmp(c, "wait")) {
		uint64_t ms = ntok == 2 ? sim_num_arg(s, tok[1]) : 1;

		if (ntok != 2 || ms % STEP_MS)
			sim_script_error(s, "wait MS, a multiple of %d", STEP_MS);
		for (uint64_t t = 0; t < ms; t += STEP_MS)
			step(s);
		return;
	}
	if (!is_command(c))
		sim_script_error(s, "unknown command '%s'", c);
	if (strcmp(c, "nodes") && !s->nnodes)
		sim_script_error(s, "`nodes N` comes first");
	if (strcmp(c, "show"))
		echo(s, tok, ntok);
	if (!strcmp(c, "nodes"))
		cmd_nodes(s, tok, ntok);
	else if (!strcmp(c, "node"))
		cmd_node(s, tok, ntok);
	else if (!strcmp(c, "set"))
		cmd_set(s, tok, ntok);
	else if (!strcmp(c, "vm"))
		cmd_vm(s, tok, ntok);
	else if (!strcmp(c, "rule"))
		cmd_rule(s, tok, ntok);
	else if (!strcmp(c, "show"))
		cmd_show(s);
	else if (ntok < 2)
		sim_script_error(s, "%s what?", c);
	else if (ntok > 2 && takes_one_name(c))
		sim_script_error(s, "%s takes one name", c);
	else if (!strcmp(c, "start") || !strcmp(c, "stop"))
		sim_client_op(s, opt_from(s, tok, ntok, 2),
			      json_pack("{s:s,s:s,s:b}", "op", "vm.want", "name", tok[1], "running",
					!strcmp(c, "start")));
	else if (!strcmp(c, "delete"))
		sim_client_op(s, opt_from(s, tok, ntok, 2),
			      json_pack("{s:s,s:s}", "op", "vm.delete", "name", tok[1]));
	else if (!strcmp(c, "power-off") || !strcmp(c, "power-on"))
		cmd_power(s, sim_node_arg(s, tok[1]), !strcmp(c, "power-on"));
	else if (!strcmp(c, "partition") || !strcmp(c, "heal"))
		cmd_link(s, sim_node_arg(s, tok[1]), !strcmp(c, "heal"));
	else if (!strcmp(c, "crash"))
		cmd_exit(s, sim_vm_arg(s, tok[1]), VM_EVENT_FAILED);
	else if (!strcmp(c, "guest-poweroff"))
		cmd_exit(s, sim_vm_arg(s, tok[1]), VM_EVENT_POWEROFF);
	else if (!strcmp(c, "fail-start"))
		s->vms[sim_vm_arg(s, tok[1])].fail_starts = sim_opt_count(s, tok, ntok);
	else if (!strcmp(c, "fence-fail"))
		sim_node_arg(s, tok[1])->fence_fail = sim_opt_count(s, tok, ntok);
	else if (sim_cmd_maint(s, tok, ntok))
		return;
	else
		cmd_fencing(s, tok, ntok);
}

static int tokenize(char *line, char **tok)
{
	int n = 0;
	char *hash = strchr(line, '#'), *save = NULL;

	if (hash)
		*hash = '\0';
	for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == MAX_TOKENS)
			return -1;
		tok[n++] = t;
	}
	return n;
}

static int run_script(struct sim *s, FILE *f)
{
	char *line = NULL, *tok[MAX_TOKENS];
	size_t cap = 0;
	int ntok;

	while (getline(&line, &cap, f) >= 0) {
		s->line++;
		ntok = tokenize(line, tok);
		if (ntok < 0)
			sim_script_error(s, "more than %d words", MAX_TOKENS);
		if (ntok)
			command(s, tok, ntok);
	}
	free(line);
	sim_say(s, "end: %u expectations held, %u failed", s->ok, s->failed);
	return s->failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sim *s;
	FILE *f;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: hvsim SCRIPT\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f) {
		fprintf(stderr, "hvsim: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->st = state_create())) {
		fprintf(stderr, "hvsim: out of memory\n");
		return 2;
	}
	s->script = argv[1];
	s->start_ms = 500;
	s->fence_ms = 200;
	s->fence_retry_ms = 2000;
	s->fence_retry_max_ms = 30000;
	s->migrate_ms = 300;
	fake_fence_init(fence_powered_off, s);
	s->quorum_loss_ms = 0;
	rc = run_script(s, f);
	fclose(f);
	for (size_t i = 0; i < s->nqueue; i++)
		json_decref(s->queue[i].op);
	free(s->queue);
	for (size_t i = 0; i < s->nnodes; i++)
		free(s->nodes[i].ft);
	fake_fence_free();
	state_destroy(s->st);
	free(s);
	return rc;
}
