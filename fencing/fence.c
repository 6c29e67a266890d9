#include "fence.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../storage/storage.h"
#include "power.h"

__attribute__((format(printf, 3, 4))) static void append(char *buf, size_t len, const char *fmt,
							 ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

int fence_storage(const struct fence_target *t, char *err, size_t errlen)
{
	struct lun_pr_state pr;
	char msg[1024];
	int rc = 0;

	if (t->nopr_vm[0]) {
		snprintf(err, errlen, "vm %s has no storage fencing (--no-fence-storage)", t->nopr_vm);
		return -EOPNOTSUPP;
	}
	for (size_t i = 0; i < t->nluns; i++) {
		lun_session_t *s = lun_open(t->urls[i], t->initiator, "fence", 10, msg, sizeof(msg));

		if (!s) {
			snprintf(err, errlen, "%.900s", msg);
			return -EIO;
		}
		rc = lun_read_pr(s, &pr, msg, sizeof(msg));
		/* preempt only where the node is registered; the LUN stays reserved by us */
		if (!rc && lun_pr_count_key(&pr, t->key))
			rc = lun_acquire(s, t->mykey, true, msg, sizeof(msg));
		if (!rc)
			rc = lun_read_pr(s, &pr, msg, sizeof(msg));
		if (!rc && lun_pr_count_key(&pr, t->key)) {
			rc = -EBUSY;
			snprintf(msg, sizeof(msg), "lun %s: key 0x%016" PRIx64 " still registered after PREEMPT",
				 t->urls[i], t->key);
		}
		lun_close(s);
		if (rc) {
			snprintf(err, errlen, "%.900s", msg);
			return rc;
		}
	}
	snprintf(err, errlen, "key 0x%016" PRIx64 " preempted or absent on all %zu LUNs", t->key,
		 t->nluns);
	return 0;
}

int fence_target_from_state(struct fence_target *t, const cluster_state_t *s, uint32_t node,
			    bool still_member, uint64_t now_ms)
{
	const struct node_info *n = state_node_find(s, node);
	const fence_conf_t *fc = state_fence_conf(s);
	const struct fence_level *lv[FENCE_TARGET_LEVELS];

	t->node = node;
	snprintf(t->name, sizeof(t->name), "%s", n ? n->name : "?");
	for (size_t i = 0; i < state_vm_count(s); i++) {
		const struct vm_def *def = state_vm_at(s, i);

		if (state_vm_status(s, def->name)->node != node)
			continue;
		if (!def->fence_storage) {
			snprintf(t->nopr_vm, sizeof(t->nopr_vm), "%s", def->name);
			continue;
		}
		for (size_t k = 0; k < def->ndisks; k++) {
			if (t->nluns == FENCE_TARGET_LUNS)
				return -E2BIG;
			memcpy(t->urls[t->nluns++], def->disks[k].url, VM_URL_MAX);
		}
	}
	t->nlevels = fence_levels_of(fc, node, lv, FENCE_TARGET_LEVELS);
	for (size_t l = 0; l < t->nlevels; l++) {
		t->levels[l] = *lv[l];
		for (size_t k = 0; k < lv[l]->ndevices; k++) {
			const struct fence_device *dev = fence_device_find(fc, lv[l]->devices[k]);

			if (dev && t->ndevices < FENCE_TARGET_DEVICES)
				t->devices[t->ndevices++] = *dev;
		}
	}
	t->watchdog_s = n && !still_member ? n->watchdog_s : 0;
	t->left_ms = n ? n->left_ms : 0;
	t->now_ms = now_ms;
	return 0;
}

static const struct fence_device *device_of(const struct fence_target *t, const char *name)
{
	for (size_t i = 0; i < t->ndevices; i++)
		if (!strcmp(t->devices[i].name, name))
			return &t->devices[i];
	return NULL;
}

/* One device of a level. */
static int run_device(const struct fence_target *t, const char *name, char *msg, size_t len)
{
	const struct fence_device *dev;

	if (!strcmp(name, FENCE_STORAGE))
		return fence_storage(t, msg, len);
	dev = device_of(t, name);
	if (!dev) {
		snprintf(msg, len, "device %s is not configured", name);
		return -ENOENT;
	}
	return fence_power_off(dev, t->name, t->agent_timeout_s, msg, len);
}

int fence_run(const struct fence_target *t, char *detail, size_t len)
{
	struct fence_level storage_only = { .node = t->node, .index = 1, .ndevices = 1 };
	const struct fence_level *levels = t->levels;
	size_t nlevels = t->nlevels;
	char msg[1024];
	int rc = -EIO;

	detail[0] = '\0';
	if (!nlevels) {
		snprintf(storage_only.devices[0], sizeof(storage_only.devices[0]), "%s",
			 FENCE_STORAGE);
		levels = &storage_only;
		nlevels = 1;
	}
	for (size_t l = 0; l < nlevels; l++) {
		const struct fence_level *lv = &levels[l];

		rc = 0;
		for (size_t k = 0; k < lv->ndevices && !rc; k++) {
			rc = run_device(t, lv->devices[k], msg, sizeof(msg));
			append(detail, len, "%slevel %u (%s): %s%s", detail[0] ? "; " : "", lv->index,
			       lv->devices[k], rc ? "FAILED: " : "ok: ", msg);
		}
		if (!rc)
			return 0;
	}
	if (t->watchdog_s && t->left_ms &&
	    t->now_ms >= t->left_ms + 2ULL * t->watchdog_s * 1000) {
		append(detail, len, "%swatchdog: node left %" PRIu64 " s ago, twice its %u s "
				    "watchdog timeout: it has reset or stopped its VMs",
		       detail[0] ? "; " : "", (t->now_ms - t->left_ms) / 1000, t->watchdog_s);
		return 0;
	}
	if (t->watchdog_s)
		append(detail, len, "%swatchdog: deadline in %" PRIu64 " s", detail[0] ? "; " : "",
		       (uint64_t)((t->left_ms + 2ULL * t->watchdog_s * 1000 - t->now_ms + 999) / 1000));
	return rc ? rc : -EIO;
}
