/* thaw-mini: COM1 console. See console.h for why output is line-buffered. */
#include "console.h"

#include <stddef.h>

#include "arch.h"

#define COM1 0x3f8
#define UART_THR (COM1 + 0)
#define UART_FCR (COM1 + 2)
#define UART_LSR (COM1 + 5)
#define UART_LSR_THRE 0x20
#define UART_FCR_ENABLE_AND_CLEAR 0x07
#define UART_FIFO_DEPTH 16

#define LINE_CAPACITY 256

static char line[LINE_CAPACITY];
static size_t line_length;
static int quiet_mode;

void console_init(void) {
  /* One write so a burst of 16 bytes after THRE fits on a real 16550 too. */
  outb(UART_FCR, UART_FCR_ENABLE_AND_CLEAR);
}

void console_set_quiet(int quiet) { quiet_mode = quiet; }

static void send(const char *bytes, size_t count) {
  while (count > 0) {
    while (!(inb(UART_LSR) & UART_LSR_THRE)) {
    }
    size_t burst = count < UART_FIFO_DEPTH ? count : UART_FIFO_DEPTH;
    for (size_t i = 0; i < burst; i++) outb(UART_THR, (uint8_t)bytes[i]);
    bytes += burst;
    count -= burst;
  }
}

static void flush(int force) {
  if (!quiet_mode || force) send(line, line_length);
  line_length = 0;
}

static void put_char(char c) {
  if (line_length == LINE_CAPACITY) flush(0); /* over-long line: send a piece */
  line[line_length++] = c;
}

void console_str(const char *s) {
  while (*s) put_char(*s++);
}

static const char hex_digits[] = "0123456789abcdef";

static void put_hex_digits(uint64_t value, int digits) {
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) put_char(hex_digits[(value >> shift) & 0xf]);
}

void console_hex(uint64_t value) {
  int digits = 1;
  while (digits < 16 && (value >> (digits * 4)) != 0) digits++;
  console_str("0x");
  put_hex_digits(value, digits);
}

void console_hex16(uint64_t value) {
  console_str("0x");
  put_hex_digits(value, 16);
}

void console_dec(uint64_t value) {
  char digits[20];
  int count = 0;
  do {
    digits[count++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) put_char(digits[--count]);
}

void console_end_line(void) {
  put_char('\n');
  flush(0);
}

void console_end_line_always(void) {
  put_char('\n');
  flush(1);
}
