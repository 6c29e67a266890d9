/*
 * Framing of the migration stream: one block of QEMU's stream per frame.
 *
 * A frame is a 32-byte header, little-endian, then the payload:
 *
 *	 0  magic "HVMB"
 *	 4  version (1)
 *	 5  flags: bit 0 = the payload is LZ4 (a raw LZ4 block), else the raw bytes
 *	 6  reserved, 0 (2 bytes)
 *	 8  seq (8)
 *	16  raw_len (4): 1..MIG_BLOCK_MAX
 *	20  wire_len (4): payload bytes; == raw_len for a raw frame, < raw_len for LZ4
 *	24  checksum (8): XXH3_64bits of the raw bytes
 *
 * An LZ4 payload is only ever sent when it is shorter than the raw bytes, so a decoder
 * refuses an LZ4 frame whose payload is not. Pure: no I/O, no allocation, no logging.
 */
#include "migrate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lz4.h>
#include <xxhash.h>

#define FRAME_MAGIC "HVMB"
#define FRAME_VERSION 1
#define FLAG_LZ4 0x01

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

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

__attribute__((format(printf, 4, 5))) static int fail(int rc, char *err, size_t errlen,
						      const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

size_t mig_frame_bound(size_t raw_len)
{
	/* LZ4_COMPRESSBOUND, without its int limits: always more than raw_len. */
	return MIG_FRAME_HDR + raw_len + raw_len / 255 + 16;
}

ssize_t mig_frame_encode(uint64_t seq, const void *raw, size_t raw_len, bool compress, void *out,
			 size_t outcap)
{
	uint8_t *o = out;
	uint8_t flags = 0;
	size_t wire_len = raw_len;

	if (raw_len == 0 || raw_len > MIG_BLOCK_MAX || !raw || !out)
		return -EINVAL;
	if (outcap < mig_frame_bound(raw_len))
		return -ENOSPC;

	if (compress) {
		/* Full capacity: LZ4 runs faster when it need not check the output room. */
		int n = LZ4_compress_default(raw, (char *)o + MIG_FRAME_HDR, (int)raw_len,
					     (int)(outcap - MIG_FRAME_HDR > (size_t)INT32_MAX
							   ? INT32_MAX
							   : outcap - MIG_FRAME_HDR));

		if (n > 0 && (size_t)n < raw_len) {
			flags = FLAG_LZ4;
			wire_len = (size_t)n;
		}
	}
	if (!flags)
		memcpy(o + MIG_FRAME_HDR, raw, raw_len);

	memcpy(o, FRAME_MAGIC, 4);
	o[4] = FRAME_VERSION;
	o[5] = flags;
	o[6] = 0;
	o[7] = 0;
	put_le64(o + 8, seq);
	put_le32(o + 16, (uint32_t)raw_len);
	put_le32(o + 20, (uint32_t)wire_len);
	put_le64(o + 24, XXH3_64bits(raw, raw_len));
	return (ssize_t)(MIG_FRAME_HDR + wire_len);
}

ssize_t mig_frame_size(const void *hdr, size_t len, char *err, size_t errlen)
{
	const uint8_t *f = hdr;
	uint32_t wire_len;

	if (!f || len < MIG_FRAME_HDR)
		return fail(-EBADMSG, err, errlen, "truncated: a header needs %d bytes, %zu there",
			    MIG_FRAME_HDR, len);
	wire_len = get_le32(f + 20);
	if (memcmp(f, FRAME_MAGIC, 4))
		return fail(-EBADMSG, err, errlen, "bad magic 0x%02x%02x%02x%02x (not \"HVMB\")",
			    f[0], f[1], f[2], f[3]);
	if (wire_len > mig_frame_bound(MIG_BLOCK_MAX) - MIG_FRAME_HDR)
		return fail(-EBADMSG, err, errlen, "block %" PRIu64 ": payload of %" PRIu32
						   " bytes: more than any block needs",
			    get_le64(f + 8), wire_len);
	return (ssize_t)(MIG_FRAME_HDR + wire_len);
}

int mig_frame_peek(const void *frame, size_t len, struct mig_frame_info *fi, char *err,
		   size_t errlen)
{
	const uint8_t *f = frame;
	uint64_t seq;
	uint32_t raw_len, wire_len;
	uint8_t flags;

	if (!f || len < MIG_FRAME_HDR)
		return fail(-EBADMSG, err, errlen,
			    "frame of %zu bytes: truncated: a header needs %d bytes", len,
			    MIG_FRAME_HDR);
	if (memcmp(f, FRAME_MAGIC, 4))
		return fail(-EBADMSG, err, errlen,
			    "frame of %zu bytes: bad magic 0x%02x%02x%02x%02x (not \"HVMB\")", len,
			    f[0], f[1], f[2], f[3]);

	seq = get_le64(f + 8);
	raw_len = get_le32(f + 16);
	wire_len = get_le32(f + 20);
	flags = f[5];

	if (f[4] != FRAME_VERSION)
		return fail(-EBADMSG, err, errlen, "block %" PRIu64 ": unsupported version %u", seq,
			    f[4]);
	if (flags & ~FLAG_LZ4)
		return fail(-EBADMSG, err, errlen, "block %" PRIu64 ": unknown flags 0x%02x", seq,
			    flags);
	if (f[6] || f[7])
		return fail(-EBADMSG, err, errlen,
			    "block %" PRIu64 ": reserved bytes not zero (0x%02x%02x)", seq, f[6],
			    f[7]);
	if (raw_len == 0 || raw_len > MIG_BLOCK_MAX)
		return fail(-EBADMSG, err, errlen,
			    "block %" PRIu64 ": raw length %" PRIu32 " out of range 1..%u", seq,
			    raw_len, MIG_BLOCK_MAX);
	if (wire_len > len - MIG_FRAME_HDR)
		return fail(-EBADMSG, err, errlen,
			    "block %" PRIu64 ": truncated: header says %" PRIu32
			    " payload bytes, frame has %zu",
			    seq, wire_len, len - MIG_FRAME_HDR);
	if (wire_len < len - MIG_FRAME_HDR)
		return fail(-EBADMSG, err, errlen,
			    "block %" PRIu64 ": trailing bytes: header says %" PRIu32
			    " payload bytes, frame has %zu",
			    seq, wire_len, len - MIG_FRAME_HDR);
	if (!(flags & FLAG_LZ4) && wire_len != raw_len)
		return fail(-EBADMSG, err, errlen,
			    "block %" PRIu64 ": raw frame with %" PRIu32
			    " payload bytes for %" PRIu32 " raw bytes",
			    seq, wire_len, raw_len);
	if ((flags & FLAG_LZ4) && (wire_len == 0 || wire_len >= raw_len))
		return fail(-EBADMSG, err, errlen,
			    "block %" PRIu64 ": LZ4 payload of %" PRIu32
			    " bytes does not shrink %" PRIu32 " raw bytes",
			    seq, wire_len, raw_len);

	if (fi) {
		fi->seq = seq;
		fi->raw_len = raw_len;
		fi->wire_len = wire_len;
		fi->compressed = flags & FLAG_LZ4;
	}
	return 0;
}

ssize_t mig_frame_decode(const void *frame, size_t len, void *raw, size_t rawcap,
			 struct mig_frame_info *fi, char *err, size_t errlen)
{
	const uint8_t *f = frame;
	struct mig_frame_info info;
	uint64_t want, got;
	int rc;

	rc = mig_frame_peek(frame, len, &info, err, errlen);
	if (rc)
		return rc;
	if (!raw || rawcap < info.raw_len)
		return fail(-EMSGSIZE, err, errlen,
			    "block %" PRIu64 ": %" PRIu32 " raw bytes do not fit in %zu", info.seq,
			    info.raw_len, rawcap);

	if (info.compressed) {
		int n = LZ4_decompress_safe((const char *)f + MIG_FRAME_HDR, raw,
					    (int)info.wire_len, (int)info.raw_len);

		if (n < 0)
			return fail(-EBADMSG, err, errlen,
				    "block %" PRIu64 ": LZ4 payload corrupt (%" PRIu32
				    " bytes do not decompress to %" PRIu32 ")",
				    info.seq, info.wire_len, info.raw_len);
		if ((uint32_t)n != info.raw_len)
			return fail(-EBADMSG, err, errlen,
				    "block %" PRIu64
				    ": LZ4 payload decompresses to %d bytes, header says %" PRIu32,
				    info.seq, n, info.raw_len);
	} else {
		memcpy(raw, f + MIG_FRAME_HDR, info.raw_len);
	}

	want = get_le64(f + 24);
	got = XXH3_64bits(raw, info.raw_len);
	if (want != got)
		return fail(-EBADMSG, err, errlen,
			    "block %" PRIu64 ": checksum mismatch (expected 0x%016" PRIx64
			    ", got 0x%016" PRIx64 ")",
			    info.seq, want, got);
	if (fi)
		*fi = info;
	return (ssize_t)info.raw_len;
}
