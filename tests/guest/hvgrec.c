// SPDX-License-Identifier: MIT
/*
 * hvgrec: check or dump the record ring the test guest (hvguest) leaves on its disk.
 *
 *   hvgrec check FILE [--json] [--offset BYTES]
 *   hvgrec dump FILE [--offset BYTES]
 *
 * FILE is a raw disk image, or one that starts BYTES into a bigger file. Exit status of check:
 * 0 the ring is consistent, 1 it is not, 2 usage error or the file cannot be read.
 *
 * What "consistent" means. The ring has 1024 slots, LBA 1..1024, and slot n % 1024 (LBA
 * 1 + n % 1024) holds seq n. The guest writes seq n only after seq n-1 was flushed, and a
 * restarted guest resumes at (highest valid seq on disk) + 1. So after any sequence of runs
 * and crashes, with one guest at a time, the ring holds exactly the last seqs written:
 *   1. every non-zero sector is a valid record (magic, CRC, zero tail), else it is corrupt;
 *   2. a valid record at LBA L has seq % 1024 == L - 1, else it is misplaced;
 *   3. with c valid records and highest seq m, the seqs are exactly m-c+1 .. m. Rule 2 puts
 *      each seq in its own slot, so no seq can appear twice and it is enough that the lowest
 *      seq is m-c+1: any gap (a lost or overwritten commit) makes the lowest seq smaller;
 *   4. each boot id owns one run of seqs: sorted by first seq, a boot's last seq is below the
 *      next boot's first. Boots that interleave mean two guests wrote the disk at once, the
 *      "VM ran twice" that the cluster must never allow.
 * An all-zero ring is consistent (nothing was committed).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "record.h"

#define EXIT_INCONSISTENT 1
#define EXIT_USAGE 2

struct boot_stat {
	uint64_t id;
	uint64_t first_seq;
	uint64_t last_seq;
	uint32_t records;
};

struct ring_check {
	uint32_t valid;
	uint32_t corrupt;
	uint32_t misplaced;
	uint64_t min_seq;
	uint64_t max_seq;
	bool contiguous;
	bool boots_overlap;
	size_t nboots;
	struct boot_stat boots[HVG_RING_SLOTS];
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvgrec check FILE [--json] [--offset BYTES]\n"
		"       hvgrec dump FILE [--offset BYTES]\n");
}

/* Read the ring; sectors past the end of the file read as zero, like a sparse image's. */
static int read_ring(const char *file, uint64_t offset, uint8_t *ring)
{
	size_t len = (size_t)HVG_RING_SLOTS * HVG_SECTOR_SIZE, done = 0;
	off_t pos = (off_t)(offset + (uint64_t)HVG_RING_FIRST_LBA * HVG_SECTOR_SIZE);
	int fd, ret = 0;

	fd = open(file, O_RDONLY);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = pread(fd, ring + done, len - done, pos + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(ring + done, 0, len - done);
	close(fd);
	return ret;
}

static const uint8_t *ring_sector(const uint8_t *ring, uint32_t lba)
{
	return ring + (size_t)(lba - HVG_RING_FIRST_LBA) * HVG_SECTOR_SIZE;
}

static void boot_account(struct ring_check *c, const struct hvg_record *rec)
{
	struct boot_stat *b;
	size_t i;

	for (i = 0; i < c->nboots; i++)
		if (c->boots[i].id == rec->boot_id)
			break;
	b = &c->boots[i];
	if (i == c->nboots) {
		c->nboots++;
		*b = (struct boot_stat){rec->boot_id, rec->seq, rec->seq, 0};
	}
	if (rec->seq < b->first_seq)
		b->first_seq = rec->seq;
	if (rec->seq > b->last_seq)
		b->last_seq = rec->seq;
	b->records++;
}

static int boot_cmp(const void *a, const void *b)
{
	const struct boot_stat *x = a, *y = b;

	return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

/* Apply rules 1-4 of the header comment; @verbose prints each bad sector to stdout. */
static void ring_check(const uint8_t *ring, struct ring_check *c, bool verbose)
{
	memset(c, 0, sizeof(*c));
	for (uint32_t lba = HVG_RING_FIRST_LBA; lba < HVG_RING_FIRST_LBA + HVG_RING_SLOTS; lba++) {
		struct hvg_record rec;
		enum hvg_sector_kind kind = hvg_record_decode(ring_sector(ring, lba), &rec);

		if (kind == HVG_SECTOR_EMPTY)
			continue;
		if (kind != HVG_SECTOR_VALID) {
			c->corrupt++;
			if (verbose)
				printf("lba %" PRIu32 ": corrupt (%s)\n", lba,
				       hvg_sector_kind_name(kind));
			continue;
		}
		if (hvg_record_lba(rec.seq) != lba) {
			c->misplaced++;
			if (verbose)
				printf("lba %" PRIu32 ": seq %" PRIu64
				       " misplaced, belongs at lba %" PRIu32 "\n",
				       lba, rec.seq, hvg_record_lba(rec.seq));
			continue;
		}
		if (!c->valid || rec.seq < c->min_seq)
			c->min_seq = rec.seq;
		if (!c->valid || rec.seq > c->max_seq)
			c->max_seq = rec.seq;
		c->valid++;
		boot_account(c, &rec);
	}
	c->contiguous = !c->valid || c->min_seq == c->max_seq - (c->valid - 1);
	qsort(c->boots, c->nboots, sizeof(c->boots[0]), boot_cmp);
	for (size_t i = 1; i < c->nboots; i++)
		if (c->boots[i - 1].last_seq >= c->boots[i].first_seq)
			c->boots_overlap = true;
}

static bool ring_is_ok(const struct ring_check *c)
{
	return !c->corrupt && !c->misplaced && c->contiguous && !c->boots_overlap;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_json(const char *file, const struct ring_check *c)
{
	printf("{\"file\":");
	json_string(file);
	printf(",\"valid\":%" PRIu32 ",\"corrupt\":%" PRIu32 ",\"misplaced\":%" PRIu32, c->valid,
	       c->corrupt, c->misplaced);
	if (c->valid)
		printf(",\"min_seq\":%" PRIu64 ",\"max_seq\":%" PRIu64, c->min_seq, c->max_seq);
	else
		printf(",\"min_seq\":null,\"max_seq\":null");
	printf(",\"contiguous\":%s,\"boots_overlap\":%s,\"ok\":%s,\"boots\":[",
	       c->contiguous ? "true" : "false", c->boots_overlap ? "true" : "false",
	       ring_is_ok(c) ? "true" : "false");
	for (size_t i = 0; i < c->nboots; i++) {
		const struct boot_stat *b = &c->boots[i];

		printf("%s{\"id\":\"%016" PRIx64 "\",\"first_seq\":%" PRIu64
		       ",\"last_seq\":%" PRIu64 ",\"records\":%" PRIu32 "}",
		       i ? "," : "", b->id, b->first_seq, b->last_seq, b->records);
	}
	printf("]}\n");
}

static void print_text(const char *file, const struct ring_check *c)
{
	printf("file:       %s\n", file);
	printf("valid:      %" PRIu32 "\n", c->valid);
	printf("corrupt:    %" PRIu32 "\n", c->corrupt);
	printf("misplaced:  %" PRIu32 "\n", c->misplaced);
	if (c->valid)
		printf("seqs:       %" PRIu64 "..%" PRIu64 " (max seq %" PRIu64 ")\n", c->min_seq,
		       c->max_seq, c->max_seq);
	else
		printf("seqs:       none\n");
	printf("contiguous: %s\n", c->contiguous ? "yes" : "no");
	printf("boots:      %zu%s\n", c->nboots, c->boots_overlap ? " (OVERLAPPING)" : "");
	for (size_t i = 0; i < c->nboots; i++)
		printf("  boot %016" PRIx64 " seq %" PRIu64 "..%" PRIu64 " (%" PRIu32 " records)\n",
		       c->boots[i].id, c->boots[i].first_seq, c->boots[i].last_seq,
		       c->boots[i].records);
	printf("result:     %s\n", ring_is_ok(c) ? "OK" : "INCONSISTENT");
}

static void dump(const uint8_t *ring)
{
	for (uint32_t lba = HVG_RING_FIRST_LBA; lba < HVG_RING_FIRST_LBA + HVG_RING_SLOTS; lba++) {
		struct hvg_record rec;

		if (hvg_record_decode(ring_sector(ring, lba), &rec) != HVG_SECTOR_VALID)
			continue;
		printf("lba=%" PRIu32 " seq=%" PRIu64 " boot=%016" PRIx64 " counter=%" PRIu64
		       "%s\n",
		       lba, rec.seq, rec.boot_id, rec.counter,
		       hvg_record_lba(rec.seq) == lba ? "" : " misplaced");
	}
}

static bool parse_offset(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > INT64_MAX / 2)
		return false;
	*out = v;
	return true;
}

struct args {
	const char *cmd;
	const char *file;
	bool json;
	uint64_t offset;
};

static bool parse_args(int argc, char **argv, struct args *a)
{
	if (argc < 3)
		return false;
	a->cmd = argv[1];
	if (strcmp(a->cmd, "check") && strcmp(a->cmd, "dump"))
		return false;
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "--json") && !strcmp(a->cmd, "check")) {
			a->json = true;
		} else if (!strcmp(arg, "--offset") && i + 1 < argc) {
			if (!parse_offset(argv[++i], &a->offset))
				return false;
		} else if (!strncmp(arg, "--offset=", 9)) {
			if (!parse_offset(arg + 9, &a->offset))
				return false;
		} else if (arg[0] == '-' || a->file) {
			return false;
		} else {
			a->file = arg;
		}
	}
	return a->file != NULL;
}

int main(int argc, char **argv)
{
	static uint8_t ring[HVG_RING_SLOTS * HVG_SECTOR_SIZE];
	static struct ring_check check;
	struct args a = {0};
	int ret;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (!parse_args(argc, argv, &a)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	ret = read_ring(a.file, a.offset, ring);
	if (ret) {
		fprintf(stderr, "hvgrec: %s: %s\n", a.file, strerror(-ret));
		return EXIT_USAGE;
	}
	if (!strcmp(a.cmd, "dump")) {
		dump(ring);
		return 0;
	}
	ring_check(ring, &check, !a.json);
	if (a.json)
		print_json(a.file, &check);
	else
		print_text(a.file, &check);
	return ring_is_ok(&check) ? 0 : EXIT_INCONSISTENT;
}
