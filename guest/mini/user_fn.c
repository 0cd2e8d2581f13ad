/* thaw-mini: ring-3 code. On PVM hosts ring 3 runs natively while ring 0 is
 * emulated, so bulk work belongs here: 1 MiB of FNV-1a takes about a
 * millisecond in ring 3 and would take seconds in ring 0.
 *
 * The bytes are generated on the fly rather than stored first: the result is
 * the same and there is no buffer to allocate or map. */
#include "user_fn.h"

uint64_t fnv1a_pattern(uint64_t n) {
  uint64_t hash = FNV1A_OFFSET_BASIS;
  for (uint64_t i = 0; i < n; i++) {
    hash ^= (uint8_t)(i * 31 + 7);
    hash *= FNV1A_PRIME;
  }
  return hash;
}

void user_fnv1a_entry(uint64_t n) {
  uint64_t hash = fnv1a_pattern(n);
  /* The kernel does not resume us after the gate; loop to stay well-defined. */
  for (;;) __asm__ volatile("int $0x80" : : "a"(hash) : "memory");
}
