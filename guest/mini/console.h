/* thaw-mini: line-buffered output on the COM1 8250 UART.
 *
 * Each port access is a VM exit (~16 us on PVM), so a line is assembled in a
 * buffer and sent in 16-byte bursts with one LSR poll per burst (the 16550
 * FIFO depth), instead of one poll per byte. */
#ifndef THAW_MINI_CONSOLE_H
#define THAW_MINI_CONSOLE_H

#include <stdint.h>

void console_init(void);
/* When quiet, lines are dropped unless flushed with console_end_line_always. */
void console_set_quiet(int quiet);

void console_str(const char *s);
void console_hex(uint64_t value);      /* 0x + shortest hex */
void console_hex16(uint64_t value);    /* 0x + exactly 16 hex digits */
void console_dec(uint64_t value);
void console_end_line(void);           /* appends '\n' and sends the line */
void console_end_line_always(void);    /* the same, even when quiet */

#endif
