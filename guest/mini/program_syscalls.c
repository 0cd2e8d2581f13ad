/* thaw-mini function runtime: the system-call dispatcher, the ready point,
 * how a program ends, and the small process-level calls (ids, limits,
 * uname, signals recorded but never delivered). Pure C (program_runtime.h). */
#include "program_arch.h"
#include "program_runtime.h"

/* x86-64 Linux system-call numbers. */
enum {
  NR_read = 0, NR_write = 1, NR_open = 2, NR_close = 3, NR_stat = 4, NR_fstat = 5, NR_lstat = 6,
  NR_poll = 7, NR_lseek = 8, NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11, NR_brk = 12,
  NR_rt_sigaction = 13, NR_rt_sigprocmask = 14, NR_ioctl = 16, NR_pread64 = 17, NR_pwrite64 = 18,
  NR_readv = 19, NR_writev = 20, NR_access = 21, NR_sched_yield = 24, NR_mremap = 25,
  NR_madvise = 28, NR_dup = 32, NR_dup2 = 33, NR_nanosleep = 35, NR_getpid = 39, NR_clone = 56,
  NR_fork = 57, NR_vfork = 58, NR_execve = 59, NR_exit = 60, NR_kill = 62, NR_uname = 63,
  NR_fcntl = 72, NR_ftruncate = 77, NR_getcwd = 79, NR_chdir = 80, NR_unlink = 87, NR_readlink = 89,
  NR_umask = 95, NR_gettimeofday = 96, NR_getrlimit = 97, NR_sysinfo = 99, NR_getuid = 102,
  NR_getgid = 104, NR_geteuid = 107, NR_getegid = 108, NR_getppid = 110, NR_sigaltstack = 131,
  NR_arch_prctl = 158, NR_reboot = 169, NR_gettid = 186, NR_tkill = 200, NR_time = 201, NR_futex = 202,
  NR_sched_getaffinity = 204, NR_getdents64 = 217, NR_set_tid_address = 218,
  NR_clock_gettime = 228, NR_clock_getres = 229, NR_clock_nanosleep = 230, NR_exit_group = 231,
  NR_tgkill = 234, NR_openat = 257, NR_newfstatat = 262, NR_unlinkat = 263, NR_readlinkat = 267,
  NR_faccessat = 269, NR_ppoll = 271, NR_set_robust_list = 273, NR_dup3 = 292, NR_prlimit64 = 302,
  NR_getrandom = 318, NR_statx = 332, NR_rseq = 334, NR_faccessat2 = 439,
};

#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define RLIMIT_STACK 3
#define RLIMIT_NOFILE 7
#define RLIM_INFINITY (~0ull)
#define SIG_IGN 1
#define SS_DISABLE 2
#define FUTEX_CMD_MASK 0x7f
#define FUTEX_WAKE 1
#define NO_CPU_VECTOR 256 /* fault_vector of a program that killed itself */

const char *program_info_check(const struct thaw_program_info *info, uint64_t ram_end) {
  if (info->magic != PROGRAM_INFO_MAGIC) return "bad magic";
  if (info->version != PROGRAM_INFO_VERSION) return "unsupported version";
  if (info->stack_top > 0x100000000ull || info->ram_top > 0x100000000ull) return "beyond 4 GiB";
  if (ram_end != 0 && info->ram_top > ram_end) return "ram_top beyond RAM";
  if (info->brk_start < PROGRAM_USER_BASE || info->brk_start % PROGRAM_PAGE_SIZE) return "bad brk_start";
  if (info->mmap_top < info->brk_start || info->mmap_top % PROGRAM_PAGE_SIZE) return "bad mmap_top";
  if (info->stack_bottom < info->mmap_top || info->stack_bottom >= info->stack_top) return "bad stack";
  if (info->stack_top % PROGRAM_PAGE_SIZE) return "stack_top not page-aligned";
  /* The kernel tail is whole 2 MiB pages, so it must not start below stack_top. */
  if ((info->files_addr & ~(PROGRAM_KERNEL_TAIL_ALIGN - 1)) < info->stack_top) return "files overlap user memory";
  if (info->files_size > info->mailbox_addr - info->files_addr || info->mailbox_addr < info->files_addr) {
    return "files overlap the mailbox";
  }
  if (info->mailbox_addr % PROGRAM_PAGE_SIZE || info->mailbox_size < MAILBOX_SIZE) return "bad mailbox";
  if (info->mailbox_addr > info->ram_top || info->mailbox_size > info->ram_top - info->mailbox_addr) {
    return "mailbox beyond ram_top";
  }
  if (info->entry < PROGRAM_USER_BASE || info->entry >= info->stack_top) return "entry outside user memory";
  /* 8 bytes below the initial stack pointer hold the entry trampoline's return address. */
  if (info->stack_pointer < info->stack_bottom + 8 || info->stack_pointer >= info->stack_top) {
    return "stack_pointer outside the stack";
  }
  for (int i = 0; i < PROGRAM_EXE_PATH_MAX; i++) {
    if (info->exe_path[i] == '\0') return 0;
  }
  return "exe_path not terminated";
}

void program_runtime_init(struct program_runtime *rt, const struct thaw_program_info *info,
                          intptr_t user_offset, const uint8_t *files, struct thaw_mailbox *mailbox,
                          const volatile uint64_t *control, uint64_t tsc_khz) {
  __builtin_memset(rt, 0, sizeof *rt);
  rt->info = *info;
  rt->user_offset = user_offset;
  rt->mailbox = mailbox;
  rt->stdin_data = (const uint8_t *)mailbox + MAILBOX_STDIN_OFFSET;
  rt->stdout_data = (uint8_t *)mailbox + MAILBOX_STDOUT_OFFSET;
  rt->stderr_data = (uint8_t *)mailbox + MAILBOX_STDERR_OFFSET;
  rt->control = control;
  rt->tsc_khz = tsc_khz;
  rt->umask = 022;
  /* The response fields start clean; the request fields are the host's. */
  mailbox->outcome = OUTCOME_NONE;
  mailbox->status = 0;
  mailbox->fault_rip = 0;
  mailbox->fault_addr = 0;
  mailbox->fault_vector = 0;
  mailbox->stdout_len = 0;
  mailbox->stderr_len = 0;
  mailbox->syscalls = 0;
  mailbox->unknown_syscall_count = 0;
  cpio_index_reset(&rt->index);
  if (info->files_size) cpio_index_add_archive(&rt->index, files, info->files_size);
  memory_init(rt);
  files_init(rt);
  time_init(rt);
}

int64_t copy_user_string(const struct program_runtime *rt, uint64_t addr, char *buf, uint32_t cap) {
  if (!user_range_ok(rt, addr, 1)) return -PERR_FAULT;
  uint64_t room = rt->info.stack_top - addr; /* readable bytes from addr on */
  const char *src = (const char *)user_ptr(rt, addr);
  for (uint32_t i = 0; i < cap; i++) {
    if (i == room) return -PERR_FAULT;
    buf[i] = src[i];
    if (buf[i] == '\0') return i;
  }
  return -PERR_NAMETOOLONG;
}

void program_finish(struct program_runtime *rt, uint64_t outcome, uint64_t status) {
  struct thaw_mailbox *mb = rt->mailbox;
  /* A cold boot that ended before reading stdin leaves no usable template. */
  if (!rt->ready && outcome == OUTCOME_EXITED) outcome = OUTCOME_NOT_READY;
  /* No return to ring 3 follows: what the call queued is copied here. */
  program_run_pending_copies(rt);
  mb->outcome = outcome;
  mb->status = status;
  rt->exit_code = rt->ready ? EXIT_CODE_SUCCESS : EXIT_CODE_PROGRAM_NOT_READY;
  rt->finished = 1;
}

/* reboot(2) as Linux checks it. Powering off, halting or restarting ends the
 * clone, as it would end a Linux guest (where thaw-init does the same); the
 * host reports the request as lost with "guest powered off". */
static int64_t sys_reboot(struct program_runtime *rt, uint64_t magic1, uint64_t magic2, uint64_t cmd) {
  const uint32_t m2 = (uint32_t)magic2;
  if ((uint32_t)magic1 != 0xfee1deadu ||
      (m2 != 0x28121969u && m2 != 0x05121996u && m2 != 0x16041998u && m2 != 0x20112000u)) {
    return -PERR_INVAL;
  }
  uint64_t what;
  switch ((uint32_t)cmd) {
    case 0x4321fedcu: what = POWER_OFF_POWER_OFF; break;
    case 0xcdef0123u: what = POWER_OFF_HALT; break;
    case 0x01234567u: case 0xa1b2c3d4u: what = POWER_OFF_RESTART; break;
    case 0x89abcdefu: case 0: return 0; /* Ctrl-Alt-Del on/off: no keyboard to press it */
    default: return -PERR_INVAL;        /* kexec, suspend: not on this machine */
  }
  program_finish(rt, OUTCOME_POWER_OFF, what);
  rt->exit_code = EXIT_CODE_POWER_OFF;
  return 0;
}

int program_signal_for_vector(uint64_t vector) {
  switch (vector) {
    case 0: case 16: case 19: return PROGRAM_SIGFPE;   /* #DE #MF #XM */
    case 1: case 3: return PROGRAM_SIGTRAP;            /* #DB #BP */
    case 6: return PROGRAM_SIGILL;                     /* #UD */
    case 17: return PROGRAM_SIGBUS;                    /* #AC */
    default: return PROGRAM_SIGSEGV;                   /* #PF #GP #SS #NP and the rest */
  }
}

void program_fault(struct program_runtime *rt, uint64_t vector, uint64_t rip, uint64_t addr) {
  struct thaw_mailbox *mb = rt->mailbox;
  mb->fault_rip = rip;
  mb->fault_addr = vector == 14 ? addr : 0;
  mb->fault_vector = vector;
  int signal = program_signal_for_vector(vector);
  program_finish(rt, OUTCOME_FAULT, (uint64_t)signal);
}

void program_ready(struct program_runtime *rt) {
  struct thaw_mailbox *mb = rt->mailbox;
  /* Output before the ready point is start-up noise: requests start empty. */
  mb->stdout_len = 0;
  mb->stderr_len = 0;
  mb->outcome = OUTCOME_NONE;
  mb->status = 0;
  mb->syscalls = 1; /* this read: served in the request */
  rt->ready = 1;
  program_arch_ready_point();
  /* Every restored clone starts here: take its request, clock and seed. */
  rt->stdin_len = 0;
  rt->stdin_pos = 0;
  if (mb->magic == MAILBOX_MAGIC) {
    uint64_t len = mb->stdin_len;
    rt->stdin_len = len < MAILBOX_STDIN_CAPACITY ? len : MAILBOX_STDIN_CAPACITY;
  }
  time_at_ready(rt);
}

static void record_unknown(struct program_runtime *rt, uint64_t nr) {
  struct thaw_mailbox *mb = rt->mailbox;
  uint64_t count = mb->unknown_syscall_count;
  if (count > MAILBOX_UNKNOWN_SYSCALLS_MAX) count = MAILBOX_UNKNOWN_SYSCALLS_MAX;
  for (uint64_t i = 0; i < count; i++) {
    if (mb->unknown_syscalls[i] == nr) return;
  }
  if (count == MAILBOX_UNKNOWN_SYSCALLS_MAX) return; /* full: stop logging too */
  mb->unknown_syscalls[count] = (uint16_t)nr;
  mb->unknown_syscall_count = count + 1;
  program_arch_log("unknown syscall", nr);
}

static int64_t put_user(struct program_runtime *rt, uint64_t addr, const void *src, uint64_t len) {
  if (!user_range_ok(rt, addr, len)) return -PERR_FAULT;
  __builtin_memcpy(user_ptr(rt, addr), src, len);
  return 0;
}

static void set_field(char *field, const char *text) {
  for (int i = 0; text[i]; i++) field[i] = text[i];
}

static int64_t sys_uname(struct program_runtime *rt, uint64_t buf) {
  char uts[6 * 65];
  __builtin_memset(uts, 0, sizeof uts);
  set_field(uts + 0 * 65, "Linux");
  set_field(uts + 1 * 65, "thaw");
  set_field(uts + 2 * 65, "6.1.0-thaw");
  set_field(uts + 3 * 65, "#1 SMP thaw-mini");
  set_field(uts + 4 * 65, "x86_64");
  set_field(uts + 5 * 65, "(none)");
  return put_user(rt, buf, uts, sizeof uts);
}

static int64_t sys_prlimit(struct program_runtime *rt, uint64_t resource, uint64_t old) {
  uint64_t limit[2] = {RLIM_INFINITY, RLIM_INFINITY};
  if (resource == RLIMIT_STACK) limit[0] = limit[1] = PROGRAM_STACK_SIZE;
  if (resource == RLIMIT_NOFILE) limit[0] = limit[1] = PROGRAM_MAX_FDS;
  if (resource >= 16) return -PERR_INVAL;
  if (!old) return 0; /* setting a limit is accepted and ignored */
  return put_user(rt, old, limit, sizeof limit);
}

static int64_t sys_sysinfo(struct program_runtime *rt, uint64_t buf) {
  uint64_t info[14];
  __builtin_memset(info, 0, sizeof info);
  info[0] = monotonic_ns(rt) / 1000000000ull;                 /* uptime */
  info[4] = rt->info.stack_top - PROGRAM_USER_BASE;             /* totalram */
  uint64_t free_top = rt->mapping_count ? rt->mappings[0].start : rt->info.mmap_top;
  info[5] = free_top > rt->brk_current ? free_top - rt->brk_current : 0; /* freeram */
  info[10] = 1;                                                 /* procs (u16 at +80) */
  info[13] = 1;                                                 /* mem_unit (u32 at +104) */
  return put_user(rt, buf, info, 112);
}

static int64_t sys_rt_sigaction(struct program_runtime *rt, uint64_t sig, uint64_t act, uint64_t old) {
  if (sig == 0 || sig >= PROGRAM_SIGNALS) return -PERR_INVAL;
  if (old && !user_range_ok(rt, old, 32)) return -PERR_FAULT;
  if (act && !user_range_ok(rt, act, 32)) return -PERR_FAULT;
  uint64_t previous[4];
  __builtin_memcpy(previous, rt->signal_actions[sig], sizeof previous);
  if (act) __builtin_memcpy(rt->signal_actions[sig], user_ptr(rt, act), 32);
  if (old) __builtin_memcpy(user_ptr(rt, old), previous, 32);
  return 0;
}

static int64_t sys_rt_sigprocmask(struct program_runtime *rt, uint64_t how, uint64_t set, uint64_t old) {
  if (old && put_user(rt, old, &rt->signal_mask, 8)) return -PERR_FAULT;
  if (!set) return 0;
  if (!user_range_ok(rt, set, 8)) return -PERR_FAULT;
  uint64_t value;
  __builtin_memcpy(&value, user_ptr(rt, set), 8);
  if (how == 0) rt->signal_mask |= value;        /* SIG_BLOCK */
  else if (how == 1) rt->signal_mask &= ~value;  /* SIG_UNBLOCK */
  else if (how == 2) rt->signal_mask = value;    /* SIG_SETMASK */
  else return -PERR_INVAL;
  return 0;
}

static int64_t sys_sigaltstack(struct program_runtime *rt, uint64_t ss, uint64_t old) {
  if (ss && !user_range_ok(rt, ss, 24)) return -PERR_FAULT;
  if (old) {
    uint64_t previous[3];
    __builtin_memcpy(previous, rt->altstack, sizeof previous);
    if (previous[0] == 0 && previous[2] == 0) previous[1] = SS_DISABLE;
    if (put_user(rt, old, previous, 24)) return -PERR_FAULT;
  }
  if (ss) __builtin_memcpy(rt->altstack, user_ptr(rt, ss), 24);
  return 0;
}

/* kill/tkill/tgkill aimed at ourselves (abort() uses them): no handler runs,
 * the default action ends the program like a fatal signal would. */
static int64_t sys_kill(struct program_runtime *rt, uint64_t sig) {
  if (sig >= PROGRAM_SIGNALS) return -PERR_INVAL;
  if (sig == 0 || rt->signal_actions[sig][0] == SIG_IGN) return 0;
  if (sig == 17 || sig == 23 || sig == 28) return 0; /* SIGCHLD SIGURG SIGWINCH: ignored by default */
  rt->mailbox->fault_vector = NO_CPU_VECTOR;
  program_finish(rt, OUTCOME_FAULT, sig);
  return 0;
}

static int64_t sys_arch_prctl(struct program_runtime *rt, uint64_t code, uint64_t addr) {
  if (code == ARCH_SET_FS) {
    if (addr >= 0x800000000000ull) return -PERR_PERM; /* non-canonical: wrmsr would #GP */
    rt->fs_base = addr;
    program_arch_set_fs_base(addr);
    return 0;
  }
  if (code == ARCH_GET_FS) return put_user(rt, addr, &rt->fs_base, 8);
  return -PERR_INVAL;
}

static int64_t sys_sched_getaffinity(struct program_runtime *rt, uint64_t len, uint64_t mask) {
  if (len < 8) return -PERR_INVAL;
  uint64_t one = 1;
  if (put_user(rt, mask, &one, 8)) return -PERR_FAULT;
  return 8;
}

int64_t program_syscall(struct program_runtime *rt, uint64_t nr, uint64_t a0, uint64_t a1,
                        uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  rt->mailbox->syscalls++;
  int64_t fd = (int64_t)a0;
  switch (nr) {
    case NR_read: return sys_read(rt, fd, a1, a2);
    case NR_write: return sys_write(rt, fd, a1, a2);
    case NR_pread64: return sys_pread(rt, fd, a1, a2, (int64_t)a3);
    case NR_pwrite64: return sys_pwrite(rt, fd, a1, a2, (int64_t)a3);
    case NR_readv: return sys_readv(rt, fd, a1, a2);
    case NR_writev: return sys_writev(rt, fd, a1, a2);
    case NR_open: return sys_openat(rt, AT_FDCWD, a0, a1, a2);
    case NR_openat: return sys_openat(rt, fd, a1, a2, a3);
    case NR_close: return sys_close(rt, fd);
    case NR_stat: return sys_newfstatat(rt, AT_FDCWD, a0, a1, 0, 0);
    case NR_lstat: return sys_newfstatat(rt, AT_FDCWD, a0, a1, AT_SYMLINK_NOFOLLOW, 0);
    case NR_fstat: {
      struct open_file *file = fd_file(rt, fd);
      return file ? fill_stat(rt, file, a1) : -PERR_BADF;
    }
    case NR_newfstatat: return sys_newfstatat(rt, fd, a1, a2, a3, 0);
    case NR_statx: return sys_newfstatat(rt, fd, a1, a4, a2, 1);
    case NR_lseek: return sys_lseek(rt, fd, (int64_t)a1, a2);
    case NR_getdents64: return sys_getdents64(rt, fd, a1, a2);
    case NR_readlink: return sys_readlinkat(rt, AT_FDCWD, a0, a1, a2);
    case NR_readlinkat: return sys_readlinkat(rt, fd, a1, a2, a3);
    case NR_access: return sys_faccessat(rt, AT_FDCWD, a0);
    case NR_faccessat: case NR_faccessat2: return sys_faccessat(rt, fd, a1);
    case NR_getcwd: return sys_getcwd(rt, a0, a1);
    case NR_chdir: return sys_chdir(rt, a0);
    case NR_unlink: return sys_unlinkat(rt, AT_FDCWD, a0);
    case NR_unlinkat: return sys_unlinkat(rt, fd, a1);
    case NR_ftruncate: return sys_ftruncate(rt, fd, (int64_t)a1);
    case NR_dup: return sys_dup(rt, fd, 0, 0);
    case NR_dup2: return sys_dup3(rt, fd, (int64_t)a1, 0, 1);
    case NR_dup3: return sys_dup3(rt, fd, (int64_t)a1, a2, 0);
    case NR_fcntl: return sys_fcntl(rt, fd, a1, a2);
    case NR_ioctl: return sys_ioctl(rt, fd, a1);
    case NR_poll: case NR_ppoll: return sys_poll(rt, a0, a1);
    case NR_brk: return sys_brk(rt, a0);
    case NR_mmap: return sys_mmap(rt, a0, a1, a2, a3, (int64_t)a4, a5);
    case NR_munmap: return sys_munmap(rt, a0, a1);
    case NR_mremap: return sys_mremap(rt, a0, a1, a2, a3);
    case NR_madvise: return sys_madvise(rt, a0, a1, a2);
    case NR_mprotect: return 0; /* every user page is RWX; protections are not enforced */
    case NR_arch_prctl: return sys_arch_prctl(rt, a0, a1);
    case NR_set_tid_address: return 1;
    case NR_set_robust_list: return 0;
    case NR_rseq: return -PERR_NOSYS; /* glibc then runs without rseq */
    case NR_futex: return (a1 & FUTEX_CMD_MASK) == FUTEX_WAKE ? 0 : -PERR_AGAIN; /* one thread */
    case NR_prlimit64: return sys_prlimit(rt, a1, a3);
    case NR_getrlimit: return sys_prlimit(rt, a0, a1);
    case NR_uname: return sys_uname(rt, a0);
    case NR_sysinfo: return sys_sysinfo(rt, a0);
    case NR_getpid: case NR_gettid: return 1;
    case NR_getppid: return 0;
    case NR_getuid: case NR_geteuid: case NR_getgid: case NR_getegid: return 0;
    case NR_umask: {
      uint64_t previous = rt->umask;
      rt->umask = (uint32_t)(a0 & 0777);
      return (int64_t)previous;
    }
    case NR_getrandom: return sys_getrandom(rt, a0, a1);
    case NR_clock_gettime: return sys_clock_gettime(rt, a0, a1);
    case NR_clock_getres: return sys_clock_getres(rt, a0, a1);
    case NR_gettimeofday: return sys_gettimeofday(rt, a0);
    case NR_time: return sys_time(rt, a0);
    case NR_nanosleep: return sys_nanosleep(rt, a0, a1);
    case NR_clock_nanosleep: return sys_clock_nanosleep(rt, a0, a1, a2, a3);
    case NR_rt_sigaction: return sys_rt_sigaction(rt, a0, a1, a2);
    case NR_rt_sigprocmask: return sys_rt_sigprocmask(rt, a0, a1, a2);
    case NR_sigaltstack: return sys_sigaltstack(rt, a0, a1);
    case NR_kill: return a0 == 1 || a0 == 0 ? sys_kill(rt, a1) : -PERR_PERM;
    case NR_tkill: return a0 == 1 ? sys_kill(rt, a1) : -PERR_PERM;
    case NR_tgkill: return a0 == 1 && a1 == 1 ? sys_kill(rt, a2) : -PERR_PERM;
    case NR_sched_getaffinity: return sys_sched_getaffinity(rt, a1, a2);
    case NR_sched_yield: return 0;
    case NR_reboot: return sys_reboot(rt, a0, a1, a2);
    case NR_exit: case NR_exit_group:
      program_finish(rt, OUTCOME_EXITED, a0 & 0xff);
      return 0;
    case NR_clone: case NR_fork: case NR_vfork: case NR_execve:
      return -PERR_NOSYS; /* one process, no exec: expected, so not "unknown" */
    default:
      (void)a5;
      record_unknown(rt, nr);
      return -PERR_NOSYS;
  }
}
