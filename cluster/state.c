#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "migstate.h"

struct vm_entry {
	struct vm_def def;
	struct vm_status st;
};

struct cluster_state {
	uint64_t version;
	struct vm_entry *vms;
	size_t nvms;
	size_t cap;
	struct node_info nodes[STATE_MAX_NODES];
	size_t nnodes;
	struct rule *rules;
	size_t nrules;
	size_t rcap;
	struct cluster_settings settings;
	fence_conf_t *fencing;
	struct acl_binding acl[ACL_MAX];
	size_t nacl;
	struct fence_record fences[STATE_FENCE_HISTORY];
	size_t nfences; /* ring: the newest at (first + n - 1) */
	size_t first_fence;
};

static const struct cluster_settings default_settings = {
	.cpu_overcommit_pct = 400,
	.mem_overcommit_pct = 100,
	.restart_max = 3,
	.restart_window_s = 300,
	.mig_max_per_node = 2,
	.mig_downtime_ms = 300,
	.mig_bandwidth_mbps = 0,
	.mig_compress = true,
	.mig_threads = 1,
	.mig_timeout_s = 600,
	.drain = { DRAIN_QUICK, DRAIN_LIVE, DRAIN_LIVE }, /* low, medium, high: as Hyper-V */
};

cluster_state_t *state_create(void)
{
	cluster_state_t *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->settings = default_settings;
	s->fencing = fence_conf_create();
	if (!s->fencing) {
		free(s);
		return NULL;
	}
	return s;
}

void state_destroy(cluster_state_t *s)
{
	if (!s)
		return;
	free(s->vms);
	free(s->rules);
	fence_conf_destroy(s->fencing);
	free(s);
}

cluster_state_t *state_dup(const cluster_state_t *s)
{
	cluster_state_t *d = malloc(sizeof(*d));

	if (!d)
		return NULL;
	*d = *s;
	d->vms = malloc((s->cap ? s->cap : 1) * sizeof(*d->vms));
	d->rules = malloc((s->rcap ? s->rcap : 1) * sizeof(*d->rules));
	d->fencing = fence_conf_dup(s->fencing);
	if (!d->vms || !d->rules || !d->fencing) {
		free(d->vms);
		free(d->rules);
		fence_conf_destroy(d->fencing);
		free(d);
		return NULL;
	}
	memcpy(d->vms, s->vms, s->nvms * sizeof(*d->vms));
	memcpy(d->rules, s->rules, s->nrules * sizeof(*d->rules));
	return d;
}

uint64_t state_version(const cluster_state_t *s)
{
	return s->version;
}

void state_bump(cluster_state_t *s)
{
	s->version++;
}

/* --- VMs -------------------------------------------------------------------- */

static struct vm_entry *vm_entry(const cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nvms; i++)
		if (!strcmp(s->vms[i].def.name, name))
			return &s->vms[i];
	return NULL;
}

const struct vm_def *state_vm_find(const cluster_state_t *s, const char *name)
{
	struct vm_entry *e = vm_entry(s, name);

	return e ? &e->def : NULL;
}

size_t state_vm_count(const cluster_state_t *s)
{
	return s->nvms;
}

const struct vm_def *state_vm_at(const cluster_state_t *s, size_t i)
{
	return i < s->nvms ? &s->vms[i].def : NULL;
}

const struct vm_status *state_vm_status(const cluster_state_t *s, const char *name)
{
	struct vm_entry *e = vm_entry(s, name);

	return e ? &e->st : NULL;
}

struct vm_status *state_vm_status_mut(cluster_state_t *s, const char *name)
{
	struct vm_entry *e = vm_entry(s, name);

	return e ? &e->st : NULL;
}

/* Adds without bumping the version; used by add and by load. */
static int vm_insert(cluster_state_t *s, const struct vm_def *def, const struct vm_status *st,
		     char *err, size_t errlen)
{
	/*
	 * A definition without its identity would be written with an empty uuid or
	 * MAC, which the state file loader refuses: the state could not be read back.
	 */
	if (!def->uuid[0]) {
		snprintf(err, errlen, "vm %s: uuid missing", def->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < def->nnics; i++) {
		if (!def->nics[i].mac[0]) {
			snprintf(err, errlen, "vm %s: nics[%zu]: mac missing", def->name, i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < s->nvms; i++) {
		if (!strcmp(s->vms[i].def.name, def->name)) {
			snprintf(err, errlen, "vm %s already exists", def->name);
			return -EEXIST;
		}
		if (def->uuid[0] && !strcmp(s->vms[i].def.uuid, def->uuid)) {
			snprintf(err, errlen, "vm %s: uuid %s is already used by vm %s", def->name,
				 def->uuid, s->vms[i].def.name);
			return -EEXIST;
		}
	}
	if (s->nvms == STATE_MAX_VMS) {
		snprintf(err, errlen, "vm %s: the cluster already holds %d VMs", def->name,
			 STATE_MAX_VMS);
		return -ENOSPC;
	}
	if (s->nvms == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct vm_entry *v = realloc(s->vms, cap * sizeof(*v));

		if (!v) {
			snprintf(err, errlen, "vm %s: out of memory", def->name);
			return -ENOMEM;
		}
		s->vms = v;
		s->cap = cap;
	}
	s->vms[s->nvms].def = *def;
	if (st)
		s->vms[s->nvms].st = *st;
	else
		memset(&s->vms[s->nvms].st, 0, sizeof(struct vm_status));
	s->nvms++;
	return 0;
}

int state_vm_add(cluster_state_t *s, const struct vm_def *def, char *err, size_t errlen)
{
	int rc = vm_insert(s, def, NULL, err, errlen);

	if (!rc)
		s->version++;
	return rc;
}

int state_vm_del(cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nvms; i++) {
		if (strcmp(s->vms[i].def.name, name))
			continue;
		memmove(&s->vms[i], &s->vms[i + 1], (s->nvms - i - 1) * sizeof(s->vms[0]));
		s->nvms--;
		s->version++;
		return 0;
	}
	return -ENOENT;
}

/* --- nodes ------------------------------------------------------------------ */

size_t state_node_count(const cluster_state_t *s)
{
	return s->nnodes;
}

const struct node_info *state_node_at(const cluster_state_t *s, size_t i)
{
	return i < s->nnodes ? &s->nodes[i] : NULL;
}

const struct node_info *state_node_find(const cluster_state_t *s, uint32_t id)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i].id == id)
			return &s->nodes[i];
	return NULL;
}

const struct node_info *state_node_by_name(const cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (!strcmp(s->nodes[i].name, name))
			return &s->nodes[i];
	return NULL;
}

struct node_info *state_node_mut(cluster_state_t *s, uint32_t id)
{
	return (struct node_info *)state_node_find(s, id);
}

/* Kept sorted by id: every node lists them alike. */
struct node_info *state_node_upsert(cluster_state_t *s, uint32_t id)
{
	size_t i;

	for (i = 0; i < s->nnodes && s->nodes[i].id < id; i++)
		;
	if (i < s->nnodes && s->nodes[i].id == id)
		return &s->nodes[i];
	if (s->nnodes == STATE_MAX_NODES || id == 0)
		return NULL;
	memmove(&s->nodes[i + 1], &s->nodes[i], (s->nnodes - i) * sizeof(s->nodes[0]));
	s->nnodes++;
	memset(&s->nodes[i], 0, sizeof(s->nodes[i]));
	s->nodes[i].id = id;
	s->nodes[i].status = NODE_JOINING;
	snprintf(s->nodes[i].name, sizeof(s->nodes[i].name), "node%u", id);
	return &s->nodes[i];
}

/* --- rules ------------------------------------------------------------------ */

size_t state_rule_count(const cluster_state_t *s)
{
	return s->nrules;
}

const struct rule *state_rule_at(const cluster_state_t *s, size_t i)
{
	return i < s->nrules ? &s->rules[i] : NULL;
}

const struct rule *state_rule_find(const cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nrules; i++)
		if (!strcmp(s->rules[i].name, name))
			return &s->rules[i];
	return NULL;
}

static int rule_insert(cluster_state_t *s, const struct rule *r, char *err, size_t errlen)
{
	if (state_rule_find(s, r->name)) {
		snprintf(err, errlen, "rule %s already exists", r->name);
		return -EEXIST;
	}
	if (s->nrules == STATE_MAX_RULES) {
		snprintf(err, errlen, "rule %s: the cluster already holds %d rules", r->name,
			 STATE_MAX_RULES);
		return -ENOSPC;
	}
	if (s->nrules == s->rcap) {
		size_t cap = s->rcap ? s->rcap * 2 : 8;
		struct rule *v = realloc(s->rules, cap * sizeof(*v));

		if (!v) {
			snprintf(err, errlen, "rule %s: out of memory", r->name);
			return -ENOMEM;
		}
		s->rules = v;
		s->rcap = cap;
	}
	s->rules[s->nrules++] = *r;
	return 0;
}

int state_rule_add(cluster_state_t *s, const struct rule *r, char *err, size_t errlen)
{
	int rc = rule_insert(s, r, err, errlen);

	if (!rc)
		s->version++;
	return rc;
}

int state_rule_del(cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nrules; i++) {
		if (strcmp(s->rules[i].name, name))
			continue;
		memmove(&s->rules[i], &s->rules[i + 1], (s->nrules - i - 1) * sizeof(s->rules[0]));
		s->nrules--;
		s->version++;
		return 0;
	}
	return -ENOENT;
}

/* --- settings and fence history ------------------------------------------------ */

size_t state_acl_count(const cluster_state_t *s)
{
	return s->nacl;
}

const struct acl_binding *state_acl(const cluster_state_t *s)
{
	return s->acl;
}

int state_acl_add(cluster_state_t *s, const struct acl_binding *b, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->nacl; i++)
		if (!strcmp(s->acl[i].name, b->name)) {
			snprintf(err, errlen, "binding %s already exists", b->name);
			return -EEXIST;
		}
	if (s->nacl == ACL_MAX) {
		snprintf(err, errlen, "binding %s: already %d bindings", b->name, ACL_MAX);
		return -ENOSPC;
	}
	s->acl[s->nacl++] = *b;
	return 0;
}

int state_acl_del(cluster_state_t *s, const char *name)
{
	for (size_t i = 0; i < s->nacl; i++) {
		if (strcmp(s->acl[i].name, name))
			continue;
		memmove(&s->acl[i], &s->acl[i + 1], (s->nacl - i - 1) * sizeof(s->acl[0]));
		s->nacl--;
		return 0;
	}
	return -ENOENT;
}

const fence_conf_t *state_fence_conf(const cluster_state_t *s)
{
	return s->fencing;
}

fence_conf_t *state_fence_conf_mut(cluster_state_t *s)
{
	return s->fencing;
}

const struct cluster_settings *state_settings(const cluster_state_t *s)
{
	return &s->settings;
}

struct cluster_settings *state_settings_mut(cluster_state_t *s)
{
	return &s->settings;
}

void state_fence_record(cluster_state_t *s, const struct fence_record *f)
{
	if (s->nfences < STATE_FENCE_HISTORY) {
		s->fences[(s->first_fence + s->nfences++) % STATE_FENCE_HISTORY] = *f;
		return;
	}
	s->fences[s->first_fence] = *f;
	s->first_fence = (s->first_fence + 1) % STATE_FENCE_HISTORY;
}

size_t state_fence_count(const cluster_state_t *s)
{
	return s->nfences;
}

const struct fence_record *state_fence_at(const cluster_state_t *s, size_t i)
{
	return i < s->nfences ? &s->fences[(s->first_fence + i) % STATE_FENCE_HISTORY] : NULL;
}

/* --- names ------------------------------------------------------------------ */

static const char *const ha_names[] = { "stopped",  "starting", "started", "stopping",
					"fence",    "recovery", "error" };
static const char *const maint_names[] = { "admin", "shutdown", "left" };
static const char *const node_names[] = { "joining", "online", "fence-pending", "fenced",
					   "offline" };
static const char *const event_names[] = { "none", "running", "stopped", "failed", "poweroff" };
static const char *const rule_names[] = { "anti-affinity", "affinity", "tier-separation" };

#define NAME_OF(tab, v) ((size_t)(v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : "?")

static int name_index(const char *const *tab, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(tab[i], s))
			return (int)i;
	return -EINVAL;
}

const char *vm_ha_state_name(enum vm_ha_state st)
{
	return NAME_OF(ha_names, st);
}

int vm_ha_state_parse(const char *s, enum vm_ha_state *st)
{
	int i = name_index(ha_names, sizeof(ha_names) / sizeof(ha_names[0]), s);

	if (i < 0)
		return i;
	*st = (enum vm_ha_state)i;
	return 0;
}

bool vm_holds_node(const struct vm_status *st)
{
	return st->node && (st->state == VM_HA_STARTING || st->state == VM_HA_STARTED ||
			    st->state == VM_HA_STOPPING);
}

bool state_node_takes_vms(const struct node_info *n)
{
	return n->status == NODE_ONLINE && n->ready && !n->maintenance && !n->leaving &&
	       n->mig_endpoint[0] && n->mig_key[0];
}

const char *node_status_name(enum node_status st)
{
	return NAME_OF(node_names, st);
}

int node_status_parse(const char *s, enum node_status *st)
{
	int i = name_index(node_names, sizeof(node_names) / sizeof(node_names[0]), s);

	if (i < 0)
		return i;
	*st = (enum node_status)i;
	return 0;
}

const char *vm_event_name(enum vm_event ev)
{
	return NAME_OF(event_names, ev);
}

int vm_event_parse(const char *s, enum vm_event *ev)
{
	int i = name_index(event_names, sizeof(event_names) / sizeof(event_names[0]), s);

	if (i < 0)
		return i;
	*ev = (enum vm_event)i;
	return 0;
}

const char *rule_type_name(enum rule_type t)
{
	return NAME_OF(rule_names, t);
}

int rule_type_parse(const char *s, enum rule_type *t)
{
	int i = name_index(rule_names, sizeof(rule_names) / sizeof(rule_names[0]), s);

	if (i < 0)
		return i;
	*t = (enum rule_type)i;
	return 0;
}

/* --- JSON --------------------------------------------------------------------- */

json_t *rule_to_json(const struct rule *r)
{
	json_t *j = json_pack("{s:s,s:s,s:b}", "name", r->name, "type", rule_type_name(r->type),
			      "hard", r->hard);
	json_t *vms;

	if (!j)
		return NULL;
	if (r->type == RULE_TIER_SEPARATION) {
		json_object_set_new(j, "app", json_string(r->app));
		return j;
	}
	vms = json_array();
	for (size_t i = 0; i < r->nvms; i++)
		json_array_append_new(vms, json_string(r->vms[i]));
	json_object_set_new(j, "vms", vms);
	if (r->type == RULE_ANTI_AFFINITY)
		json_object_set_new(j, "scope",
				    json_string(r->scope == RULE_SCOPE_DOMAIN ? "domain" : "node"));
	return j;
}

int rule_from_json(const json_t *j, struct rule *r, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "type", "hard", "scope", "vms", "app", NULL };
	const char *name, *type, *scope;
	json_t *vms, *v;
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = jv_check_keys(j, keys, "rule", err, errlen);
	if (rc)
		return rc;
	name = json_string_value(json_object_get(j, "name"));
	if (!name || !vm_name_is_valid(name))
		return jv_fail(err, errlen, "rule: name missing or not valid (1-64 of letters, digits, - _ .)");
	snprintf(r->name, sizeof(r->name), "%s", name);
	type = json_string_value(json_object_get(j, "type"));
	if (rule_type_parse(type, &r->type))
		return jv_fail(err, errlen,
			       "rule %s: type must be anti-affinity, affinity or tier-separation",
			       r->name);
	v = json_object_get(j, "hard");
	if (v && !json_is_boolean(v))
		return jv_fail(err, errlen, "rule %s: hard must be true or false", r->name);
	r->hard = v ? json_is_true(v) : true;
	scope = json_string_value(json_object_get(j, "scope"));
	if (json_object_get(j, "scope") && r->type != RULE_ANTI_AFFINITY)
		return jv_fail(err, errlen, "rule %s: scope applies to anti-affinity only", r->name);
	if (scope && !strcmp(scope, "domain"))
		r->scope = RULE_SCOPE_DOMAIN;
	else if (json_object_get(j, "scope") && (!scope || strcmp(scope, "node")))
		return jv_fail(err, errlen, "rule %s: scope must be node or domain", r->name);
	if (r->type == RULE_TIER_SEPARATION) {
		const char *app = json_string_value(json_object_get(j, "app"));

		if (json_object_get(j, "vms"))
			return jv_fail(err, errlen, "rule %s: tier-separation takes an app, not vms",
				       r->name);
		if (!app || !vm_name_is_valid(app))
			return jv_fail(err, errlen, "rule %s: app missing or not a valid name",
				       r->name);
		snprintf(r->app, sizeof(r->app), "%s", app);
		return 0;
	}
	if (json_object_get(j, "app"))
		return jv_fail(err, errlen, "rule %s: only tier-separation takes an app", r->name);
	vms = json_object_get(j, "vms");
	if (!json_is_array(vms) || json_array_size(vms) < 2)
		return jv_fail(err, errlen, "rule %s: vms must list at least 2 VMs", r->name);
	if (json_array_size(vms) > RULE_MAX_VMS)
		return jv_fail(err, errlen, "rule %s: at most %d VMs", r->name, RULE_MAX_VMS);
	json_array_foreach(vms, i, v) {
		const char *vn = json_string_value(v);

		if (!vn || !vm_name_is_valid(vn))
			return jv_fail(err, errlen, "rule %s: vms[%zu] is not a valid VM name",
				       r->name, i);
		for (size_t k = 0; k < r->nvms; k++)
			if (!strcmp(r->vms[k], vn))
				return jv_fail(err, errlen, "rule %s: vm %s named twice", r->name,
					       vn);
		snprintf(r->vms[r->nvms++], sizeof(r->vms[0]), "%s", vn);
	}
	return 0;
}

json_t *vm_status_to_json(const struct vm_status *st)
{
	json_t *j = json_pack("{s:b,s:s,s:I,s:I,s:b,s:I,s:I,s:I,s:s,s:s,s:I,s:I,s:s}", "want_running",
			 st->want_running, "state", vm_ha_state_name(st->state), "node",
			 (json_int_t)st->node, "epoch", (json_int_t)st->epoch, "takeover",
			 st->takeover, "restarts", (json_int_t)st->restarts, "window_ms",
			 (json_int_t)st->window_ms, "failed_node", (json_int_t)st->failed_node,
			 "reason", st->reason, "event", vm_event_name(st->event), "event_epoch",
			 (json_int_t)st->event_epoch, "event_node", (json_int_t)st->event_node,
			 "event_reason", st->event_reason);

	if (j && st->mig.id)
		json_object_set_new(j, "mig", mig_status_to_json(&st->mig));
	if (j && st->mig_last.id)
		json_object_set_new(j, "mig_last", mig_last_status_to_json(&st->mig_last));
	if (j && st->saved) {
		json_object_set_new(j, "saved", json_true());
		json_object_set_new(j, "saved_bytes", json_integer((json_int_t)st->saved_bytes));
	}
	if (j && st->home)
		json_object_set_new(j, "home", json_integer((json_int_t)st->home));
	if (j && st->frozen) {
		json_object_set_new(j, "frozen", json_true());
		json_object_set_new(j, "frozen_ms", json_integer((json_int_t)st->frozen_ms));
	}
	if (j && st->held[0])
		json_object_set_new(j, "held", json_string(st->held));
	return j;
}

static int vm_status_from_json(const json_t *j, struct vm_status *st, char *err, size_t errlen)
{
	static const char *const keys[] = { "want_running", "state",	   "node",
					     "epoch",	     "takeover",   "restarts",
					     "window_ms",    "failed_node", "reason",
					     "event",	     "event_epoch", "event_node",
					     "event_reason", "mig", "mig_last", "saved",
					     "saved_bytes", "home", "frozen", "frozen_ms", "held", NULL };
	const json_t *mig = json_object_get(j, "mig"), *last = json_object_get(j, "mig_last");
	const char *state, *event;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = jv_check_keys(j, keys, "status", err, errlen);
	if (rc)
		return rc;
	state = json_string_value(json_object_get(j, "state"));
	if (vm_ha_state_parse(state, &st->state))
		return jv_fail(err, errlen, "status: state '%.32s' unknown", state ? state : "");
	rc = jv_bool(j, "want_running", &st->want_running, err, errlen);
	rc = rc ?: jv_bool(j, "takeover", &st->takeover, err, errlen);
	rc = rc ?: jv_u32(j, "node", &st->node, err, errlen);
	rc = rc ?: jv_u64(j, "epoch", &st->epoch, err, errlen);
	rc = rc ?: jv_u32(j, "restarts", &st->restarts, err, errlen);
	rc = rc ?: jv_u64(j, "window_ms", &st->window_ms, err, errlen);
	rc = rc ?: jv_u32(j, "failed_node", &st->failed_node, err, errlen);
	rc = rc ?: jv_str(j, "reason", st->reason, sizeof(st->reason), err, errlen);
	rc = rc ?: jv_u64(j, "event_epoch", &st->event_epoch, err, errlen);
	rc = rc ?: jv_u32(j, "event_node", &st->event_node, err, errlen);
	rc = rc ?: jv_str(j, "event_reason", st->event_reason, sizeof(st->event_reason), err,
			  errlen);
	rc = rc ?: jv_bool(j, "saved", &st->saved, err, errlen);
	rc = rc ?: jv_u64(j, "saved_bytes", &st->saved_bytes, err, errlen);
	rc = rc ?: jv_u32(j, "home", &st->home, err, errlen);
	rc = rc ?: jv_bool(j, "frozen", &st->frozen, err, errlen);
	rc = rc ?: jv_u64(j, "frozen_ms", &st->frozen_ms, err, errlen);
	rc = rc ?: jv_str(j, "held", st->held, sizeof(st->held), err, errlen);
	if (rc)
		return rc;
	event = json_string_value(json_object_get(j, "event"));
	if (vm_event_parse(event ? event : "none", &st->event))
		return jv_fail(err, errlen, "status: event '%.32s' unknown", event);
	rc = mig ? mig_status_from_json(mig, &st->mig, err, errlen) : 0;
	return rc ?: last ? mig_last_status_from_json(last, &st->mig_last, err, errlen) : 0;
}

json_t *node_info_to_json(const struct node_info *n)
{
	json_t *j = json_pack("{s:I,s:s,s:I,s:I,s:s,s:s,s:b,s:s,s:b,s:I,s:I,s:I,s:s,s:s}", "id",
			 (json_int_t)n->id, "name", n->name, "vcpus", (json_int_t)n->vcpus, "memory",
			 (json_int_t)n->memory_mb, "domain", n->domain, "clearance",
			 vm_class_name(n->clearance), "maintenance", n->maintenance, "state",
			 node_status_name(n->status), "ready", n->ready, "fenced_ms",
			 (json_int_t)n->fenced_ms, "left_ms", (json_int_t)n->left_ms, "watchdog_s",
			 (json_int_t)n->watchdog_s, "mig_endpoint", n->mig_endpoint, "mig_key",
			 n->mig_key);

	if (j && n->leaving)
		json_object_set_new(j, "leaving", json_true());
	if (j && n->maintenance) {
		json_object_set_new(j, "drain_force", json_boolean(n->drain_force));
		json_object_set_new(j, "maint_auto", json_string(maint_names[n->maint_auto]));
		json_object_set_new(j, "drain_id", json_integer((json_int_t)n->drain_id));
	}
	return j;
}

static int node_info_from_json(const json_t *j, struct node_info *n, char *err, size_t errlen)
{
	static const char *const keys[] = { "id",	  "name",  "vcpus", "memory",
					     "domain",	  "clearance", "maintenance",
					     "state",	  "ready", "fenced_ms", "left_ms",
					     "watchdog_s", "mig_endpoint", "mig_key",
					     "drain_force", "maint_auto", "drain_id", "leaving", NULL };
	const char *str, *ma = json_string_value(json_object_get(j, "maint_auto"));
	int mi = 0;
	int rc;

	memset(n, 0, sizeof(*n));
	rc = jv_check_keys(j, keys, "node", err, errlen);
	rc = rc ?: jv_u32(j, "id", &n->id, err, errlen);
	if (rc)
		return rc;
	if (!n->id)
		return jv_fail(err, errlen, "node: id 0 is not a node");
	rc = jv_str(j, "name", n->name, sizeof(n->name), err, errlen);
	if (!rc && !vm_name_is_valid(n->name))
		return jv_fail(err, errlen, "node %u: name not valid", n->id);
	rc = rc ?: jv_uint(j, "vcpus", &n->vcpus, err, errlen);
	rc = rc ?: jv_u64(j, "memory", &n->memory_mb, err, errlen);
	rc = rc ?: jv_str(j, "domain", n->domain, sizeof(n->domain), err, errlen);
	rc = rc ?: jv_bool(j, "maintenance", &n->maintenance, err, errlen);
	rc = rc ?: jv_bool(j, "ready", &n->ready, err, errlen);
	rc = rc ?: jv_u64(j, "fenced_ms", &n->fenced_ms, err, errlen);
	rc = rc ?: jv_u64(j, "left_ms", &n->left_ms, err, errlen);
	rc = rc ?: jv_uint(j, "watchdog_s", &n->watchdog_s, err, errlen);
	rc = rc ?: jv_str(j, "mig_endpoint", n->mig_endpoint, sizeof(n->mig_endpoint), err, errlen);
	rc = rc ?: jv_str(j, "mig_key", n->mig_key, sizeof(n->mig_key), err, errlen);
	rc = rc ?: jv_bool(j, "drain_force", &n->drain_force, err, errlen);
	rc = rc ?: jv_bool(j, "leaving", &n->leaving, err, errlen);

	rc = rc ?: jv_u64(j, "drain_id", &n->drain_id, err, errlen);
	if (rc)
		return rc;
	if (json_object_get(j, "maint_auto")) {
		mi = ma ? name_index(maint_names, 3, ma) : -1;
		if (mi < 0)
			return jv_fail(err, errlen, "node %u: maint_auto must be admin, shutdown or left",
				       n->id);
	}
	n->maint_auto = (enum maint_auto)mi;
	str = json_string_value(json_object_get(j, "clearance"));
	if (vm_class_parse(str ? str : "public", &n->clearance))
		return jv_fail(err, errlen, "node %u: clearance unknown", n->id);
	str = json_string_value(json_object_get(j, "state"));
	if (node_status_parse(str, &n->status))
		return jv_fail(err, errlen, "node %u: state unknown", n->id);
	return 0;
}

static json_t *fence_to_json(const struct fence_record *f)
{
	return json_pack("{s:I,s:b,s:I,s:I,s:s}", "node", (json_int_t)f->node, "ok", f->ok, "at_ms",
			 (json_int_t)f->at_ms, "by", (json_int_t)f->by, "detail", f->detail);
}

static int fence_from_json(const json_t *j, struct fence_record *f, char *err, size_t errlen)
{
	static const char *const keys[] = { "node", "ok", "at_ms", "by", "detail", NULL };
	int rc;

	memset(f, 0, sizeof(*f));
	rc = jv_check_keys(j, keys, "fence", err, errlen);
	rc = rc ?: jv_u32(j, "node", &f->node, err, errlen);
	rc = rc ?: jv_bool(j, "ok", &f->ok, err, errlen);
	rc = rc ?: jv_u64(j, "at_ms", &f->at_ms, err, errlen);
	rc = rc ?: jv_u32(j, "by", &f->by, err, errlen);
	rc = rc ?: jv_str(j, "detail", f->detail, sizeof(f->detail), err, errlen);
	return rc;
}

json_t *settings_to_json(const struct cluster_settings *c)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:s,s:s,s:s}",
			 "cpu_overcommit_pct",
			 (json_int_t)c->cpu_overcommit_pct, "mem_overcommit_pct",
			 (json_int_t)c->mem_overcommit_pct, "restart_max", (json_int_t)c->restart_max,
			 "restart_window_s", (json_int_t)c->restart_window_s, "migrate_max_per_node",
			 (json_int_t)c->mig_max_per_node, "migrate_downtime_ms",
			 (json_int_t)c->mig_downtime_ms, "migrate_bandwidth_mbps",
			 (json_int_t)c->mig_bandwidth_mbps, "migrate_compress", c->mig_compress,
			 "migrate_threads", (json_int_t)c->mig_threads, "migrate_timeout_s",
			 (json_int_t)c->mig_timeout_s, "drain_low", drain_policy_name(c->drain[0]),
			 "drain_medium", drain_policy_name(c->drain[1]), "drain_high",
			 drain_policy_name(c->drain[2]));
}

int settings_from_json(const json_t *j, struct cluster_settings *c, char *err, size_t errlen)
{
	static const char *const keys[] = { "cpu_overcommit_pct", "mem_overcommit_pct",
					     "restart_max", "restart_window_s",
					     "migrate_max_per_node", "migrate_downtime_ms",
					     "migrate_bandwidth_mbps", "migrate_compress",
					     "migrate_threads", "migrate_timeout_s", "drain_low",
					     "drain_medium", "drain_high", NULL };
	static const char *const drain_keys[] = { "drain_low", "drain_medium", "drain_high" };
	int rc;

	rc = jv_check_keys(j, keys, "settings", err, errlen);
	rc = rc ?: jv_uint(j, "cpu_overcommit_pct", &c->cpu_overcommit_pct, err, errlen);
	rc = rc ?: jv_uint(j, "mem_overcommit_pct", &c->mem_overcommit_pct, err, errlen);
	rc = rc ?: jv_uint(j, "restart_max", &c->restart_max, err, errlen);
	rc = rc ?: jv_uint(j, "restart_window_s", &c->restart_window_s, err, errlen);
	rc = rc ?: jv_uint(j, "migrate_max_per_node", &c->mig_max_per_node, err, errlen);
	rc = rc ?: jv_uint(j, "migrate_downtime_ms", &c->mig_downtime_ms, err, errlen);
	rc = rc ?: jv_uint(j, "migrate_bandwidth_mbps", &c->mig_bandwidth_mbps, err, errlen);
	rc = rc ?: jv_bool(j, "migrate_compress", &c->mig_compress, err, errlen);
	rc = rc ?: jv_uint(j, "migrate_threads", &c->mig_threads, err, errlen);
	rc = rc ?: jv_uint(j, "migrate_timeout_s", &c->mig_timeout_s, err, errlen);
	if (rc)
		return rc;
	for (int i = 0; i < 3; i++) {
		const json_t *v = json_object_get(j, drain_keys[i]);

		if (v && drain_policy_parse(json_string_value(v), &c->drain[i]))
			return jv_fail(err, errlen, "settings: %s must be live, quick or stop",
				       drain_keys[i]);
	}
	if (c->mig_max_per_node < 1 || c->mig_max_per_node > 64 || c->mig_downtime_ms < 1 ||
	    c->mig_downtime_ms > 600000 || c->mig_bandwidth_mbps > 1000000 || c->mig_threads < 1 ||
	    c->mig_threads > 64 || c->mig_timeout_s < 5 || c->mig_timeout_s > 86400)
		return jv_fail(err, errlen,
			       "settings: migrate_max_per_node 1..64, migrate_downtime_ms 1..600000, "
			       "migrate_bandwidth_mbps 0..1000000, migrate_threads 1..64, "
			       "migrate_timeout_s 5..86400");
	if (c->cpu_overcommit_pct < 10 || c->cpu_overcommit_pct > 10000 ||
	    c->mem_overcommit_pct < 10 || c->mem_overcommit_pct > 1000)
		return jv_fail(err, errlen, "settings: overcommit out of range");
	return 0;
}

json_t *state_to_json(const cluster_state_t *s)
{
	json_t *vms = json_array(), *nodes = json_array(), *rules = json_array();
	json_t *fences = json_array();

	for (size_t i = 0; vms && i < s->nvms; i++) {
		json_t *v = vm_def_to_json(&s->vms[i].def);

		if (v)
			json_object_set_new(v, "status", vm_status_to_json(&s->vms[i].st));
		json_array_append_new(vms, v);
	}
	for (size_t i = 0; nodes && i < s->nnodes; i++)
		json_array_append_new(nodes, node_info_to_json(&s->nodes[i]));
	for (size_t i = 0; rules && i < s->nrules; i++)
		json_array_append_new(rules, rule_to_json(&s->rules[i]));
	for (size_t i = 0; fences && i < s->nfences; i++)
		json_array_append_new(fences, fence_to_json(state_fence_at(s, i)));
	json_t *acl = json_array();

	for (size_t i = 0; acl && i < s->nacl; i++)
		json_array_append_new(acl, acl_binding_to_json(&s->acl[i]));
	return json_pack("{s:i,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "format", STATE_FORMAT_VERSION,
			 "version", (json_int_t)s->version, "vms", vms, "nodes", nodes, "rules",
			 rules, "settings", settings_to_json(&s->settings), "fences", fences,
			 "fencing", fence_conf_to_json(s->fencing), "acl", acl);
}

static int load_vms(cluster_state_t *tmp, const json_t *vms, char *err, size_t errlen)
{
	struct vm_def def;
	struct vm_status st;
	char msg[400];
	json_t *v, *copy, *status;
	size_t i;
	int rc;

	json_array_foreach(vms, i, v) {
		memset(&st, 0, sizeof(st));
		status = json_object_get(v, "status");
		copy = json_deep_copy(v);
		if (!copy)
			return jv_fail(err, errlen, "state: out of memory");
		json_object_del(copy, "status");
		rc = vm_def_from_json(copy, &def, msg, sizeof(msg));
		json_decref(copy);
		if (!rc && !def.uuid[0]) {
			snprintf(msg, sizeof(msg), "uuid: missing");
			rc = -EINVAL;
		}
		if (!rc && status)
			rc = vm_status_from_json(status, &st, msg, sizeof(msg));
		if (!rc)
			rc = vm_insert(tmp, &def, &st, msg, sizeof(msg));
		if (rc) {
			snprintf(err, errlen, "state: vms[%zu]: %s", i, msg);
			return rc;
		}
	}
	return 0;
}

static int load_rest(cluster_state_t *tmp, const json_t *j, char *err, size_t errlen)
{
	json_t *nodes = json_object_get(j, "nodes"), *rules = json_object_get(j, "rules");
	json_t *fences = json_object_get(j, "fences"), *settings = json_object_get(j, "settings");
	struct fence_record f;
	struct node_info n;
	struct rule r;
	char msg[400];
	json_t *v;
	size_t i;
	int rc;

	if ((nodes && !json_is_array(nodes)) || (rules && !json_is_array(rules)) ||
	    (fences && !json_is_array(fences)))
		return jv_fail(err, errlen, "state: nodes, rules and fences must be arrays");
	json_array_foreach(nodes, i, v) {
		struct node_info *slot;

		rc = node_info_from_json(v, &n, msg, sizeof(msg));
		if (!rc && state_node_find(tmp, n.id))
			rc = jv_fail(msg, sizeof(msg), "node %u listed twice", n.id);
		slot = rc ? NULL : state_node_upsert(tmp, n.id);
		if (!rc && !slot)
			rc = jv_fail(msg, sizeof(msg), "more than %d nodes", STATE_MAX_NODES);
		if (rc)
			return jv_fail(err, errlen, "state: nodes[%zu]: %s", i, msg);
		*slot = n;
	}
	json_array_foreach(rules, i, v) {
		rc = rule_from_json(v, &r, msg, sizeof(msg));
		rc = rc ?: rule_insert(tmp, &r, msg, sizeof(msg));
		if (rc)
			return jv_fail(err, errlen, "state: rules[%zu]: %s", i, msg);
	}
	json_array_foreach(fences, i, v) {
		rc = fence_from_json(v, &f, msg, sizeof(msg));
		if (rc)
			return jv_fail(err, errlen, "state: fences[%zu]: %s", i, msg);
		state_fence_record(tmp, &f);
	}
	if (settings && settings_from_json(settings, &tmp->settings, msg, sizeof(msg)))
		return jv_fail(err, errlen, "state: %s", msg);
	if (json_object_get(j, "fencing") &&
	    fence_conf_from_json(tmp->fencing, json_object_get(j, "fencing"), msg, sizeof(msg)))
		return jv_fail(err, errlen, "state: %s", msg);
	json_array_foreach(json_object_get(j, "acl"), i, v) {
		struct acl_binding b;

		if (acl_binding_from_json(v, &b, msg, sizeof(msg)) ||
		    state_acl_add(tmp, &b, msg, sizeof(msg)))
			return jv_fail(err, errlen, "state: acl[%zu]: %s", i, msg);
	}
	return 0;
}

int state_from_json(cluster_state_t *s, const json_t *j, char *err, size_t errlen)
{
	static const char *const keys[] = { "format", "version", "vms",	   "nodes",
					     "rules",  "settings", "fences", "fencing",
					     "acl",    NULL };
	cluster_state_t *tmp;
	json_t *format, *version, *vms;
	int rc;

	if (!json_is_object(j))
		return jv_fail(err, errlen, "state is not a JSON object");
	rc = jv_check_keys(j, keys, "state", err, errlen);
	if (rc)
		return rc;
	format = json_object_get(j, "format");
	version = json_object_get(j, "version");
	vms = json_object_get(j, "vms");
	if (!json_is_integer(format) || json_integer_value(format) < 1 ||
	    json_integer_value(format) > STATE_FORMAT_VERSION) {
		if (json_is_integer(format))
			return jv_fail(err, errlen,
				       "state: format %" JSON_INTEGER_FORMAT
				       " is not supported (this build reads 1..%d)",
				       json_integer_value(format), STATE_FORMAT_VERSION);
		return jv_fail(err, errlen, "state: format missing");
	}
	if (!json_is_integer(version) || json_integer_value(version) < 0)
		return jv_fail(err, errlen, "state: version must be a non-negative integer");
	if (!json_is_array(vms))
		return jv_fail(err, errlen, "state: vms must be an array");
	tmp = state_create();
	if (!tmp)
		return jv_fail(err, errlen, "state: out of memory");
	rc = load_vms(tmp, vms, err, errlen);
	rc = rc ?: load_rest(tmp, j, err, errlen);
	if (rc) {
		state_destroy(tmp);
		return rc;
	}
	tmp->version = json_integer_value(version);
	free(s->vms);
	free(s->rules);
	fence_conf_destroy(s->fencing);
	*s = *tmp;
	free(tmp);
	return 0;
}
