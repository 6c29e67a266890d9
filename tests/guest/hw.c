// SPDX-License-Identifier: MIT
#include "hw.h"
#include "console.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_VECTOR_BASE 0x20

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_INPUT_HZ 1193182

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define CMOS_NMI_OFF 0x80 /* keep NMIs masked while we hold the index register */

#define IDT_ENTRIES (PIC_VECTOR_BASE + 16)
#define GATE_INTR32 0x8e /* present, ring 0, 32-bit interrupt gate: IF cleared on entry */
#define KERNEL_CS 0x08

struct idt_entry {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t zero;
	uint8_t type;
	uint16_t off_hi;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

/*
 * A 64-bit count kept as two words, low first: irq0_entry in boot.S does the add-with-carry,
 * hw_ticks() reads it.
 */
volatile uint32_t hw_tick_count[2];

extern const uint32_t hw_fault_stubs[32];
void irq0_entry(void);
void irq_spurious_entry(void);

static struct idt_entry idt[IDT_ENTRIES];

static void idt_set(int vec, uint32_t handler)
{
	idt[vec].off_lo = handler & 0xffff;
	idt[vec].sel = KERNEL_CS;
	idt[vec].zero = 0;
	idt[vec].type = GATE_INTR32;
	idt[vec].off_hi = handler >> 16;
}

static void idt_init(void)
{
	struct idt_desc desc = {.limit = sizeof(idt) - 1, .base = (uint32_t)idt};
	int vec;

	for (vec = 0; vec < 32; vec++)
		idt_set(vec, hw_fault_stubs[vec]);
	for (vec = PIC_VECTOR_BASE; vec < IDT_ENTRIES; vec++)
		idt_set(vec, (uint32_t)irq_spurious_entry);
	idt_set(PIC_VECTOR_BASE, (uint32_t)irq0_entry);
	__asm__ volatile("lidt %0" : : "m"(desc));
}

/* The BIOS leaves the PIC on vectors 8..15, which collide with CPU exceptions: move it. */
static void pic_init(void)
{
	outb(PIC1_CMD, 0x11); /* ICW1: edge triggered, cascade, ICW4 follows */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, PIC_VECTOR_BASE);
	outb(PIC2_DATA, PIC_VECTOR_BASE + 8);
	outb(PIC1_DATA, 0x04); /* slave on IRQ2 */
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01); /* 8086 mode */
	outb(PIC2_DATA, 0x01);
	/* Only the timer: the disk is polled, so IRQ14 stays masked. */
	outb(PIC1_DATA, 0xfe);
	outb(PIC2_DATA, 0xff);
}

static void pit_init(void)
{
	uint16_t divisor = (PIT_INPUT_HZ + HW_HZ / 2) / HW_HZ;

	outb(PIT_CMD, 0x34); /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
	outb(PIT_CH0, divisor & 0xff);
	outb(PIT_CH0, divisor >> 8);
}

void hw_init(void)
{
	idt_init();
	pic_init();
	pit_init();
	__asm__ volatile("sti");
}

uint64_t hw_ticks(void)
{
	uint32_t hi, lo;

	/* The IRQ may carry into the high half between our two loads: retry until stable. */
	do {
		hi = hw_tick_count[1];
		lo = hw_tick_count[0];
	} while (hi != hw_tick_count[1]);
	return (uint64_t)hi << 32 | lo;
}

uint8_t hw_cmos_read(uint8_t reg)
{
	outb(CMOS_INDEX, CMOS_NMI_OFF | reg);
	return inb(CMOS_DATA);
}

void hw_fault(uint32_t vector)
{
	console_printf("hvguest fault vector=%u\n", (unsigned int)vector);
	for (;;)
		__asm__ volatile("cli; hlt");
}
