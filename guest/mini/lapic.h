/* thaw-mini: the local APIC (timer, sleeping, TSC calibration) and the one
 * I/O APIC routing entry the agent needs. */
#ifndef THAW_MINI_LAPIC_H
#define THAW_MINI_LAPIC_H

#include <stdint.h>

/* Software-enables the LAPIC (SVR, spurious vector VECTOR_SPURIOUS) and
 * starts its timer: periodic, VECTOR_TIMER, divide by 16, initial count
 * LAPIC_TIMER_COUNT. Ticks are counted in timer_ticks (traps.S) once
 * interrupts are enabled; until then one stays pending in the LAPIC. */
void lapic_timer_start(void);

/* Software-enables the LAPIC (SVR) without starting anything: needed before
 * it accepts any interrupt, the IOAPIC's included. */
void lapic_enable(void);

/* Starts the timer counting down from 2^32-1 with its interrupt masked, and
 * reads the TSC: the start of a calibration interval (no waiting). */
void tsc_calibration_start(void);
/* Ends the interval: the TSC ticks per millisecond of LAPIC time (kHz) over
 * it, or 0 if it was too short (< 1 ms) to mean anything. */
uint64_t tsc_calibration_finish(void);

/* Sleeps about `ms` milliseconds: LAPIC one-shot timer (VECTOR_TIMER) and
 * sti; hlt until it fired. Returns with interrupts off and the timer idle.
 * Other interrupts wake the hlt and are otherwise ignored here. */
void lapic_sleep_ms(uint64_t ms);

/* Masks every input of the legacy 8259 PICs and the LAPIC's LINT0 (which a
 * VMM sets to ExtINT for Linux): KVM feeds an IRQ line to the PIC and the
 * IOAPIC alike, and an unprogrammed PIC would deliver IRQ n as vector n,
 * i.e. as an exception. Two port writes and one LAPIC write. */
void legacy_pic_mask(void);

/* Routes IOAPIC pin `pin` to `vector`: fixed delivery, physical destination
 * APIC 0, active high, edge-triggered, unmasked. Two register pairs. */
void ioapic_route(unsigned pin, unsigned vector);

static inline uint64_t rdtsc(void) {
  uint32_t low, high;
  __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
  return ((uint64_t)high << 32) | low;
}

#endif
