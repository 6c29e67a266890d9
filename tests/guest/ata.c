// SPDX-License-Identifier: MIT
#include <stdbool.h>

#include "ata.h"
#include "hw.h"

#define ATA_IO 0x1f0
#define ATA_REG_DATA (ATA_IO + 0)
#define ATA_REG_ERROR (ATA_IO + 1)
#define ATA_REG_COUNT (ATA_IO + 2)
#define ATA_REG_LBA0 (ATA_IO + 3)
#define ATA_REG_LBA1 (ATA_IO + 4)
#define ATA_REG_LBA2 (ATA_IO + 5)
#define ATA_REG_DEVICE (ATA_IO + 6)
#define ATA_REG_STATUS (ATA_IO + 7)
#define ATA_REG_COMMAND (ATA_IO + 7)
#define ATA_REG_CONTROL 0x3f6 /* write: device control; read: alternate status */

#define ATA_SR_ERR 0x01
#define ATA_SR_DRQ 0x08
#define ATA_SR_DF 0x20
#define ATA_SR_BSY 0x80
#define ATA_STATUS_FLOATING 0xff /* no controller or no drive pulling the bus */

#define ATA_CTL_NIEN 0x02
#define ATA_DEV_LBA_MASTER 0xe0

#define ATA_CMD_READ_SECTORS 0x20
#define ATA_CMD_WRITE_SECTORS 0x30
#define ATA_CMD_FLUSH_CACHE 0xe7
#define ATA_CMD_IDENTIFY 0xec

#define ATA_WORDS_PER_SECTOR 256

/* The spec wants 400 ns after a command or device select before status means anything. */
static void ata_delay400(void)
{
	for (int i = 0; i < 4; i++)
		(void)inb(ATA_REG_CONTROL);
}

/*
 * Wait for BSY to drop, then for DRQ if @want_drq. Interrupts stay on meanwhile, so the tick
 * count that bounds the wait keeps moving.
 */
static int ata_wait(bool want_drq)
{
	uint64_t deadline = hw_ticks() + ATA_TIMEOUT_MS * (HW_HZ / 1000);

	for (;;) {
		uint8_t st = inb(ATA_REG_STATUS);

		if (st == ATA_STATUS_FLOATING)
			return -ATA_ENODEV;
		if (!(st & ATA_SR_BSY)) {
			if (st & (ATA_SR_ERR | ATA_SR_DF))
				return -ATA_EIO;
			if (!want_drq || (st & ATA_SR_DRQ))
				return 0;
		}
		if (hw_ticks() > deadline)
			return -ATA_ETIMEDOUT;
	}
}

static int ata_command(uint32_t lba, uint32_t count, uint8_t cmd)
{
	int ret;

	outb(ATA_REG_DEVICE, ATA_DEV_LBA_MASTER | (lba >> 24 & 0x0f));
	ata_delay400();
	ret = ata_wait(false);
	if (ret)
		return ret;
	outb(ATA_REG_COUNT, count & 0xff); /* 0 means 256 */
	outb(ATA_REG_LBA0, lba & 0xff);
	outb(ATA_REG_LBA1, lba >> 8 & 0xff);
	outb(ATA_REG_LBA2, lba >> 16 & 0xff);
	outb(ATA_REG_COMMAND, cmd);
	ata_delay400();
	return 0;
}

int ata_probe(uint32_t min_sectors)
{
	uint16_t id[ATA_WORDS_PER_SECTOR];
	uint32_t sectors;
	int ret;

	if (inb(ATA_REG_STATUS) == ATA_STATUS_FLOATING)
		return -ATA_ENODEV;
	outb(ATA_REG_CONTROL, ATA_CTL_NIEN);
	outb(ATA_REG_DEVICE, ATA_DEV_LBA_MASTER);
	ata_delay400();
	/*
	 * Registers of an absent drive do not hold what we write (QEMU reads back 0 when the
	 * channel has no drive, real hardware floats at 0xff).
	 */
	outb(ATA_REG_COUNT, 0x55);
	outb(ATA_REG_LBA0, 0xaa);
	if (inb(ATA_REG_COUNT) != 0x55 || inb(ATA_REG_LBA0) != 0xaa)
		return -ATA_ENODEV;

	ret = ata_command(0, 0, ATA_CMD_IDENTIFY);
	if (ret)
		return ret;
	/* A CD-ROM aborts IDENTIFY (it wants IDENTIFY PACKET): not a disk for us. */
	ret = ata_wait(true);
	if (ret)
		return ret == -ATA_EIO ? -ATA_ENODEV : ret;
	insw(ATA_REG_DATA, id, ATA_WORDS_PER_SECTOR);
	sectors = (uint32_t)id[61] << 16 | id[60]; /* words 60-61: LBA28 capacity */
	return sectors < min_sectors ? -ATA_ENOSPC : 0;
}

int ata_read(uint32_t lba, uint32_t count, void *buf)
{
	uint8_t *p = buf;
	int ret;

	ret = ata_command(lba, count, ATA_CMD_READ_SECTORS);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < count; i++) {
		ret = ata_wait(true);
		if (ret)
			return ret;
		insw(ATA_REG_DATA, p, ATA_WORDS_PER_SECTOR);
		p += ATA_WORDS_PER_SECTOR * 2;
	}
	return 0;
}

int ata_write(uint32_t lba, const void *buf)
{
	int ret;

	ret = ata_command(lba, 1, ATA_CMD_WRITE_SECTORS);
	if (ret)
		return ret;
	ret = ata_wait(true);
	if (ret)
		return ret;
	outsw(ATA_REG_DATA, buf, ATA_WORDS_PER_SECTOR);
	ata_delay400();
	return ata_wait(false);
}

int ata_flush(void)
{
	int ret;

	ret = ata_command(0, 0, ATA_CMD_FLUSH_CACHE);
	if (ret)
		return ret;
	return ata_wait(false);
}

const char *ata_strerror(int err)
{
	switch (-err) {
	case ATA_EIO:
		return "device error";
	case ATA_ENODEV:
		return "no ATA disk";
	case ATA_ENOSPC:
		return "disk too small";
	case ATA_ETIMEDOUT:
		return "timeout";
	}
	return "unknown error";
}
