/*
 * Migrations in the cluster state: names, the strict (de)serialization of a
 * VM's migration in flight and of its last result, and the JSON hvctl shows.
 */
#include "migstate.h"

#include <errno.h>
#include <string.h>

#include "jsonv.h"

static const char *const mode_names[] = { "live", "quick", "save" };
static const char *const phase_names[] = { "none", "queued", "running", "handoff" };
static const char *const result_names[] = { "none", "completed", "failed", "cancelled" };
static const char *const cause_names[] = { "admin", "drain", "failback" };
static const char *const policy_names[] = { "live", "quick", "stop" };

static int name_index(const char *s, const char *const *names, unsigned int n)
{
	for (unsigned int i = 0; s && i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -EINVAL;
}

const char *mig_cause_name(enum mig_cause c)
{
	return (unsigned)c < 3 ? cause_names[c] : "?";
}

int mig_cause_parse(const char *s, enum mig_cause *c)
{
	int i = name_index(s, cause_names, 3);

	if (i < 0)
		return i;
	*c = (enum mig_cause)i;
	return 0;
}

const char *drain_policy_name(enum drain_policy p)
{
	return (unsigned)p < 3 ? policy_names[p] : "?";
}

int drain_policy_parse(const char *s, enum drain_policy *p)
{
	int i = name_index(s, policy_names, 3);

	if (i < 0)
		return i;
	*p = (enum drain_policy)i;
	return 0;
}

const char *mig_mode_name(enum mig_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}

int mig_mode_parse(const char *s, enum mig_mode *m)
{
	for (unsigned int i = 0; s && i < 3; i++)
		if (!strcmp(s, mode_names[i])) {
			*m = (enum mig_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *mig_phase_name(enum mig_phase p)
{
	return (unsigned)p < 4 ? phase_names[p] : "?";
}

static int phase_parse(const char *s, enum mig_phase *p)
{
	for (unsigned int i = 0; s && i < 4; i++)
		if (!strcmp(s, phase_names[i])) {
			*p = (enum mig_phase)i;
			return 0;
		}
	return -EINVAL;
}

const char *mig_result_name(enum mig_result r)
{
	return (unsigned)r < 4 ? result_names[r] : "?";
}

static int result_parse(const char *s, enum mig_result *r)
{
	for (unsigned int i = 0; s && i < 4; i++)
		if (!strcmp(s, result_names[i])) {
			*r = (enum mig_result)i;
			return 0;
		}
	return -EINVAL;
}

unsigned int state_migrations_on(const cluster_state_t *s, uint32_t id)
{
	unsigned int n = 0;

	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_migration *m = &state_vm_status(s, state_vm_at(s, i)->name)->mig;

		if ((m->phase == MIG_RUNNING || m->phase == MIG_HANDOFF) && (m->from == id || m->to == id))
			n++;
	}
	return n;
}

/* --- progress -------------------------------------------------------------------- */

json_t *mig_progress_to_json(const struct mig_progress *p)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "elapsed_ms",
			 (json_int_t)p->elapsed_ms, "raw_bytes", (json_int_t)p->raw_bytes,
			 "wire_bytes", (json_int_t)p->wire_bytes, "rate_bps", (json_int_t)p->rate_bps,
			 "remaining_bytes", (json_int_t)p->remaining_bytes, "dirty_rate_pps",
			 (json_int_t)p->dirty_rate_pps, "iteration", (json_int_t)p->iteration,
			 "downtime_ms", (json_int_t)p->downtime_ms, "qemu_status", p->qemu_status);
}

int mig_progress_from_json(const json_t *j, struct mig_progress *p, char *err, size_t errlen)
{
	static const char *const keys[] = { "elapsed_ms",      "raw_bytes",	 "wire_bytes",
					     "rate_bps",	"remaining_bytes", "dirty_rate_pps",
					     "iteration",	"downtime_ms",	   "qemu_status",
					     NULL };
	int rc;

	memset(p, 0, sizeof(*p));
	rc = jv_check_keys(j, keys, "progress", err, errlen);
	rc = rc ?: jv_u64(j, "elapsed_ms", &p->elapsed_ms, err, errlen);
	rc = rc ?: jv_u64(j, "raw_bytes", &p->raw_bytes, err, errlen);
	rc = rc ?: jv_u64(j, "wire_bytes", &p->wire_bytes, err, errlen);
	rc = rc ?: jv_u64(j, "rate_bps", &p->rate_bps, err, errlen);
	rc = rc ?: jv_u64(j, "remaining_bytes", &p->remaining_bytes, err, errlen);
	rc = rc ?: jv_u64(j, "dirty_rate_pps", &p->dirty_rate_pps, err, errlen);
	rc = rc ?: jv_u64(j, "iteration", &p->iteration, err, errlen);
	rc = rc ?: jv_u64(j, "downtime_ms", &p->downtime_ms, err, errlen);
	rc = rc ?: jv_str(j, "qemu_status", p->qemu_status, sizeof(p->qemu_status), err, errlen);
	return rc;
}

/* --- as stored: node ids -------------------------------------------------------------- */

json_t *mig_status_to_json(const struct vm_migration *m)
{
	return json_pack("{s:I,s:s,s:s,s:I,s:I,s:b,s:I,s:I,s:s,s:o,s:s}", "id", (json_int_t)m->id,
			 "mode", mig_mode_name(m->mode), "phase", mig_phase_name(m->phase), "from",
			 (json_int_t)m->from, "to", (json_int_t)m->to, "cancel", m->cancel,
			 "asked_ms", (json_int_t)m->asked_ms, "started_ms", (json_int_t)m->started_ms,
			 "cause", mig_cause_name(m->cause), "progress",
			 mig_progress_to_json(&m->progress), "cancel_why", m->cancel_why);
}

int mig_status_from_json(const json_t *j, struct vm_migration *m, char *err, size_t errlen)
{
	static const char *const keys[] = { "id",     "mode",	  "phase",    "from",
					     "to",     "cancel", "asked_ms", "started_ms",
					     "progress", "cause", "cancel_why", NULL };
	const json_t *cj = json_object_get(j, "cause"), *p;
	const char *cause = cj ? json_string_value(cj) : "admin";
	int rc;

	memset(m, 0, sizeof(*m));
	rc = jv_check_keys(j, keys, "mig", err, errlen);
	rc = rc ?: jv_u64(j, "id", &m->id, err, errlen);
	rc = rc ?: jv_u32(j, "from", &m->from, err, errlen);
	rc = rc ?: jv_u32(j, "to", &m->to, err, errlen);
	rc = rc ?: jv_bool(j, "cancel", &m->cancel, err, errlen);
	rc = rc ?: jv_u64(j, "asked_ms", &m->asked_ms, err, errlen);
	rc = rc ?: jv_u64(j, "started_ms", &m->started_ms, err, errlen);
	rc = rc ?: jv_str(j, "cancel_why", m->cancel_why, sizeof(m->cancel_why), err, errlen);
	if (rc)
		return rc;
	if (mig_mode_parse(json_string_value(json_object_get(j, "mode")), &m->mode) ||
	    phase_parse(json_string_value(json_object_get(j, "phase")), &m->phase) ||
	    mig_cause_parse(cause, &m->cause))
		return jv_fail(err, errlen, "mig: mode, phase or cause unknown");
	if ((m->phase == MIG_NONE) != (m->id == 0))
		return jv_fail(err, errlen, "mig: an id without a phase, or a phase without an id");
	p = json_object_get(j, "progress");
	return p ? mig_progress_from_json(p, &m->progress, err, errlen) : 0;
}

json_t *mig_last_status_to_json(const struct vm_mig_last *l)
{
	return json_pack("{s:I,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:o}", "id", (json_int_t)l->id, "mode",
			 mig_mode_name(l->mode), "result", mig_result_name(l->result), "from",
			 (json_int_t)l->from, "to", (json_int_t)l->to, "total_ms",
			 (json_int_t)l->total_ms, "reason", l->reason, "cause",
			 mig_cause_name(l->cause), "progress", mig_progress_to_json(&l->progress));
}

int mig_last_status_from_json(const json_t *j, struct vm_mig_last *l, char *err, size_t errlen)
{
	static const char *const keys[] = { "id", "mode",     "result", "from",	   "to",
					     "total_ms", "reason", "progress", "cause", NULL };
	const json_t *cj = json_object_get(j, "cause"), *p;
	const char *cause = cj ? json_string_value(cj) : "admin";
	int rc;

	memset(l, 0, sizeof(*l));
	rc = jv_check_keys(j, keys, "mig_last", err, errlen);
	rc = rc ?: jv_u64(j, "id", &l->id, err, errlen);
	rc = rc ?: jv_u32(j, "from", &l->from, err, errlen);
	rc = rc ?: jv_u32(j, "to", &l->to, err, errlen);
	rc = rc ?: jv_u64(j, "total_ms", &l->total_ms, err, errlen);
	rc = rc ?: jv_str(j, "reason", l->reason, sizeof(l->reason), err, errlen);
	if (rc)
		return rc;
	if (mig_mode_parse(json_string_value(json_object_get(j, "mode")), &l->mode) ||
	    result_parse(json_string_value(json_object_get(j, "result")), &l->result) ||
	    mig_cause_parse(cause, &l->cause))
		return jv_fail(err, errlen, "mig_last: mode, result or cause unknown");
	p = json_object_get(j, "progress");
	return p ? mig_progress_from_json(p, &l->progress, err, errlen) : 0;
}

/* --- as hvctl shows them: node names ----------------------------------------------------- */

static json_t *node_name(const cluster_state_t *s, uint32_t id)
{
	const struct node_info *n = state_node_find(s, id);

	return n ? json_string(n->name) : json_null();
}

json_t *mig_to_json(const cluster_state_t *s, const struct vm_migration *m)
{
	json_t *j = json_pack("{s:I,s:s,s:s,s:o,s:o,s:b,s:s}", "id", (json_int_t)m->id, "mode",
			      mig_mode_name(m->mode), "phase", mig_phase_name(m->phase), "from",
			      node_name(s, m->from), "to", node_name(s, m->to), "cancel", m->cancel,
			      "cause", mig_cause_name(m->cause));

	if (j && m->phase != MIG_QUEUED)
		json_object_set_new(j, "progress", mig_progress_to_json(&m->progress));
	return j;
}

json_t *mig_last_to_json(const cluster_state_t *s, const struct vm_mig_last *l)
{
	const struct mig_progress *p = &l->progress;

	return json_pack("{s:I,s:s,s:s,s:o,s:o,s:s,s:I,s:I,s:I,s:I,s:s}", "id", (json_int_t)l->id,
			 "mode", mig_mode_name(l->mode), "result", mig_result_name(l->result),
			 "from", node_name(s, l->from), "to", node_name(s, l->to), "reason",
			 l->reason, "total_ms", (json_int_t)l->total_ms, "downtime_ms",
			 (json_int_t)p->downtime_ms, "raw_bytes", (json_int_t)p->raw_bytes,
			 "wire_bytes", (json_int_t)p->wire_bytes, "cause", mig_cause_name(l->cause));
}
