/* thaw-mini: what traps.S offers the C code. */
#ifndef THAW_MINI_TRAPS_H
#define THAW_MINI_TRAPS_H

#include <stdint.h>

/* Runs entry(arg) in ring 3 (IF clear) on stack_top; returns the RAX that
 * entry passes to int $0x80. */
uint64_t enter_user(void (*entry)(uint64_t), uint64_t arg, void *stack_top);
extern char user_stack_top[];

/* LAPIC timer interrupts handled so far (incremented by the handler). */
extern volatile uint64_t timer_ticks;

/* Base address of the virtio-mmio device whose interrupt VECTOR_VIRTIO acks. */
extern volatile uint64_t virtio_irq_mmio_base;

#endif
