/* thaw-mini function runtime: the state of the one user program and the
 * pure-C pieces that implement its Linux system calls (program_syscalls.c,
 * program_files.c, program_paths.c, program_memory.c, program_time.c).
 *
 * Pure C: no inline asm and no fixed addresses, so the same files build for
 * the host's unit tests. Everything machine-specific goes through
 * program_arch.h. User addresses are translated with user_offset (0 in the
 * guest, where guest-virtual = guest-physical; a host buffer in the tests),
 * and every one is checked to lie in [PROGRAM_USER_BASE, stack_top) first,
 * so a bad argument gives -EFAULT and never a kernel fault. */
#ifndef THAW_MINI_PROGRAM_RUNTIME_H
#define THAW_MINI_PROGRAM_RUNTIME_H

#include <stdint.h>

#include "cpio_reader.h"
#include "layout.h"
#include "program_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PROGRAM_MAX_FDS 64        /* also RLIMIT_NOFILE */
#define PROGRAM_MAX_OPEN_FILES 64 /* open file descriptions (dup shares one) */
#define PROGRAM_MAX_MAPPINGS 256
#define PROGRAM_MAX_TMP_FILES 32
#define PROGRAM_TMP_NAME_MAX 64
#define PROGRAM_PATH_MAX 512
#define PROGRAM_SIGNALS 65
#define PROGRAM_PAGE_SIZE 4096ull

/* Linux errno values the runtime returns (negated). */
#define PERR_PERM 1
#define PERR_NOENT 2
#define PERR_BADF 9
#define PERR_AGAIN 11
#define PERR_NOMEM 12
#define PERR_ACCES 13
#define PERR_FAULT 14
#define PERR_EXIST 17
#define PERR_NOTDIR 20
#define PERR_ISDIR 21
#define PERR_INVAL 22
#define PERR_MFILE 24
#define PERR_NOTTY 25
#define PERR_NOSPC 28
#define PERR_SPIPE 29
#define PERR_ROFS 30
#define PERR_RANGE 34
#define PERR_NAMETOOLONG 36
#define PERR_NOSYS 38
#define PERR_LOOP 40

enum file_kind {
  FILE_FREE,
  FILE_STDIN,  /* the request's stdin (mailbox) */
  FILE_STDOUT, /* the mailbox's stdout buffer */
  FILE_STDERR,
  FILE_NODE,   /* an archive file or directory, or a device node */
  FILE_TMP,    /* a /tmp file (tmp table slot) */
};

struct open_file {
  uint32_t refs;   /* descriptors sharing it */
  uint32_t kind;   /* enum file_kind */
  uint32_t node;   /* FILE_NODE: index node; FILE_TMP: tmp slot */
  uint32_t flags;  /* open flags (access mode, O_APPEND, O_NONBLOCK) */
  uint64_t offset;
};

struct tmp_file {
  char name[PROGRAM_TMP_NAME_MAX];
  uint32_t name_len;
  uint32_t linked;     /* still has its name in /tmp */
  uint32_t opens;      /* open file descriptions using it */
  uint32_t mode;
  uint64_t addr;       /* user address of its storage (program_memory.c) */
  uint64_t capacity;
  uint64_t size;
};

struct mapping {
  uint64_t start; /* page-aligned */
  uint64_t end;
};

/* Kernel memory a ring-3 copy may touch through a user-mode alias: the
 * files archive and the mailbox (read-only), stdout/stderr (writable). */
#define PROGRAM_USER_WINDOWS 2
struct user_window {
  const uint8_t *kernel; /* kernel view of the start */
  uint64_t size;
  uint64_t user;         /* where ring 3 sees the same bytes */
  int writable;
};

/* One copy left for ring 3: kernel views (to copy in ring 0 instead) and
 * user views (for the trampoline) of both ends. */
#define PROGRAM_PENDING_COPIES 8
struct pending_copy {
  uint8_t *dst;
  const uint8_t *src;
  uint64_t user_dst;
  uint64_t user_src;
  uint64_t len;
};

struct program_runtime {
  struct thaw_program_info info; /* validated copy */
  intptr_t user_offset;          /* kernel pointer = user address + user_offset */
  struct thaw_mailbox *mailbox;
  const uint8_t *stdin_data;
  uint8_t *stdout_data;
  uint8_t *stderr_data;
  const volatile uint64_t *control; /* layout.h's control page */

  /* request state */
  int ready;          /* the ready point has passed */
  int finished;       /* the program ended: the arch layer exits with exit_code */
  uint8_t exit_code;  /* debug-exit byte */
  uint64_t stdin_len;
  uint64_t stdin_pos;

  /* files */
  struct cpio_index index;
  int16_t fds[PROGRAM_MAX_FDS]; /* open_files slot, -1 = closed */
  uint8_t fd_cloexec[PROGRAM_MAX_FDS];
  struct open_file open_files[PROGRAM_MAX_OPEN_FILES];
  struct tmp_file tmp[PROGRAM_MAX_TMP_FILES];
  uint32_t cwd;   /* node of the working directory */
  uint32_t umask;

  /* memory */
  uint64_t brk_current;
  uint64_t brk_high;        /* highest break ever: memory above it is still zero */
  uint64_t mmap_fresh_low;  /* [mmap_fresh_low, mmap_top) was handed out at some point */
  uint32_t mapping_count;
  struct mapping mappings[PROGRAM_MAX_MAPPINGS]; /* sorted, disjoint, merged */

  /* time and randomness */
  uint64_t tsc_khz;
  uint64_t tsc_base;      /* TSC when the clocks below were taken */
  uint64_t wall_base_ns;
  uint64_t mono_base_ns;
  uint64_t slept_ns;      /* nanosleep advances the clocks instead of waiting */
  uint64_t random_seed;
  uint64_t random_counter;

  /* recorded, never acted on (no signals are delivered) */
  uint64_t signal_mask;
  uint64_t signal_actions[PROGRAM_SIGNALS][4];
  uint64_t altstack[3];
  uint64_t fs_base;

  /* payload copies that run in ring 3 on the way back (program_copy.c) */
  struct user_window windows[PROGRAM_USER_WINDOWS];
  uint32_t window_count;
  uint32_t pending_count;
  struct pending_copy pending[PROGRAM_PENDING_COPIES];
};

/* Checks the info page (see program_abi.h): NULL if usable, else why not.
 * ram_end: end of the guest RAM that holds it all (0: unknown, not checked). */
const char *program_info_check(const struct thaw_program_info *info, uint64_t ram_end);

/* Sets up a runtime over a checked info page. files/mailbox/control are
 * kernel pointers; tsc_khz as calibrated. Builds the file index. */
void program_runtime_init(struct program_runtime *rt, const struct thaw_program_info *info,
                          intptr_t user_offset, const uint8_t *files, struct thaw_mailbox *mailbox,
                          const volatile uint64_t *control, uint64_t tsc_khz);

/* One system call. Returns RAX. If rt->finished is set afterwards, the
 * program has ended and the caller exits with rt->exit_code. */
int64_t program_syscall(struct program_runtime *rt, uint64_t nr, uint64_t a0, uint64_t a1,
                        uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);

/* A CPU exception in ring 3: fills the mailbox and ends the program. */
void program_fault(struct program_runtime *rt, uint64_t vector, uint64_t rip, uint64_t addr);
/* Linux's signal for a CPU exception vector. */
int program_signal_for_vector(uint64_t vector);

/* Ends the program: the mailbox gets outcome/status, rt->finished is set. */
void program_finish(struct program_runtime *rt, uint64_t outcome, uint64_t status);

/* ---- helpers shared by the runtime's files ------------------------------ */

static inline int user_range_ok(const struct program_runtime *rt, uint64_t addr, uint64_t len) {
  if (len == 0) return 1;
  return addr >= PROGRAM_USER_BASE && addr < rt->info.stack_top && len <= rt->info.stack_top - addr;
}

static inline void *user_ptr(const struct program_runtime *rt, uint64_t addr) {
  return (void *)(uintptr_t)(addr + (uint64_t)rt->user_offset);
}

/* Copies a NUL-terminated user string into buf (cap bytes with the NUL):
 * its length, -EFAULT or -ENAMETOOLONG. */
int64_t copy_user_string(const struct program_runtime *rt, uint64_t addr, char *buf, uint32_t cap);

/* program_copy.c: copies `len` bytes between kernel views dst and src. A
 * byte moved in ring 0 costs ~0.7 us on PVM (rep movsb is emulated one
 * iteration at a time), so when both ends have a user-mode address the
 * copy is queued and runs in ring 3 as the system call returns; otherwise
 * (no window, queue full, tiny) it happens now. */
void copy_for_user(struct program_runtime *rt, uint8_t *dst, const uint8_t *src, uint64_t len);
/* Does the queued copies now, in the caller's mode (host tests; the exit
 * path), and empties the queue. */
void program_run_pending_copies(struct program_runtime *rt);

/* The ready point: the first read of stdin (program_syscalls.c). */
void program_ready(struct program_runtime *rt);

/* program_files.c */
void files_init(struct program_runtime *rt);
int64_t sys_read(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len);
int64_t sys_pread(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len, int64_t offset);
int64_t sys_write(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len);
int64_t sys_pwrite(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len, int64_t offset);
int64_t sys_readv(struct program_runtime *rt, int64_t fd, uint64_t iov, uint64_t count);
int64_t sys_writev(struct program_runtime *rt, int64_t fd, uint64_t iov, uint64_t count);
int64_t sys_openat(struct program_runtime *rt, int64_t dirfd, uint64_t path, uint64_t flags, uint64_t mode);
int64_t sys_close(struct program_runtime *rt, int64_t fd);
int64_t sys_lseek(struct program_runtime *rt, int64_t fd, int64_t offset, uint64_t whence);
int64_t sys_getdents64(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len);
int64_t sys_dup3(struct program_runtime *rt, int64_t oldfd, int64_t newfd, uint64_t flags, int dup2);
int64_t sys_dup(struct program_runtime *rt, int64_t fd, int64_t lowest, int cloexec);
int64_t sys_fcntl(struct program_runtime *rt, int64_t fd, uint64_t cmd, uint64_t arg);
int64_t sys_ioctl(struct program_runtime *rt, int64_t fd, uint64_t request);
int64_t sys_poll(struct program_runtime *rt, uint64_t fds, uint64_t count);
int64_t sys_ftruncate(struct program_runtime *rt, int64_t fd, int64_t length);
/* The open file behind fd, or NULL. */
struct open_file *fd_file(struct program_runtime *rt, int64_t fd);

/* program_paths.c: names, lookup, stat, /tmp */
struct lookup {
  int32_t node; /* index node, or -1 */
  int32_t tmp;  /* tmp slot, or -1 */
};
/* Normalizes `path` against dirfd (AT_FDCWD or a directory fd) into out
 * (no leading or trailing '/', "" = root). Returns its length or -errno. */
int64_t path_normalize(struct program_runtime *rt, int64_t dirfd, const char *path, char *out);
/* Looks up a normalized name; follows a final symlink when asked. 0 or -errno. */
int64_t path_lookup(struct program_runtime *rt, const char *name, uint32_t len, int follow,
                    struct lookup *found);
/* Copies a user path, normalizes and looks it up. name/name_len: the
 * normalized name, also after -ENOENT; empty if it never got that far. */
int64_t user_path_lookup(struct program_runtime *rt, int64_t dirfd, uint64_t path, int follow,
                         struct lookup *found, char *name, uint32_t *name_len);
int64_t fill_stat(struct program_runtime *rt, const struct open_file *file, uint64_t statbuf);
int64_t fill_statx(struct program_runtime *rt, const struct open_file *file, uint64_t statxbuf);
int64_t sys_newfstatat(struct program_runtime *rt, int64_t dirfd, uint64_t path, uint64_t statbuf,
                       uint64_t flags, int statx);
int64_t sys_readlinkat(struct program_runtime *rt, int64_t dirfd, uint64_t path, uint64_t buf, uint64_t len);
int64_t sys_faccessat(struct program_runtime *rt, int64_t dirfd, uint64_t path);
int64_t sys_chdir(struct program_runtime *rt, uint64_t path);
int64_t sys_getcwd(struct program_runtime *rt, uint64_t buf, uint64_t len);
int64_t sys_unlinkat(struct program_runtime *rt, int64_t dirfd, uint64_t path);
/* A new /tmp file named `name` (normalized, "tmp/x"): its slot or -errno. */
int64_t tmp_create(struct program_runtime *rt, const char *name, uint32_t len, uint32_t mode);
/* Makes room for `size` bytes (zero-filling growth). 0 or -errno. */
int64_t tmp_reserve(struct program_runtime *rt, struct tmp_file *file, uint64_t size);
void tmp_release(struct program_runtime *rt, uint32_t slot); /* one open fewer */

/* program_memory.c */
void memory_init(struct program_runtime *rt);
int64_t sys_brk(struct program_runtime *rt, uint64_t addr);
int64_t sys_mmap(struct program_runtime *rt, uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags,
                 int64_t fd, uint64_t offset);
int64_t sys_munmap(struct program_runtime *rt, uint64_t addr, uint64_t len);
int64_t sys_mremap(struct program_runtime *rt, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                   uint64_t flags);
int64_t sys_madvise(struct program_runtime *rt, uint64_t addr, uint64_t len, uint64_t advice);
/* Kernel-internal allocation in the mmap area (for /tmp storage): a user
 * address, or 0. Released with memory_release. */
uint64_t memory_allocate(struct program_runtime *rt, uint64_t len);
void memory_release(struct program_runtime *rt, uint64_t addr, uint64_t len);

/* program_time.c */
void time_init(struct program_runtime *rt);
void time_at_ready(struct program_runtime *rt); /* takes the clone's clock and seed */
int64_t sys_clock_gettime(struct program_runtime *rt, uint64_t clock, uint64_t ts);
int64_t sys_clock_getres(struct program_runtime *rt, uint64_t clock, uint64_t ts);
int64_t sys_gettimeofday(struct program_runtime *rt, uint64_t tv);
int64_t sys_time(struct program_runtime *rt, uint64_t out);
int64_t sys_nanosleep(struct program_runtime *rt, uint64_t req, uint64_t rem);
int64_t sys_clock_nanosleep(struct program_runtime *rt, uint64_t clock, uint64_t flags, uint64_t req,
                            uint64_t rem);
int64_t sys_getrandom(struct program_runtime *rt, uint64_t buf, uint64_t len);
uint64_t monotonic_ns(struct program_runtime *rt);
uint64_t realtime_ns(struct program_runtime *rt);

#ifdef __cplusplus
}
#endif

#endif
