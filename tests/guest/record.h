/* SPDX-License-Identifier: MIT */
/*
 * The test guest's on-disk record, shared by the guest (freestanding, i386) and the host tool
 * hvgrec, so that both sides agree on one definition of "a valid record".
 *
 * One record per 512-byte sector, little endian:
 *   0..7   ASCII magic "HVGREC01"
 *   8..15  boot id (u64)
 *   16..23 seq (u64)
 *   24..31 counter (u64)
 *   32..35 CRC-32 (IEEE 802.3, as zlib's crc32()) of bytes 0..31
 *   36..511 zero
 * The record of seq n lives at LBA 1 + (n % 1024): a ring of 1024 slots, LBA 0 left alone.
 */
#ifndef HVG_RECORD_H
#define HVG_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define HVG_SECTOR_SIZE 512
#define HVG_RING_SLOTS 1024
#define HVG_RING_FIRST_LBA 1
#define HVG_MAGIC "HVGREC01"
#define HVG_MAGIC_LEN 8
#define HVG_RECORD_LEN 36

struct hvg_record {
	uint64_t boot_id;
	uint64_t seq;
	uint64_t counter;
};

/* What a sector holds; everything but EMPTY and VALID is a corrupt sector. */
enum hvg_sector_kind {
	HVG_SECTOR_EMPTY,     /* all zero: never written */
	HVG_SECTOR_VALID,     /* magic and CRC good, tail zero */
	HVG_SECTOR_BAD_MAGIC, /* non-zero but not one of ours */
	HVG_SECTOR_BAD_CRC,   /* our magic, CRC mismatch: torn or flipped */
	HVG_SECTOR_BAD_TAIL,  /* good record but bytes 36..511 not zero */
};

/* CRC-32 as zlib computes it (reflected 0xedb88320, init and final xor 0xffffffff). */
uint32_t hvg_crc32(const void *buf, size_t len);

/* Fill a whole sector (HVG_SECTOR_SIZE bytes) with the record and zero padding. */
void hvg_record_encode(uint8_t *sector, const struct hvg_record *rec);

/* Classify a sector; @rec is filled only when the result is HVG_SECTOR_VALID. */
enum hvg_sector_kind hvg_record_decode(const uint8_t *sector, struct hvg_record *rec);

/* Short human name of a sector kind, for diagnostics. */
const char *hvg_sector_kind_name(enum hvg_sector_kind kind);

/* The LBA that holds seq; a power-of-two mask so the i386 guest needs no 64-bit division. */
static inline uint32_t hvg_record_lba(uint64_t seq)
{
	return HVG_RING_FIRST_LBA + (uint32_t)(seq & (HVG_RING_SLOTS - 1));
}

#endif /* HVG_RECORD_H */
