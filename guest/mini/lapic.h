/* thaw-mini: the local APIC timer. */
#ifndef THAW_MINI_LAPIC_H
#define THAW_MINI_LAPIC_H

/* Software-enables the LAPIC (SVR, spurious vector VECTOR_SPURIOUS) and
 * starts its timer: periodic, VECTOR_TIMER, divide by 16, initial count
 * LAPIC_TIMER_COUNT. Ticks are counted in timer_ticks (traps.S) once
 * interrupts are enabled; until then one stays pending in the LAPIC. */
void lapic_timer_start(void);

#endif
