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
  } else if ((value = after_prefix(key, end, "after="))) {
    const char *count;
    if (equals(value, end, "idle")) options->after = AFTER_IDLE;
    else if (equals(value, end, "split")) options->after = AFTER_SPLIT;
    else if (equals(value, end, "clone")) options->after = AFTER_CLONE;
    else if ((count = after_prefix(value, end, "ticks:")) && parse_decimal(count, end, &number)) {
      options->after = AFTER_TICKS;
      options->after_ticks = number;
    }
  }
}

struct options parse_options(const char *cmdline) {
  struct options options = {DEFAULT_FN_BYTES, FAULT_NONE, 0, 0, AFTER_IDLE, 0};
  const char *p = cmdline;
  for (;;) {
    while (is_space(*p)) p++;
    if (*p == '\0') break;
    const char *word = p;
    while (*p != '\0' && !is_space(*p)) p++;
    const char *key = after_prefix(word, p, "thaw.");
    if (key) apply_option(&options, key, p);
  }
  return options;
}
