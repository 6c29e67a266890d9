/*
 * Persistent reservations without a target: decoding the PERSISTENT RESERVE
 * IN data, and the acquire decision. Pure, so every branch is unit-tested.
 */
#include "storage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

int lun_pr_parse_keys(const uint8_t *buf, size_t len, struct lun_pr_state *st)
{
	uint32_t addl;
	size_t avail, n;

	if (len < 8)
		return -EPROTO;
	st->generation = be32(buf);
	addl = be32(buf + 4);
	avail = len - 8 < addl ? len - 8 : addl;
	n = avail / 8;
	st->keys_truncated = addl > len - 8 || n > LUN_PR_MAX_KEYS;
	if (n > LUN_PR_MAX_KEYS)
		n = LUN_PR_MAX_KEYS;
	for (size_t i = 0; i < n; i++)
		st->keys[i] = be64(buf + 8 + 8 * i);
	st->nkeys = (unsigned int)n;
	return 0;
}

int lun_pr_parse_reservation(const uint8_t *buf, size_t len, struct lun_pr_state *st)
{
	uint32_t addl;

	if (len < 8)
		return -EPROTO;
	st->generation = be32(buf);
	addl = be32(buf + 4);
	st->reserved = false;
	st->holder = 0;
	st->type = 0;
	st->scope = 0;
	if (addl == 0)
		return 0;
	if (addl < 16 || len < 22)
		return -EPROTO;
	st->reserved = true;
	st->holder = be64(buf + 8);
	st->scope = buf[21] >> 4;
	st->type = buf[21] & 0x0f;
	return 0;
}

int lun_pr_parse_caps(const uint8_t *buf, size_t len, struct lun_pr_caps *caps)
{
	if (len < 6 || be16(buf) < 6)
		return -EPROTO;
	caps->pr_supported = true;
	caps->report_caps = true;
	caps->ptpl_capable = buf[2] & 0x01;
	caps->type_mask_valid = buf[3] & 0x80;
	caps->type_mask = caps->type_mask_valid ? be16(buf + 4) : 0;
	/* bit 13 of the mask (byte 4 bit 5) is WR_EX_RO; no mask: assume it */
	caps->wero_supported = !caps->type_mask_valid || (caps->type_mask & 0x2000);
	return 0;
}

bool lun_opcodes_list_preempt_abort(const uint8_t *buf, size_t len)
{
	size_t end, pos = 4;

	if (len < 4)
		return false;
	end = 4 + (size_t)be32(buf);
	if (end > len)
		end = len;
	while (pos + 8 <= end) {
		const uint8_t *d = buf + pos;

		if (d[0] == 0x5f && (d[5] & 0x01) && be16(d + 2) == 5)
			return true;
		pos += (d[5] & 0x02) ? 20 : 8; /* CTDP: a 12-byte timeouts descriptor follows */
	}
	return false;
}

unsigned int lun_pr_count_key(const struct lun_pr_state *st, uint64_t key)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < st->nkeys; i++)
		n += st->keys[i] == key;
	return n;
}

char *lun_key_describe(char *buf, size_t len, uint64_t key, uint64_t ours)
{
	if (ours && !storage_key_same_cluster(key, ours))
		snprintf(buf, len, "0x%016" PRIx64 " (not a key of this cluster)", key);
	else
		snprintf(buf, len, "0x%016" PRIx64 " (node %" PRIu32 ")", key,
			 storage_key_nodeid(key));
	return buf;
}

static bool is_all_registrants(uint8_t type)
{
	return type == LUN_PR_TYPE_WEAR || type == LUN_PR_TYPE_EAAR;
}

/* The first registered key that is not @key, or 0. */
static uint64_t first_foreign(const struct lun_pr_state *st, uint64_t key)
{
	for (unsigned int i = 0; i < st->nkeys; i++)
		if (st->keys[i] != key && st->keys[i] != 0)
			return st->keys[i];
	return 0;
}

/* "reserved (TYPE) by K (node N); registered: K1 (node 1), K2 (node 3)" */
static void describe_others(char *buf, size_t len, const struct lun_pr_state *st, uint64_t key)
{
	char kb[96], tb[32];
	size_t pos = 0;
	bool first = true;

	buf[0] = '\0';
	if (st->reserved && is_all_registrants(st->type))
		pos += (size_t)snprintf(buf, len, "reserved (%s, every registrant holds it); ",
					lun_pr_type_name(st->type, tb, sizeof(tb)));
	else if (st->reserved && st->holder != key)
		pos += (size_t)snprintf(buf, len, "reserved (%s) by %s; ",
					lun_pr_type_name(st->type, tb, sizeof(tb)),
					lun_key_describe(kb, sizeof(kb), st->holder, key));
	for (unsigned int i = 0; i < st->nkeys && pos < len; i++) {
		bool dup = false;

		if (st->keys[i] == key || st->keys[i] == 0)
			continue;
		for (unsigned int j = 0; j < i; j++)
			dup |= st->keys[j] == st->keys[i];
		if (dup)
			continue;
		pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", first ? "registered: " : ", ",
					lun_key_describe(kb, sizeof(kb), st->keys[i], key));
		first = false;
	}
	/* drop a trailing "; " when no key followed */
	pos = strlen(buf);
	if (pos >= 2 && buf[pos - 2] == ';')
		buf[pos - 2] = '\0';
}

static void refuse(struct lun_acq_step *step, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void refuse(struct lun_acq_step *step, int err, const char *fmt, ...)
{
	va_list ap;

	step->action = LUN_ACQ_REFUSE;
	step->err = err;
	va_start(ap, fmt);
	vsnprintf(step->reason, sizeof(step->reason), fmt, ap);
	va_end(ap);
}

static void preempt(struct lun_acq_step *step, uint64_t victim, uint64_t key,
		    const struct lun_pr_caps *caps, const char *what)
{
	char kb[96];

	step->action = LUN_ACQ_PREEMPT;
	step->preempt_key = victim;
	step->abort = caps && caps->preempt_abort;
	if (victim)
		snprintf(step->reason, sizeof(step->reason), "%s %s", what,
			 lun_key_describe(kb, sizeof(kb), victim, key));
	else
		snprintf(step->reason, sizeof(step->reason), "%s", what);
}

void lun_acquire_decide(const struct lun_pr_state *st, uint64_t key, bool takeover,
			const struct lun_pr_caps *caps, struct lun_acq_step *step)
{
	bool allreg = st->reserved && is_all_registrants(st->type);
	bool holder_ours = st->reserved && !allreg && st->holder == key;
	bool holder_foreign = st->reserved && !allreg && st->holder != key;
	uint64_t foreign = first_foreign(st, key);
	char others[400], kb[96], tb[32];

	memset(step, 0, sizeof(*step));
	if (lun_pr_count_key(st, key) == 0) {
		refuse(step, -EAGAIN,
		       "our key %s is not registered right after registering it "
		       "(preempted by another node meanwhile?)",
		       lun_key_describe(kb, sizeof(kb), key, key));
		return;
	}
	if (foreign || holder_foreign) {
		if (!takeover) {
			describe_others(others, sizeof(others), st, key);
			refuse(step, -EBUSY, "another node is there: %s; not taking over", others);
		} else if (holder_foreign) {
			preempt(step, st->holder, key, caps, "preempting the reservation holder");
		} else if (allreg) {
			preempt(step, 0, key, caps,
				"preempting every other registrant of the all-registrants "
				"reservation");
		} else {
			preempt(step, foreign, key, caps, "preempting registered key");
		}
		return;
	}
	/* a registration past the ones we could read may be another node's: DONE would lie */
	if (st->keys_truncated) {
		refuse(step, -EPROTO,
		       "more than %d registrations (or a cut READ KEYS answer): cannot verify "
		       "that no other node is registered",
		       LUN_PR_MAX_KEYS);
		return;
	}
	/* only our key is registered from here on */
	if (!st->reserved) {
		step->action = LUN_ACQ_RESERVE;
		snprintf(step->reason, sizeof(step->reason), "not reserved: reserving");
		return;
	}
	if (holder_ours && st->type == LUN_PR_TYPE_WERO) {
		step->action = LUN_ACQ_DONE;
		snprintf(step->reason, sizeof(step->reason),
			 "reserved (Write Exclusive - Registrants Only) by our key, no other key");
		return;
	}
	if (!takeover) {
		refuse(step, -EPERM,
		       "reserved by our own key with type %s, not Write Exclusive - Registrants "
		       "Only; release it or take over",
		       lun_pr_type_name(st->type, tb, sizeof(tb)));
		return;
	}
	/* our reservation of the wrong type: PREEMPT our own key converts it */
	preempt(step, allreg ? 0 : key, key, caps,
		"converting our reservation to Write Exclusive - Registrants Only by preempting");
}
