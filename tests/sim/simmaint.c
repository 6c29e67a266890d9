/*
 * Planned maintenance in hvsim (sim.h): what the node agents do for a
 * migration (node/vmmig.c), hvnoded's clean stop with shutdown_policy
 * migrate or freeze (node/maintcmd.c), and the script's maintenance commands
 * and expectations.
 *
 * A migration, as modelled: once the state says it runs (mgr.mig), its
 * source streams for migrate-ms (live and quick alike; the guest keeps
 * running on the source meanwhile), then stops its QEMU, releases its LUNs
 * and sends mig.handoff; the target resumes it as the start of the new epoch
 * (hvsim.c's agent_start). Before the handoff the source ends it with
 * mig.end, and the VM runs on there, when the target is unreachable or has
 * left its membership, when an admin cancelled it, when its QEMU is gone, or
 * when `migrate-fail` says so.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cluster/state.h"
#include "fake_fence.h"
#include "sim.h"

static const char *vm_name(struct sim *s, int v)
{
	return s->vms[v].name;
}

/* --- the source of a migration ---------------------------------------------------------- */

static void mig_forget(struct agent_vm *a)
{
	a->mig_id = 0;
	a->mig_start_ms = 0;
	a->mig_done = a->handed_off = false;
	a->mig_epoch = 0;
}

static json_t *progress_json(struct sim *s, const struct agent_vm *a, const char *status)
{
	struct mig_progress p = { .elapsed_ms = s->now - a->mig_start_ms };

	snprintf(p.qemu_status, sizeof(p.qemu_status), "%s", status);
	return mig_progress_to_json(&p);
}

/* Before the handoff: the stream is cut and the VM runs on here; the cluster is told why. */
static void mig_end(struct sim *s, struct simnode *n, int v, const struct vm_migration *m,
		    bool cancelled, const char *why)
{
	struct agent_vm *a = &n->av[v];

	sim_say(s, "%s: vm %s: migration %" PRIu64 " to %s %s: %s; it runs on here", n->name,
		vm_name(s, v), m->id, sim_id_name(s, m->to), cancelled ? "cancelled" : "failed",
		why);
	a->mig_done = true;
	sim_send_op(s, n->id,
		    json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "op", "mig.end", "name", vm_name(s, v),
			      "id", (json_int_t)m->id, "result", cancelled ? "cancelled" : "failed",
			      "reason", why, "progress",
			      progress_json(s, a, cancelled ? "cancelled" : "failed")));
}

/* The stream is complete: QEMU stops here, the LUNs are released, the target takes over. */
static void mig_handoff(struct sim *s, struct simnode *n, int v, const struct vm_migration *m)
{
	const struct vm_def *def = state_vm_find(s->st, vm_name(s, v));
	struct agent_vm *a = &n->av[v];
	char why[128];

	a->mig_done = true;
	a->handed_off = true;
	a->mig_epoch = n->runs[v].epoch;
	snprintf(why, sizeof(why), "handoff to %s (%s migration %" PRIu64 ")",
		 sim_id_name(s, m->to), mig_mode_name(m->mode), m->id);
	sim_run_stop(s, n, v, why);
	for (size_t k = 0; def && def->fence_storage && k < def->ndisks; k++)
		fake_lun_release(def->disks[k].url, sim_node_key(n->id));
	sim_send_op(s, n->id,
		    json_pack("{s:s,s:s,s:I,s:o}", "op", "mig.handoff", "name", vm_name(s, v), "id",
			      (json_int_t)m->id, "progress", progress_json(s, a, "completed")));
}

/* The state moved on from the migration this node streamed (or handed off). */
static void mig_moved_on(struct sim *s, struct simnode *n, int v, const struct vm_status *st)
{
	struct agent_vm *a = &n->av[v];
	char why[STATE_REASON_MAX];

	if (!a->mig_done)
		sim_say(s,
			"%s: vm %s: migration %" PRIu64 " ended in the cluster state: stream cut",
			n->name, vm_name(s, v), a->mig_id);
	/*
	 * A handoff the cluster did not take (the migration ended first): the VM
	 * is still assigned here, but its QEMU is gone. Say so, as the real
	 * agent's start_assigned() does for a VM assigned here that does not run.
	 */
	if (a->handed_off && st && st->node == n->id && st->epoch == a->mig_epoch &&
	    (st->state == VM_HA_STARTED || st->state == VM_HA_STARTING)) {
		snprintf(why, sizeof(why),
			 "its QEMU stopped for the handoff of migration %" PRIu64
			 ", which the cluster did not take",
			 a->mig_id);
		sim_say(s, "%s: vm %s: %s", n->name, vm_name(s, v), why);
		sim_report(s, n, v, st->epoch, VM_EVENT_FAILED, why);
	}
	mig_forget(a);
}

static void source_step(struct sim *s, struct simnode *n, int v, const struct vm_status *st)
{
	const struct vm_migration *m = &st->mig;
	struct agent_vm *a = &n->av[v];
	struct run *r = &n->runs[v];
	struct simnode *t = sim_node_by_id(s, m->to);
	bool runs_here = r->used && !r->fenced && r->phase == RUN_RUNNING && r->epoch == st->epoch;
	char why[256];

	if (a->mig_id == m->id && a->mig_done)
		return; /* its end or handoff is on the way */
	if (a->mig_id != m->id) {
		/* node/vmmig.c's src_start(): only from a QEMU that runs here in this epoch */
		if (!runs_here)
			return;
		mig_forget(a);
		a->mig_id = m->id;
		a->mig_start_ms = s->now;
		sim_say(s, "%s: vm %s: migration %" PRIu64 " (%s) to %s: streaming", n->name,
			vm_name(s, v), m->id, mig_mode_name(m->mode), sim_id_name(s, m->to));
	}
	if (!runs_here) {
		mig_end(s, n, v, m, false, "its QEMU is gone");
	} else if (m->cancel) {
		mig_end(s, n, v, m, true, m->cancel_why[0] ? m->cancel_why : "cancelled by an admin");
	} else if (!t || !t->power || !t->connected) {
		snprintf(why, sizeof(why), "the stream to node %s broke: it is unreachable",
			 sim_id_name(s, m->to));
		mig_end(s, n, v, m, false, why);
	} else if (!sim_is_member(s, t->id)) {
		snprintf(why, sizeof(why), "node %s, the target, left the membership", t->name);
		mig_end(s, n, v, m, false, why);
	} else if (s->now < a->mig_start_ms + s->migrate_ms) {
		return;
	} else if (s->vms[v].fail_migrations) {
		s->vms[v].fail_migrations--;
		mig_end(s, n, v, m, false, "injected");
	} else {
		mig_handoff(s, n, v, m);
	}
}

void sim_agent_migrate(struct sim *s, struct simnode *n)
{
	for (size_t i = 0; i < s->nvms; i++) {
		int v = (int)i;
		const struct vm_status *st = state_vm_status(s->st, vm_name(s, v));
		struct agent_vm *a = &n->av[v];

		if (a->mig_id && (!st || st->mig.id != a->mig_id))
			mig_moved_on(s, n, v, st);
		if (!st || st->mig.phase != MIG_RUNNING || st->mig.mode == MIG_SAVE ||
		    st->mig.from != n->id || st->node != n->id)
			continue;
		source_step(s, n, v, st);
	}
}

bool sim_agent_resumes(struct sim *s, struct simnode *n, int v, uint64_t *id, uint32_t *from)
{
	const struct vm_status *st = state_vm_status(s->st, vm_name(s, v));

	if (!st || st->mig.phase != MIG_HANDOFF || st->mig.to != n->id || st->node != n->id)
		return false;
	*id = st->mig.id;
	*from = st->mig.from;
	return true;
}

void sim_check_migrations(struct sim *s)
{
	unsigned int max = state_settings(s->st)->mig_max_per_node;

	for (size_t i = 0; i < s->nvms; i++) {
		const struct vm_status *st = state_vm_status(s->st, vm_name(s, (int)i));
		struct simnode *src = st ? sim_node_by_id(s, st->mig.from) : NULL;

		/* handed over: the source's QEMU is gone before the target may resume it */
		if (src && st->mig.phase == MIG_HANDOFF && src->power && src->runs[i].used &&
		    !src->runs[i].fenced)
			sim_violated(s,
				     "vm %s runs on %s after its handoff to %s (migration %" PRIu64
				     ")",
				     vm_name(s, (int)i), src->name, sim_id_name(s, st->mig.to),
				     st->mig.id);
	}
	for (size_t i = 0; i < s->nnodes; i++) {
		struct simnode *n = &s->nodes[i];
		unsigned int inflight = state_migrations_on(s->st, n->id);

		if (inflight > n->mig_peak)
			n->mig_peak = inflight;
		if (max && inflight > max)
			sim_violated(s,
				     "node %s has %u migrations in flight, more than "
				     "migrate_max_per_node (%u)",
				     n->name, inflight, max);
	}
}

/* --- hvnoded's clean stop (node/maintcmd.c) ---------------------------------------------- */

/* VMs of @n still to go: assigned there, or migrating from or to it; *held: held among them. */
static size_t left_here(struct sim *s, struct simnode *n, size_t *held)
{
	size_t left = 0;

	*held = 0;
	for (size_t i = 0; i < state_vm_count(s->st); i++) {
		const struct vm_status *st = state_vm_status(s->st, state_vm_at(s->st, i)->name);
		bool here = st->node == n->id &&
			    (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED ||
			     st->state == VM_HA_STOPPING);

		if (st->mig.id && (st->mig.from == n->id || st->mig.to == n->id))
			here = true;
		if (!here)
			continue;
		left++;
		if (st->held[0] && !st->mig.id)
			(*held)++;
	}
	return left;
}

static bool frozen_all(struct sim *s, struct simnode *n)
{
	for (size_t i = 0; i < state_vm_count(s->st); i++) {
		const struct vm_status *st = state_vm_status(s->st, state_vm_at(s->st, i)->name);

		if (st->node == n->id && st->want_running && !st->frozen &&
		    (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED))
			return false;
	}
	return true;
}

static const char *policy_name(enum sim_shutdown p)
{
	return p == SIM_SHUTDOWN_FREEZE ? "freeze" : "migrate";
}

/* hvnoded stops its VMs and exits: the node leaves like a power-off, but nothing is killed. */
static void clean_stop(struct sim *s, struct simnode *n, enum sim_shutdown policy, const char *why)
{
	sim_say(s, "%s: shutdown (policy %s): %s: hvnoded stops", n->name, policy_name(policy),
		why);
	for (size_t v = 0; v < s->nvms; v++)
		if (n->runs[v].used)
			sim_run_stop(s, n, (int)v, "hvnoded stops (shutdown)");
	sim_power_set(s, n, false);
}

/* Nothing runs here: node.leave, so that its departure needs no fence. */
static void send_leave(struct sim *s, struct simnode *n)
{
	sim_client_op(s, n->name, json_pack("{s:s,s:s}", "op", "node.leave", "node", n->name));
	n->leave_sent = true;
}

bool sim_agent_shutdown(struct sim *s, struct simnode *n)
{
	enum sim_shutdown policy = n->shutdown;
	const struct node_info *self = state_node_find(s->st, n->id);
	size_t held = 0, left;
	char why[160];

	if (n->quorate && n->leave_sent) {
		if (!self || !self->leaving)
			return false;
		snprintf(why, sizeof(why), "the cluster knows it leaves running nothing");
	} else if (!n->quorate) {
		snprintf(why, sizeof(why), "quorum lost");
	} else if (policy == SIM_SHUTDOWN_FREEZE) {
		if (!frozen_all(s, n))
			return false;
		snprintf(why, sizeof(why), "this node's VMs are frozen (they wait for its return)");
	} else {
		left = left_here(s, n, &held);
		if (left && held < left)
			return false;
		if (!left) {
			sim_say(s, "%s: shutdown: drained, no VM left here", n->name);
			send_leave(s, n);
			return false;
		}
			snprintf(why, sizeof(why),
				 "%zu VM(s) cannot leave this node: they are recovered like after "
				 "a failure",
				 held);
	}
	clean_stop(s, n, policy, why);
	n->leave_sent = false;
	return true;
}

/* shutdown NODE migrate|freeze: hvnoded's SIGTERM (maint_shutdown()). */
static void cmd_shutdown(struct sim *s, char **tok, int ntok)
{
	struct simnode *n;
	enum sim_shutdown policy;
	const char *why;
	size_t held;
	json_t *op;

	if (ntok != 3 || (strcmp(tok[2], "migrate") && strcmp(tok[2], "freeze")))
		sim_script_error(s, "shutdown NODE migrate|freeze");
	n = sim_node_arg(s, tok[1]);
	policy = !strcmp(tok[2], "freeze") ? SIM_SHUTDOWN_FREEZE : SIM_SHUTDOWN_MIGRATE;
	if (!n->power)
		sim_script_error(s, "%s is powered off", n->name);
	if (n->shutdown != SIM_SHUTDOWN_NONE) {
		clean_stop(s, n, n->shutdown, "asked again: stopping now");
		return;
	}
	if (!state_node_find(s->st, n->id) || !n->quorate) {
		why = !state_node_find(s->st, n->id) ? "this node is not in the cluster state"
						     : "not quorate";
		clean_stop(s, n, policy, why);
		return;
	}
	if (!left_here(s, n, &held)) {
		sim_say(s, "%s: shutdown (policy %s): no VM here", n->name, policy_name(policy));
		n->shutdown = policy;
		send_leave(s, n);
		return;
	}
	if (policy == SIM_SHUTDOWN_FREEZE)
		op = json_pack("{s:s,s:s}", "op", "node.freeze", "node", n->name);
	else
		op = json_pack("{s:s,s:s,s:b,s:b}", "op", "node.drain", "node", n->name, "force", 0,
			       "auto", 1);
	sim_say(s, "%s: shutdown (policy %s): %s first", n->name, policy_name(policy),
		policy == SIM_SHUTDOWN_FREEZE ? "freezing this node's VMs" : "draining this node");
	n->shutdown = policy;
	sim_client_op(s, n->name, op);
}

/* --- script: commands ------------------------------------------------------------------ */

/* An admin's op about node @n, sent from another node when there is one up. */
static const char *other_than(struct sim *s, struct simnode *n)
{
	for (size_t i = 0; i < s->nnodes; i++) {
		struct simnode *m = &s->nodes[i];

		if (m != n && m->power && m->connected && !m->missed)
			return m->name;
	}
	return n->name;
}

static void cmd_drain(struct sim *s, char **tok, int ntok)
{
	struct simnode *n;

	if (ntok > 3 || (ntok == 3 && strcmp(tok[2], "force")))
		sim_script_error(s, "drain NODE [force]");
	n = sim_node_arg(s, tok[1]);
	sim_client_op(s, other_than(s, n),
		      json_pack("{s:s,s:s,s:b}", "op", "node.drain", "node", n->name, "force",
				ntok == 3));
}

static void cmd_migrate(struct sim *s, char **tok, int ntok)
{
	json_t *op;

	sim_vm_arg(s, tok[1]);
	op = json_pack("{s:s,s:s,s:I}", "op", "vm.migrate", "name", tok[1], "ms",
		       (json_int_t)s->now);
	for (int i = 2; op && i < ntok; i += 2) {
		if (i + 1 >= ntok || (strcmp(tok[i], "to") && strcmp(tok[i], "mode")))
			sim_script_error(s, "migrate VM [to NODE] [mode live|quick]");
		if (!strcmp(tok[i], "to"))
			sim_node_arg(s, tok[i + 1]);
		json_object_set_new(op, tok[i], json_string(tok[i + 1]));
	}
	sim_client_op(s, NULL, op);
}

bool sim_cmd_maint(struct sim *s, char **tok, int ntok)
{
	const char *c = tok[0];

	if (!strcmp(c, "drain"))
		cmd_drain(s, tok, ntok);
	else if (!strcmp(c, "resume"))
		sim_client_op(s, NULL,
			      json_pack("{s:s,s:s}", "op", "node.resume", "node",
					sim_node_arg(s, tok[1])->name));
	else if (!strcmp(c, "migrate"))
		cmd_migrate(s, tok, ntok);
	else if (!strcmp(c, "migrate-cancel"))
		sim_client_op(s, NULL,
			      json_pack("{s:s,s:s}", "op", "vm.migrate-cancel", "name",
					s->vms[sim_vm_arg(s, tok[1])].name));
	else if (!strcmp(c, "migrate-fail"))
		s->vms[sim_vm_arg(s, tok[1])].fail_migrations = sim_opt_count(s, tok, ntok);
	else if (!strcmp(c, "shutdown"))
		cmd_shutdown(s, tok, ntok);
	else
		return false;
	return true;
}

bool sim_set_maint(struct sim *s, const char *key, const char *value)
{
	static const char *const drains[] = { "drain-low", "drain-medium", "drain-high" };
	struct cluster_settings *cs = state_settings_mut(s->st);

	for (size_t i = 0; i < 3; i++) {
		if (strcmp(key, drains[i]))
			continue;
		if (drain_policy_parse(value, &cs->drain[i]))
			sim_script_error(s, "set %s live|quick|stop, not '%s'", key, value);
		return true;
	}
	if (!strcmp(key, "migrate-ms")) {
		s->migrate_ms = sim_num_arg(s, value);
	} else if (!strcmp(key, "migrate-max-per-node")) {
		cs->mig_max_per_node = (unsigned int)sim_num_arg(s, value);
	} else if (!strcmp(key, "migrate-timeout-s")) {
		cs->mig_timeout_s = (unsigned int)sim_num_arg(s, value);
	} else if (!strcmp(key, "clock-ms")) {
		/* the virtual clock's start: the time of day failback windows see (UTC) */
		if (s->stepped || sim_num_arg(s, value) % STEP_MS)
			sim_script_error(s, "set clock-ms: before the first step, a multiple of %d",
					 STEP_MS);
		s->now = sim_num_arg(s, value);
	} else {
		return false;
	}
	return true;
}

/* --- script: expectations -------------------------------------------------------------- */

static void join_words(char **tok, int from, int ntok, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = from; i < ntok && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i > from ? " " : "",
					 tok[i]);
}

/* expect node NODE maintenance|active|migrations-peak N */
static bool expect_node(struct sim *s, char **tok, int ntok)
{
	const struct node_info *ni;
	struct simnode *n;
	uint64_t want;
	bool maint;

	if (ntok < 4 ||
	    (strcmp(tok[3], "maintenance") && strcmp(tok[3], "active") &&
	     strcmp(tok[3], "migrations-peak")))
		return false;
	n = sim_node_arg(s, tok[2]);
	ni = state_node_find(s->st, n->id);
	if (!strcmp(tok[3], "migrations-peak")) {
		if (ntok != 5)
			sim_script_error(s, "expect node NODE migrations-peak N");
		want = sim_num_arg(s, tok[4]);
		if (n->mig_peak == want)
			sim_verdict(s, true, "node %s: at most %" PRIu64 " migrations in flight at once",
				    n->name, want);
		else
			sim_verdict(s, false, "node %s: at most %" PRIu64 " migrations in flight at "
					      "once, but it had %u",
				    n->name, want, n->mig_peak);
		return true;
	}
	if (ntok != 4)
		sim_script_error(s, "expect node NODE maintenance|active");
	maint = ni && ni->maintenance;
	sim_verdict(s, ni && maint == !strcmp(tok[3], "maintenance"), "node %s %s%s", n->name,
		    tok[3],
		    !ni ? ", but it is unknown" : maint == !strcmp(tok[3], "maintenance") ? ""
		    : maint ? ", but it is in maintenance" : ", but it is active");
	return true;
}

static bool node_is(struct sim *s, uint32_t id, const char *name)
{
	return !strcmp(sim_id_name(s, id), name);
}

/* expect VM migrated MODE FROM TO | VM migration RESULT MODE FROM TO [TEXT...] */
static void expect_mig_last(struct sim *s, char **tok, int ntok)
{
	const struct vm_status *st = state_vm_status(s->st, tok[1]);
	const struct vm_mig_last *l = st ? &st->mig_last : NULL;
	bool done = !strcmp(tok[2], "migrated");
	int at = done ? 3 : 4;
	const char *result = done ? "completed" : tok[3];
	char text[512] = "", actual[STATE_REASON_MAX + 128];
	bool ok;

	if (ntok < at + 3 || (done && ntok != at + 3))
		sim_script_error(s,
				 "expect VM migrated MODE FROM TO | "
				 "VM migration RESULT MODE FROM TO [TEXT...]");
	join_words(tok, at + 3, ntok, text, sizeof(text));
	ok = l && l->id && !strcmp(mig_result_name(l->result), result) &&
	     !strcmp(mig_mode_name(l->mode), tok[at]) && node_is(s, l->from, tok[at + 1]) &&
	     node_is(s, l->to, tok[at + 2]) && strstr(l->reason, text);
	if (l && l->id)
		snprintf(actual, sizeof(actual), "%s %s %s -> %s: %s", mig_result_name(l->result),
			 mig_mode_name(l->mode), sim_id_name(s, l->from), sim_id_name(s, l->to),
			 l->reason[0] ? l->reason : "(no reason)");
	else
		snprintf(actual, sizeof(actual), "none ended yet");
	sim_verdict(s, ok, "%s: last migration %s %s %s -> %s%s%s%s%s%s", tok[1], result, tok[at],
		    tok[at + 1], tok[at + 2], text[0] ? " ('" : "", text, text[0] ? "')" : "",
		    ok ? "" : ", but it is ", ok ? "" : actual);
}

/* expect VM migrating MODE FROM TO: in flight (queued, running or handed off) */
static void expect_migrating(struct sim *s, char **tok, int ntok)
{
	const struct vm_status *st = state_vm_status(s->st, tok[1]);
	const struct vm_migration *m = st ? &st->mig : NULL;
	bool ok;

	if (ntok != 6)
		sim_script_error(s, "expect VM migrating MODE FROM TO");
	ok = m && m->id && !strcmp(mig_mode_name(m->mode), tok[3]) && node_is(s, m->from, tok[4]) &&
	     node_is(s, m->to, tok[5]);
	if (ok || !m || !m->id)
		sim_verdict(s, ok, "%s migrating %s %s -> %s%s", tok[1], tok[3], tok[4], tok[5],
			    ok ? "" : ", but no migration is in flight");
	else
		sim_verdict(s, false, "%s migrating %s %s -> %s, but it is %s %s -> %s (%s)",
			    tok[1], tok[3], tok[4], tok[5], mig_mode_name(m->mode),
			    sim_id_name(s, m->from), sim_id_name(s, m->to),
			    mig_phase_name(m->phase));
}

bool sim_expect_maint(struct sim *s, char **tok, int ntok)
{
	const struct vm_status *st;
	char text[512];
	bool ok;

	if (ntok >= 2 && !strcmp(tok[1], "node"))
		return expect_node(s, tok, ntok);
	if (ntok < 3)
		return false;
	if (!strcmp(tok[2], "migrated") || !strcmp(tok[2], "migration")) {
		sim_vm_arg(s, tok[1]);
		expect_mig_last(s, tok, ntok);
	} else if (!strcmp(tok[2], "migrating")) {
		sim_vm_arg(s, tok[1]);
		expect_migrating(s, tok, ntok);
	} else if (!strcmp(tok[2], "held")) {
		sim_vm_arg(s, tok[1]);
		st = state_vm_status(s->st, tok[1]);
		join_words(tok, 3, ntok, text, sizeof(text));
		if (!text[0])
			sim_script_error(s, "expect VM held TEXT... | VM held none");
		if (!strcmp(text, "none"))
			ok = st && !st->held[0];
		else
			ok = st && st->held[0] && strstr(st->held, text);
		sim_verdict(s, ok, "%s held: '%s'%s%s", tok[1], text, ok ? "" : "; it is: ",
			    ok ? "" : !st ? "(no such vm)" : st->held[0] ? st->held : "(not held)");
	} else if (!strcmp(tok[2], "home")) {
		sim_vm_arg(s, tok[1]);
		st = state_vm_status(s->st, tok[1]);
		if (ntok != 4)
			sim_script_error(s, "expect VM home NODE|none");
		ok = st && node_is(s, st->home, tok[3]);
		sim_verdict(s, ok, "%s home %s%s%s", tok[1], tok[3], ok ? "" : ", but it is ",
			    ok ? "" : st ? sim_id_name(s, st->home) : "(no such vm)");
	} else {
		return false;
	}
	return true;
}

/* --- show ------------------------------------------------------------------------------ */

void sim_show_node_maint(struct sim *s, const struct node_info *n, char *buf, size_t len)
{
	static const char *const by[] = { "admin", "its shutdown", "its shutdown, it left" };

	if (!n->maintenance) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, len, ", maintenance (%s%s)",
		 by[n->maint_auto <= MAINT_NODE_LEFT ? n->maint_auto : 0],
		 n->drain_force ? ", force" : "");
}

void sim_show_vm_maint(struct sim *s, const struct vm_status *st, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	if (st->mig.id && used < len)
		used += (size_t)snprintf(buf + used, len - used,
					 "; migration %" PRIu64 " %s %s -> %s (%s%s)", st->mig.id,
					 mig_mode_name(st->mig.mode), sim_id_name(s, st->mig.from),
					 sim_id_name(s, st->mig.to), mig_phase_name(st->mig.phase),
					 st->mig.cancel ? ", cancel asked" : "");
	if (st->held[0] && used < len)
		used += (size_t)snprintf(buf + used, len - used, "; held: %s", st->held);
	if (st->home && used < len)
		used += (size_t)snprintf(buf + used, len - used, "; home %s",
					 sim_id_name(s, st->home));
	if (st->frozen && used < len)
		snprintf(buf + used, len - used, "; frozen");
}
