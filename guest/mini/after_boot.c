/* thaw-mini: the behaviours after the boot-complete write (see after_boot.h
 * and README.md). Ring 0 only waits, reads the control page, dispatches and
 * prints; hashing and the clone buffer are ring-3 work (user_fn.c). */
#include "after_boot.h"

#include <stdint.h>

#include "agent.h"
#include "arch.h"
#include "console.h"
#include "layout.h"
#include "traps.h"
#include "user_fn.h"

/* thaw.after=split: the hash of the first half, computed before the
 * boot-complete write. A static in the image's data, so a snapshot taken at
 * the write carries it to every clone. */
static struct fnv1a_range split_state;

void after_boot_prepare(const struct options *options, const struct boot_info *boot) {
  if (options->after == AFTER_AGENT) agent_prepare(options, boot);
  if (options->after != AFTER_SPLIT) return;
  split_state.hash = FNV1A_OFFSET_BASIS;
  split_state.begin = 0;
  split_state.end = options->fn_bytes / 2;
  split_state.hash = enter_user(user_fnv1a_range_entry, (uintptr_t)&split_state, user_stack_top);
  split_state.begin = split_state.end;
  split_state.end = options->fn_bytes;
}

static __attribute__((noreturn)) void finish_split(void) {
  uint64_t fn_bytes = split_state.end;
  uint64_t hash = enter_user(user_fnv1a_range_entry, (uintptr_t)&split_state, user_stack_top);
  console_str("thaw-mini: split fnv1a(");
  console_dec(fn_bytes);
  console_str(") = ");
  console_hex16(hash);
  console_end_line();
  debug_exit(EXIT_CODE_SUCCESS);
}

/* Waits (sti; hlt) until `count` timer interrupts have been handled since
 * this call. cli before each check, and sti's one-instruction shadow keeps a
 * tick from slipping in between the check and the hlt. */
static __attribute__((noreturn)) void finish_ticks(uint64_t count) {
  uint64_t start = timer_ticks;
  for (;;) {
    __asm__ volatile("cli" ::: "memory");
    if (timer_ticks - start >= count) break;
    __asm__ volatile("sti; hlt" ::: "memory");
  }
  console_str("thaw-mini: ticks ");
  console_dec(count);
  console_end_line();
  debug_exit(EXIT_CODE_SUCCESS);
}

static uint64_t control_field(unsigned offset) {
  return *(volatile const uint64_t *)(uintptr_t)(CONTROL_PAGE_ADDR + offset);
}

static __attribute__((noreturn)) void finish_clone(void) {
  /* Read only now: the VMM writes the page into a clone before resuming it. */
  if (control_field(CONTROL_OFF_MAGIC) != CONTROL_MAGIC) {
    console_str("thaw-mini: no control page");
    console_end_line_always();
    debug_exit(EXIT_CODE_NO_CONTROL_PAGE);
  }
  uint64_t generation = control_field(CONTROL_OFF_GENERATION);
  uint64_t clone_id = control_field(CONTROL_OFF_CLONE_ID);
  uint64_t seed = control_field(CONTROL_OFF_SEED);
  uint64_t input = control_field(CONTROL_OFF_CLONE_INPUT);
  uint64_t hash = enter_user(user_clone_entry, input, user_stack_top);
  console_str("thaw-mini: clone ");
  console_dec(clone_id);
  console_str(" input ");
  console_hex(input);
  console_str(" seed ");
  console_hex(seed);
  console_str(" gen ");
  console_dec(generation);
  console_str(" fnv1a = ");
  console_hex16(hash);
  console_end_line();
  debug_exit(EXIT_CODE_SUCCESS);
}

void after_boot_run(const struct options *options) {
  switch (options->after) {
    case AFTER_TICKS:
      finish_ticks(options->after_ticks);
    case AFTER_SPLIT:
      finish_split();
    case AFTER_CLONE:
      finish_clone();
    case AFTER_AGENT:
      agent_run();
    case AFTER_IDLE:
    case AFTER_PROGRAM: /* never here: program_run does not return */
      break;
  }
  idle_forever(); /* sti; hlt: only an interrupt the VMM sends wakes it */
}
