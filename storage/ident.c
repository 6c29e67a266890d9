/*
 * Who we are to the target: reservation keys, initiator names, ISIDs.
 *
 * All derived, never stored: every node computes the same key for node N of
 * cluster C, so a node can PREEMPT a dead node's key without asking anyone.
 */
#include "storage.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define FNV32_OFFSET 0x811c9dc5u
#define FNV32_PRIME 0x01000193u

static uint32_t fnv1a32(uint32_t h, const char *s)
{
	for (; s && *s; s++) {
		h ^= (unsigned char)*s;
		h *= FNV32_PRIME;
	}
	return h;
}

uint64_t storage_node_key(const char *cluster_name, uint32_t nodeid)
{
	uint32_t hi = fnv1a32(FNV32_OFFSET, cluster_name);

	/* a zero high half could make node 0's key 0, which means "no key" */
	if (hi == 0)
		hi = 1;
	return (uint64_t)hi << 32 | nodeid;
}

/* Append @s to @buf at *@pos, as iSCSI name characters. */
static void append_name(char *buf, size_t len, size_t *pos, const char *s)
{
	for (; s && *s && *pos + 1 < len; s++) {
		unsigned char c = (unsigned char)tolower((unsigned char)*s);

		buf[(*pos)++] = (isalnum(c) && c < 0x80) || c == '.' || c == '-' ? (char)c : '-';
	}
	buf[*pos] = '\0';
}

void storage_initiator_name(char *buf, size_t len, const char *cluster_name,
			    const char *node_name)
{
	static const char prefix[] = "iqn.2026-11.org.hvcluster:";
	size_t pos, max = len < LUN_TARGET_MAX + 1 ? len : LUN_TARGET_MAX + 1;

	if (len == 0)
		return;
	pos = (size_t)snprintf(buf, max, "%s", prefix);
	if (pos >= max) {
		buf[max - 1] = '\0';
		return;
	}
	append_name(buf, max, &pos, cluster_name);
	if (pos + 1 < max) {
		buf[pos++] = ':';
		buf[pos] = '\0';
	}
	append_name(buf, max, &pos, node_name);
}

uint64_t storage_isid(const char *initiator, const char *purpose)
{
	/* two independent 32-bit hashes: 24 bits of one, 16 of the other */
	uint32_t a = fnv1a32(fnv1a32(FNV32_OFFSET, initiator), "\n");
	uint32_t b;

	a = fnv1a32(a, purpose);
	b = fnv1a32(fnv1a32(0x050c5d1fu, purpose), "\n");
	b = fnv1a32(b, initiator);
	return (uint64_t)0x80 << 40 | (uint64_t)(a & 0xffffff) << 16 | (b & 0xffff);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int storage_key_parse(const char *s, uint64_t *key)
{
	uint64_t v = 0;
	size_t n;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return -EINVAL;
	s += 2;
	for (n = 0; s[n]; n++) {
		int d = hexval(s[n]);

		if (d < 0 || n >= 16)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	if (n == 0)
		return -EINVAL;
	*key = v;
	return 0;
}
