/* thaw-mini: the local APIC timer, sleeping and TSC calibration, and IOAPIC
 * routing. Every register access is one exit to KVM's in-kernel LAPIC or
 * IOAPIC; nothing here loops over registers. */
#include "lapic.h"

#include <stdint.h>

#include "arch.h"
#include "layout.h"
#include "traps.h"

static inline void lapic_write(uint32_t reg, uint32_t value) {
  *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = value;
}

static inline uint32_t lapic_read(uint32_t reg) {
  return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg);
}

void lapic_enable(void) { lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VECTOR_SPURIOUS); }

void lapic_timer_start(void) {
  lapic_enable();
  lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
  lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | VECTOR_TIMER);
  lapic_write(LAPIC_TIMER_INITIAL_COUNT, LAPIC_TIMER_COUNT); /* starts counting */
}

#define CALIBRATION_START_COUNT 0xffffffffu

static uint64_t calibration_tsc;

void tsc_calibration_start(void) {
  lapic_enable(); /* KVM counts either way; a real LAPIC wants it */
  lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
  lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VECTOR_TIMER); /* one-shot, masked */
  calibration_tsc = rdtsc();
  lapic_write(LAPIC_TIMER_INITIAL_COUNT, CALIBRATION_START_COUNT);
}

uint64_t tsc_calibration_finish(void) {
  uint32_t current = lapic_read(LAPIC_TIMER_CURRENT_COUNT);
  uint64_t tsc = rdtsc();
  lapic_write(LAPIC_TIMER_INITIAL_COUNT, 0); /* stop */
  uint64_t counts = CALIBRATION_START_COUNT - current;
  if (current == 0 || counts < LAPIC_COUNTS_PER_MS) return 0;
  /* kHz = TSC ticks per ms = dTSC / (counts / counts_per_ms). */
  return (tsc - calibration_tsc) * LAPIC_COUNTS_PER_MS / counts;
}

/* One-shot counts fit 32 bits: at most 68 s per shot. */
#define SLEEP_CHUNK_MS 60000

void lapic_sleep_ms(uint64_t ms) {
  lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
  lapic_write(LAPIC_LVT_TIMER, VECTOR_TIMER); /* one-shot, unmasked */
  while (ms > 0) {
    uint64_t chunk = ms < SLEEP_CHUNK_MS ? ms : SLEEP_CHUNK_MS;
    uint64_t start = timer_ticks;
    lapic_write(LAPIC_TIMER_INITIAL_COUNT, (uint32_t)(chunk * LAPIC_COUNTS_PER_MS));
    for (;;) {
      __asm__ volatile("cli" ::: "memory");
      if (timer_ticks != start) break;
      __asm__ volatile("sti; hlt" ::: "memory");
    }
    ms -= chunk;
  }
  lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VECTOR_TIMER);
}

static inline void ioapic_write(uint32_t reg, uint32_t value) {
  *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + IOAPIC_REGSEL) = reg;
  *(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + IOAPIC_WINDOW) = value;
}

void legacy_pic_mask(void) {
  outb(PIC_MASTER_DATA, 0xff);
  outb(PIC_SLAVE_DATA, 0xff);
  lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
}

void ioapic_route(unsigned pin, unsigned vector) {
  unsigned reg = IOAPIC_REDIRECTION_TABLE + 2 * pin;
  ioapic_write(reg + 1, 0); /* destination APIC id 0 (bits 56..63) */
  ioapic_write(reg, vector); /* fixed, physical, active high, edge, unmasked */
}
