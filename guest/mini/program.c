/* thaw-mini function runtime, guest side (thaw.after=program): checks the
 * VMM's program info page, builds the runtime, walls the kernel off from
 * ring 3, sets up SYSCALL and enters the program. Also the machine hooks of
 * program_arch.h and the C half of the syscall and fault entries.
 *
 * Memory (identity map, see program_abi.h):
 *   [0, 2 MiB)                      4 KiB pages, supervisor-only except the
 *                                   syscall stub's page (read/execute)
 *   [2 MiB, stack_top)              user, 2 MiB pages, RWX
 *   [align_down(files_addr, 2 MiB), 4 GiB)  supervisor-only: files, mailbox,
 *                                   and every device window (whole GiBs via
 *                                   their PDPT entries) */
#include "program.h"

#include "arch.h"
#include "console.h"
#include "lapic.h"
#include "layout.h"
#include "program_arch.h"
#include "program_runtime.h"

/* The runtime lives in .bss: part of every snapshot, like all guest memory. */
static struct program_runtime runtime;
static int exit_after_ready;

extern uint64_t pdpt[];
extern uint64_t page_directories[];
extern uint64_t program_low_page_table[];
extern char syscall_stub[];
extern char program_copy_trampoline[];
__attribute__((noreturn)) void program_enter(uint64_t entry, uint64_t stack_pointer);

/* What program_entry.S saves: the GPRs, then the CPU's interrupt frame. */
struct program_syscall_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t rip, cs, rflags, rsp, ss;
};

#define PAGE_2M 0x200000ull
#define ENTRIES_PER_TABLE 512
#define CANONICAL_LIMIT 0x800000000000ull
/* The System V ABI lets leaf code use 128 bytes below RSP. */
#define RED_ZONE 128
/* RFLAGS a ring-3 return may take from R11: CF PF AF ZF SF TF DF OF AC ID.
 * Never IF (ring 3 runs with it clear) and never IOPL (port access). */
#define USER_RFLAGS_MASK 0x240dd5ull
#define RFLAGS_RESERVED 0x2ull
/* SYSCALL clears these: IF, TF, DF, NT, AC. */
#define SYSCALL_RFLAGS_MASK 0x44700ull

/* ---- program_arch.h ------------------------------------------------------ */

uint64_t program_arch_tsc(void) { return rdtsc(); }

void program_arch_set_fs_base(uint64_t base) { wrmsr(MSR_FS_BASE, base); }

void program_arch_ready_point(void) {
  console_str("thaw-mini: ready");
  console_end_line();
  *(volatile uint8_t *)(uintptr_t)BOOT_COMPLETE_ADDR = BOOT_COMPLETE_VALUE;
  if (exit_after_ready) debug_exit(EXIT_CODE_SUCCESS);
}

void program_arch_log(const char *what, uint64_t number) {
  console_str("thaw-mini: program: ");
  console_str(what);
  console_str(" ");
  console_dec(number);
  console_end_line();
}

/* ---- ending --------------------------------------------------------------- */

static const char *outcome_name(uint64_t outcome) {
  switch (outcome) {
    case OUTCOME_EXITED: return "exit";
    case OUTCOME_FAULT: return "signal";
    case OUTCOME_OUTPUT_LIMIT: return "output limit";
    case OUTCOME_NOT_READY: return "exit before reading stdin, status";
    case OUTCOME_POWER_OFF: return "reboot(2), power-off/halt/restart";
    default: return "end";
  }
}

static __attribute__((noreturn)) void end_program(void) {
  const struct thaw_mailbox *mb = runtime.mailbox;
  /* A normal exit after the ready point stays silent: every console line
   * costs VM exits, and the mailbox says it all. */
  if (!(runtime.ready && mb->outcome == OUTCOME_EXITED)) {
    console_str("thaw-mini: program: ");
    console_str(outcome_name(mb->outcome));
    console_str(" ");
    console_dec(mb->status);
    if (mb->outcome == OUTCOME_FAULT) {
      console_str(" vector ");
      console_dec(mb->fault_vector);
      console_str(" rip=");
      console_hex(mb->fault_rip);
      console_str(" addr=");
      console_hex(mb->fault_addr);
    }
    console_end_line_always();
  }
  debug_exit(runtime.exit_code);
}

void program_report_fault(uint64_t vector, uint64_t rip) {
  program_fault(&runtime, vector, rip, read_cr2());
  end_program();
}

/* Sends the return to ring 3 through program_copy_trampoline, which does
 * the copies the call queued (program_copy.c) and then returns to the
 * caller with RAX, RDI and RSI as the call left them. Its list goes on the
 * user stack below the red zone:
 *   count, count x {dst, src, len}, rdi, rsi, rax, return RIP, red zone. */
static void return_through_copies(struct program_syscall_frame *f, uint64_t *user_rip) {
  const uint32_t n = runtime.pending_count;
  const uint64_t bytes = (1 + 3 * (uint64_t)n + 4) * 8;
  const uint64_t sp = f->rsp - RED_ZONE - bytes;
  if (f->rsp < RED_ZONE + bytes || !user_range_ok(&runtime, sp, bytes + RED_ZONE)) {
    program_run_pending_copies(&runtime); /* no room on its stack: ring 0 does them */
    return;
  }
  uint64_t *w = (uint64_t *)(uintptr_t)sp;
  *w++ = n;
  for (uint32_t i = 0; i < n; i++) {
    *w++ = runtime.pending[i].user_dst;
    *w++ = runtime.pending[i].user_src;
    *w++ = runtime.pending[i].len;
  }
  *w++ = f->rdi;
  *w++ = f->rsi;
  *w++ = f->rax;
  *w = *user_rip;
  runtime.pending_count = 0;
  f->rsp = sp;
  *user_rip = (uintptr_t)program_copy_trampoline;
}

/* Called by program_entry.S on IST_SYSCALL with the caller's registers. */
__attribute__((used)) void program_syscall_entry(struct program_syscall_frame *f) {
  f->rax = (uint64_t)program_syscall(&runtime, f->rax, f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9);
  if (runtime.finished) end_program();
  /* Hardware SYSCALL: the stub's sysretq returns to RCX. PVM: the iretq
   * here returns to ring 3 directly, to the caller of SYSCALL. */
  uint64_t *user_rip = &f->rcx;
  if ((f->cs & 3) == 3) {
    if (f->rcx >= CANONICAL_LIMIT) program_fault(&runtime, 13, f->rcx, 0);
    if (runtime.finished) end_program();
    f->rip = f->rcx;
    f->rflags = (f->r11 & USER_RFLAGS_MASK) | RFLAGS_RESERVED;
    user_rip = &f->rip;
  }
  if (runtime.pending_count) return_through_copies(f, user_rip);
}

/* ---- boot ----------------------------------------------------------------- */

/* The isolation described at the top of this file. The loop clears U on the
 * PD entries from the files to the end of their GiB (at most 512, once per
 * template boot, before the snapshot); later GiBs lose U in the PDPT. */
static void isolate_kernel(const struct thaw_program_info *info) {
  page_directories[0] = (uintptr_t)program_low_page_table | PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED;
  uint64_t first = info->files_addr / PAGE_2M;
  uint64_t gib = first / ENTRIES_PER_TABLE;
  for (uint64_t i = first; i < (gib + 1) * ENTRIES_PER_TABLE; i++) page_directories[i] &= ~(uint64_t)PTE_USER;
  for (uint64_t g = gib + 1; g < 4; g++) pdpt[g] &= ~(uint64_t)PTE_USER;
  reload_cr3();
}

/* SSE for ring 3 (static glibc and musl use it; XSAVE/AVX stay off, so
 * CPUID's OSXSAVE is clear and libc picks its SSE2 paths), and SYSCALL. */
static void setup_cpu(void) {
  write_cr0((read_cr0() & ~(uint64_t)(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE);
  write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
  wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
  /* SYSRET takes CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8 (RPL 3):
   * 0x23 (Linux's __USER32_CS, as Linux programs it) gives 0x33 and 0x2b. */
  wrmsr(MSR_STAR, ((uint64_t)SEL_USER32_CODE << 48) | ((uint64_t)SEL_KERNEL_CODE << 32));
  wrmsr(MSR_LSTAR, SYSCALL_STUB_ADDR);
  wrmsr(MSR_SFMASK, SYSCALL_RFLAGS_MASK);
  wrmsr(MSR_FS_BASE, 0);
}

static uint64_t tsc_rate(const struct options *options) {
  uint64_t khz = options->tsc_khz;
  if (khz == 0) khz = tsc_calibration_finish();
  if (khz == 0) { /* the boot was too short to measure: wait 10 ms */
    uint64_t start = rdtsc();
    lapic_sleep_ms(10);
    khz = (rdtsc() - start) / 10;
  }
  return khz;
}

void program_run(const struct options *options, const struct boot_info *boot) {
  const struct thaw_program_info *info = (const struct thaw_program_info *)(uintptr_t)PROGRAM_INFO_ADDR;
  const char *why = program_info_check(info, boot->image_ram_end);
  if (why) {
    console_str("thaw-mini: program: bad info page: ");
    console_str(why);
    console_end_line_always();
    debug_exit(EXIT_CODE_BAD_PROGRAM_INFO);
  }
  exit_after_ready = options->exit_after_ready;
  program_runtime_init(&runtime, info, 0, (const uint8_t *)(uintptr_t)info->files_addr,
                       (struct thaw_mailbox *)(uintptr_t)info->mailbox_addr,
                       (const volatile uint64_t *)(uintptr_t)CONTROL_PAGE_ADDR, tsc_rate(options));
  console_str("thaw-mini: program ");
  console_str(runtime.info.exe_path);
  console_str(" entry ");
  console_hex(info->entry);
  console_str(" files ");
  console_dec(runtime.index.count);
  console_end_line();
  if (runtime.index.dropped) program_arch_log("files not indexed", runtime.index.dropped);
  program_map_user_windows(&runtime);
  isolate_kernel(info);
  setup_cpu();
  program_running = 1;
  program_enter(info->entry, info->stack_pointer);
}
