// SPDX-License-Identifier: MIT
/*
 * hvguest: the cluster's test guest. It proves two things to the tests: that it is alive (a
 * RAM counter on the PIT, printed every second) and what it has durably committed (numbered
 * records on disk, flushed before the "commit" line is printed). A fresh boot id per boot lets
 * hvgrec tell boots apart, so two instances of one VM running at once show up on the disk.
 *
 * Console lines (COM1):
 *   hvguest boot id=<16 hex>
 *   hvguest scan valid=<n> corrupt=<n>
 *   hvguest resume seq=<n>
 *   commit seq=<n> boot=<16 hex> counter=<c>
 *   hvguest alive counter=<c>
 *   hvguest io-error             (once; then no more disk I/O, heartbeat goes on)
 *
 * Command line: interval_ms=<ms between commits, default 100> dirty_mb=<MiB to keep dirtying>
 *   dirty_data=counter|text  what each pass writes (default counter):
 *     counter  a counter per 32-bit word, different on every pass: all but incompressible for
 *              LZ4, and neither zero-page nor delta encoding can skip it
 *     text     64-byte units of half a phrase out of 64 (32 bytes of text) and half random
 *              bytes, chosen anew on every pass: compresses about 1.8:1 with LZ4, as RAM of
 *              a real guest does (page cache, heaps) or better; still nothing to skip
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ata.h"
#include "console.h"
#include "hw.h"
#include "record.h"

#define MB_BOOT_MAGIC 0x2badb002
#define MB_INFO_MEM 0x001
#define MB_INFO_CMDLINE 0x004

#define MIB (1024u * 1024u)
#define DEFAULT_INTERVAL_MS 100
#define ALIVE_INTERVAL_MS 1000
#define SCAN_BATCH 16		  /* sectors per READ SECTORS during the boot scan */
#define DIRTY_CHUNK (64u * 1024u) /* small enough to check the clock every ~0.1 ms under TCG */
#define DIRTY_TOP_RESERVE MIB	  /* the firmware's ACPI tables sit at the top of RAM */

/* The start of the multiboot v1 info structure: all we read of it. */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower;
	uint32_t mem_upper; /* KiB of RAM above 1 MiB */
	uint32_t boot_device;
	uint32_t cmdline;
};

struct guest {
	uint64_t boot_id;
	uint64_t seq; /* the seq the next commit will carry */
	uint32_t interval_ms;
	bool disk_ok;
	uint8_t *dirty_base;
	uint32_t dirty_len;
	uint32_t dirty_pos;
	uint32_t dirty_pass;
	bool dirty_text;
	uint32_t rng;
};

#define PHRASES 64
#define PHRASE_WORDS 8 /* 32 bytes */

static uint32_t phrases[PHRASES][PHRASE_WORDS];

extern char _end[]; /* from hvguest.ld: the end of our image, BSS included */

static uint8_t sector_buf[SCAN_BATCH * HVG_SECTOR_SIZE];

void guest_main(uint32_t magic, const struct mb_info *mbi);

/* splitmix64's finaliser: spreads every input bit over the whole id. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/*
 * RDTSC differs between boots by however long firmware and loader took, the RTC by the wall
 * clock, the PIT's running count by where in its period we are: any one of them alone could
 * repeat, all together practically never.
 */
static uint64_t make_boot_id(void)
{
	uint64_t rtc = 0, h = rdtsc();
	static const uint8_t rtc_regs[] = {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
	uint8_t pit_lo, pit_hi;

	for (int spin = 0; spin < 100000 && (hw_cmos_read(0x0a) & 0x80); spin++)
		; /* update in progress: the time registers are in flux */
	for (unsigned int i = 0; i < sizeof(rtc_regs); i++)
		rtc = rtc << 8 | hw_cmos_read(rtc_regs[i]);
	outb(0x43, 0x00); /* latch PIT channel 0 */
	pit_lo = inb(0x40);
	pit_hi = inb(0x40);
	h = mix64(h ^ mix64(rtc));
	h = mix64(h ^ ((uint64_t)pit_hi << 8 | pit_lo) ^ rdtsc() << 20);
	return h ? h : 1;
}

static bool parse_u32(const char *s, uint32_t *out)
{
	uint32_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT32_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint32_t)(*s - '0');
	}
	if (*s && *s != ' ')
		return false;
	*out = v;
	return true;
}

static bool has_prefix(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return false;
	return true;
}

/* QEMU passes "<kernel path> <-append text>"; any token may be a key=value of ours. */
static void parse_cmdline(const char *cmdline, uint32_t *interval_ms, uint32_t *dirty_mb,
			  bool *dirty_text)
{
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		if (has_prefix(p, "interval_ms=")) {
			if (!parse_u32(p + 12, interval_ms) || !*interval_ms) {
				*interval_ms = DEFAULT_INTERVAL_MS;
				console_printf("hvguest bad interval_ms, using %u\n",
					       (unsigned int)*interval_ms);
			}
		} else if (has_prefix(p, "dirty_mb=")) {
			if (!parse_u32(p + 9, dirty_mb))
				console_printf("hvguest bad dirty_mb, not dirtying\n");
		} else if (has_prefix(p, "dirty_data=text")) {
			*dirty_text = true;
		} else if (has_prefix(p, "dirty_data=") && !has_prefix(p, "dirty_data=counter")) {
			console_printf("hvguest bad dirty_data, using counter\n");
		}
		while (*p && *p != ' ')
			p++;
	}
}

/* The first failure ends all disk I/O: a half-working disk would only muddy the records. */
static void disk_failed(struct guest *g, const char *op, uint32_t lba, int err)
{
	if (op)
		console_printf("hvguest disk: %s lba %u failed: %s\n", op, (unsigned int)lba,
			       ata_strerror(err));
	else
		console_printf("hvguest disk: %s\n", ata_strerror(err));
	console_printf("hvguest io-error\n");
	g->disk_ok = false;
}

/* Find the highest valid seq in the ring so that a restarted guest carries on after it. */
static void scan_ring(struct guest *g)
{
	uint32_t valid = 0, corrupt = 0;
	bool found = false;
	uint64_t max_seq = 0;

	for (uint32_t lba = HVG_RING_FIRST_LBA; lba < HVG_RING_FIRST_LBA + HVG_RING_SLOTS;
	     lba += SCAN_BATCH) {
		int ret = ata_read(lba, SCAN_BATCH, sector_buf);

		if (ret) {
			disk_failed(g, "read", lba, ret);
			return;
		}
		for (uint32_t i = 0; i < SCAN_BATCH; i++) {
			struct hvg_record rec;
			enum hvg_sector_kind kind;

			kind = hvg_record_decode(sector_buf + i * HVG_SECTOR_SIZE, &rec);
			if (kind == HVG_SECTOR_EMPTY)
				continue;
			/* A record in the wrong slot is as untrustworthy as a bad CRC. */
			if (kind != HVG_SECTOR_VALID || hvg_record_lba(rec.seq) != lba + i) {
				corrupt++;
				continue;
			}
			valid++;
			if (!found || rec.seq > max_seq)
				max_seq = rec.seq;
			found = true;
		}
	}
	g->seq = found ? max_seq + 1 : 0;
	console_printf("hvguest scan valid=%u corrupt=%u\n", (unsigned int)valid,
		       (unsigned int)corrupt);
	console_printf("hvguest resume seq=%llu\n", (unsigned long long)g->seq);
}

/* Write, flush, and only then say "commit": a printed commit must survive any crash. */
static void commit(struct guest *g)
{
	struct hvg_record rec = {
		.boot_id = g->boot_id,
		.seq = g->seq,
		.counter = hw_ticks(),
	};
	uint32_t lba = hvg_record_lba(rec.seq);
	int ret;

	hvg_record_encode(sector_buf, &rec);
	ret = ata_write(lba, sector_buf);
	if (ret) {
		disk_failed(g, "write", lba, ret);
		return;
	}
	ret = ata_flush();
	if (ret) {
		disk_failed(g, "flush", lba, ret);
		return;
	}
	console_printf("commit seq=%llu boot=%016llx counter=%llu\n", (unsigned long long)rec.seq,
		       (unsigned long long)rec.boot_id, (unsigned long long)rec.counter);
	g->seq++;
}

/*
 * Dirty the region from past our image (and past the multiboot info QEMU puts right after it)
 * up to below the firmware's tables at the top of RAM.
 */
static void dirty_setup(struct guest *g, const struct mb_info *mbi, uint32_t dirty_mb)
{
	uint32_t base = ((uint32_t)_end + 64 * 1024 + MIB - 1) & ~(MIB - 1);
	uint32_t top, avail_mb;

	if (!dirty_mb)
		return;
	if (!mbi || !(mbi->flags & MB_INFO_MEM)) {
		console_printf("hvguest dirty_mb: no memory size from the loader, not dirtying\n");
		return;
	}
	top = MIB + mbi->mem_upper * 1024u - DIRTY_TOP_RESERVE;
	avail_mb = top > base ? (top - base) / MIB : 0;
	if (dirty_mb > avail_mb) {
		console_printf("hvguest dirty_mb=%u exceeds free RAM, using %u\n",
			       (unsigned int)dirty_mb, (unsigned int)avail_mb);
		dirty_mb = avail_mb;
	}
	g->dirty_base = (uint8_t *)base;
	g->dirty_len = dirty_mb * MIB;
	if (g->dirty_len)
		console_printf("hvguest dirtying %u MiB at 0x%x\n", (unsigned int)dirty_mb,
			       (unsigned int)base);
}

static uint32_t xorshift32(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* The phrase table of dirty_data=text: lowercase words and spaces, from the boot id. */
static void phrases_setup(struct guest *g)
{
	uint32_t x = (uint32_t)g->boot_id | 1;

	for (uint32_t i = 0; i < PHRASES; i++)
		for (uint32_t w = 0; w < PHRASE_WORDS; w++) {
			uint32_t r = xorshift32(&x), v = 0;

			for (uint32_t b = 0; b < 4; b++, r >>= 5)
				v |= ((r & 31) < 26 ? 'a' + (r & 31) : ' ') << (8 * b);
			phrases[i][w] = v;
		}
	g->rng = x;
}

/* One chunk, then back to the main loop: commits and heartbeats must not wait for a pass. */
static void dirty_step(struct guest *g)
{
	uint32_t *p = (uint32_t *)(g->dirty_base + g->dirty_pos);
	uint32_t stamp = g->dirty_pass * 0x9e3779b9u;

	if (g->dirty_text) {
		for (uint32_t i = 0; i < DIRTY_CHUNK / 4; i += 2 * PHRASE_WORDS) {
			const uint32_t *ph = phrases[xorshift32(&g->rng) % PHRASES];

			for (uint32_t w = 0; w < PHRASE_WORDS; w++)
				p[i + w] = ph[w];
			for (uint32_t w = PHRASE_WORDS; w < 2 * PHRASE_WORDS; w++)
				p[i + w] = xorshift32(&g->rng);
		}
	} else {
		/* Different data on every pass, so neither zero-page nor delta encoding can skip it. */
		for (uint32_t i = 0; i < DIRTY_CHUNK / 4; i++)
			p[i] = stamp ^ i;
	}
	g->dirty_pos += DIRTY_CHUNK;
	if (g->dirty_pos >= g->dirty_len) {
		g->dirty_pos = 0;
		g->dirty_pass++;
	}
}

static uint64_t next_deadline(uint64_t deadline, uint32_t period, uint64_t now)
{
	deadline += period;
	/* After a stall (a slow flush, a paused VM) skip the missed slots instead of bursting. */
	return deadline > now ? deadline : now + period;
}

static void run(struct guest *g)
{
	uint64_t now = hw_ticks();
	uint64_t next_commit = now + g->interval_ms;
	uint64_t next_alive = now + ALIVE_INTERVAL_MS;

	for (;;) {
		now = hw_ticks();
		if (g->disk_ok && now >= next_commit) {
			commit(g);
			now = hw_ticks();
			next_commit = next_deadline(next_commit, g->interval_ms, now);
		}
		if (now >= next_alive) {
			console_printf("hvguest alive counter=%llu\n", (unsigned long long)now);
			next_alive = next_deadline(next_alive, ALIVE_INTERVAL_MS, now);
		}
		if (g->dirty_len)
			dirty_step(g);
		else
			hw_idle();
	}
}

void guest_main(uint32_t magic, const struct mb_info *mbi)
{
	struct guest g = {.interval_ms = DEFAULT_INTERVAL_MS};
	uint32_t dirty_mb = 0;
	int ret;

	console_init();
	g.boot_id = make_boot_id();
	console_printf("hvguest boot id=%016llx\n", (unsigned long long)g.boot_id);
	if (magic != MB_BOOT_MAGIC) {
		console_printf("hvguest not started by a multiboot loader, using defaults\n");
		mbi = NULL;
	}
	if (mbi && (mbi->flags & MB_INFO_CMDLINE))
		parse_cmdline((const char *)mbi->cmdline, &g.interval_ms, &dirty_mb,
			      &g.dirty_text);
	/* Before the first chunk of dirtying can overwrite the loader's data. */
	dirty_setup(&g, mbi, dirty_mb);
	if (g.dirty_text)
		phrases_setup(&g);
	hw_init();

	ret = ata_probe(HVG_RING_FIRST_LBA + HVG_RING_SLOTS);
	g.disk_ok = true;
	if (ret)
		disk_failed(&g, NULL, 0, ret);
	else
		scan_ring(&g);
	run(&g);
}
