/* SPDX-License-Identifier: MIT */
/* The guest's console: COM1, polled, 115200 8N1. */
#ifndef HVG_CONSOLE_H
#define HVG_CONSOLE_H

void console_init(void);

/*
 * A small printf: %s %c %d %u %x, the l and ll length modifiers, a '0' flag and a width
 * (e.g. %016llx). Enough for the guest's lines, checked by the compiler like printf.
 */
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* HVG_CONSOLE_H */
