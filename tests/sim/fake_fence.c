/*
 * Fake power agents and LUNs under fencing/fence.c, for hvsim (fake_fence.h).
 * Messages imitate the real ones (fencing/agent.c, storage/lun.c) closely
 * enough for a reader of the simulator's log; they are not the same code.
 */
#include "fake_fence.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cluster/vm.h"
#include "../../fencing/power.h"
#include "../../storage/storage.h"

#define FAKE_LUNS 512
#define FAKE_LUN_KEYS 8
#define FAKE_FAILS 64

struct fake_lun {
	char url[VM_URL_MAX];
	uint64_t keys[FAKE_LUN_KEYS];
	unsigned int nkeys;
	uint64_t holder; /* 0: not reserved */
};

struct lun_session {
	struct fake_lun *lun;
};

static struct fake_lun luns[FAKE_LUNS];
static size_t nluns;

static struct {
	char name[FENCE_NAME_MAX + 1];
	unsigned int count;
} device_fails[FAKE_FAILS];

static struct {
	uint64_t key;
	unsigned int count;
} storage_fails[FAKE_FAILS];

static fake_power_hook power_hook;
static void *power_arg;

void fake_fence_init(fake_power_hook hook, void *arg)
{
	power_hook = hook;
	power_arg = arg;
}

void fake_fence_free(void)
{
	memset(luns, 0, sizeof(luns));
	nluns = 0;
	memset(device_fails, 0, sizeof(device_fails));
	memset(storage_fails, 0, sizeof(storage_fails));
}

void fake_fence_device_fail(const char *name, unsigned int count)
{
	size_t free_slot = FAKE_FAILS;

	for (size_t i = 0; i < FAKE_FAILS; i++) {
		if (!strcmp(device_fails[i].name, name)) {
			device_fails[i].count = count;
			return;
		}
		if (free_slot == FAKE_FAILS && !device_fails[i].name[0])
			free_slot = i;
	}
	if (free_slot == FAKE_FAILS) {
		fprintf(stderr, "fake_fence: too many devices with failures\n");
		exit(2);
	}
	snprintf(device_fails[free_slot].name, sizeof(device_fails[free_slot].name), "%s", name);
	device_fails[free_slot].count = count;
}

void fake_fence_storage_fail(uint64_t key, unsigned int count)
{
	size_t free_slot = FAKE_FAILS;

	for (size_t i = 0; i < FAKE_FAILS; i++) {
		if (storage_fails[i].key == key) {
			storage_fails[i].count = count;
			return;
		}
		if (free_slot == FAKE_FAILS && !storage_fails[i].key)
			free_slot = i;
	}
	if (free_slot == FAKE_FAILS) {
		fprintf(stderr, "fake_fence: too many keys with failures\n");
		exit(2);
	}
	storage_fails[free_slot].key = key;
	storage_fails[free_slot].count = count;
}

/* Consume one scripted failure of @key: true when one was armed. */
static bool storage_fails_now(uint64_t key)
{
	for (size_t i = 0; i < FAKE_FAILS; i++)
		if (storage_fails[i].key == key && storage_fails[i].count) {
			storage_fails[i].count--;
			return true;
		}
	return false;
}

static struct fake_lun *lun_get(const char *url)
{
	for (size_t i = 0; i < nluns; i++)
		if (!strcmp(luns[i].url, url))
			return &luns[i];
	if (nluns == FAKE_LUNS) {
		fprintf(stderr, "fake_fence: more than %d LUNs\n", FAKE_LUNS);
		exit(2);
	}
	snprintf(luns[nluns].url, sizeof(luns[nluns].url), "%s", url);
	return &luns[nluns++];
}

void fake_lun_take(const char *url, uint64_t key)
{
	struct fake_lun *l = lun_get(url);

	l->keys[0] = key;
	l->nkeys = 1;
	l->holder = key;
}

void fake_lun_release(const char *url, uint64_t key)
{
	struct fake_lun *l = lun_get(url);
	unsigned int kept = 0;

	for (unsigned int i = 0; i < l->nkeys; i++)
		if (l->keys[i] != key)
			l->keys[kept++] = l->keys[i];
	l->nkeys = kept;
	if (l->holder == key)
		l->holder = 0;
}

bool fake_lun_has_key(const char *url, uint64_t key)
{
	struct fake_lun *l = lun_get(url);

	for (unsigned int i = 0; i < l->nkeys; i++)
		if (l->keys[i] == key)
			return true;
	return false;
}

/* --- storage/storage.h ---------------------------------------------------------------- */

lun_session_t *lun_open(const char *url, const char *initiator, const char *purpose,
			int timeout_s, char *err, size_t errlen)
{
	lun_session_t *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "lun %s: out of memory", url);
		errno = ENOMEM;
		return NULL;
	}
	s->lun = lun_get(url);
	return s;
}

void lun_close(lun_session_t *s)
{
	free(s);
}

int lun_read_pr(lun_session_t *s, struct lun_pr_state *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	st->nkeys = s->lun->nkeys;
	memcpy(st->keys, s->lun->keys, s->lun->nkeys * sizeof(st->keys[0]));
	st->reserved = s->lun->holder != 0;
	st->holder = s->lun->holder;
	st->type = st->reserved ? LUN_PR_TYPE_WERO : 0;
	return 0;
}

unsigned int lun_pr_count_key(const struct lun_pr_state *st, uint64_t key)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < st->nkeys && i < LUN_PR_MAX_KEYS; i++)
		n += st->keys[i] == key;
	return n;
}

int lun_acquire(lun_session_t *s, uint64_t key, bool takeover, char *err, size_t errlen)
{
	struct fake_lun *l = s->lun;

	for (unsigned int i = 0; i < l->nkeys; i++) {
		if (l->keys[i] == key)
			continue;
		if (!takeover) {
			snprintf(err, errlen, "lun %s: key 0x%016" PRIx64 " is registered", l->url,
				 l->keys[i]);
			return -EBUSY;
		}
		if (storage_fails_now(l->keys[i])) {
			snprintf(err, errlen,
				 "lun %s: PREEMPT of key 0x%016" PRIx64
				 " failed: RESERVATION CONFLICT (scripted)",
				 l->url, l->keys[i]);
			return -EIO;
		}
	}
	l->keys[0] = key;
	l->nkeys = 1;
	l->holder = key;
	return 0;
}

/* --- fencing/power.h ------------------------------------------------------------------ */

int fence_power_off(const struct fence_device *dev, const char *plug, unsigned int timeout_s,
		    char *msg, size_t len)
{
	const char *base = strrchr(dev->agent, '/');

	base = base ? base + 1 : dev->agent;
	for (size_t i = 0; i < FAKE_FAILS; i++)
		if (!strcmp(device_fails[i].name, dev->name) && device_fails[i].count) {
			device_fails[i].count--;
			snprintf(msg, len, "%s action=off plug=%s: exit 1: Failed: scripted failure",
				 base, plug);
			return -EREMOTEIO;
		}
	if (power_hook)
		power_hook(power_arg, dev->name, plug);
	snprintf(msg, len, "%s action=off plug=%s: powered off, confirmed by status after 0 ms", base,
		 plug);
	return 0;
}
