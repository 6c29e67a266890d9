// SPDX-License-Identifier: MIT
/*
 * Record encoding and validation. Byte-wise little endian on purpose: the same code runs on the
 * i386 guest and on any host, whatever its endianness or alignment rules.
 */
#include "record.h"

uint32_t hvg_crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;

	/* Bitwise: records are 32 bytes, a table would cost more than it saves. */
	while (len--) {
		crc ^= *p++;
		for (int i = 0; i < 8; i++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return crc ^ 0xffffffffu;
}

static void put_le(uint8_t *p, uint64_t v, int len)
{
	for (int i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int len)
{
	uint64_t v = 0;

	for (int i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void hvg_record_encode(uint8_t *sector, const struct hvg_record *rec)
{
	for (int i = 0; i < HVG_SECTOR_SIZE; i++)
		sector[i] = 0;
	for (int i = 0; i < HVG_MAGIC_LEN; i++)
		sector[i] = (uint8_t)HVG_MAGIC[i];
	put_le(sector + 8, rec->boot_id, 8);
	put_le(sector + 16, rec->seq, 8);
	put_le(sector + 24, rec->counter, 8);
	put_le(sector + 32, hvg_crc32(sector, 32), 4);
}

enum hvg_sector_kind hvg_record_decode(const uint8_t *sector, struct hvg_record *rec)
{
	uint8_t any = 0;
	int i;

	for (i = 0; i < HVG_SECTOR_SIZE; i++)
		any |= sector[i];
	if (!any)
		return HVG_SECTOR_EMPTY;
	for (i = 0; i < HVG_MAGIC_LEN; i++)
		if (sector[i] != (uint8_t)HVG_MAGIC[i])
			return HVG_SECTOR_BAD_MAGIC;
	if (get_le(sector + 32, 4) != hvg_crc32(sector, 32))
		return HVG_SECTOR_BAD_CRC;
	/* The CRC does not cover the tail; a non-zero tail means someone else wrote here. */
	for (i = HVG_RECORD_LEN; i < HVG_SECTOR_SIZE; i++)
		if (sector[i])
			return HVG_SECTOR_BAD_TAIL;
	rec->boot_id = get_le(sector + 8, 8);
	rec->seq = get_le(sector + 16, 8);
	rec->counter = get_le(sector + 24, 8);
	return HVG_SECTOR_VALID;
}

const char *hvg_sector_kind_name(enum hvg_sector_kind kind)
{
	switch (kind) {
	case HVG_SECTOR_EMPTY:
		return "empty";
	case HVG_SECTOR_VALID:
		return "valid";
	case HVG_SECTOR_BAD_MAGIC:
		return "bad magic";
	case HVG_SECTOR_BAD_CRC:
		return "bad crc";
	case HVG_SECTOR_BAD_TAIL:
		return "non-zero tail";
	}
	return "?";
}
