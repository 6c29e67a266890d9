/*
 * This node's part of the cluster: the replicated state on CPG (repl.c), the
 * agent that makes the local VMs match it, the leader's manager and fencing,
 * and hvctl requests that change the state (sent as ops, answered when they
 * come back applied, or when the VM reached the state asked for).
 *
 * The agent: VMs assigned to this node in state starting are started for
 * their epoch; local runs whose VM is no longer assigned here (or of an old
 * epoch) are stopped; what happened is reported (vm.report) for the manager.
 * A node without quorum stops its VMs after [cluster] quorum_loss_stop_s and
 * starts nothing; back in the quorate side, it says hello (node.hello) only
 * once no leftover VM runs, and the manager counts it online only then.
 */
#include "hvnoded.h"
#include "statefile.h"
#include "vmmig.h"
#include "vmrun.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qb/qblog.h>

#include "../cluster/manager.h"
#include "../cluster/ops.h"
#include "../cluster/repl.h"
#include "../fencing/fence.h"
#include "../storage/storage.h"

#define TICK_MS 1000
#define WAIT_DEFAULT_S 120
#define FENCE_RETRY_MS 2000	/* after a failed fence; doubling up to FENCE_RETRY_MAX_MS */
#define FENCE_RETRY_MAX_MS 30000
#define FENCE_AGENT_TIMEOUT_S 30
/* a node that just joined may not have said hello yet: "cannot be placed" may pass */
#define PLACE_GRACE_MS 3000

enum wait_kind {
	WAIT_APPLIED, /* the op applied: answer */
	WAIT_STARTED, /* then until the VM runs (or cannot) */
	WAIT_STOPPED, /* then until the VM is stopped */
};

struct waiter {
	struct waiter *next;
	uint64_t req_id;
	bool applied;
	enum wait_kind kind;
	char name[VM_NAME_MAX + 1];
	uint64_t deadline_ms;
	uint64_t since_ms;
	struct ipc_request *req;
};

/* What this node said (or must still say) of a VM; by uuid: a new VM of the same name is another. */
struct reported {
	struct reported *next;
	char uuid[37];
	uint64_t epoch;
	enum vm_event event;
	uint64_t start_epoch; /* the epoch a start was issued for */
	bool pending;	      /* not seen applied yet: sent again until it is */
	uint64_t sent_ms;
	char name[VM_NAME_MAX + 1];
	char reason[STATE_REASON_MAX];
	uint64_t resume_ms; /* running after a migration: since its stream was loaded; else 0 */
};

struct fence_job {
	struct hvnoded *d;
	struct fence_target t;
	char detail[STATE_REASON_MAX];
};

struct agent {
	repl_t *repl;
	struct waiter *waiters;
	struct reported *reported;
	uint64_t next_req;
	unsigned int mgr_inflight;
	bool reconcile_queued;
	qb_loop_timer_handle reconcile_timer;
	bool hello_sent;
	uint64_t quorum_lost_ms; /* 0: quorate */
	bool fencing[STATE_MAX_NODES + 1];
	uint32_t fence_node[STATE_MAX_NODES + 1];
	uint64_t fence_retry_ms[STATE_MAX_NODES + 1];
	unsigned int fence_backoff_ms[STATE_MAX_NODES + 1];
	qb_loop_timer_handle tick;
	qb_loop_timer_handle flush_timer;
	bool flush_armed;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t my_id(struct hvnoded *d)
{
	return membership_local_id(d->membership);
}

static void reconcile_soon(struct hvnoded *d);
static void flush_soon(struct hvnoded *d);

/* --- reports ------------------------------------------------------------------------ */

static struct reported *reported_of(struct hvnoded *d, const char *name)
{
	const struct vm_def *def = state_vm_find(d->state, name);
	struct reported *r;

	if (!def)
		return NULL;
	for (r = d->agent->reported; r; r = r->next)
		if (!strcmp(r->uuid, def->uuid))
			return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	snprintf(r->uuid, sizeof(r->uuid), "%s", def->uuid);
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->next = d->agent->reported;
	d->agent->reported = r;
	return r;
}

void agent_vm_starting(struct hvnoded *d, const char *name, uint64_t epoch)
{
	struct reported *rp = reported_of(d, name);

	if (rp)
		rp->start_epoch = epoch;
}

/* The state shows the report: it arrived. */
static bool report_applied(struct hvnoded *d, const struct reported *rp)
{
	const struct vm_status *st = state_vm_status(d->state, rp->name);

	return !st || st->epoch != rp->epoch || st->node != my_id(d) ||
	       (st->event_epoch == rp->epoch && st->event == rp->event &&
		st->event_node == my_id(d));
}

static void report_send(struct hvnoded *d, struct reported *rp)
{
	json_t *op;
	int rc;

	rp->sent_ms = now_ms();
	/* a node without quorum speaks for nothing: its reports wait for the quorate side */
	if (!membership_is_quorate(d->membership))
		return;
	op = json_pack("{s:s,s:s,s:I,s:s,s:s}", "op", "vm.report", "name", rp->name, "epoch",
		       (json_int_t)rp->epoch, "event", vm_event_name(rp->event), "reason",
		       rp->reason);
	if (op && rp->resume_ms &&
	    json_object_set_new(op, "resume_ms", json_integer((json_int_t)rp->resume_ms))) {
		json_decref(op);
		op = NULL;
	}
	rc = op ? repl_submit(d->agent->repl, op) : -ENOMEM;
	json_decref(op);
	rp->sent_ms = now_ms();
	if (rc)
		qb_log(LOG_WARNING, "vm %s: cannot report %s (epoch %" PRIu64 ") now: %s; will retry",
		       rp->name, vm_event_name(rp->event), rp->epoch, strerror(-rc));
	else
		qb_log(LOG_INFO, "vm %s: reported %s (epoch %" PRIu64 ")%s%s", rp->name,
		       vm_event_name(rp->event), rp->epoch, rp->reason[0] ? ": " : "", rp->reason);
}

/* Reports that got lost (sync round, corosync busy) go out again. */
static void reports_retry(struct hvnoded *d)
{
	for (struct reported *rp = d->agent->reported; rp; rp = rp->next) {
		if (!rp->pending)
			continue;
		if (report_applied(d, rp))
			rp->pending = false;
		else if (now_ms() - rp->sent_ms >= 1000)
			report_send(d, rp);
	}
}

static void report(struct hvnoded *d, const char *name, uint64_t epoch, enum vm_event ev,
		   const char *reason, uint64_t resume_ms)
{
	struct reported *rp = reported_of(d, name);

	if (!rp || (rp->epoch == epoch && rp->event == ev))
		return;
	rp->epoch = epoch;
	rp->event = ev;
	rp->resume_ms = resume_ms;
	snprintf(rp->reason, sizeof(rp->reason), "%s", reason ? reason : "");
	rp->pending = true;
	report_send(d, rp);
}

static const struct vm_status *mine(struct hvnoded *d, const char *name)
{
	const struct vm_status *st = state_vm_status(d->state, name);

	return st && st->node == my_id(d) && my_id(d) ? st : NULL;
}

void agent_vm_running(struct hvnoded *d, const char *name, uint64_t epoch)
{
	agent_vm_resumed(d, name, epoch, 0);
}

void agent_vm_resumed(struct hvnoded *d, const char *name, uint64_t epoch, uint64_t resume_ms)
{
	const struct vm_status *st = mine(d, name);

	if (st && st->epoch == epoch)
		report(d, name, epoch, VM_EVENT_RUNNING, NULL, resume_ms);
	reconcile_soon(d);
}

void agent_vm_gone(struct hvnoded *d, const char *name, uint64_t epoch, enum vm_gone how,
		   const char *reason)
{
	const struct vm_status *st = mine(d, name);
	enum vm_event ev = how == VM_GONE_FAILED     ? VM_EVENT_FAILED
			   : how == VM_GONE_POWEROFF ? VM_EVENT_POWEROFF
						     : VM_EVENT_STOPPED;

	if (st && st->epoch == epoch)
		report(d, name, epoch, ev, reason, 0);
	reconcile_soon(d);
}

/* --- hvctl requests ---------------------------------------------------------------- */

static json_t *vm_show_json(struct hvnoded *d, const struct vm_def *def);

static void waiter_done(struct agent *a, struct waiter *w, int status, json_t *body)
{
	struct waiter **pp;

	for (pp = &a->waiters; *pp && *pp != w; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = w->next;
	ipc_request_reply(w->req, status, body);
	free(w);
}

/* Check the VM waiters against the state; answer those that are done. */
static void check_waiters(struct hvnoded *d, bool timer)
{
	struct agent *a = d->agent;
	struct waiter *w, *next;
	uint64_t now = now_ms();

	for (w = a->waiters; w; w = next) {
		const struct vm_def *def = state_vm_find(d->state, w->name);
		const struct vm_status *st = def ? state_vm_status(d->state, w->name) : NULL;
		json_t *body = NULL;
		int status = 0;
		char msg[1024] = "";

		next = w->next;
		if (!w->applied)
			goto timeout;
		if (!st) {
			snprintf(msg, sizeof(msg), "vm %s was deleted meanwhile", w->name);
			status = -ENOENT;
		} else if (w->kind == WAIT_STARTED && st->state == VM_HA_STARTED) {
			body = vm_show_json(d, def);
		} else if (w->kind == WAIT_STARTED && st->state == VM_HA_ERROR) {
			snprintf(msg, sizeof(msg), "vm %s: error: %s", w->name, st->reason);
			status = -EIO;
		} else if (w->kind == WAIT_STARTED && st->state == VM_HA_STOPPED && st->reason[0] &&
			   (!st->want_running || (strstr(st->reason, "cannot be placed") &&
						  now - w->since_ms >= PLACE_GRACE_MS))) {
			snprintf(msg, sizeof(msg), "vm %s not started: %s", w->name, st->reason);
			status = -EAGAIN;
		} else if (w->kind == WAIT_STOPPED && st->state == VM_HA_STOPPED) {
			body = vm_show_json(d, def);
		} else {
			goto timeout;
		}
		if (status)
			body = json_pack("{s:s}", "error", msg);
		waiter_done(a, w, status, body);
		json_decref(body);
		continue;
timeout:
		if (!timer || now < w->deadline_ms)
			continue;
		snprintf(msg, sizeof(msg), "vm %s: no result after %" PRIu64 " s; it is %s%s%s",
			 w->name, (w->deadline_ms - now + (now - w->deadline_ms)) / 1000,
			 st ? vm_ha_state_name(st->state) : "gone",
			 st && st->reason[0] ? ": " : "", st ? st->reason : "");
		body = json_pack("{s:s}", "error", msg);
		waiter_done(a, w, -ETIMEDOUT, body);
		json_decref(body);
	}
}

int cluster_submit(struct hvnoded *d, json_t *op, struct ipc_request *req, int kind,
		   const char *vm, unsigned int timeout_s, char *err, size_t errlen)
{
	struct agent *a = d->agent;
	struct waiter *w;
	int rc;

	if (!membership_is_quorate(d->membership)) {
		snprintf(err, errlen, "cluster not quorate: changes are refused on this node");
		return -EAGAIN;
	}
	if (!repl_is_synced(a->repl)) {
		snprintf(err, errlen, "cluster state syncing: try again in a moment");
		return -EAGAIN;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->req_id = ((uint64_t)my_id(d) << 32) | (++a->next_req & 0xffffffffu);
	w->kind = (enum wait_kind)kind;
	w->req = req;
	w->since_ms = now_ms();
	w->deadline_ms = w->since_ms + (uint64_t)(timeout_s ? timeout_s : WAIT_DEFAULT_S) * 1000;
	snprintf(w->name, sizeof(w->name), "%s", vm ? vm : "");
	json_object_set_new(op, "req", json_integer((json_int_t)w->req_id));
	if (ipc_request_audit(req)) {
		/* for every node's audit log: who asked, with which hvctl command */
		json_object_set(op, "who", json_object_get(ipc_request_audit(req), "who"));
		json_object_set(op, "cmd", json_object_get(ipc_request_audit(req), "cmd"));
	}
	rc = repl_submit(a->repl, op);
	if (rc) {
		snprintf(err, errlen, "cannot send the change to the cluster: %s", strerror(-rc));
		free(w);
		return rc;
	}
	ipc_request_audited(req);
	w->next = a->waiters;
	a->waiters = w;
	flush_soon(d);
	return 0;
}

int cluster_send(struct hvnoded *d, json_t *op)
{
	int rc;

	if (!d->agent || !membership_is_quorate(d->membership))
		return -EAGAIN;
	rc = repl_submit(d->agent->repl, op);
	flush_soon(d);
	return rc;
}

/* Our own op came back: answer or keep waiting for the VM. */
static void request_applied(struct hvnoded *d, const json_t *op, int rc, const char *err)
{
	json_t *req = json_object_get(op, "req");
	struct waiter *w;
	json_t *body;

	if (!json_is_integer(req))
		return;
	for (w = d->agent->waiters; w; w = w->next)
		if (!w->applied && w->req_id == (uint64_t)json_integer_value(req))
			break;
	if (!w)
		return;
	w->applied = true;
	if (rc) {
		body = json_pack("{s:s}", "error", err);
		waiter_done(d->agent, w, rc, body);
		json_decref(body);
		return;
	}
	if (w->kind != WAIT_APPLIED)
		return;
	if (w->name[0] && state_vm_find(d->state, w->name))
		body = vm_show_json(d, state_vm_find(d->state, w->name));
	else
		body = json_pack("{s:s,s:b}", "op", json_string_value(json_object_get(op, "op")),
				 "applied", 1);
	waiter_done(d->agent, w, 0, body);
	json_decref(body);
}

/* --- what `vm show` says --------------------------------------------------------- */

static const char *node_name_of(struct hvnoded *d, uint32_t id)
{
	const struct node_info *n = state_node_find(d->state, id);

	return n ? n->name : NULL;
}

static json_t *vm_show_json(struct hvnoded *d, const struct vm_def *def)
{
	const struct vm_status *st = state_vm_status(d->state, def->name);
	json_t *j = vm_def_to_json(def);
	const char *node = st && st->node ? node_name_of(d, st->node) : NULL;

	if (!j)
		return NULL;
	if (vmrun_is_active(d, def->name)) {
		vmrun_describe(d, def->name, j);
	} else {
		const char *state = !st			     ? "stopped"
				    : st->state == VM_HA_STARTED ? "running"
								 : vm_ha_state_name(st->state);

		json_object_set_new(j, "state", json_string(state));
		json_object_set_new(j, "node", node ? json_string(node) : json_null());
	}
	if (st) {
		json_object_set_new(j, "ha_state", json_string(vm_ha_state_name(st->state)));
		json_object_set_new(j, "assigned_node", node ? json_string(node) : json_null());
		json_object_set_new(j, "epoch", json_integer((json_int_t)st->epoch));
		json_object_set_new(j, "want_running", json_boolean(st->want_running));
		json_object_set_new(j, "ha_reason", json_string(st->reason));
		json_object_set_new(j, "saved", json_boolean(st->saved));
		if (st->saved)
			json_object_set_new(j, "saved_bytes", json_integer((json_int_t)st->saved_bytes));
		if (st->mig.id)
			json_object_set_new(j, "migration", mig_to_json(d->state, &st->mig));
		if (st->mig_last.id)
			json_object_set_new(j, "last_migration",
					    mig_last_to_json(d->state, &st->mig_last));
		if (st->held[0])
			json_object_set_new(j, "held", json_string(st->held));
		if (st->home)
			json_object_set_new(j, "home", json_string(node_name_of(d, st->home)));
		if (st->frozen)
			json_object_set_new(j, "frozen", json_true());
	}
	return j;
}

json_t *cluster_vm_json(struct hvnoded *d, const struct vm_def *def)
{
	return vm_show_json(d, def);
}

/* --- the agent --------------------------------------------------------------------- */

static bool assigned_here(struct hvnoded *d, const struct vm_status *st)
{
	return st && st->node == my_id(d) &&
	       (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED);
}

static void stop_all_local(struct hvnoded *d, const char *why)
{
	/* every local run, whether the state (maybe stale) knows its VM or not */
	for (struct vm_run_iter it = { 0 }; vmrun_next(d, &it);)
		if (!it.stopping && vmrun_stop(d, it.name) == 0)
			qb_log(LOG_WARNING, "vm %s: stopping (epoch %" PRIu64 "): %s", it.name,
			       it.epoch, why);
}

/* Local runs that the state does not want here (any more) stop; true when none is left. */
static bool stop_strays(struct hvnoded *d)
{
	bool clean = true;

	for (struct vm_run_iter it = { 0 }; vmrun_next(d, &it);) {
		const struct vm_status *st = state_vm_status(d->state, it.name);

		if (assigned_here(d, st) && st->epoch == it.epoch && !it.incoming)
			continue;
		/* the target of a migration in flight (or handed over, resuming here) */
		if (it.incoming && st && st->mig.id == it.incoming && st->mig.to == my_id(d) &&
		    (st->mig.phase == MIG_RUNNING || st->mig.phase == MIG_HANDOFF))
			continue;
		clean = false;
		if (!it.stopping) {
			qb_log(LOG_NOTICE, "vm %s: runs here (epoch %" PRIu64 ") but is %s on %s "
					   "(epoch %" PRIu64 "): stopping it",
			       it.name, it.epoch, st ? vm_ha_state_name(st->state) : "deleted",
			       st && st->node ? node_name_of(d, st->node) : "no node",
			       st ? st->epoch : 0);
			vmrun_stop(d, it.name);
		}
	}
	return clean;
}

/* Keys a start may take LUNs from: nodes that are not online (gone, fenced), and the leader (the fencer). */
static size_t preemptable(struct hvnoded *d, uint64_t *keys)
{
	uint32_t leader = membership_leader(d->membership);
	size_t n = 0;

	for (size_t i = 0; i < state_node_count(d->state) && n < STATE_MAX_NODES; i++) {
		const struct node_info *nd = state_node_at(d->state, i);

		if (nd->id != my_id(d) && (nd->status != NODE_ONLINE || nd->id == leader))
			keys[n++] = storage_node_key(d->cfg.cluster_name, nd->id);
	}
	return n;
}

static void start_assigned(struct hvnoded *d)
{
	const struct node_info *me = state_node_find(d->state, my_id(d));
	uint64_t keys[STATE_MAX_NODES];
	char err[1024];
	size_t n;

	for (size_t i = 0; i < state_vm_count(d->state); i++) {
		const struct vm_def *def = state_vm_at(d->state, i);
		const struct vm_status *st = state_vm_status(d->state, def->name);
		struct reported *rp;

		if (st->node != my_id(d) || !my_id(d))
			continue;
		if (st->state == VM_HA_STOPPING && !vmrun_is_active(d, def->name)) {
			report(d, def->name, st->epoch, VM_EVENT_STOPPED, NULL, 0);
			continue;
		}
		rp = reported_of(d, def->name);
		if (!rp || vmrun_is_active(d, def->name))
			continue;
		/*
		 * Assigned here, running, but it is not: stopped while this node had no
		 * quorum, or hvnoded restarted. Say so once, or it stays "started" forever.
		 */
		if ((st->state == VM_HA_STARTED ||
		     (st->state == VM_HA_STARTING && rp->start_epoch == st->epoch)) &&
		    !(rp->epoch == st->epoch && rp->event != VM_EVENT_NONE)) {
			report(d, def->name, st->epoch, VM_EVENT_FAILED,
			       "not running on its node (stopped while the node had no quorum, or "
			       "hvnoded restarted)",
			       0);
			continue;
		}
		if (st->state != VM_HA_STARTING || rp->start_epoch == st->epoch)
			continue;
		if (!me || me->status != NODE_ONLINE || !me->ready)
			continue; /* not counted online yet: start nothing */
		rp->start_epoch = st->epoch;
		n = preemptable(d, keys);
		if (vmrun_start(d, def, st->epoch, keys, n, st->saved, err, sizeof(err)))
			report(d, def->name, st->epoch, VM_EVENT_FAILED, err, 0);
	}
}

static void say_hello(struct hvnoded *d)
{
	const struct node_info *n = state_node_find(d->state, my_id(d));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	json_t *op;
	int rc;

	if ((n && n->ready) || d->agent->hello_sent)
		return;
	op = json_pack("{s:s,s:I,s:s,s:I,s:I,s:s,s:s,s:I,s:s,s:s}", "op", "node.hello", "id",
		       (json_int_t)my_id(d), "name", d->cfg.node_name, "vcpus",
		       (json_int_t)(d->cfg.node_vcpus ? d->cfg.node_vcpus : (cpus > 0 ? cpus : 1)),
		       "memory", (json_int_t)d->cfg.node_memory_mb, "domain",
		       d->cfg.node_domain ? d->cfg.node_domain : "", "clearance",
		       d->cfg.node_clearance ? d->cfg.node_clearance : "public", "watchdog_s",
		       (json_int_t)watchdog_timeout(d), "mig_endpoint", vmmig_endpoint(d), "mig_key",
		       vmmig_pubkey(d));
	rc = op ? repl_submit(d->agent->repl, op) : -ENOMEM;
	json_decref(op);
	if (rc)
		return;
	d->agent->hello_sent = true;
	qb_log(LOG_NOTICE, "node %s: no leftover VM here: hello sent (clean, ready for VMs)",
	       d->cfg.node_name);
}

/* --- the leader ------------------------------------------------------------------------ */

static void mgr_log(void *arg, const char *line)
{
	qb_log(LOG_NOTICE, "manager: %s", line);
}

static int fence_work(void *arg)
{
	struct fence_job *job = arg;

	return fence_run(&job->t, job->detail, sizeof(job->detail));
}

static void fence_done(void *arg, int rc)
{
	struct fence_job *job = arg;
	struct hvnoded *d = job->d;
	struct agent *a = d->agent;
	json_t *op;

	for (size_t i = 0; i <= STATE_MAX_NODES; i++)
		if (a->fence_node[i] == job->t.node) {
			a->fencing[i] = false;
			if (rc) {
				unsigned int b = a->fence_backoff_ms[i];

				b = b ? (b * 2 > FENCE_RETRY_MAX_MS ? FENCE_RETRY_MAX_MS : b * 2)
				      : FENCE_RETRY_MS;
				a->fence_backoff_ms[i] = b;
				a->fence_retry_ms[i] = now_ms() + b;
				/* never sleep past the watchdog deadline: then it counts as fenced */
				if (job->t.watchdog_s) {
					uint64_t dl = job->t.left_ms + 2ULL * job->t.watchdog_s * 1000;

					if (dl > now_ms() && dl < a->fence_retry_ms[i])
						a->fence_retry_ms[i] = dl;
				}
				qb_log(LOG_WARNING, "fence node %s: next try in %u ms", job->t.name, b);
			} else {
				a->fence_backoff_ms[i] = 0;
				a->fence_retry_ms[i] = 0;
			}
		}
	qb_log(rc ? LOG_ERR : LOG_NOTICE, "fence node %s (id %u): %s: %s", job->t.name,
	       job->t.node, rc ? "FAILED" : "done", job->detail);
	op = json_pack("{s:s,s:I,s:b,s:s,s:I,s:I}", "op", "mgr.fenced", "id",
		       (json_int_t)job->t.node, "ok", rc == 0, "detail", job->detail, "at_ms",
		       (json_int_t)now_ms(), "left_ms", (json_int_t)job->t.left_ms);
	if (op && repl_submit(a->repl, op) == 0)
		a->mgr_inflight++;
	json_decref(op);
	free(job);
	reconcile_soon(d);
}

static bool membership_has(struct hvnoded *d, uint32_t node)
{
	struct member members[MEMBERS_MAX];
	size_t n = membership_members(d->membership, members, MEMBERS_MAX);

	for (size_t i = 0; i < n; i++)
		if (members[i].id == node)
			return true;
	return false;
}

/* Copy what fencing @node needs out of the state (the worker must not read it). */
static int fence_target_fill(struct hvnoded *d, uint32_t node, struct fence_target *t)
{
	t->key = storage_node_key(d->cfg.cluster_name, node);
	t->mykey = storage_node_key(d->cfg.cluster_name, my_id(d));
	storage_initiator_name(t->initiator, sizeof(t->initiator), d->cfg.cluster_name,
			       d->cfg.node_name);
	t->agent_timeout_s = FENCE_AGENT_TIMEOUT_S;
	return fence_target_from_state(t, d->state, node, membership_has(d, node), now_ms());
}

static int fence_slot(struct agent *a, uint32_t node)
{
	int free_slot = -1;

	for (int i = 0; i <= STATE_MAX_NODES; i++) {
		if (a->fence_node[i] == node)
			return i;
		if (free_slot < 0 && !a->fencing[i] && a->fence_retry_ms[i] == 0)
			free_slot = i;
	}
	if (free_slot >= 0)
		a->fence_node[free_slot] = node;
	return free_slot;
}

static void fence_start(struct hvnoded *d, uint32_t node)
{
	struct agent *a = d->agent;
	struct fence_job *job;
	int slot = fence_slot(a, node);

	if (slot < 0 || a->fencing[slot] || (a->fence_retry_ms[slot] && now_ms() < a->fence_retry_ms[slot]))
		return;
	if (node == my_id(d)) {
		/* back before anyone fenced us: we are alive; clean means nothing of ours writes */
		struct vm_run_iter it = { 0 };
		json_t *op;

		if (vmrun_next(d, &it))
			return;
		const struct node_info *self = state_node_find(d->state, node);

		op = json_pack("{s:s,s:I,s:b,s:s,s:I,s:I}", "op", "mgr.fenced", "id",
			       (json_int_t)node, "ok", 1, "detail",
			       "self: the leader is this node, back and clean (no VM runs here)",
			       "at_ms", (json_int_t)now_ms(), "left_ms",
			       (json_int_t)(self ? self->left_ms : 0));
		if (op && repl_submit(a->repl, op) == 0)
			a->mgr_inflight++;
		json_decref(op);
		qb_log(LOG_NOTICE, "fence node %s (id %u): this node, clean: confirmed", d->cfg.node_name,
		       node);
		return;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return;
	job->d = d;
	if (fence_target_fill(d, node, &job->t)) {
		qb_log(LOG_ERR, "fence node %u: too many LUNs or levels to fence in one job", node);
		free(job);
		return;
	}
	qb_log(LOG_NOTICE, "fence node %s (id %u): %zu levels, %zu LUNs, key 0x%016" PRIx64
			   "%s%s",
	       job->t.name, node, job->t.nlevels ? job->t.nlevels : 1, job->t.nluns, job->t.key,
	       job->t.nopr_vm[0] ? ", vm without storage fencing: " : "", job->t.nopr_vm);
	a->fencing[slot] = true;
	a->fence_retry_ms[slot] = 0;
	if (work_submit(d, fence_work, fence_done, job)) {
		a->fencing[slot] = false;
		free(job);
	}
}

static void run_manager(struct hvnoded *d)
{
	struct agent *a = d->agent;
	struct member members[MEMBERS_MAX];
	uint32_t ids[MEMBERS_MAX];
	struct mgr_result res;
	struct mgr_env env;
	size_t n;
	json_t *op;
	size_t i;

	if (membership_leader(d->membership) != my_id(d) || !my_id(d) ||
	    repl_leader(a->repl) != my_id(d) || !repl_is_synced(a->repl) ||
	    !membership_is_quorate(d->membership) || a->mgr_inflight)
		return;
	n = membership_members(d->membership, members, MEMBERS_MAX);
	for (i = 0; i < n; i++)
		ids[i] = members[i].id;
	env = (struct mgr_env){ .now_ms = now_ms(), .members = ids, .nmembers = n };
	if (manager_step(d->state, &env, &res, mgr_log, d)) {
		qb_log(LOG_ERR, "manager: out of memory");
		return;
	}
	json_array_foreach(res.ops, i, op) {
		int rc = repl_submit(a->repl, op);

		if (rc) {
			qb_log(LOG_WARNING, "manager: cannot send a decision: %s", strerror(-rc));
			break;
		}
		a->mgr_inflight++;
	}
	json_decref(res.ops);
	for (i = 0; i < res.nfence; i++)
		fence_start(d, res.fence[i]);
	/* a node no longer to fence (fenced, confirmed by an admin): forget its retries */
	for (int s = 0; s <= STATE_MAX_NODES; s++) {
		bool wanted = false;

		for (i = 0; i < res.nfence && !wanted; i++)
			wanted = res.fence[i] == a->fence_node[s];
		if (a->fence_node[s] && !wanted && !a->fencing[s]) {
			a->fence_node[s] = 0;
			a->fence_retry_ms[s] = 0;
			a->fence_backoff_ms[s] = 0;
		}
	}
}

/* --- reconcile ---------------------------------------------------------------------- */

static void reconcile(void *data)
{
	struct hvnoded *d = data;
	struct agent *a = d->agent;
	bool quorate = membership_is_quorate(d->membership);

	if (!quorate) {
		uint64_t now = now_ms();

		if (!a->quorum_lost_ms)
			a->quorum_lost_ms = now;
		a->hello_sent = false;
		if (now - a->quorum_lost_ms >= (uint64_t)d->cfg.quorum_loss_stop_s * 1000)
			stop_all_local(d, "this node lost quorum");
		check_waiters(d, false);
		return;
	}
	a->quorum_lost_ms = 0;
	if (!repl_is_synced(a->repl))
		return;
	if (stop_strays(d))
		say_hello(d);
	reports_retry(d);
	start_assigned(d);
	vmmig_reconcile(d);
	run_manager(d);
	check_waiters(d, false);
	flush_soon(d);
}

#define FLUSH_RETRY_MS 20

static void on_flush(void *data)
{
	struct hvnoded *d = data;

	d->agent->flush_armed = false;
	repl_flush(d->agent->repl);
	flush_soon(d);
}

/* corosync said "try again" to some message: retry shortly, in order. */
static void flush_soon(struct hvnoded *d)
{
	struct agent *a = d->agent;

	if (!a || a->flush_armed || !repl_has_unsent(a->repl))
		return;
	if (qb_loop_timer_add(d->loop, QB_LOOP_HIGH, FLUSH_RETRY_MS * QB_TIME_NS_IN_MSEC, d, on_flush,
			      &a->flush_timer) == 0)
		a->flush_armed = true;
}

/*
 * A timer that is due at once, not a loop job: libqb's loop polls its fds for up to 50 ms
 * before it runs a job when only jobs are pending (so that jobs adding jobs cannot spin),
 * and every state change would then wait that long for its reaction: a migration's start,
 * its handoff, the manager's next step. An expired timer makes the loop poll with no wait.
 */
static void on_reconcile_timer(void *data)
{
	struct hvnoded *d = data;

	d->agent->reconcile_queued = false;
	reconcile(d);
}

static void reconcile_soon(struct hvnoded *d)
{
	struct agent *a = d->agent;

	if (!a || a->reconcile_queued)
		return;
	if (qb_loop_timer_add(d->loop, QB_LOOP_MED, 0, d, on_reconcile_timer,
			      &a->reconcile_timer) == 0)
		a->reconcile_queued = true;
}

static void on_tick(void *data)
{
	struct hvnoded *d = data;

	repl_tick(d->agent->repl, now_ms());
	reconcile(d);
	check_waiters(d, true);
	qb_loop_timer_add(d->loop, QB_LOOP_LOW, TICK_MS * QB_TIME_NS_IN_MSEC, d, on_tick,
			  &d->agent->tick);
}

/* --- repl callbacks ---------------------------------------------------------------- */

static int repl_send(void *arg, const void *buf, size_t len)
{
	struct hvnoded *d = arg;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return membership_send(d->membership, &iov, 1);
}

static void repl_applied(void *arg, const json_t *op, uint32_t sender, int rc, const char *err)
{
	struct hvnoded *d = arg;
	const char *name = json_string_value(json_object_get(op, "op"));

	if (sender == my_id(d) && name && !strncmp(name, "mgr.", 4) && d->agent->mgr_inflight)
		d->agent->mgr_inflight--;
	if (rc)
		qb_log(rc == -ESTALE ? LOG_INFO : LOG_WARNING, "op %s from node %u refused: %s",
		       name ? name : "?", sender, err);
	else
		qb_log(LOG_DEBUG, "op %s from node %u applied (version %" PRIu64 ")", name, sender,
		       state_version(d->state));
	if (name && !strcmp(name, "mgr.node") && !rc &&
	    json_integer_value(json_object_get(op, "id")) == my_id(d))
		d->agent->hello_sent = false;
	if (json_object_get(op, "who")) {
		const struct node_info *n = state_node_find(d->state, sender);
		char from[32];

		snprintf(from, sizeof(from), "node%u", sender);
		audit_append(d, op, n ? n->name : from, rc, err);
	}
	if (sender == my_id(d))
		request_applied(d, op, rc, err);
	reconcile_soon(d);
}

static void repl_synced(void *arg, uint32_t winner, uint64_t version)
{
	struct hvnoded *d = arg;

	d->agent->hello_sent = false;
	d->agent->mgr_inflight = 0;
	reconcile_soon(d);
}

static void repl_persist(void *arg)
{
	struct hvnoded *d = arg;
	char err[1024];

	if (repl_needs_state(d->agent->repl))
		return; /* an empty state that is no one's: never on disk */
	if (statefile_save(d->state_path, d->state, err, sizeof(err))) {
		qb_log(LOG_ERR, "cannot persist the cluster state: %s", err);
		return;
	}
	if (d->state_needed) {
		statefile_needed_done(d->state_path);
		d->state_needed = false;
		qb_log(LOG_NOTICE, "state %s: the cluster's state (version %" PRIu64 ") is on disk "
				   "again; the corrupt file stays in %s",
		       d->state_path, state_version(d->state), d->state_moved);
	}
}

static void repl_log(void *arg, int level, const char *msg)
{
	qb_log(level, "state: %s", msg);
}

static const struct repl_ops repl_ops = {
	.send = repl_send,
	.applied = repl_applied,
	.synced = repl_synced,
	.persist = repl_persist,
	.log = repl_log,
};

/* --- membership callbacks (from main.c) -------------------------------------------- */

void cluster_confchg(struct hvnoded *d, const uint32_t *ids, const uint32_t *pids, size_t n)
{
	if (!d->agent)
		return;
	repl_set_local(d->agent->repl, my_id(d));
	repl_quorum(d->agent->repl, membership_is_quorate(d->membership));
	repl_confchg(d->agent->repl, ids, pids, n);
	flush_soon(d);
}

void cluster_deliver(struct hvnoded *d, uint32_t nodeid, uint32_t pid, const void *msg,
		     size_t len)
{
	if (!d->agent)
		return;
	repl_deliver(d->agent->repl, nodeid, pid, msg, len);
}

const char *cluster_state_sync(struct hvnoded *d)
{
	if (!d->agent)
		return "syncing";
	if (repl_needs_state(d->agent->repl))
		return "waiting";
	return repl_is_synced(d->agent->repl) ? "synced" : "syncing";
}

void cluster_changed(struct hvnoded *d)
{
	if (!d->agent)
		return;
	if (!membership_is_available(d->membership))
		repl_reset(d->agent->repl);
	else
		repl_quorum(d->agent->repl, membership_is_quorate(d->membership));
	reconcile_soon(d);
}

int cluster_init(struct hvnoded *d)
{
	struct agent *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->repl = repl_create(d->state, &repl_ops, d);
	if (!a->repl) {
		free(a);
		return -ENOMEM;
	}
	if (d->state_needed)
		repl_set_needs_state(a->repl);
	d->agent = a;
	qb_loop_timer_add(d->loop, QB_LOOP_LOW, TICK_MS * QB_TIME_NS_IN_MSEC, d, on_tick, &a->tick);
	return 0;
}

void cluster_fini(struct hvnoded *d)
{
	struct agent *a = d->agent;
	struct waiter *w;
	struct reported *r;

	if (!a)
		return;
	qb_loop_timer_del(d->loop, a->tick);
	if (a->flush_armed)
		qb_loop_timer_del(d->loop, a->flush_timer);
	/* a reconcile queued when the loop stopped: libqb frees a timer only when it runs or goes */
	if (a->reconcile_queued)
		qb_loop_timer_del(d->loop, a->reconcile_timer);
	while ((w = a->waiters)) {
		a->waiters = w->next;
		ipc_request_fail(w->req, -ESHUTDOWN, "hvnoded is stopping");
		free(w);
	}
	while ((r = a->reported)) {
		a->reported = r->next;
		free(r);
	}
	repl_destroy(a->repl);
	free(a);
	d->agent = NULL;
}
