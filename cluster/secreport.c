#include "secreport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rulecheck.h"

struct report {
	const cluster_state_t *s;
	json_t *findings;
	json_t *checks;
};

/* Add a finding of @check; returns it (borrowed) for more fields, NULL when out of memory. */
__attribute__((format(printf, 5, 6))) static json_t *
finding(struct report *r, const char *check, bool problem, const char *object, const char *fmt,
	...)
{
	char detail[1024];
	va_list ap;
	json_t *f;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_object_set_new(r->checks, check, json_string("findings"));
	f = json_pack("{s:s,s:s,s:s,s:s}", "check", check, "severity",
		      problem ? "problem" : "warning", "object", object, "detail", detail);
	if (f && json_array_append_new(r->findings, f))
		return NULL;
	return f;
}

/* The VM is on @node for the report: running, starting, stopping, or assigned and not yet gone. */
static bool vm_on(const struct vm_status *st, uint32_t node)
{
	return st->node == node;
}

int secreport_host_class(const cluster_state_t *s, uint32_t id, size_t *nvms)
{
	int effective = -1;

	*nvms = 0;
	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);

		if (!vm_on(state_vm_status(s, def->name), id))
			continue;
		(*nvms)++;
		if ((int)def->classification > effective)
			effective = (int)def->classification;
	}
	return effective;
}

static void check_clearance(struct report *r, const struct node_info *n)
{
	for (size_t i = 0; i < state_vm_count(r->s); i++) {
		const struct vm_def *def = state_vm_at(r->s, i);
		const struct vm_status *st = state_vm_status(r->s, def->name);
		json_t *f;

		if (!vm_on(st, n->id) || def->classification <= n->clearance)
			continue;
		f = finding(r, SECREPORT_CLEARANCE, true, def->name,
			    "classified %s, %s node %s, which is cleared for %s only",
			    vm_class_name(def->classification),
			    vm_holds_node(st) ? "runs on" : "assigned to", n->name,
			    vm_class_name(n->clearance));
		if (!f)
			continue;
		json_object_set_new(f, "vm", json_string(def->name));
		json_object_set_new(f, "classification",
				    json_string(vm_class_name(def->classification)));
		json_object_set_new(f, "node", json_string(n->name));
		json_object_set_new(f, "clearance", json_string(vm_class_name(n->clearance)));
	}
}

/* Checks 1 and 2: a host's clearance against its guests, and its effective classification. */
static json_t *hosts(struct report *r)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < state_node_count(r->s); i++) {
		const struct node_info *n = state_node_at(r->s, i);
		size_t nvms;
		int eff = secreport_host_class(r->s, n->id, &nvms);

		check_clearance(r, n);
		json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:I}", "name", n->name,
						   "clearance", vm_class_name(n->clearance),
						   "effective_classification",
						   eff < 0 ? json_null()
							   : json_string(vm_class_name(eff)),
						   "vms", (json_int_t)nvms));
	}
	return a;
}

static void check_owner(struct report *r)
{
	for (size_t i = 0; i < state_vm_count(r->s); i++) {
		const struct vm_def *def = state_vm_at(r->s, i);

		if (def->owner[0] && def->contact[0])
			continue;
		finding(r, SECREPORT_OWNER, false, def->name, "%s: nobody to notify about it",
			!def->owner[0] && !def->contact[0] ? "no owner and no contact"
			: !def->owner[0]		   ? "no owner"
							   : "no contact");
	}
}

static int check_rules(struct report *r)
{
	char how[512];

	for (size_t i = 0; i < state_rule_count(r->s); i++) {
		const struct rule *ru = state_rule_at(r->s, i);
		int rc;

		if (ru->type == RULE_AFFINITY)
			continue;
		rc = rule_broken_by(r->s, ru, how, sizeof(how));
		if (rc)
			return rc;
		if (how[0])
			finding(r, SECREPORT_RULES, ru->hard, ru->name, "%s %s broken: %s",
				ru->hard ? "hard" : "soft", rule_type_name(ru->type), how);
	}
	return 0;
}

static void check_corosync(struct report *r, const struct secreport_local *l)
{
	bool cipher = strcmp(l->crypto_cipher, "none"), hash = strcmp(l->crypto_hash, "none");

	if (l->crypto_rc) {
		finding(r, SECREPORT_COROSYNC, false, "corosync",
			"node %s cannot read corosync's crypto settings: %s", l->node,
			strerror(-l->crypto_rc));
		return;
	}
	if (cipher && hash)
		return;
	finding(r, SECREPORT_COROSYNC, true, "corosync",
		"crypto_cipher %s, crypto_hash %s (as node %s runs it): cluster messages travel %s; "
		"set crypto_cipher: aes256 and crypto_hash: sha256 in corosync.conf",
		l->crypto_cipher, l->crypto_hash, l->node,
		hash ? "in clear (authenticated, not encrypted)" : "in clear and unauthenticated");
}

static void check_migration_keys(struct report *r)
{
	for (size_t i = 0; i < state_node_count(r->s); i++) {
		const struct node_info *n = state_node_at(r->s, i);

		if (!n->mig_key[0])
			finding(r, SECREPORT_MIGKEYS, false, n->name,
				"publishes no CURVE migration key (%s): no migration to or from it "
				"can run (the migration channel is CURVE only)",
				node_status_name(n->status));
	}
}

/*
 * A VM's LUNs without a standing persistent reservation: its disks when it was created
 * with --no-fence-storage, and its state LUN (save/restore) always: that one is reserved
 * only while a save or restore uses it, and storage fencing does not cover it, yet it
 * holds the guest's memory as of its last save.
 */
static void check_storage(struct report *r)
{
	for (size_t i = 0; i < state_vm_count(r->s); i++) {
		const struct vm_def *def = state_vm_at(r->s, i);
		char urls[VM_MAX_DISKS * (VM_URL_MAX + 2)] = "", state[VM_URL_MAX + 160] = "";
		json_t *disks, *f;

		if (def->fence_storage && !def->state_lun[0])
			continue;
		if (def->state_lun[0])
			snprintf(state, sizeof(state),
				 "%sstate LUN %s is reserved only while a save or restore uses it, and storage fencing does not cover it",
				 def->fence_storage ? "its " : "; its ", def->state_lun);
		disks = json_array();
		for (size_t k = 0; !def->fence_storage && k < def->ndisks; k++) {
			size_t used = strlen(urls);

			snprintf(urls + used, sizeof(urls) - used, "%s%s", k ? ", " : "",
				 def->disks[k].url);
			json_array_append_new(disks, json_string(def->disks[k].url));
		}
		if (def->fence_storage)
			f = finding(r, SECREPORT_STORAGE, false, def->name, "%s", state);
		else
			f = finding(r, SECREPORT_STORAGE, false, def->name,
				    "created with --no-fence-storage: no persistent reservation "
				    "keeps a second host off %s; only power fencing protects them%s",
				    def->ndisks ? urls : "its disks", state);
		if (!f) {
			json_decref(disks);
			continue;
		}
		json_object_set_new(f, "disks", disks);
		if (def->state_lun[0])
			json_object_set_new(f, "state_lun", json_string(def->state_lun));
	}
}

/* The first VM on @node whose LUNs storage fencing cannot fence; NULL when none. */
static const char *nopr_vm_on(const cluster_state_t *s, uint32_t node)
{
	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);

		if (!def->fence_storage && vm_on(state_vm_status(s, def->name), node))
			return def->name;
	}
	return NULL;
}

/* Whether a fence of @lv can succeed: every device exists, and storage can fence this node. */
static bool level_usable(const fence_conf_t *fc, const struct fence_level *lv, const char *nopr)
{
	for (size_t k = 0; k < lv->ndevices; k++) {
		if (strcmp(lv->devices[k], FENCE_STORAGE) ? !fence_device_find(fc, lv->devices[k])
							  : nopr != NULL)
			return false;
	}
	return true;
}

/* What fence_run() does to @n when its levels fail: the watchdog, if it has one. */
static void watchdog_note(const struct node_info *n, char *buf, size_t len)
{
	if (n->watchdog_s)
		snprintf(buf, len, "; its watchdog (%u s) lets its VMs be recovered %u s after "
				   "it leaves",
			 n->watchdog_s, 2 * n->watchdog_s);
	else
		snprintf(buf, len, "; no watchdog either: its VMs stay down until an admin "
				   "confirms it is off");
}

static void check_fencing(struct report *r)
{
	const fence_conf_t *fc = state_fence_conf(r->s);
	const struct fence_level *lv[FENCE_LEVELS_MAX];
	char note[160];

	for (size_t i = 0; i < state_node_count(r->s); i++) {
		const struct node_info *n = state_node_at(r->s, i);
		size_t nlv = fence_levels_of(fc, n->id, lv, FENCE_LEVELS_MAX), usable = 0;
		const char *nopr = nopr_vm_on(r->s, n->id);

		watchdog_note(n, note, sizeof(note));
		if (!nlv && !nopr) {
			finding(r, SECREPORT_FENCING, false, n->name,
				"no level configured: storage fencing only (built-in), no power "
				"fence");
			continue;
		}
		if (!nlv) {
			finding(r, SECREPORT_FENCING, true, n->name,
				"no level configured: storage fencing only (built-in), which cannot "
				"fence it while vm %s (no persistent reservations) is on it%s",
				nopr, note);
			continue;
		}
		for (size_t k = 0; k < nlv; k++)
			usable += level_usable(fc, lv[k], nopr);
		if (!usable)
			finding(r, SECREPORT_FENCING, true, n->name,
				"none of its %zu levels can fence it (%s)%s", nlv,
				nopr ? "storage cannot while a VM without persistent reservations "
				       "is on it"
				     : "a device is missing",
				note);
	}
}

json_t *secreport_build(const cluster_state_t *s, const struct secreport_local *local)
{
	static const char *const order[] = { SECREPORT_CLEARANCE, SECREPORT_OWNER,
					     SECREPORT_RULES,	  SECREPORT_COROSYNC,
					     SECREPORT_MIGKEYS,	  SECREPORT_STORAGE,
					     SECREPORT_FENCING };
	struct report r = { .s = s, .findings = json_array(), .checks = json_object() };
	json_t *res = NULL, *h;

	if (!r.findings || !r.checks)
		goto err;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		json_object_set_new(r.checks, order[i], json_string("ok"));
	h = hosts(&r);
	check_owner(&r);
	if (check_rules(&r)) {
		json_decref(h);
		goto err;
	}
	check_corosync(&r, local);
	check_migration_keys(&r);
	check_storage(&r);
	check_fencing(&r);
	res = json_pack("{s:o,s:o,s:O}", "findings", r.findings, "hosts", h, "checks", r.checks);
	if (res && !local->crypto_rc)
		json_object_set_new(res, "corosync",
				    json_pack("{s:s,s:s}", "crypto_cipher", local->crypto_cipher,
					      "crypto_hash", local->crypto_hash));
	json_decref(r.checks);
	return res;
err:
	json_decref(r.findings);
	json_decref(r.checks);
	return NULL;
}
