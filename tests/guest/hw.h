/* SPDX-License-Identifier: MIT */
/*
 * The PC the test guest runs on: port I/O, the interrupt setup (IDT, 8259 PIC, 8254 PIT at
 * HW_HZ) and the CMOS clock.
 */
#ifndef HVG_HW_H
#define HVG_HW_H

#include <stdint.h>

/* One tick per millisecond keeps interval arithmetic free of divisions. */
#define HW_HZ 1000

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void insw(uint16_t port, void *buf, uint32_t count)
{
	__asm__ volatile("cld; rep insw" : "+D"(buf), "+c"(count) : "d"(port) : "memory");
}

static inline void outsw(uint16_t port, const void *buf, uint32_t count)
{
	__asm__ volatile("cld; rep outsw" : "+S"(buf), "+c"(count) : "d"(port) : "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* Sleep until the next interrupt; with the PIT running that is at most one tick. */
static inline void hw_idle(void)
{
	__asm__ volatile("sti; hlt" : : : "memory");
}

/* Install the IDT, remap the PIC to vectors 0x20..0x2f, start the PIT and enable interrupts. */
void hw_init(void);

/* Ticks (milliseconds) since hw_init(); the guest's RAM counter. */
uint64_t hw_ticks(void);

/* Read a CMOS register (RTC time fields are 0x00..0x09), raw: BCD or binary as the RTC keeps it. */
uint8_t hw_cmos_read(uint8_t reg);

/* Called from the exception stubs in boot.S; prints the vector and halts for good. */
void hw_fault(uint32_t vector) __attribute__((noreturn));

#endif /* HVG_HW_H */
