/* thaw-mini: the few privileged instructions the C code needs. */
#ifndef THAW_MINI_ARCH_H
#define THAW_MINI_ARCH_H

#include <stdint.h>

#include "layout.h"

static inline void outb(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port) {
  uint8_t value;
  __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

static inline uint64_t rdmsr(uint32_t msr) {
  uint32_t low, high;
  __asm__ volatile("rdmsr" : "=a"(low), "=d"(high) : "c"(msr));
  return ((uint64_t)high << 32) | low;
}

static inline void wrmsr(uint32_t msr, uint64_t value) {
  __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "memory");
}

static inline uint64_t read_cr0(void) {
  uint64_t value;
  __asm__ volatile("mov %%cr0, %0" : "=r"(value));
  return value;
}

static inline void write_cr0(uint64_t value) { __asm__ volatile("mov %0, %%cr0" : : "r"(value) : "memory"); }

static inline uint64_t read_cr4(void) {
  uint64_t value;
  __asm__ volatile("mov %%cr4, %0" : "=r"(value));
  return value;
}

static inline void write_cr4(uint64_t value) { __asm__ volatile("mov %0, %%cr4" : : "r"(value) : "memory"); }

/* Flushes the TLB (all our pages are non-global) after page-table edits. */
static inline void reload_cr3(void) {
  uint64_t value;
  __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(value) : : "memory");
}

static inline uint64_t read_cr2(void) {
  uint64_t value;
  __asm__ volatile("mov %%cr2, %0" : "=r"(value));
  return value;
}

/* Ends the VM through the debug-exit port. On QEMU's isa-debug-exit the
 * process exits with status (code << 1) | 1; thaw reports the code. If the
 * port is absent, stop the CPU for good instead. */
static inline __attribute__((noreturn)) void debug_exit(uint8_t code) {
  outb(DEBUG_EXIT_PORT, code);
  for (;;) __asm__ volatile("cli; hlt");
}

static inline __attribute__((noreturn)) void idle_forever(void) {
  for (;;) __asm__ volatile("sti; hlt" ::: "memory");
}

#endif
