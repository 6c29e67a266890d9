// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "console.h"
#include "hw.h"

#define COM1 0x3f8
#define UART_LSR_THRE 0x20

void console_init(void)
{
	outb(COM1 + 1, 0x00); /* no UART interrupts: we poll */
	outb(COM1 + 3, 0x80); /* DLAB on to set the divisor */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1, DLAB off */
	outb(COM1 + 2, 0xc7); /* FIFO on and cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void console_putc(char c)
{
	/* Bounded so a missing or wedged UART cannot hang the guest. */
	for (int spin = 0; spin < 100000; spin++)
		if (inb(COM1 + 5) & UART_LSR_THRE)
			break;
	outb(COM1, (uint8_t)c);
}

static void console_puts(const char *s)
{
	while (*s)
		console_putc(*s++);
}

/*
 * Divide in 16-bit steps so that i386 needs no __udivdi3: each partial dividend is below
 * base * 2^16, which fits in 32 bits.
 */
static unsigned int divmod(uint64_t *v, unsigned int base)
{
	uint64_t q = 0;
	uint32_t r = 0;

	for (int shift = 48; shift >= 0; shift -= 16) {
		uint32_t cur = r << 16 | (uint32_t)(*v >> shift & 0xffff);

		q |= (uint64_t)(cur / base) << shift;
		r = cur % base;
	}
	*v = q;
	return r;
}

static void put_number(uint64_t v, unsigned int base, int width, bool zero_pad, bool negative)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[divmod(&v, base)];
	} while (v);
	if (negative)
		buf[n++] = '-';
	while (n < width && n < (int)sizeof(buf))
		buf[n++] = zero_pad ? '0' : ' ';
	while (n)
		console_putc(buf[--n]);
}

static int64_t arg_signed(va_list *ap, int longs)
{
	if (longs >= 2)
		return va_arg(*ap, long long);
	if (longs == 1)
		return va_arg(*ap, long);
	return va_arg(*ap, int);
}

static uint64_t arg_unsigned(va_list *ap, int longs)
{
	if (longs >= 2)
		return va_arg(*ap, unsigned long long);
	if (longs == 1)
		return va_arg(*ap, unsigned long);
	return va_arg(*ap, unsigned int);
}

static void put_conversion(char conv, va_list *ap, int width, bool zero_pad, int longs)
{
	int64_t sv;

	switch (conv) {
	case 's':
		console_puts(va_arg(*ap, const char *));
		break;
	case 'c':
		console_putc((char)va_arg(*ap, int));
		break;
	case 'd':
		sv = arg_signed(ap, longs);
		put_number(sv < 0 ? -(uint64_t)sv : (uint64_t)sv, 10, width, zero_pad, sv < 0);
		break;
	case 'u':
		put_number(arg_unsigned(ap, longs), 10, width, zero_pad, false);
		break;
	case 'x':
		put_number(arg_unsigned(ap, longs), 16, width, zero_pad, false);
		break;
	default:
		console_putc('%');
		console_putc(conv);
	}
}

void console_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	while (*fmt) {
		bool zero_pad = false;
		int width = 0, longs = 0;

		/* Bare \n, no \r: the console log is read by scripts, line by line. */
		if (*fmt != '%') {
			console_putc(*fmt++);
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			console_putc(*fmt++);
			continue;
		}
		if (*fmt == '0')
			zero_pad = true;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}
		if (!*fmt)
			break;
		put_conversion(*fmt++, &ap, width, zero_pad, longs);
	}
	va_end(ap);
}
