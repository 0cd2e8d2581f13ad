/* thaw-mini function runtime: what the VMM and the guest kernel agree on when
 * the guest runs a user's static Linux program (thaw.after=program).
 *
 * Plain C with fixed-width types so that the freestanding guest and the
 * host's C++ (vmm/loader/program_image.*, the mailbox reader) include the
 * same file. All fields are little-endian u64 unless said otherwise.
 *
 * Memory of a program guest (guest-physical = guest-virtual, identity map):
 *
 *   [0, 2 MiB)                 kernel: image, control page, program info;
 *                              supervisor-only (one user page: the syscall stub)
 *   [2 MiB, stack_top)         user memory: ELF segments, brk heap, mmap area
 *                              (grows down from mmap_top), stack
 *   [files_addr, ram_top)      files archive (cpio newc) and the mailbox;
 *                              supervisor-only, 2 MiB aligned at its start
 *
 * The VMM loads the ELF segments and builds the initial stack (argv, envp,
 * auxv) before the first instruction: on PVM every ring-0 instruction is
 * emulated, so that work is free in the VMM and dear in the guest. */
#ifndef THAW_MINI_PROGRAM_ABI_H
#define THAW_MINI_PROGRAM_ABI_H

#include <stdint.h>

/* ---- Program info page: written by the VMM at load, read at boot -------- */
#define PROGRAM_INFO_ADDR 0x81000
#define PROGRAM_INFO_SIZE 0x1000
#define PROGRAM_INFO_MAGIC 0x474f525057414854ull /* "THAWPROG" */
#define PROGRAM_INFO_VERSION 1
#define PROGRAM_EXE_PATH_MAX 256 /* incl. the NUL */

/* Lowest user address: everything below is the kernel's. */
#define PROGRAM_USER_BASE 0x200000ull
/* Where a static-PIE (ET_DYN) program is loaded. */
#define PROGRAM_PIE_BASE 0x400000ull
/* The user stack's size (RLIMIT_STACK reports it too). */
#define PROGRAM_STACK_SIZE 0x800000ull
/* The supervisor-only tail of RAM starts on this boundary (one PD entry). */
#define PROGRAM_KERNEL_TAIL_ALIGN 0x200000ull

struct thaw_program_info {
  uint64_t magic;        /* PROGRAM_INFO_MAGIC */
  uint64_t version;      /* PROGRAM_INFO_VERSION */
  uint64_t entry;        /* initial RIP (ELF entry, plus the load bias for PIE) */
  uint64_t stack_pointer; /* initial RSP: argc, argv[], NULL, envp[], NULL, auxv */
  uint64_t brk_start;    /* page-aligned end of the highest PT_LOAD */
  uint64_t mmap_top;     /* anonymous mmaps are carved downward from here (= stack_bottom) */
  uint64_t stack_bottom; /* the stack is [stack_bottom, stack_top) */
  uint64_t stack_top;    /* = end of user memory */
  uint64_t files_addr;   /* cpio newc archive of the program's files (may be empty) */
  uint64_t files_size;
  uint64_t mailbox_addr; /* struct thaw_mailbox, then the three buffers */
  uint64_t mailbox_size;
  uint64_t ram_top;      /* end of the RAM region that holds everything above */
  uint64_t reserved[3];
  char exe_path[PROGRAM_EXE_PATH_MAX]; /* at +0x80: what /proc/self/exe names */
};

/* ---- Mailbox: one request in, one response out ---------------------------
 * The host writes a request into a paused clone (request fields, stdin
 * bytes), resumes it, and waits for the guest's "done": a write of
 * EXIT_CODE_SUCCESS to the debug-exit port, which pauses the clone. The host
 * then reads the response fields and buffers and resets the clone to its
 * snapshot, so the next request starts from the ready point again. */
#define MAILBOX_MAGIC 0x584f424d57414854ull /* "THAWMBOX": set by the host per request */
#define MAILBOX_HEADER_SIZE 0x1000
#define MAILBOX_STDIN_CAPACITY 0x100000ull  /* 1 MiB */
#define MAILBOX_STDOUT_CAPACITY 0x100000ull /* 1 MiB */
#define MAILBOX_STDERR_CAPACITY 0x10000ull  /* 64 KiB */
#define MAILBOX_STDIN_OFFSET MAILBOX_HEADER_SIZE
#define MAILBOX_STDOUT_OFFSET (MAILBOX_STDIN_OFFSET + MAILBOX_STDIN_CAPACITY)
#define MAILBOX_STDERR_OFFSET (MAILBOX_STDOUT_OFFSET + MAILBOX_STDOUT_CAPACITY)
#define MAILBOX_SIZE (MAILBOX_STDERR_OFFSET + MAILBOX_STDERR_CAPACITY)

/* How the request ended (thaw_mailbox.outcome). */
#define OUTCOME_NONE 0         /* not finished (the guest never wrote one) */
#define OUTCOME_EXITED 1       /* exit/exit_group: status = exit code & 0xff */
#define OUTCOME_FAULT 2        /* CPU exception in the program: status = signal number */
#define OUTCOME_OUTPUT_LIMIT 3 /* stdout or stderr went over its capacity: killed */
#define OUTCOME_NOT_READY 4    /* cold boot: ended before its first read of stdin */
#define OUTCOME_POWER_OFF 5    /* reboot(2): status = POWER_OFF_*; the guest ends (EXIT_CODE_POWER_OFF) */

/* What a program's reboot(2) asked for (OUTCOME_POWER_OFF's status). */
#define POWER_OFF_POWER_OFF 0
#define POWER_OFF_HALT 1
#define POWER_OFF_RESTART 2

/* Signal numbers reported for OUTCOME_FAULT (Linux's). */
#define PROGRAM_SIGILL 4
#define PROGRAM_SIGTRAP 5
#define PROGRAM_SIGBUS 7
#define PROGRAM_SIGFPE 8
#define PROGRAM_SIGSEGV 11

#define MAILBOX_UNKNOWN_SYSCALLS_MAX 32

struct thaw_mailbox {
  /* written by the host before it resumes the clone */
  uint64_t magic;      /* MAILBOX_MAGIC, or the guest treats stdin as empty */
  uint64_t stdin_len;  /* bytes at MAILBOX_STDIN_OFFSET, <= MAILBOX_STDIN_CAPACITY */
  uint64_t host_reserved[6];
  /* written by the guest */
  uint64_t outcome;     /* OUTCOME_* */
  uint64_t status;      /* exit code, or the signal number for OUTCOME_FAULT */
  uint64_t fault_rip;   /* OUTCOME_FAULT: where */
  uint64_t fault_addr;  /* OUTCOME_FAULT with #PF: CR2 */
  uint64_t fault_vector; /* OUTCOME_FAULT: the CPU exception vector */
  uint64_t stdout_len;  /* bytes at MAILBOX_STDOUT_OFFSET */
  uint64_t stderr_len;  /* bytes at MAILBOX_STDERR_OFFSET */
  uint64_t syscalls;    /* system calls the program made in this request */
  uint64_t unknown_syscall_count; /* entries used in unknown_syscalls */
  uint16_t unknown_syscalls[MAILBOX_UNKNOWN_SYSCALLS_MAX]; /* first use of each, in order */
};

/* Debug-exit codes a program guest adds to layout.h's. */
#define EXIT_CODE_PROGRAM_NOT_READY 0x34 /* program ended before reading stdin; mailbox says how */
#define EXIT_CODE_BAD_PROGRAM_INFO 0x35  /* thaw.after=program without a valid info page */

#endif
