/*
 * Unit tests of migrate/: the frame codec (round trips, every corruption refused with a
 * message that names the check), the CURVE key files, the protocol decoder, and the
 * sender and the server end to end over real ZeroMQ on tcp://127.0.0.1: a stream of
 * mixed compressible and random data through a pipe on each side, compared byte for
 * byte; an unknown client key; a block damaged on the wire; a refusal; an abort.
 *
 * Frames and messages are handed to the decoders in buffers of exactly their length,
 * so a sanitized build catches any read past the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "../../migrate/migrate.h"
#include "../../migrate/proto.h"

/* --- helpers ----------------------------------------------------------------- */

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (!strstr(h_, n_))                                                               \
			fail_msg("\"%s\" does not contain \"%s\"", h_, n_);                        \
	} while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rng() >> 32);
}

static void fill_text(uint8_t *p, size_t len)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog; QEMU RAM page ";

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)words[(i + i / 4096) % (sizeof(words) - 1)];
}

/* A heap copy of exactly @len bytes: ASan reports any read past it. Free it. */
static uint8_t *exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

/* Encode @raw as block @seq; returns the frame (malloc'd) and its length. */
static uint8_t *encode(uint64_t seq, const uint8_t *raw, size_t len, bool compress, size_t *flen)
{
	size_t cap = mig_frame_bound(len);
	uint8_t *out = malloc(cap);
	ssize_t n;

	assert_non_null(out);
	n = mig_frame_encode(seq, raw, len, compress, out, cap);
	if (n < 0)
		fail_msg("mig_frame_encode(%zu bytes) = %zd", len, n);
	*flen = (size_t)n;
	return out;
}

/* Decode must fail with @rc and a message containing @word. */
static void decode_bad(const uint8_t *frame, size_t len, int rc, const char *word)
{
	uint8_t *copy = exact(frame, len);
	uint8_t *raw = malloc(MIG_BLOCK_MAX);
	struct mig_frame_info fi;
	char err[256] = "";
	ssize_t n;

	assert_non_null(raw);
	n = mig_frame_decode(copy, len, raw, MIG_BLOCK_MAX, &fi, err, sizeof(err));
	if (n != rc)
		fail_msg("mig_frame_decode(%zu bytes) = %zd, expected %d (%s)", len, n, rc, err);
	if (!strstr(err, word))
		fail_msg("decode error \"%s\" does not name \"%s\"", err, word);
	free(copy);
	free(raw);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* --- frames ------------------------------------------------------------------ */

static void roundtrip(const uint8_t *raw, size_t len, bool compress, bool want_lz4)
{
	struct mig_frame_info fi, pi;
	size_t flen;
	uint8_t *frame = encode(1234567, raw, len, compress, &flen);
	uint8_t *copy = exact(frame, flen);
	uint8_t *out = malloc(len);
	char err[256] = "";
	ssize_t n;

	assert_non_null(out);
	assert_int_equal(mig_frame_peek(copy, flen, &pi, err, sizeof(err)), 0);
	n = mig_frame_decode(copy, flen, out, len, &fi, err, sizeof(err));
	if (n != (ssize_t)len)
		fail_msg("decode of %zu bytes: %zd: %s", len, n, err);
	assert_memory_equal(out, raw, len);
	assert_int_equal(fi.seq, 1234567);
	assert_int_equal(fi.raw_len, len);
	assert_int_equal(fi.compressed, want_lz4);
	assert_int_equal(fi.wire_len, flen - MIG_FRAME_HDR);
	assert_int_equal(pi.seq, fi.seq);
	assert_int_equal(pi.raw_len, fi.raw_len);
	assert_int_equal(pi.wire_len, fi.wire_len);
	assert_int_equal(pi.compressed, fi.compressed);
	if (want_lz4)
		assert_true(fi.wire_len < len);
	else
		assert_int_equal(fi.wire_len, len);
	assert_true(flen <= mig_frame_bound(len));
	free(frame);
	free(copy);
	free(out);
}

static void test_frame_roundtrip_compressible(void **state)
{
	uint8_t *raw = malloc(MIG_BLOCK_SIZE);

	fill_text(raw, MIG_BLOCK_SIZE);
	roundtrip(raw, MIG_BLOCK_SIZE, true, true);
	roundtrip(raw, MIG_BLOCK_SIZE, false, false); /* compress=false: raw */
	roundtrip(raw, 1000, true, true);
	free(raw);
}

static void test_frame_roundtrip_incompressible(void **state)
{
	uint8_t *raw = malloc(MIG_BLOCK_SIZE);

	fill_random(raw, MIG_BLOCK_SIZE);
	roundtrip(raw, MIG_BLOCK_SIZE, true, false); /* raw fallback, flagged raw */
	free(raw);
}

static void test_frame_roundtrip_sizes(void **state)
{
	uint8_t *raw = malloc(MIG_BLOCK_MAX);
	uint8_t one = 0x42;

	fill_text(raw, MIG_BLOCK_MAX);
	roundtrip(raw, MIG_BLOCK_MAX, true, true);
	fill_random(raw, MIG_BLOCK_MAX);
	roundtrip(raw, MIG_BLOCK_MAX, true, false);
	roundtrip(&one, 1, true, false);
	roundtrip(&one, 1, false, false);
	free(raw);
}

static void test_frame_encode_errors(void **state)
{
	uint8_t raw[64] = {0}, out[256];
	uint8_t *big = malloc(mig_frame_bound(MIG_BLOCK_MAX + 1));

	assert_int_equal(mig_frame_encode(0, raw, 0, true, out, sizeof(out)), -EINVAL);
	assert_int_equal(mig_frame_encode(0, big, MIG_BLOCK_MAX + 1, true, big,
					  mig_frame_bound(MIG_BLOCK_MAX + 1)),
			 -EINVAL);
	assert_int_equal(
		mig_frame_encode(0, raw, sizeof(raw), true, out, mig_frame_bound(sizeof(raw)) - 1),
		-ENOSPC);
	assert_int_equal(mig_frame_encode(0, raw, sizeof(raw), false, out, MIG_FRAME_HDR + 64),
			 -ENOSPC);
	assert_true(mig_frame_encode(0, raw, sizeof(raw), true, out, mig_frame_bound(64)) > 0);
	free(big);
}

static void test_frame_payload_flip(void **state)
{
	uint8_t *raw = malloc(MIG_BLOCK_SIZE);
	uint8_t *frame;
	size_t flen;

	fill_random(raw, MIG_BLOCK_SIZE);
	frame = encode(17, raw, MIG_BLOCK_SIZE, true, &flen);
	frame[MIG_FRAME_HDR + 1000] ^= 0x01;
	decode_bad(frame, flen, -EBADMSG, "block 17: checksum mismatch (expected 0x");
	free(frame);

	/* an LZ4 payload: every flipped byte is caught, one check or another */
	fill_text(raw, MIG_BLOCK_SIZE);
	frame = encode(18, raw, MIG_BLOCK_SIZE, true, &flen);
	for (size_t i = MIG_FRAME_HDR; i < flen; i += 1 + (flen - MIG_FRAME_HDR) / 64) {
		frame[i] ^= 0x20;
		decode_bad(frame, flen, -EBADMSG, "block 18: ");
		frame[i] ^= 0x20;
	}
	free(frame);
	free(raw);
}

static void test_frame_header_flips(void **state)
{
	uint8_t raw[4096], out[4096];
	struct mig_frame_info fi;
	char err[256];
	size_t flen;
	uint8_t *frame;

	fill_text(raw, sizeof(raw));
	frame = encode(3, raw, sizeof(raw), true, &flen);
	for (int byte = 0; byte < MIG_FRAME_HDR; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t *copy;
			ssize_t n;

			frame[byte] ^= (uint8_t)(1 << bit);
			copy = exact(frame, flen);
			n = mig_frame_decode(copy, flen, out, sizeof(out), &fi, err, sizeof(err));
			/* the seq is not in the checksum: the receiver's order check sees it */
			if (n >= 0 && !(byte >= 8 && byte < 16 && fi.seq != 3))
				fail_msg("header byte %d bit %d flipped: not detected", byte, bit);
			free(copy);
			frame[byte] ^= (uint8_t)(1 << bit);
		}
	}
	free(frame);
}

static void test_frame_bad_header(void **state)
{
	uint8_t raw[1000];
	size_t flen;
	uint8_t *frame;

	fill_text(raw, sizeof(raw));
	frame = encode(3, raw, sizeof(raw), false, &flen);

	frame[0] = 'X';
	decode_bad(frame, flen, -EBADMSG, "bad magic");
	frame[0] = 'H';
	frame[4] = 2;
	decode_bad(frame, flen, -EBADMSG, "block 3: unsupported version 2");
	frame[4] = 1;
	frame[5] = 0x80;
	decode_bad(frame, flen, -EBADMSG, "block 3: unknown flags 0x80");
	frame[5] = 0;
	frame[7] = 1;
	decode_bad(frame, flen, -EBADMSG, "reserved");
	frame[7] = 0;
	/* a raw frame whose lengths disagree */
	put_le32(frame + 16, 999);
	decode_bad(frame, flen, -EBADMSG, "raw frame with 1000 payload bytes for 999");
	put_le32(frame + 16, MIG_BLOCK_MAX + 1);
	decode_bad(frame, flen, -EBADMSG, "out of range");
	put_le32(frame + 16, 0);
	decode_bad(frame, flen, -EBADMSG, "out of range");
	put_le32(frame + 16, 1000);
	/* truncated at several lengths, then trailing bytes */
	decode_bad(frame, 0, -EBADMSG, "truncated");
	decode_bad(frame, 1, -EBADMSG, "truncated");
	decode_bad(frame, MIG_FRAME_HDR - 1, -EBADMSG, "truncated");
	decode_bad(frame, MIG_FRAME_HDR, -EBADMSG,
		   "block 3: truncated: header says 1000 payload bytes, frame has 0");
	decode_bad(frame, MIG_FRAME_HDR + 200, -EBADMSG,
		   "block 3: truncated: header says 1000 payload bytes, frame has 200");
	decode_bad(frame, flen - 1, -EBADMSG, "truncated");
	{
		uint8_t *longer = calloc(1, flen + 5);

		memcpy(longer, frame, flen);
		decode_bad(longer, flen + 5, -EBADMSG,
			   "trailing bytes: header says 1000 payload bytes, frame has 1005");
		free(longer);
	}
	free(frame);
}

static void test_frame_lz4_short(void **state)
{
	uint8_t raw[8192], out[8192 + 10];
	struct mig_frame_info fi;
	char err[256];
	size_t flen;
	uint8_t *frame;

	fill_text(raw, sizeof(raw));
	frame = encode(9, raw, sizeof(raw), true, &flen);
	assert_int_equal(frame[5], 1);
	/* a header that promises 10 more bytes than the payload holds */
	put_le32(frame + 16, sizeof(raw) + 10);
	decode_bad(frame, flen, -EBADMSG, "block 9: LZ4 payload decompresses to 8192 bytes");
	/* and one that promises fewer: the output does not fit */
	put_le32(frame + 16, sizeof(raw) - 10);
	decode_bad(frame, flen, -EBADMSG, "block 9: LZ4 payload corrupt");
	/* an LZ4 frame that does not shrink its data is not one we send */
	put_le32(frame + 16, (uint32_t)(flen - MIG_FRAME_HDR));
	decode_bad(frame, flen, -EBADMSG, "does not shrink");
	/* too small an output buffer */
	put_le32(frame + 16, sizeof(raw));
	assert_int_equal(mig_frame_decode(frame, flen, out, 100, &fi, err, sizeof(err)), -EMSGSIZE);
	/* no message buffer at all is fine */
	assert_int_equal(mig_frame_decode(frame, 5, out, sizeof(out), &fi, NULL, 0), -EBADMSG);
	free(frame);
}

/* --- keys -------------------------------------------------------------------- */

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_migrate.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown_tmpdir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t len, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", tmpdir, name) >= len)
		fail_msg("path too long");
}

static void write_file(const char *name, const char *content, mode_t mode)
{
	char path[128];
	FILE *f;

	path_of(path, sizeof(path), name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void read_file(const char *name, char *buf, size_t len)
{
	char path[128];
	FILE *f;
	size_t n;

	path_of(path, sizeof(path), name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static mode_t mode_of(const char *name)
{
	char path[128];
	struct stat st;

	path_of(path, sizeof(path), name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void keys_bad(int rc, const char *word)
{
	struct mig_keys k;
	char err[512] = "";
	int got = mig_keys_load(tmpdir, &k, err, sizeof(err));

	if (got != rc)
		fail_msg("mig_keys_load = %d, expected %d (%s)", got, rc, err);
	assert_contains(err, word);
}

static void test_keys_create_reload(void **state)
{
	struct mig_keys a, b;
	char err[512] = "", pub[64], derived[MIG_KEY_Z85];
	mode_t old = umask(0077); /* the files' modes do not depend on it */

	if (mig_keys_load(tmpdir, &a, err, sizeof(err)))
		fail_msg("create: %s", err);
	umask(old);
	assert_true(mig_key_is_valid(a.pub));
	assert_true(mig_key_is_valid(a.sec));
	assert_int_equal(zmq_curve_public(derived, a.sec), 0);
	assert_string_equal(derived, a.pub);
	assert_int_equal(mode_of("migrate.key"), 0600);
	assert_int_equal(mode_of("migrate.pub"), 0644);
	read_file("migrate.pub", pub, sizeof(pub));
	assert_int_equal(strlen(pub), 41);
	assert_int_equal(pub[40], '\n');
	assert_memory_equal(pub, a.pub, 40);

	if (mig_keys_load(tmpdir, &b, err, sizeof(err)))
		fail_msg("reload: %s", err);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_keys_refused(void **state)
{
	struct mig_keys a, b;
	char err[512] = "", key[128], moved[128], other_pub[MIG_KEY_Z85], other_sec[MIG_KEY_Z85];

	assert_int_equal(mig_keys_load(tmpdir, &a, err, sizeof(err)), 0);
	read_file("migrate.key", key, sizeof(key));

	/* mode */
	write_file("migrate.key", key, 0644);
	keys_bad(-EPERM, "migrate.key: mode 0644, must be 0600");
	write_file("migrate.key", key, 0400);
	keys_bad(-EPERM, "mode 0400");

	/* content: short, bad character, two keys, no key */
	write_file("migrate.key",
		   "0123456789012345678901234567890123456789"
		   "0\n",
		   0600);
	keys_bad(-EINVAL, "migrate.key: not a Z85 CURVE key");
	key[5] = '~';
	write_file("migrate.key", key, 0600);
	keys_bad(-EINVAL, "not a Z85");
	key[5] = a.sec[5];
	key[39] = '\0';
	write_file("migrate.key", key, 0600);
	keys_bad(-EINVAL, "not a Z85");
	write_file("migrate.key", "", 0600);
	keys_bad(-EINVAL, "not a Z85");

	/* a public key of another pair */
	write_file("migrate.key", a.sec, 0600);
	assert_int_equal(zmq_curve_keypair(other_pub, other_sec), 0);
	write_file("migrate.pub", other_pub, 0644);
	keys_bad(-EINVAL, "does not belong to the secret key");
	write_file("migrate.pub", "junk\n", 0644);
	keys_bad(-EINVAL, "migrate.pub: not a Z85");

	/* the public key missing: written again */
	path_of(key, sizeof(key), "migrate.pub");
	unlink(key);
	assert_int_equal(mig_keys_load(tmpdir, &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(mode_of("migrate.pub"), 0644);
	read_file("migrate.pub", key, sizeof(key));
	assert_memory_equal(key, a.pub, 40);

	/* the secret key missing, the public one there: refused, not replaced */
	path_of(key, sizeof(key), "migrate.key");
	unlink(key);
	keys_bad(-EINVAL, "migrate.pub exists but its secret key");

	/* a symbolic link or a directory in its place (of a new pair) */
	path_of(key, sizeof(key), "migrate.pub");
	unlink(key);
	assert_int_equal(mig_keys_load(tmpdir, &b, err, sizeof(err)), 0);
	path_of(key, sizeof(key), "migrate.key");
	path_of(moved, sizeof(moved), "moved.key");
	assert_int_equal(rename(key, moved), 0);
	assert_int_equal(symlink(moved, key), 0);
	keys_bad(-EPERM, "migrate.key: a symbolic link");
	unlink(key);
	unlink(moved);
	assert_int_equal(mkdir(key, 0700), 0);
	keys_bad(-EPERM, "migrate.key: not a regular file");
	rmdir(key);

	/* no directory */
	assert_int_equal(mig_keys_load("/nonexistent/dir", &b, err, sizeof(err)), -ENOENT);
}

static void test_key_is_valid(void **state)
{
	char pub[MIG_KEY_Z85], sec[MIG_KEY_Z85];

	assert_int_equal(zmq_curve_keypair(pub, sec), 0);
	assert_true(mig_key_is_valid(pub));
	assert_true(mig_key_is_valid("0123456789abcdefghijABCDEFGHIJ.-:+=^!/*?"));
	assert_true(mig_key_is_valid("&<>()[]{}@%$#0123456789abcdefghijklmnopq"));
	assert_false(mig_key_is_valid(NULL));
	assert_false(mig_key_is_valid(""));
	assert_false(mig_key_is_valid("0123456789abcdefghijABCDEFGHIJ.-:+=^!/*"));
	assert_false(mig_key_is_valid("0123456789abcdefghijABCDEFGHIJ.-:+=^!/*?x"));
	assert_false(mig_key_is_valid("0123456789abcdefghijABCDEFGHIJ.-:+=^!/*,"));
	assert_false(mig_key_is_valid("0123456789abcdefghijABCDEFGHIJ.-:+=^!/* "));
}

/* --- protocol ---------------------------------------------------------------- */

static int decode_copy(const void *buf, size_t len, struct mig_msg *m, char *err, size_t errlen)
{
	uint8_t *copy = exact(buf, len);
	int rc = mig_msg_decode(copy, len, m, err, errlen);

	/* the message points into the buffer: check what we need before freeing */
	if (rc == 0 && m->text_len)
		assert_true(m->text >= (const char *)copy &&
			    m->text + m->text_len <= (const char *)copy + len);
	free(copy);
	m->text = NULL;
	m->frame = NULL;
	return rc;
}

static void proto_bad(const void *buf, size_t len, const char *word)
{
	struct mig_msg m;
	char err[256] = "";

	if (decode_copy(buf, len, &m, err, sizeof(err)) != -EBADMSG)
		fail_msg("message of %zu bytes accepted, expected an error with \"%s\"", len, word);
	assert_contains(err, word);
}

static void test_proto_roundtrip(void **state)
{
	const struct mig_msg msgs[] = {
		{.type = MIG_MSG_HELLO, .text = "{\"vm\":\"web1\"}", .text_len = 13},
		{.type = MIG_MSG_ACCEPT, .text = "{}", .text_len = 2},
		{.type = MIG_MSG_REJECT, .text = "no room", .text_len = 7},
		{.type = MIG_MSG_REJECT},
		{.type = MIG_MSG_END, .blocks = 77, .raw_bytes = 1ull << 40},
		{.type = MIG_MSG_ACK, .blocks = 0xfedcba9876543210ull},
		{.type = MIG_MSG_DONE, .ok = true},
		{.type = MIG_MSG_DONE,
		 .ok = false,
		 .text = "QEMU \xc3\xa9"
			 "chou\xc3\xa9",
		 .text_len = 13},
		{.type = MIG_MSG_ABORT, .text = "cancelled", .text_len = 9},
		{.type = MIG_MSG_PING},
		{.type = MIG_MSG_PONG},
	};

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		uint8_t buf[64];
		struct mig_msg m;
		char err[256] = "";
		ssize_t n = mig_msg_encode(&msgs[i], buf, sizeof(buf));
		uint8_t *copy;

		assert_true(n > 0);
		assert_int_equal((size_t)n, mig_msg_size(&msgs[i]));
		copy = exact(buf, (size_t)n);
		if (mig_msg_decode(copy, (size_t)n, &m, err, sizeof(err)))
			fail_msg("%s: %s", mig_msg_name(msgs[i].type), err);
		assert_int_equal(m.type, msgs[i].type);
		assert_int_equal(m.text_len, msgs[i].text_len);
		if (m.text_len)
			assert_memory_equal(m.text, msgs[i].text, m.text_len);
		assert_int_equal(m.blocks, msgs[i].blocks);
		assert_int_equal(m.raw_bytes, msgs[i].raw_bytes);
		assert_int_equal(m.ok, msgs[i].ok);
		free(copy);
		assert_int_equal(mig_msg_encode(&msgs[i], buf, (size_t)n - 1), -ENOSPC);
	}
}

static void test_proto_garbage(void **state)
{
	uint8_t buf[64];
	struct mig_msg m;
	char err[256];

	proto_bad("", 0, "empty");
	proto_bad("\x00", 1, "unknown message type 0");
	proto_bad("\x0b", 1, "unknown message type 11");
	proto_bad("\xff\x01\x02", 3, "unknown message type 255");
	proto_bad("\x01", 1, "HELLO: no protocol version");
	proto_bad("\x01\x02{}", 4, "HELLO: protocol version 2");
	proto_bad("\x01\x01", 2, "HELLO: empty text");
	proto_bad("\x02", 1, "ACCEPT: empty text");
	proto_bad("\x01\x01{\xff}", 4, "not UTF-8");
	proto_bad("\x01\x01{\x00}", 4, "not UTF-8");
	proto_bad("\x03\xc0\x80", 3, "not UTF-8");	   /* overlong NUL */
	proto_bad("\x03\xed\xa0\x80", 4, "not UTF-8");	   /* a surrogate */
	proto_bad("\x03\xf4\x90\x80\x80", 5, "not UTF-8"); /* above U+10FFFF */
	proto_bad("\x03\xe2\x82", 3, "not UTF-8");	   /* cut short */
	proto_bad("\x04\x00\x01", 3, "BLOCK: 2 bytes, shorter than a header");
	proto_bad("\x05\x00", 2, "END: 1 bytes, must be 16");
	proto_bad("\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10, "ACK: 9 bytes, must be 8");
	proto_bad("\x06", 1, "ACK: 0 bytes");
	proto_bad("\x07", 1, "DONE: no status byte");
	proto_bad("\x07\x02", 2, "DONE: status byte 2");
	proto_bad("\x09\x00", 2, "PING: 1 bytes, must be 0");
	proto_bad("\x0a\x00", 2, "PONG: 1 bytes");
	assert_int_equal(mig_msg_decode(NULL, 0, &m, NULL, 0), -EBADMSG);

	/* a text at the limit passes, one byte more does not */
	{
		size_t len = 1 + MIG_TEXT_MAX + 1;
		uint8_t *big = malloc(len);

		memset(big, 'a', len);
		big[0] = MIG_MSG_ABORT;
		assert_int_equal(decode_copy(big, len - 1, &m, err, sizeof(err)), 0);
		proto_bad(big, len, "text of 65537 bytes");
		free(big);
	}
	/* random bytes: never a crash, never an accepted unknown type */
	for (int i = 0; i < 20000; i++) {
		size_t len = 1 + rng() % sizeof(buf);
		int rc;

		fill_random(buf, len);
		buf[0] = (uint8_t)(rng() % 12);
		rc = decode_copy(buf, len, &m, err, sizeof(err));
		if (rc == 0)
			assert_true(m.type >= MIG_MSG_HELLO && m.type <= MIG_MSG_PONG);
		else
			assert_non_null(memchr(err, '\0', sizeof(err)));
	}
	assert_int_equal(mig_msg_encode(&(struct mig_msg){.type = MIG_MSG_BLOCK}, buf, 64),
			 -EINVAL);
}

static void test_text_clean(void **state)
{
	char out[16];

	mig_text_clean(out, sizeof(out), "plain");
	assert_string_equal(out, "plain");
	mig_text_clean(out, sizeof(out),
		       "a\xff"
		       "b\xc3");
	assert_string_equal(out, "a?b?");
	mig_text_clean(out, sizeof(out), "0123456789abcdefghij");
	assert_string_equal(out, "0123456789abcde");
	/* a two-byte character that would not fit is left out whole */
	mig_text_clean(out, sizeof(out), "0123456789abcd\xc3\xa9");
	assert_string_equal(out, "0123456789abcd");
	mig_text_clean(out, 1, "x");
	assert_string_equal(out, "");
	mig_text_clean(out, sizeof(out), NULL);
	assert_string_equal(out, "");
}

/* --- end to end ---------------------------------------------------------------- */

#define STREAM_LEN (8u << 20)

struct feeder {
	int fd;
	const uint8_t *data;
	size_t len;
	pthread_t thr;
};

struct checker {
	int fd;
	const uint8_t *data;
	size_t len;
	size_t got;
	bool mismatch;
	size_t mismatch_at;
	bool eof;
	pthread_t thr;
};

struct e2e {
	mig_server_t *srv;
	mig_sender_t *snd;
	struct mig_keys skeys, ckeys;
	int port;
	/* what happened */
	int incoming;
	uint64_t conn;
	char hello[256];
	char client_key[MIG_KEY_Z85];
	int accepted;
	char reply[256];
	int finished;
	bool fin_ok;
	char fin_why[512];
	int ended;
	bool end_ok;
	char end_why[512];
	int rejected;
	char rej_why[512];
	struct mig_stats srv_stats;
	int srv_stats_rc;
	/* what the test's "caller" does */
	/* ACCEPT_STALLED: accept, but nothing reads the target's end (t->chk.fd) yet */
	enum { ON_HELLO_ACCEPT, ON_HELLO_ACCEPT_STALLED, ON_HELLO_REJECT, ON_HELLO_NOTHING } on_hello;
	bool finish_on_end;
	struct checker chk;
	struct feeder feed;
};

static void *feeder_main(void *arg)
{
	struct feeder *f = arg;
	size_t off = 0;

	while (off < f->len) {
		size_t chunk = 1 + rng() % 200000;
		ssize_t n;

		if (chunk > f->len - off)
			chunk = f->len - off;
		n = write(f->fd, f->data + off, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EPIPE: the sender closed its end */
		off += (size_t)n;
	}
	close(f->fd);
	return NULL;
}

static void *checker_main(void *arg)
{
	struct checker *c = arg;
	uint8_t buf[65536];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			c->eof = n == 0;
			break;
		}
		if (!c->mismatch &&
		    (c->got + (size_t)n > c->len || memcmp(buf, c->data + c->got, (size_t)n))) {
			c->mismatch = true;
			c->mismatch_at = c->got;
		}
		c->got += (size_t)n;
	}
	close(c->fd);
	return NULL;
}

static void on_incoming(void *arg, uint64_t conn, const char *hello, const char *client_key)
{
	struct e2e *t = arg;
	int p[2], rc;

	t->incoming++;
	t->conn = conn;
	snprintf(t->hello, sizeof(t->hello), "%s", hello);
	snprintf(t->client_key, sizeof(t->client_key), "%s", client_key);
	if (t->on_hello == ON_HELLO_REJECT) {
		assert_int_equal(mig_server_reject(t->srv, conn, "no room for web1"), 0);
		rc = mig_server_reject(t->srv, conn, "twice");
		/* -ENOENT: the server dropped the connection already */
		if (rc != -EALREADY && rc != -ENOENT)
			fail_msg("second reject: %d", rc);
		return;
	}
	if (t->on_hello != ON_HELLO_ACCEPT && t->on_hello != ON_HELLO_ACCEPT_STALLED)
		return;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	t->chk.fd = p[0];
	if (t->on_hello == ON_HELLO_ACCEPT)
		assert_int_equal(pthread_create(&t->chk.thr, NULL, checker_main, &t->chk), 0);
	assert_int_equal(mig_server_accept(t->srv, conn, "{\"ok\":1}", p[1]), 0);
}

static void on_ended(void *arg, uint64_t conn, bool ok, const char *why)
{
	struct e2e *t = arg;

	assert_int_equal(conn, t->conn);
	t->ended++;
	t->end_ok = ok;
	snprintf(t->end_why, sizeof(t->end_why), "%s", why);
	t->srv_stats_rc = mig_server_stats(t->srv, conn, &t->srv_stats);
	if (ok && t->finish_on_end)
		assert_int_equal(mig_server_finish(t->srv, conn, true, ""), 0);
}

static void on_rejected(void *arg, const char *why)
{
	struct e2e *t = arg;

	t->rejected++;
	snprintf(t->rej_why, sizeof(t->rej_why), "%s", why);
}

static void on_accepted(void *arg, const char *reply)
{
	struct e2e *t = arg;

	t->accepted++;
	snprintf(t->reply, sizeof(t->reply), "%s", reply);
}

static void on_finished(void *arg, bool ok, const char *why)
{
	struct e2e *t = arg;

	t->finished++;
	t->fin_ok = ok;
	snprintf(t->fin_why, sizeof(t->fin_why), "%s", why);
}

static const struct mig_server_ops srv_ops = {
	.incoming = on_incoming,
	.ended = on_ended,
	.rejected = on_rejected,
};

static const struct mig_send_ops snd_ops = {
	.accepted = on_accepted,
	.finished = on_finished,
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The caller's loop: dispatch both until @done says so, or fail after @ms. */
static void run_until(struct e2e *t, bool (*done)(struct e2e *), unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	while (!done(t)) {
		struct pollfd pfd[2] = {
			{.fd = t->srv ? mig_server_notify_fd(t->srv) : -1, .events = POLLIN},
			{.fd = t->snd ? mig_send_notify_fd(t->snd) : -1, .events = POLLIN},
		};

		if (now_ms() > end)
			fail_msg("timed out: in %d acc %d end %d (%s) fin %d (%s) rej %d (%s)",
				 t->incoming, t->accepted, t->ended, t->end_why, t->finished,
				 t->fin_why, t->rejected, t->rej_why);
		poll(pfd, 2, 50);
		if (t->srv && pfd[0].revents)
			mig_server_dispatch(t->srv);
		if (t->snd && pfd[1].revents)
			mig_send_dispatch(t->snd);
	}
}

static bool finished_and_ended(struct e2e *t)
{
	return t->finished && t->ended;
}

static bool finished_only(struct e2e *t)
{
	return t->finished;
}

static bool finished_and_rejected(struct e2e *t)
{
	return t->finished && t->rejected;
}

static bool got_incoming(struct e2e *t)
{
	return t->incoming > 0;
}

static bool got_accepted(struct e2e *t)
{
	return t->accepted > 0;
}

static bool got_ended(struct e2e *t)
{
	return t->ended > 0;
}

static bool got_rejected(struct e2e *t)
{
	return t->rejected > 0;
}

/* The caller's loop for @ms, whatever happens (run_until() fails when it times out). */
static void run_for(struct e2e *t, unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		struct pollfd pfd[2] = {
			{.fd = t->srv ? mig_server_notify_fd(t->srv) : -1, .events = POLLIN},
			{.fd = t->snd ? mig_send_notify_fd(t->snd) : -1, .events = POLLIN},
		};

		poll(pfd, 2, 50);
		if (t->srv && pfd[0].revents)
			mig_server_dispatch(t->srv);
		if (t->snd && pfd[1].revents)
			mig_send_dispatch(t->snd);
	}
}

static struct e2e *e2e_new(void)
{
	struct e2e *t = calloc(1, sizeof(*t));
	char err[512] = "", dir[128];

	assert_non_null(t);
	snprintf(dir, sizeof(dir), "%s/srv", tmpdir);
	mkdir(dir, 0700);
	if (mig_keys_load(dir, &t->skeys, err, sizeof(err)))
		fail_msg("server keys: %s", err);
	snprintf(dir, sizeof(dir), "%s/cli", tmpdir);
	mkdir(dir, 0700);
	if (mig_keys_load(dir, &t->ckeys, err, sizeof(err)))
		fail_msg("client keys: %s", err);
	t->srv = mig_server_start("tcp://127.0.0.1:*", &t->skeys, &srv_ops, t, err, sizeof(err));
	if (!t->srv)
		fail_msg("mig_server_start: %s", err);
	t->port = mig_server_port(t->srv);
	assert_true(t->port > 0);
	assert_int_equal(
		mig_server_set_allowed(t->srv, (const char(*)[MIG_KEY_Z85]) & t->ckeys.pub, 1), 0);
	t->on_hello = ON_HELLO_ACCEPT;
	t->finish_on_end = true;
	t->chk.fd = -1;
	return t;
}

/* Start a sender fed with @len bytes of @data through a pipe. */
static void e2e_send(struct e2e *t, const uint8_t *data, size_t len, unsigned int timeout_ms,
		     uint64_t corrupt_seq)
{
	char endpoint[64], err[512] = "";
	int p[2];
	struct mig_send_cfg cfg = {
		.endpoint = endpoint,
		.server_key = t->skeys.pub,
		.keys = &t->ckeys,
		.hello = "{\"vm\":\"web1\"}",
		.nthreads = 2,
		.compress = true,
		.timeout_ms = timeout_ms,
		.corrupt_seq = corrupt_seq,
	};

	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", t->port);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	cfg.fd = p[0];
	t->chk.data = data;
	t->chk.len = len;
	t->feed = (struct feeder){.fd = p[1], .data = data, .len = len};
	t->snd = mig_send_start(&cfg, &snd_ops, t, err, sizeof(err));
	if (!t->snd)
		fail_msg("mig_send_start: %s", err);
	assert_int_equal(pthread_create(&t->feed.thr, NULL, feeder_main, &t->feed), 0);
}

static void e2e_free(struct e2e *t)
{
	mig_send_free(t->snd);
	t->snd = NULL;
	if (t->feed.thr)
		pthread_join(t->feed.thr, NULL);
	mig_server_free(t->srv);
	if (t->chk.thr)
		pthread_join(t->chk.thr, NULL);
	free(t);
}

static uint8_t *stream_data(void)
{
	uint8_t *d = malloc(STREAM_LEN);

	assert_non_null(d);
	/* 1 MiB compressible, then 1 MiB random..., and an odd tail */
	for (size_t off = 0; off < STREAM_LEN; off += 1u << 20) {
		if ((off >> 20) % 2)
			fill_random(d + off, 1u << 20);
		else
			fill_text(d + off, 1u << 20);
	}
	return d;
}

static void test_e2e_stream(void **state)
{
	uint8_t *data = stream_data();
	size_t len = STREAM_LEN - 12345; /* not a multiple of the block size */
	struct e2e *t = e2e_new();
	struct mig_stats st;

	e2e_send(t, data, len, 5000, 0);
	run_until(t, finished_and_ended, 20000);
	assert_int_equal(t->incoming, 1);
	assert_string_equal(t->hello, "{\"vm\":\"web1\"}");
	assert_string_equal(t->client_key, t->ckeys.pub);
	assert_int_equal(t->accepted, 1);
	assert_string_equal(t->reply, "{\"ok\":1}");
	if (!t->end_ok)
		fail_msg("ended(false): %s", t->end_why);
	if (!t->fin_ok)
		fail_msg("finished(false): %s", t->fin_why);
	assert_int_equal(t->ended, 1);
	assert_int_equal(t->finished, 1);

	pthread_join(t->chk.thr, NULL);
	t->chk.thr = 0;
	t->chk.fd = -1;
	assert_false(t->chk.mismatch);
	assert_true(t->chk.eof);
	assert_int_equal(t->chk.got, len);

	mig_send_stats(t->snd, &st);
	assert_int_equal(st.raw_bytes, len);
	assert_int_equal(t->srv_stats_rc, 0);
	assert_int_equal(t->srv_stats.raw_bytes, len);
	assert_int_equal(st.blocks, t->srv_stats.blocks);
	assert_int_equal(st.wire_bytes, t->srv_stats.wire_bytes);
	assert_int_equal(st.raw_blocks, t->srv_stats.raw_blocks);
	assert_true(st.blocks >= len / MIG_BLOCK_SIZE + 1);
	assert_true(st.raw_blocks >= 4 * (1u << 20) / MIG_BLOCK_SIZE - 4); /* the random part */
	assert_true(st.raw_blocks < st.blocks);
	assert_true(st.wire_bytes < len);
	assert_true(st.cpu_ns > 0);
	assert_true(t->srv_stats.cpu_ns > 0);
	/* a source that leaves after its stream sent no garbage */
	mig_send_free(t->snd);
	t->snd = NULL;
	run_for(t, 300);
	assert_int_equal(t->rejected, 0);
	e2e_free(t);
	free(data);
}

static void test_e2e_unknown_key(void **state)
{
	uint8_t data[1000];
	struct e2e *t = e2e_new();
	uint64_t start;

	/* only some other key is allowed */
	assert_int_equal(
		mig_server_set_allowed(t->srv, (const char(*)[MIG_KEY_Z85]) & t->skeys.pub, 1), 0);
	fill_text(data, sizeof(data));
	start = now_ms();
	e2e_send(t, data, sizeof(data), 3000, 0);
	run_until(t, finished_and_rejected, 6000);
	assert_true(now_ms() - start < 3500);
	assert_false(t->fin_ok);
	print_message("source: %s\ntarget: %s\n", t->fin_why, t->rej_why);
	assert_contains(t->fin_why, "refused by the target");
	assert_int_equal(t->incoming, 0);
	assert_int_equal(t->accepted, 0);
	assert_contains(t->rej_why, "unknown key");
	assert_contains(t->rej_why, t->ckeys.pub);
	e2e_free(t);
}

static void test_e2e_corrupt_block(void **state)
{
	uint8_t *data = stream_data();
	struct e2e *t = e2e_new();

	e2e_send(t, data, 4u << 20, 5000, 6); /* block 5 damaged */
	run_until(t, finished_and_ended, 10000);
	print_message("source: %s\ntarget: %s\n", t->fin_why, t->end_why);
	assert_false(t->end_ok);
	assert_contains(t->end_why, "block 5: checksum mismatch");
	assert_false(t->fin_ok);
	assert_contains(t->fin_why, "checksum mismatch");
	/* the target wrote the good blocks before, nothing after */
	pthread_join(t->chk.thr, NULL);
	t->chk.thr = 0;
	t->chk.fd = -1;
	assert_false(t->chk.mismatch);
	assert_int_equal(t->chk.got, 5 * MIG_BLOCK_SIZE);
	e2e_free(t);
	free(data);
}

static void test_e2e_reject(void **state)
{
	uint8_t data[1000];
	struct e2e *t = e2e_new();

	t->on_hello = ON_HELLO_REJECT;
	fill_text(data, sizeof(data));
	e2e_send(t, data, sizeof(data), 5000, 0);
	run_until(t, finished_only, 5000);
	assert_false(t->fin_ok);
	assert_string_equal(t->fin_why, "refused by the target: no room for web1");
	assert_int_equal(t->accepted, 0);
	assert_int_equal(t->ended, 0);
	e2e_free(t);
}

/* The source gives up mid-stream: the target hears of it, the sender reports it. */
static void test_e2e_source_abort(void **state)
{
	uint8_t *data = stream_data();
	struct e2e *t = e2e_new();

	t->finish_on_end = false;
	e2e_send(t, data, STREAM_LEN, 5000, 0);
	run_until(t, got_accepted, 5000);
	mig_send_abort(t->snd, "cancelled by the admin");
	run_until(t, finished_and_ended, 5000);
	assert_false(t->fin_ok);
	assert_string_equal(t->fin_why, "cancelled by the admin");
	assert_false(t->end_ok);
	assert_contains(t->end_why, "aborted by the source: cancelled by the admin");
	e2e_free(t);
	free(data);
}

/* The target drops a stream: ended() once, the source told; then finish is refused. */
static void test_e2e_target_abort(void **state)
{
	uint8_t *data = stream_data();
	struct e2e *t = e2e_new();
	struct mig_stats st;

	t->on_hello = ON_HELLO_NOTHING;
	e2e_send(t, data, STREAM_LEN, 5000, 0);
	run_until(t, got_incoming, 5000);
	assert_int_equal(mig_server_finish(t->srv, t->conn, true, ""), -EINVAL);
	assert_int_equal(mig_server_accept(t->srv, t->conn + 100, "{}", dup(0)), -ENOENT);
	/* now accept, and drop it at once */
	t->on_hello = ON_HELLO_ACCEPT;
	{
		int p[2];

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		t->chk.data = data;
		t->chk.len = STREAM_LEN;
		t->chk.fd = p[0];
		assert_int_equal(pthread_create(&t->chk.thr, NULL, checker_main, &t->chk), 0);
		assert_int_equal(mig_server_accept(t->srv, t->conn, "{}", p[1]), 0);
	}
	mig_server_abort(t->srv, t->conn, "the target VM cannot start");
	run_until(t, finished_and_ended, 5000);
	assert_int_equal(t->ended, 1);
	assert_false(t->end_ok);
	assert_string_equal(t->end_why, "the target VM cannot start");
	assert_false(t->fin_ok);
	assert_contains(t->fin_why, "the target VM cannot start");
	assert_int_equal(mig_server_finish(t->srv, t->conn, true, ""), -ENOENT);
	mig_send_stats(t->snd, &st);
	e2e_free(t);
	free(data);
}

/* QEMU writes nothing at all: an empty stream still ends well on both sides. */
static void test_e2e_empty(void **state)
{
	struct e2e *t = e2e_new();
	struct mig_stats st;
	uint8_t none = 0;

	e2e_send(t, &none, 0, 5000, 0);
	run_until(t, finished_and_ended, 5000);
	if (!t->end_ok || !t->fin_ok)
		fail_msg("ended %d (%s), finished %d (%s)", t->end_ok, t->end_why, t->fin_ok,
			 t->fin_why);
	pthread_join(t->chk.thr, NULL);
	t->chk.thr = 0;
	t->chk.fd = -1;
	assert_true(t->chk.eof);
	assert_int_equal(t->chk.got, 0);
	mig_send_stats(t->snd, &st);
	assert_int_equal(st.blocks, 0);
	assert_int_equal(st.raw_bytes, 0);
	e2e_free(t);
}

/* The source has the wrong key for the target: refused in the handshake, timed out. */
static void test_e2e_wrong_server_key(void **state)
{
	struct e2e *t = e2e_new();
	uint8_t data[100];
	char realkey[MIG_KEY_Z85], other[MIG_KEY_Z85];

	memcpy(realkey, t->skeys.pub, sizeof(realkey));
	assert_int_equal(zmq_curve_keypair(t->skeys.pub, other), 0);
	fill_text(data, sizeof(data));
	e2e_send(t, data, sizeof(data), 1000, 0);
	run_until(t, finished_and_rejected, 4000);
	assert_false(t->fin_ok);
	print_message("source: %s\ntarget: %s\n", t->fin_why, t->rej_why);
	assert_contains(t->fin_why, "target did not answer for 1 s");
	assert_contains(t->rej_why, "handshake");
	assert_int_equal(t->incoming, 0);
	memcpy(t->skeys.pub, realkey, sizeof(realkey));
	e2e_free(t);
}

/* Nothing answers at the endpoint: the sender times out with the message it promises. */
static void test_e2e_timeout(void **state)
{
	struct e2e *t = e2e_new();
	uint8_t data[100];
	int port = t->port;
	uint64_t start;

	mig_server_free(t->srv); /* the port is free now: connections are refused */
	t->srv = NULL;
	t->port = port;
	fill_text(data, sizeof(data));
	start = now_ms();
	e2e_send(t, data, sizeof(data), 1000, 0);
	run_until(t, finished_only, 4000);
	assert_true(now_ms() - start >= 1000);
	print_message("source: %s\n", t->fin_why);
	assert_false(t->fin_ok);
	assert_contains(t->fin_why, "target did not answer for 1 s");
	e2e_free(t);
}

/* A client with an allowed key that does not follow the protocol. */
struct rogue {
	void *ctx, *sock;
};

static void rogue_open(struct rogue *r, struct e2e *t)
{
	char ep[64];
	int zero = 0;

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", t->port);
	r->ctx = zmq_ctx_new();
	assert_non_null(r->ctx);
	r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
	assert_non_null(r->sock);
	assert_int_equal(zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof(zero)), 0);
	assert_int_equal(zmq_setsockopt(r->sock, ZMQ_CURVE_SERVERKEY, t->skeys.pub, 40), 0);
	assert_int_equal(zmq_setsockopt(r->sock, ZMQ_CURVE_PUBLICKEY, t->ckeys.pub, 40), 0);
	assert_int_equal(zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY, t->ckeys.sec, 40), 0);
	assert_int_equal(zmq_connect(r->sock, ep), 0);
}

static void rogue_close(struct rogue *r)
{
	zmq_close(r->sock);
	zmq_ctx_term(r->ctx);
}

static void rogue_send(struct rogue *r, const void *buf, size_t len, int flags)
{
	if (zmq_send(r->sock, buf, len, flags) != (int)len)
		fail_msg("zmq_send: %s", zmq_strerror(zmq_errno()));
}

/* The next message to the rogue, decoded; the server's events are dispatched meanwhile. */
static struct mig_msg rogue_recv(struct rogue *r, struct e2e *t, uint8_t *buf, size_t cap)
{
	uint64_t end = now_ms() + 3000;
	struct mig_msg m;
	char err[256];

	while (now_ms() < end) {
		zmq_pollitem_t items[2] = {
			{.socket = r->sock, .events = ZMQ_POLLIN},
			{.fd = mig_server_notify_fd(t->srv), .events = ZMQ_POLLIN},
		};
		int n;

		assert_true(zmq_poll(items, 2, 50) >= 0);
		if (items[1].revents)
			mig_server_dispatch(t->srv);
		if (!items[0].revents)
			continue;
		n = zmq_recv(r->sock, buf, cap, 0);
		assert_true(n > 0 && (size_t)n <= cap);
		if (mig_msg_decode(buf, (size_t)n, &m, err, sizeof(err)))
			fail_msg("the server sent garbage: %s", err);
		return m;
	}
	fail_msg("the server did not answer");
	return m;
}

static bool rejected_twice(struct e2e *t)
{
	return t->rejected >= 2;
}

static void test_e2e_rogue_client(void **state)
{
	struct e2e *t = e2e_new();
	struct rogue r;
	uint8_t buf[512], raw[100], block[1 + 200];
	struct mig_msg m;
	ssize_t n;

	t->on_hello = ON_HELLO_NOTHING;
	rogue_open(&r, t);

	/* garbage, and a message of two frames: dropped, reported */
	rogue_send(&r, "\xff\x00junk", 6, 0);
	rogue_send(&r, "\x09", 1, ZMQ_SNDMORE);
	rogue_send(&r, "\x09", 1, 0);
	run_until(t, rejected_twice, 3000);
	assert_int_equal(t->incoming, 0);

	/* a block before any hello: told off */
	fill_text(raw, sizeof(raw));
	block[0] = MIG_MSG_BLOCK;
	n = mig_frame_encode(0, raw, sizeof(raw), true, block + 1, sizeof(block) - 1);
	assert_true(n > 0);
	rogue_send(&r, block, (size_t)n + 1, 0);
	m = rogue_recv(&r, t, buf, sizeof(buf));
	assert_int_equal(m.type, MIG_MSG_ABORT);
	assert_memory_equal(m.text, "no migration on this connection", m.text_len);

	/* a hello, twice: the second refused, the first still pending */
	rogue_send(&r, "\x01\x01{}", 4, 0);
	run_until(t, got_incoming, 3000);
	rogue_send(&r, "\x01\x01{}", 4, 0);
	m = rogue_recv(&r, t, buf, sizeof(buf));
	assert_int_equal(m.type, MIG_MSG_REJECT);
	rogue_send(&r, "\x09", 1, 0);
	m = rogue_recv(&r, t, buf, sizeof(buf));
	assert_int_equal(m.type, MIG_MSG_PONG);

	/* a block before the answer: the connection is dropped */
	rogue_send(&r, block, (size_t)n + 1, 0);
	m = rogue_recv(&r, t, buf, sizeof(buf));
	assert_int_equal(m.type, MIG_MSG_ABORT);
	assert_memory_equal(m.text, "protocol error from the source: unexpected BLOCK", m.text_len);
	assert_int_equal(mig_server_accept(t->srv, t->conn, "{}", dup(0)), -ENOENT);
	assert_int_equal(t->ended, 0);

	rogue_close(&r);
	e2e_free(t);
}

/*
 * Flow control bounds the source's memory: with a target whose QEMU reads nothing, the
 * source reads from its QEMU no more than the window's frames (sent, not acknowledged)
 * and its slots (read, not yet sent) hold, however much QEMU offers; it goes on when the
 * target reads again.
 */
static void test_e2e_flow_control(void **state)
{
	const unsigned int window = 4, nthreads = 1;
	const uint64_t slots = window + 2 * nthreads + 2; /* send.c: alloc_slots() */
	const uint64_t bound = (window + slots) * (uint64_t)MIG_BLOCK_SIZE;
	size_t len = 32u << 20;
	uint8_t *data = malloc(len);
	struct e2e *t = e2e_new();
	struct mig_stats st, srv_st;
	char endpoint[64], err[512];
	int p[2];
	struct mig_send_cfg cfg = {
		.endpoint = endpoint,
		.server_key = t->skeys.pub,
		.keys = &t->ckeys,
		.hello = "{}",
		.nthreads = nthreads,
		.compress = true,
		.window = window,
		.timeout_ms = 5000,
	};

	assert_non_null(data);
	fill_random(data, len); /* incompressible: what is on the wire is what was read */
	t->on_hello = ON_HELLO_ACCEPT_STALLED;
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", t->port);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	cfg.fd = p[0];
	t->feed = (struct feeder){.fd = p[1], .data = data, .len = len};
	t->chk.data = data;
	t->chk.len = len;
	t->snd = mig_send_start(&cfg, &snd_ops, t, err, sizeof(err));
	if (!t->snd)
		fail_msg("mig_send_start: %s", err);
	assert_int_equal(pthread_create(&t->feed.thr, NULL, feeder_main, &t->feed), 0);
	run_until(t, got_accepted, 5000);

	/* the target's writer is stuck in its first block (a pipe holds 64 KiB) */
	run_for(t, 1500);
	mig_send_stats(t->snd, &st);
	assert_int_equal(mig_server_stats(t->srv, t->conn, &srv_st), 0);
	print_message("stalled target: source read %" PRIu64 " KiB (bound %" PRIu64
		      " KiB), sent %" PRIu64 " blocks; target wrote %" PRIu64 " KiB\n",
		      st.raw_bytes >> 10, bound >> 10, st.blocks, srv_st.raw_bytes >> 10);
	assert_int_equal(srv_st.raw_bytes, 0);
	assert_true(st.raw_bytes <= bound);
	assert_true(st.blocks <= window);
	/* it did stream up to its window: the bound is flow control, not a slow start */
	assert_true(st.raw_bytes >= window * (uint64_t)MIG_BLOCK_SIZE);
	assert_int_equal(t->finished, 0);
	assert_int_equal(t->ended, 0);

	/* still stalled a second later: still bounded */
	run_for(t, 1000);
	mig_send_stats(t->snd, &st);
	assert_true(st.raw_bytes <= bound);

	/* the target reads again: all of it arrives, intact */
	assert_int_equal(pthread_create(&t->chk.thr, NULL, checker_main, &t->chk), 0);
	run_until(t, finished_and_ended, 30000);
	if (!t->fin_ok)
		fail_msg("finished(false): %s", t->fin_why);
	pthread_join(t->chk.thr, NULL);
	t->chk.thr = 0;
	assert_false(t->chk.mismatch);
	assert_int_equal(t->chk.got, len);
	e2e_free(t);
	free(data);
}

/* Plain TCP to the port; write @len bytes of @junk, then wait up to 3 s for the close. */
static void tcp_junk(struct e2e *t, const uint8_t *junk, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
	uint64_t end = now_ms() + 3000;
	size_t off = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	while (off < len) {
		ssize_t n = send(fd, junk + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			break; /* the server closed it */
		run_for(t, 10);
		if (now_ms() > end)
			break;
	}
	run_until(t, got_rejected, 3000);
	close(fd);
}

/* Garbage on the port, not even ZMTP: dropped and reported (for the log). */
static void test_e2e_tcp_garbage(void **state)
{
	static uint8_t junk[64 * 1024];
	uint8_t zmtp[64 + 512];
	struct e2e *t = e2e_new();

	t->on_hello = ON_HELLO_NOTHING;
	fill_random(junk, sizeof(junk));
	junk[0] = 0x01; /* not a ZMTP 3 greeting's 0xff */
	tcp_junk(t, junk, sizeof(junk));
	print_message("random bytes: %s\n", t->rej_why);
	assert_contains(t->rej_why, "garbage: a connection");
	assert_contains(t->rej_why, "closed before a valid ZMTP handshake");

	/* a ZMTP 3.0 greeting asking for CURVE, then junk where its HELLO goes */
	t->rejected = 0;
	memset(zmtp, 0, sizeof(zmtp));
	zmtp[0] = 0xff;
	zmtp[9] = 0x7f;
	zmtp[10] = 3;
	memcpy(zmtp + 12, "CURVE", 5);
	fill_random(zmtp + 64, sizeof(zmtp) - 64);
	zmtp[64] = 0x04;
	zmtp[65] = 0xc8;
	tcp_junk(t, zmtp, sizeof(zmtp));
	print_message("ZMTP junk: %s\n", t->rej_why);
	assert_contains(t->rej_why, "handshake");
	assert_int_equal(t->incoming, 0);
	e2e_free(t);
}

/* Freed while running (and from within a callback): no callback after, no leak. */
static void free_in_accepted(void *arg, const char *reply)
{
	struct e2e *t = arg;

	t->accepted++;
	mig_send_free(t->snd);
	t->snd = NULL;
}

static void test_e2e_free_running(void **state)
{
	uint8_t *data = stream_data();
	struct e2e *t = e2e_new();
	struct mig_send_ops ops = {.accepted = free_in_accepted, .finished = on_finished};
	char endpoint[64], err[512];
	int p[2];
	struct mig_send_cfg cfg = {
		.endpoint = endpoint,
		.server_key = t->skeys.pub,
		.keys = &t->ckeys,
		.hello = "{}",
		.nthreads = 1,
		.compress = true,
	};

	t->finish_on_end = false;
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", t->port);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	cfg.fd = p[0];
	t->feed = (struct feeder){.fd = p[1], .data = data, .len = STREAM_LEN};
	t->chk.data = data;
	t->chk.len = STREAM_LEN;
	t->snd = mig_send_start(&cfg, &ops, t, err, sizeof(err));
	if (!t->snd)
		fail_msg("mig_send_start: %s", err);
	assert_int_equal(pthread_create(&t->feed.thr, NULL, feeder_main, &t->feed), 0);
	run_until(t, got_accepted, 5000);
	assert_null(t->snd);
	run_until(t, got_ended, 5000);
	assert_false(t->end_ok);
	assert_contains(t->end_why, "aborted by the source: cancelled");
	assert_int_equal(t->finished, 0);
	e2e_free(t);
	free(data);
}

static void test_start_errors(void **state)
{
	struct mig_keys k;
	char err[512] = "";
	struct mig_send_cfg cfg = {0};
	mig_server_t *srv;

	assert_int_equal(zmq_curve_keypair(k.pub, k.sec), 0);
	srv = mig_server_start("tcp://127.0.0.1:*", &k, &srv_ops, NULL, err, sizeof(err));
	assert_non_null(srv);
	{
		char ep[64];
		mig_server_t *again;

		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", mig_server_port(srv));
		again = mig_server_start(ep, &k, &srv_ops, NULL, err, sizeof(err));
		assert_null(again);
		assert_contains(err, "Address already in use");
	}
	assert_null(mig_server_start("bogus://x", &k, &srv_ops, NULL, err, sizeof(err)));
	mig_server_free(srv);

	assert_null(mig_send_start(&cfg, &snd_ops, NULL, err, sizeof(err)));
	cfg = (struct mig_send_cfg){.endpoint = "tcp://127.0.0.1:1",
				    .server_key = "short",
				    .keys = &k,
				    .hello = "{}",
				    .fd = 0,
				    .nthreads = 1};
	assert_null(mig_send_start(&cfg, &snd_ops, NULL, err, sizeof(err)));
	assert_contains(err, "not a Z85 CURVE key");
	cfg.server_key = k.pub;
	cfg.hello = "\xff";
	assert_null(mig_send_start(&cfg, &snd_ops, NULL, err, sizeof(err)));
	assert_contains(err, "not UTF-8");
	cfg.hello = "{}";
	cfg.endpoint = "nope";
	assert_null(mig_send_start(&cfg, &snd_ops, NULL, err, sizeof(err)));
	assert_contains(err, "connect to nope");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip_compressible),
		cmocka_unit_test(test_frame_roundtrip_incompressible),
		cmocka_unit_test(test_frame_roundtrip_sizes),
		cmocka_unit_test(test_frame_encode_errors),
		cmocka_unit_test(test_frame_payload_flip),
		cmocka_unit_test(test_frame_header_flips),
		cmocka_unit_test(test_frame_bad_header),
		cmocka_unit_test(test_frame_lz4_short),
		cmocka_unit_test_setup_teardown(test_keys_create_reload, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_keys_refused, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test(test_key_is_valid),
		cmocka_unit_test(test_proto_roundtrip),
		cmocka_unit_test(test_proto_garbage),
		cmocka_unit_test(test_text_clean),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test_setup_teardown(test_e2e_stream, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_unknown_key, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_corrupt_block, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_reject, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_source_abort, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_target_abort, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_timeout, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_empty, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_wrong_server_key, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_free_running, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_rogue_client, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_flow_control, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_e2e_tcp_garbage, setup_tmpdir,
						teardown_tmpdir),
	};

	/* the feeders write into pipes a failing sender closes */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
