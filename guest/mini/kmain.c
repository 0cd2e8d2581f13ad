/* thaw-mini: the boot sequence after the entry code (boot.S) has loaded our
 * page tables, GDT, TSS and IDT.
 *
 *   banner, command line, RAM  ->  optional deliberate fault (thaw.fault=)
 *   -> FNV-1a in ring 3  ->  first half of thaw.after=split or the agent's
 *   vsock device  ->  LAPIC timer (ticks:N only)
 *   -> "ready" + boot-complete write  ->  thaw.after= (idle by default)
 *
 * The timer starts before the boot-complete write so that a snapshot taken
 * at the write holds a running LAPIC timer (and, as interrupts are still
 * off, usually a pending tick): a restored clone only counts ticks if the
 * VMM brought the LAPIC timer back.
 *
 * Everything here runs in ring 0, which PVM emulates at ~0.7 us per
 * instruction, so it only prints and dispatches; the computing happens in
 * ring 3 (user_fn.c). */
#include <stdint.h>

#include "after_boot.h"
#include "agent.h"
#include "arch.h"
#include "boot_info.h"
#include "console.h"
#include "exceptions.h"
#include "lapic.h"
#include "options.h"
#include "program.h"
#include "traps.h"
#include "user_fn.h"

static void print_boot_lines(const struct boot_info *boot) {
  console_str("thaw-mini: booting");
  console_end_line();
  console_str("thaw-mini: cmdline: ");
  console_str(boot->cmdline);
  console_end_line();
  console_str("thaw-mini: ram ");
  if (boot->ram_known) {
    console_dec(boot->ram_bytes >> 20);
    console_str(" MiB");
  } else {
    console_str("unknown");
  }
  console_end_line();
}

static void run_builtin_function(uint64_t fn_bytes) {
  uint64_t hash = enter_user(user_fnv1a_entry, fn_bytes, user_stack_top);
  console_str("thaw-mini: fn fnv1a(");
  console_dec(fn_bytes);
  console_str(") = ");
  console_hex16(hash);
  console_end_line();
}

__attribute__((noreturn, used)) void kmain(unsigned boot_kind, uint64_t boot_info_addr) {
  struct boot_info boot = read_boot_info(boot_kind, boot_info_addr);
  struct options options = parse_options(boot.cmdline);
  agent_calibration_start(&options); /* thaw.after=agent: the boot is the interval */
  if (options.after == AFTER_PROGRAM && options.tsc_khz == 0) tsc_calibration_start(); /* the same */
  console_init();
  console_set_quiet(options.quiet);
  print_boot_lines(&boot);

  raise_fault(options.fault);
  run_builtin_function(options.fn_bytes);
  if (options.after == AFTER_PROGRAM) program_run(&options, &boot); /* its own ready point */
  after_boot_prepare(&options, &boot);
  /* Only thaw.after=ticks:N needs the timer. An idle or clone guest sleeps
   * with no timer: a pool of idle clones taking 500 emulated interrupts a
   * second each would burn the host's CPUs. */
  if (options.after == AFTER_TICKS) lapic_timer_start();

  /* Print first: the VMM may pause or snapshot the VM at the write. */
  console_str("thaw-mini: ready");
  console_end_line();
  *(volatile uint8_t *)(uintptr_t)BOOT_COMPLETE_ADDR = BOOT_COMPLETE_VALUE;
  if (options.exit_after_ready) debug_exit(EXIT_CODE_SUCCESS);
  after_boot_run(&options);
}
