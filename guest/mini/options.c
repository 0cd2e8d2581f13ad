/* thaw-mini: command-line parsing. One pass over the words; ring 0 is slow on
 * PVM, so words that do not start with "thaw." are skipped after one compare. */
#include "options.h"

#include <stddef.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* If word [begin, end) starts with prefix, returns what follows, else NULL. */
static const char *after_prefix(const char *begin, const char *end, const char *prefix) {
  while (*prefix) {
    if (begin == end || *begin != *prefix) return NULL;
    begin++;
    prefix++;
  }
  return begin;
}

static int equals(const char *begin, const char *end, const char *text) {
  const char *rest = after_prefix(begin, end, text);
  return rest == end;
}

/* Decimal; returns 0 on an empty, non-digit or overflowing value. */
static int parse_decimal(const char *begin, const char *end, uint64_t *out) {
  if (begin == end) return 0;
  uint64_t value = 0;
  for (; begin != end; begin++) {
    if (*begin < '0' || *begin > '9') return 0;
    uint64_t digit = (uint64_t)(*begin - '0');
    if (value > (UINT64_MAX - digit) / 10) return 0;
    value = value * 10 + digit;
  }
  *out = value;
  return 1;
}

static void apply_option(struct options *options, const char *key, const char *end) {
  const char *value;
  uint64_t number;
  if ((value = after_prefix(key, end, "fn_bytes="))) {
    if (parse_decimal(value, end, &number)) options->fn_bytes = number;
  } else if ((value = after_prefix(key, end, "fault="))) {
    if (equals(value, end, "ud")) options->fault = FAULT_UD;
    else if (equals(value, end, "pf")) options->fault = FAULT_PF;
    else if (equals(value, end, "gp")) options->fault = FAULT_GP;
    else if (equals(value, end, "de")) options->fault = FAULT_DE;
  } else if ((value = after_prefix(key, end, "exit_after_ready="))) {
    if (parse_decimal(value, end, &number)) options->exit_after_ready = number != 0;
  } else if ((value = after_prefix(key, end, "quiet="))) {
    if (parse_decimal(value, end, &number)) options->quiet = number != 0;
  } else if ((value = after_prefix(key, end, "tsc_khz="))) {
    if (parse_decimal(value, end, &number)) options->tsc_khz = number;
  } else if ((value = after_prefix(key, end, "after="))) {
    const char *count;
    if (equals(value, end, "idle")) options->after = AFTER_IDLE;
    else if (equals(value, end, "split")) options->after = AFTER_SPLIT;
    else if (equals(value, end, "clone")) options->after = AFTER_CLONE;
    else if (equals(value, end, "agent")) options->after = AFTER_AGENT;
    else if (equals(value, end, "program")) options->after = AFTER_PROGRAM;
    else if ((count = after_prefix(value, end, "ticks:")) && parse_decimal(count, end, &number)) {
      options->after = AFTER_TICKS;
      options->after_ticks = number;
    }
  }
}

/* Linux's simple_strtoull with base 0 on [*p, end): 0x hex, leading-0
 * octal, else decimal. Advances *p past the digits; 0 if there were none. */
static int parse_number(const char **p, const char *end, uint64_t *out) {
  const char *s = *p;
  unsigned base = 10;
  if (s != end && *s == '0') {
    base = 8;
    if (s + 1 != end && (s[1] == 'x' || s[1] == 'X')) {
      base = 16;
      s += 2;
    }
  }
  const char *digits = s;
  uint64_t value = 0;
  for (; s != end; s++) {
    unsigned digit;
    if (*s >= '0' && *s <= '9') digit = (unsigned)(*s - '0');
    else if (*s >= 'a' && *s <= 'f') digit = (unsigned)(*s - 'a' + 10);
    else if (*s >= 'A' && *s <= 'F') digit = (unsigned)(*s - 'A' + 10);
    else break;
    if (digit >= base) break;
    value = value * base + digit;
  }
  if (s == digits && base != 8) return 0; /* "0x" alone; a lone "0" is octal zero */
  *out = value;
  *p = s;
  return 1;
}

/* Linux's memparse: a number with an optional K/M/G suffix. */
static int parse_size(const char **p, const char *end, uint64_t *out) {
  if (!parse_number(p, end, out)) return 0;
  if (*p != end) {
    unsigned shift = 0;
    switch (**p) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
    }
    if (shift) {
      *out <<= shift;
      (*p)++;
    }
  }
  return 1;
}

/* virtio_mmio.device=<size>@<base>:<irq>[:<id>]; ignored when malformed. */
static void apply_virtio_mmio(struct options *options, const char *p, const char *end) {
  struct virtio_mmio_option device;
  uint64_t irq;
  if (options->virtio_count == MAX_VIRTIO_MMIO_DEVICES) return;
  if (!parse_size(&p, end, &device.size) || p == end || *p++ != '@') return;
  if (!parse_size(&p, end, &device.base) || p == end || *p++ != ':') return;
  if (!parse_number(&p, end, &irq) || (p != end && *p != ':')) return;
  if (device.size == 0 || irq >= 256) return;
  device.irq = (uint32_t)irq;
  options->virtio[options->virtio_count++] = device;
}

struct options parse_options(const char *cmdline) {
  struct options options = {DEFAULT_FN_BYTES, FAULT_NONE, 0, 0, AFTER_IDLE, 0, 0, 0, {{0, 0, 0}}};
  const char *p = cmdline;
  for (;;) {
    while (is_space(*p)) p++;
    if (*p == '\0') break;
    const char *word = p;
    while (*p != '\0' && !is_space(*p)) p++;
    const char *key = after_prefix(word, p, "thaw.");
    if (key) apply_option(&options, key, p);
    else if ((key = after_prefix(word, p, "virtio_mmio.device="))) apply_virtio_mmio(&options, key, p);
  }
  return options;
}
