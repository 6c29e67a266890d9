/*
 * The migration stream's decoders (migrate/frame.c, migrate/proto.c) on any bytes: what
 * a source sends reaches mig_msg_decode(), and a BLOCK's frame mig_frame_decode(), on
 * the target.
 *
 * Byte 0 picks the route: even, the rest is one message for mig_msg_decode() (and a
 * BLOCK's frame goes on to mig_frame_decode()); odd, the rest is a frame on its own,
 * and when byte 0 & 2 the harness first mends its header (magic, version, reserved,
 * lengths; the checksum too when byte 0 & 4) so mutations get to the payload checks.
 *
 * Checks: no crash, no read past the input (held in a buffer of exactly its size);
 * messages are C strings within their buffers (also with a 1-byte and a NULL buffer);
 * an accepted message's text lies within the input and passes its own UTF-8 rules
 * again through mig_text_clean() unchanged; a decoded frame's lengths agree with its
 * header, and encoding the decoded bytes again decodes to the same bytes.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../../migrate/migrate.h"
#include "../../migrate/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "check failed: %s\n", what);
		abort();
	}
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void frame_case(const uint8_t *f, size_t len)
{
	static uint8_t raw[MIG_BLOCK_MAX], again[MIG_BLOCK_MAX];
	struct mig_frame_info fi, pi;
	char err[256], tiny[1];
	ssize_t n;
	int prc;

	memset(err, 0x55, sizeof(err));
	prc = mig_frame_peek(f, len, &pi, err, sizeof(err));
	if (prc)
		check(memchr(err, '\0', sizeof(err)) != NULL, "peek message not terminated");
	memset(err, 0x55, sizeof(err));
	n = mig_frame_decode(f, len, raw, sizeof(raw), &fi, err, sizeof(err));
	mig_frame_decode(f, len, raw, sizeof(raw), &fi, tiny, sizeof(tiny));
	mig_frame_decode(f, len, raw, sizeof(raw), &fi, NULL, 0);
	if (n < 0) {
		check(n == -EBADMSG || n == -EMSGSIZE, "decode: unexpected error code");
		check(memchr(err, '\0', sizeof(err)) != NULL, "decode message not terminated");
		return;
	}
	check(prc == 0, "decode accepted what peek refused");
	check((size_t)n == fi.raw_len && fi.raw_len >= 1 && fi.raw_len <= MIG_BLOCK_MAX,
	      "decoded length");
	check(fi.wire_len + (size_t)MIG_FRAME_HDR == len, "wire length");
	check(fi.compressed ? fi.wire_len < fi.raw_len : fi.wire_len == fi.raw_len,
	      "payload size for its kind");
	check(pi.seq == fi.seq && pi.raw_len == fi.raw_len, "peek and decode disagree");

	/* round trip: our encoding of these bytes decodes to them */
	{
		size_t cap = mig_frame_bound(fi.raw_len);
		uint8_t *enc = malloc(cap);
		ssize_t m;

		if (!enc)
			return;
		m = mig_frame_encode(fi.seq, raw, fi.raw_len, true, enc, cap);
		check(m > 0, "re-encode");
		check(mig_frame_decode(enc, (size_t)m, again, sizeof(again), &pi, NULL, 0) ==
			      (ssize_t)fi.raw_len,
		      "re-decode");
		check(!memcmp(raw, again, fi.raw_len), "round trip changed the bytes");
		free(enc);
	}
}

static void msg_case(const uint8_t *b, size_t len)
{
	struct mig_msg m;
	char err[256], tiny[1];
	int rc;

	memset(err, 0x55, sizeof(err));
	rc = mig_msg_decode(b, len, &m, err, sizeof(err));
	check(mig_msg_decode(b, len, &m, tiny, sizeof(tiny)) == rc,
	      "decode differs (1-byte buffer)");
	check(mig_msg_decode(b, len, &m, NULL, 0) == rc, "decode differs (no buffer)");
	if (rc) {
		check(rc == -EBADMSG, "unexpected error code");
		check(memchr(err, '\0', sizeof(err)) != NULL, "message not terminated");
		return;
	}
	check(m.type >= MIG_MSG_HELLO && m.type <= MIG_MSG_PONG, "unknown type accepted");
	if (m.text_len) {
		char *s = mig_msg_strdup(&m);
		char *clean = malloc(m.text_len + 1);

		check((const uint8_t *)m.text >= b &&
			      (const uint8_t *)m.text + m.text_len <= b + len,
		      "text outside the input");
		if (s && clean) {
			mig_text_clean(clean, m.text_len + 1, s);
			check(!strcmp(clean, s), "accepted text is not clean");
		}
		free(s);
		free(clean);
	}
	if (m.type == MIG_MSG_BLOCK) {
		check(m.frame == b + 1 && m.frame_len == len - 1, "BLOCK frame bounds");
		frame_case(m.frame, m.frame_len);
	} else {
		/* what decodes encodes back to the same bytes */
		uint8_t *enc = malloc(len);

		if (enc) {
			check(mig_msg_encode(&m, enc, len) == (ssize_t)len, "re-encode length");
			check(!memcmp(enc, b, len), "re-encode bytes");
			free(enc);
		}
	}
}

/* Make the header self-consistent, so the payload's checks are reached. */
static void mend(uint8_t *f, size_t len, int sum)
{
	uint32_t wire = (uint32_t)(len - MIG_FRAME_HDR);
	uint32_t raw_len;

	memcpy(f, "HVMB", 4);
	f[4] = 1;
	f[5] &= 1;
	f[6] = f[7] = 0;
	if (f[5]) {
		raw_len = (uint32_t)(f[16] | f[17] << 8 | f[18] << 16) % MIG_BLOCK_MAX + 1;
		if (raw_len <= wire)
			raw_len = wire + 1 <= MIG_BLOCK_MAX ? wire + 1 : MIG_BLOCK_MAX;
	} else {
		raw_len = wire;
	}
	put_le32(f + 16, raw_len);
	put_le32(f + 20, wire);
	if (sum && !f[5] && wire)
		put_le64(f + 24, XXH3_64bits(f + MIG_FRAME_HDR, wire));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	b = malloc(len ? len : 1);
	if (!b)
		return 0;
	memcpy(b, data + 1, len);
	if (!(data[0] & 1)) {
		msg_case(b, len);
	} else {
		if ((data[0] & 2) && len > MIG_FRAME_HDR && len - MIG_FRAME_HDR <= MIG_BLOCK_MAX)
			mend(b, len, data[0] & 4);
		frame_case(b, len);
	}
	free(b);
	return 0;
}
