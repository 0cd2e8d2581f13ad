/* One static test program for the mini guest's function runtime
 * (tests/integration/program_runtime_test.cpp drives it through `thaw run`).
 * argv[1] picks the behaviour; each mode is what a real function would do,
 * or the one way it can break that the runtime has to survive.
 *
 * Most modes read stdin first: the first read of fd 0 is the ready point,
 * where the snapshot is taken, so everything after it runs once per
 * request from a pristine clone. Built with the host's gcc and -static
 * (glibc's libc.a), like any user's program. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Reads all of stdin (the request) into a static buffer; returns its length. */
static char request[1 << 20];
static size_t read_request(void) {
  size_t len = 0;
  for (;;) {
    ssize_t n = read(0, request + len, sizeof request - 1 - len);
    if (n <= 0) break;
    len += (size_t)n;
    if (len == sizeof request - 1) break;
  }
  request[len] = '\0';
  return len;
}

/* State a request must never see from an earlier one: a global and a /tmp
 * file, both counted up once per request. Prints 1 1 on a pristine clone. */
static int counter;
static int mode_counter(void) {
  read_request();
  ++counter;
  int fd = open("/tmp/count", O_RDWR | O_CREAT, 0644);
  if (fd < 0) {
    perror("open /tmp/count");
    return 1;
  }
  char buf[32] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int on_file = (n > 0 ? atoi(buf) : 0) + 1;
  int len = snprintf(buf, sizeof buf, "%d", on_file);
  if (lseek(fd, 0, SEEK_SET) != 0 || write(fd, buf, (size_t)len) != len) {
    perror("write /tmp/count");
    return 1;
  }
  close(fd);
  printf("global %d file %d\n", counter, on_file);
  return 0;
}

static int mode_echo(void) {
  size_t len = read_request();
  return fwrite(request, 1, len, stdout) == len ? 0 : 1;
}

/* Never ends: only the host's deadline can stop it (ring 3 runs with
 * interrupts off, the guest kernel cannot preempt it). */
static _Noreturn void mode_loop(void) {
  read_request();
  volatile uint64_t spins = 0;
  for (;;) ++spins;
}

/* 10 MiB to stdout: ten times the mailbox's capacity. */
static int mode_flood(void) {
  read_request();
  static char block[64 * 1024];
  memset(block, 'x', sizeof block);
  for (int i = 0; i < 160; ++i) {
    if (fwrite(block, 1, sizeof block, stdout) != sizeof block) return 1;
  }
  return 0;
}

static int mode_null(void) {
  read_request();
  volatile int *p = (volatile int *)(uintptr_t)0;
  return *p;
}

/* Writes one byte at argv[2] (hex): the kernel's image (0x100000) or the
 * control page (0x80000) must be out of the program's reach. */
static int mode_poke(int argc, char **argv) {
  read_request();
  if (argc < 3) return 2;
  volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)strtoull(argv[2], NULL, 16);
  *p = 0xcc;
  printf("wrote to %p\n", (void *)p);
  return 0;
}

/* Reads one byte at argv[2] (hex): the kernel's memory is not even
 * readable from ring 3 (its page tables, its data); the request's own
 * bytes are, through their read-only alias. */
static int mode_peek(int argc, char **argv) {
  read_request();
  if (argc < 3) return 2;
  volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)strtoull(argv[2], NULL, 16);
  printf("read %02x at %p\n", *p, (void *)p);
  return 0;
}

/* Allocates 1 MiB blocks (one byte touched in each) until malloc fails:
 * out of guest memory must be ENOMEM to the program, never a fault. */
static int mode_oom(void) {
  read_request();
  size_t mib = 0;
  for (;;) {
    char *block = malloc(1 << 20);
    if (block == NULL) break;
    block[mib % (1 << 20)] = 1;
    ++mib;
  }
  printf("malloc failed after %s MiB: %s\n", mib >= 16 ? "16+" : "<16", strerror(errno));
  return 0;
}

/* CLOCK_REALTIME in seconds: the wall clock thaw writes per request. */
static int mode_clock(void) {
  read_request();
  printf("%lld\n", (long long)time(NULL));
  return 0;
}

/* Fails before its first read of stdin: there is no ready point. */
static int mode_early_exit(void) {
  fprintf(stderr, "early-exit: missing configuration, giving up\n");
  return 3;
}

/* Numbers no runtime implements: the program gets -ENOSYS and carries on. */
static int mode_unknown_syscall(void) {
  read_request();
  long a = syscall(400);
  int errno_a = errno;
  long b = syscall(SYS_io_uring_setup, 8, NULL);
  int errno_b = errno;
  printf("400: %ld %s\nio_uring_setup: %ld %s\n", a, errno_a == ENOSYS ? "ENOSYS" : strerror(errno_a), b,
         errno_b == ENOSYS ? "ENOSYS" : strerror(errno_b));
  return 0;
}

static int mode_random(void) {
  read_request();
  unsigned char bytes[16];
  if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
    perror("getrandom");
    return 1;
  }
  for (size_t i = 0; i < sizeof bytes; ++i) printf("%02x", bytes[i]);
  printf("\n");
  return 0;
}

/* The cost of a system call in the guest: N getppid() calls per request
 * (N from argv[2], default 1000), then the count on stdout. */
static int mode_syscalls(int argc, char **argv) {
  read_request();
  long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += syscall(SYS_getppid);
  printf("%ld getppid calls, sum %ld\n", n, sum);
  return 0;
}

/* reboot(2) as `poweroff -f` makes it (the request says "halt" or
 * "restart" for those instead). It ends the guest; if it returns, the
 * runtime refused it. */
static int mode_poweroff(void) {
  read_request();
  int cmd = strncmp(request, "halt", 4) == 0      ? RB_HALT_SYSTEM
            : strncmp(request, "restart", 7) == 0 ? RB_AUTOBOOT
                                                   : RB_POWER_OFF;
  reboot(cmd);
  printf("reboot: %s\n", strerror(errno));
  return 1;
}

/* argv, the environment, then the file named by the last argument (shipped
 * with --files). */
static int mode_args(int argc, char **argv) {
  read_request();
  for (int i = 0; i < argc; ++i) printf("argv[%d]=%s\n", i, argv[i]);
  for (char **e = environ; *e != NULL; ++e) printf("env %s\n", *e);
  FILE *f = fopen(argv[argc - 1], "r");
  if (f == NULL) {
    perror(argv[argc - 1]);
    return 1;
  }
  char line[256];
  while (fgets(line, sizeof line, f) != NULL) printf("file %s", line);
  fclose(f);
  return 0;
}

/* ---- edges: the cases fuzz_guest_syscalls found, made by a real program --
 * Each prints one line that names the case and "ok" or what went wrong. */

/* The bytes /tmp/self starts with: no run of them appears elsewhere. */
static unsigned char pattern_byte(size_t i) { return (unsigned char)((i * 37 + 11) ^ (i >> 8) ^ 0x5a); }
enum { kSelfBytes = 8192, kShift = 4096 };

/* The break must never grow over the stack, even when the only mapping
 * above it is one the program placed in the stack. With no other mapping,
 * the first anonymous mmap sits right under mmap_top (the stack's bottom). */
static void edge_brk_over_stack(void) {
  char *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe == MAP_FAILED) {
    printf("brk over the stack: mmap failed: %s\n", strerror(errno));
    return;
  }
  uintptr_t stack_bottom = (uintptr_t)probe + 4096;
  munmap(probe, 4096);
  char *in_stack = (char *)(stack_bottom + (4u << 20)); /* far below the live stack */
  if (mmap(in_stack, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != in_stack) {
    printf("brk over the stack: MAP_FIXED in the stack failed: %s\n", strerror(errno));
    return;
  }
  uintptr_t before = (uintptr_t)syscall(SYS_brk, 0);
  uintptr_t after = (uintptr_t)syscall(SYS_brk, stack_bottom + 8192);
  munmap(in_stack, 4096);
  if (after == before) {
    printf("brk over the stack: refused\n");
  } else {
    syscall(SYS_brk, before);
    printf("brk over the stack: grew to %#lx (stack from %#lx)\n", (unsigned long)after, (unsigned long)stack_bottom);
  }
}

/* open("", O_CREAT) is ENOENT, as on Linux (it once created a file named
 * from stale kernel stack). */
static void edge_open_empty(void) {
  int fd = open("", O_RDWR | O_CREAT, 0644);
  printf("open(\"\", O_CREAT): %s\n", fd < 0 && errno == ENOENT ? "ENOENT" : fd < 0 ? strerror(errno) : "opened");
  if (fd >= 0) close(fd);
}

/* Where the runtime keeps /tmp/self's bytes: user memory, page-aligned,
 * just above the next anonymous mapping (mmaps are carved top-down). */
static unsigned char *find_file_storage(void) {
  unsigned char *below = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (below == MAP_FAILED) return NULL;
  munmap(below, 4096);
  for (size_t page = 1; page <= 256; ++page) {
    unsigned char *p = below + page * 4096;
    size_t i = 0;
    while (i < 256 && p[i] == pattern_byte(i)) ++i;
    if (i == 256) return p;
  }
  return NULL;
}

/* What the file must hold: the same moves made with memmove on a copy. */
static unsigned char model[kSelfBytes];
static int file_matches_model(int fd) {
  static unsigned char got[kSelfBytes];
  return pread(fd, got, sizeof got, 0) == (ssize_t)sizeof got && memcmp(got, model, sizeof got) == 0;
}

/* A program may hand the runtime a /tmp file's own storage as its buffer:
 * the copies overlap and must behave as memmove (in the guest, a backward
 * copy when the destination is above the source). */
static void edge_copies_through_file_storage(void) {
  int fd = open("/tmp/self", O_RDWR | O_CREAT | O_TRUNC, 0644);
  for (size_t i = 0; i < sizeof model; ++i) model[i] = pattern_byte(i);
  if (fd < 0 || write(fd, model, sizeof model) != (ssize_t)sizeof model) {
    printf("/tmp/self: %s\n", strerror(errno));
    return;
  }
  unsigned char *storage = find_file_storage();
  if (storage == NULL) {
    printf("/tmp/self: its storage was not found in user memory\n");
    return;
  }
  /* file[1, 1 + kShift) = file[0, kShift): destination above the source. */
  ssize_t n = pwrite(fd, storage, kShift, 1);
  memmove(model + 1, model, kShift);
  printf("pwrite from the file's own storage, upward: %s\n", n == kShift && file_matches_model(fd) ? "ok" : "wrong bytes");
  /* file[0, kShift) = file[1, 1 + kShift): destination below the source. */
  n = pwrite(fd, storage + 1, kShift, 0);
  memmove(model, model + 1, kShift);
  printf("pwrite from the file's own storage, downward: %s\n", n == kShift && file_matches_model(fd) ? "ok" : "wrong bytes");
  /* storage[3, 3 + kShift) = file[0, kShift): a read into the file itself. */
  n = pread(fd, storage + 3, kShift, 0);
  memmove(model + 3, model, kShift);
  printf("pread into the file's own storage: %s\n", n == kShift && file_matches_model(fd) ? "ok" : "wrong bytes");
  close(fd);
  unlink("/tmp/self");
}

static int mode_edges(void) {
  read_request();
  edge_brk_over_stack(); /* first: before anything else is mapped */
  edge_open_empty();
  edge_copies_through_file_storage();
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "counter") == 0) return mode_counter();
  if (strcmp(mode, "echo") == 0) return mode_echo();
  if (strcmp(mode, "loop") == 0) mode_loop();
  if (strcmp(mode, "flood") == 0) return mode_flood();
  if (strcmp(mode, "null") == 0) return mode_null();
  if (strcmp(mode, "poke") == 0) return mode_poke(argc, argv);
  if (strcmp(mode, "peek") == 0) return mode_peek(argc, argv);
  if (strcmp(mode, "clock") == 0) return mode_clock();
  if (strcmp(mode, "oom") == 0) return mode_oom();
  if (strcmp(mode, "early-exit") == 0) return mode_early_exit();
  if (strcmp(mode, "unknown-syscall") == 0) return mode_unknown_syscall();
  if (strcmp(mode, "random") == 0) return mode_random();
  if (strcmp(mode, "args") == 0) return mode_args(argc, argv);
  if (strcmp(mode, "syscalls") == 0) return mode_syscalls(argc, argv);
  if (strcmp(mode, "poweroff") == 0) return mode_poweroff();
  if (strcmp(mode, "edges") == 0) return mode_edges();
  fprintf(stderr, "usage: %s counter|echo|loop|flood|null|poke ADDR|peek ADDR|oom|clock|early-exit|unknown-syscall|random|args ... FILE|syscalls [N]|poweroff|edges\n",
          argv[0]);
  return 2;
}
