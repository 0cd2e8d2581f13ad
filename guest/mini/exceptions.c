/* thaw-mini: CPU exception reporting. Any exception is fatal: print one line
 * naming it, then end the VM with the guest-failure code on the debug-exit
 * port so thaw (or QEMU, status 99) can tell a failed guest from a clean
 * exit. Also raises exceptions on purpose for thaw.fault=. */
#include "exceptions.h"

#include "arch.h"
#include "console.h"
#include "program.h"

/* Pushed by the stubs in traps.S, then by the CPU. */
struct trap_frame {
  uint64_t vector;
  uint64_t error_code; /* 0 when the CPU pushes none */
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t ss;
};

static const char *const exception_names[32] = {
    "DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "CSO", "TS",
    "NP", "SS", "GP",  "PF", "15", "MF", "AC", "MC", "XM", "VE",  "CP",
    "22", "23", "24",  "25", "26", "27", "HV", "VC", "SX", "31",
};

__attribute__((noreturn, used)) void exception_report(const struct trap_frame *frame) {
  /* The user's program faulted (thaw.after=program): a request outcome. */
  if ((frame->cs & 3) == 3 && program_running) program_report_fault(frame->vector, frame->rip);
  const char *name = frame->vector < 32 ? exception_names[frame->vector] : "??";
  console_str("thaw-mini: EXCEPTION #");
  console_str(name);
  console_str(" (vector ");
  console_dec(frame->vector);
  console_str(") err=");
  console_hex(frame->error_code);
  console_str(" rip=");
  console_hex(frame->rip);
  console_str(" cr2=");
  console_hex(read_cr2());
  if ((frame->cs & 3) == 3) console_str(" ring3");
  console_end_line_always();
  debug_exit(EXIT_CODE_GUEST_FAILURE);
}

/* Addresses chosen to fault under our own page tables: nothing is mapped at
 * or above 4 GiB, and bit 63 without the bits below it is non-canonical. */
#define UNMAPPED_ADDRESS 0x100000000ull
#define NON_CANONICAL_ADDRESS 0x8000000000000000ull

void raise_fault(enum fault_kind fault) {
  uint64_t scratch;
  uint32_t low = 1, high = 0;
  switch (fault) {
    case FAULT_UD:
      __asm__ volatile("ud2");
      break;
    case FAULT_PF:
      __asm__ volatile("movq (%1), %0" : "=r"(scratch) : "r"(UNMAPPED_ADDRESS) : "memory");
      break;
    case FAULT_GP:
      __asm__ volatile("movq (%1), %0" : "=r"(scratch) : "r"(NON_CANONICAL_ADDRESS) : "memory");
      break;
    case FAULT_DE:
      __asm__ volatile("xorl %%ecx, %%ecx; divl %%ecx" : "+a"(low), "+d"(high) : : "ecx");
      break;
    case FAULT_NONE:
      break;
  }
}
