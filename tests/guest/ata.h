/* SPDX-License-Identifier: MIT */
/*
 * Polled ATA PIO on the primary IDE channel, master drive, LBA28. Functions return 0 or a
 * negative ATA_E* code (errno values, for familiarity; the guest has no errno.h).
 */
#ifndef HVG_ATA_H
#define HVG_ATA_H

#include <stdint.h>

#define ATA_EIO 5	  /* the drive set ERR or DF */
#define ATA_ENODEV 19	  /* nothing there, or not an ATA disk (an ATAPI CD-ROM) */
#define ATA_ENOSPC 28	  /* the disk is too small for the record ring */
#define ATA_ETIMEDOUT 110 /* BSY or DRQ did not settle within ATA_TIMEOUT_MS */

#define ATA_TIMEOUT_MS 10000

/* Find the drive and check it holds at least @min_sectors; also turns its interrupt off. */
int ata_probe(uint32_t min_sectors);

/* Read @count (1..256) sectors starting at @lba into @buf. */
int ata_read(uint32_t lba, uint32_t count, void *buf);

/* Write one sector; not durable until ata_flush() returns 0. */
int ata_write(uint32_t lba, const void *buf);

/* FLUSH CACHE: returns once everything written before is on stable storage. */
int ata_flush(void);

/* Short name of an ATA_E* code, for the console. */
const char *ata_strerror(int err);

#endif /* HVG_ATA_H */
