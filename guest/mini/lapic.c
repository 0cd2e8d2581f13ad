/* thaw-mini: the local APIC timer. Four MMIO writes, each one exit to KVM's
 * in-kernel LAPIC; nothing is calibrated (see LAPIC_TIMER_COUNT). */
#include "lapic.h"

#include <stdint.h>

#include "layout.h"

static inline void lapic_write(uint32_t reg, uint32_t value) {
  *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = value;
}

void lapic_timer_start(void) {
  lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VECTOR_SPURIOUS);
  lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
  lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | VECTOR_TIMER);
  lapic_write(LAPIC_TIMER_INITIAL_COUNT, LAPIC_TIMER_COUNT); /* starts counting */
}
