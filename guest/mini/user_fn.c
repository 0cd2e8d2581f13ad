/* thaw-mini: ring-3 code. On PVM hosts ring 3 runs natively while ring 0 is
 * emulated, so bulk work belongs here: 1 MiB of FNV-1a takes about a
 * millisecond in ring 3 and would take seconds in ring 0.
 *
 * The pattern bytes are generated on the fly rather than stored first: the
 * result is the same and there is no buffer to allocate or map. Only the
 * clone function stores its bytes, because the VMM reads them back. */
#include "user_fn.h"

#include "layout.h"

uint64_t fnv1a_pattern_range(uint64_t hash, uint64_t begin, uint64_t end) {
  for (uint64_t i = begin; i < end; i++) {
    hash ^= pattern_byte(i);
    hash *= FNV1A_PRIME;
  }
  return hash;
}

uint64_t fnv1a_pattern(uint64_t n) { return fnv1a_pattern_range(FNV1A_OFFSET_BASIS, 0, n); }

/* The kernel does not resume us after the gate; loop to stay well-defined. */
static __attribute__((noreturn)) void return_to_kernel(uint64_t result) {
  for (;;) __asm__ volatile("int $0x80" : : "a"(result) : "memory");
}

void user_fnv1a_entry(uint64_t n) { return_to_kernel(fnv1a_pattern(n)); }

void user_fnv1a_range_entry(uint64_t range) {
  const struct fnv1a_range *r = (const struct fnv1a_range *)(uintptr_t)range;
  return_to_kernel(fnv1a_pattern_range(r->hash, r->begin, r->end));
}

void user_clone_entry(uint64_t input) {
  volatile uint8_t *buffer = (volatile uint8_t *)(uintptr_t)CLONE_BUFFER_ADDR;
  for (uint64_t i = 0; i < CLONE_BUFFER_SIZE; i++) buffer[i] = pattern_byte(i) ^ (uint8_t)input;
  /* Hash what is in memory now, not what we meant to write. */
  uint64_t hash = FNV1A_OFFSET_BASIS;
  for (uint64_t i = 0; i < CLONE_BUFFER_SIZE; i++) {
    hash ^= buffer[i];
    hash *= FNV1A_PRIME;
  }
  return_to_kernel(hash);
}

void user_copy_entry(uint64_t copy) {
  const struct user_copy *c = (const struct user_copy *)(uintptr_t)copy;
  uint8_t *dst = (uint8_t *)(uintptr_t)c->dst;
  const uint8_t *src = (const uint8_t *)(uintptr_t)c->src;
  uint64_t count = c->count;
  uint64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    uint64_t word;
    __builtin_memcpy(&word, src + i, 8);
    __builtin_memcpy(dst + i, &word, 8);
  }
  for (; i < count; i++) dst[i] = src[i];
  return_to_kernel(count);
}

void user_touch_entry(uint64_t touch) {
  const struct user_touch *t = (const struct user_touch *)(uintptr_t)touch;
  volatile uint8_t *page = (volatile uint8_t *)(uintptr_t)t->base;
  for (uint64_t i = 0; i < t->pages; i++) page[i * 4096] = (uint8_t)(i + 1);
  return_to_kernel(t->pages);
}
