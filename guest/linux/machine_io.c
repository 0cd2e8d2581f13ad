/* The VMM's side of the guest through /dev/mem and ioperm: the
 * boot-complete byte and exit byte, the debug-exit port (before /dev/mem
 * is mapped) and the control page. Mapped once
 * at start-up so that the snapshot point (a single byte store) and every
 * clone's first steps make no system call but the ones they need. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "guest/mini/control_page_abi.h"
#include "guest/mini/layout.h"
#include "thaw_init.h"

static volatile uint8_t *boot_complete_page;
static volatile uint8_t *control_page;
static uint64_t last_generation;

static volatile uint8_t *map_physical(int mem_fd, uint64_t addr, const char *what) {
  void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mem_fd, (off_t)addr);
  if (p == MAP_FAILED) fail(EXIT_CODE_GUEST_FAILURE, "mmap /dev/mem at 0x%llx (%s): %s", (unsigned long long)addr, what,
                           strerror(errno));
  return (volatile uint8_t *)p;
}

void machine_open(void) {
  /* O_SYNC: uncached, so the byte reaches the VMM's MMIO exit at once. */
  int mem_fd = open("/dev/mem", O_RDWR | O_SYNC | O_CLOEXEC);
  if (mem_fd < 0) fail(EXIT_CODE_GUEST_FAILURE, "open /dev/mem: %s (the kernel needs CONFIG_DEVMEM)", strerror(errno));
  boot_complete_page = map_physical(mem_fd, BOOT_COMPLETE_ADDR, "boot-complete");
  control_page = map_physical(mem_fd, CONTROL_PAGE_ADDR, "control page");
  close(mem_fd);
  last_generation = *(volatile uint64_t *)(control_page + CONTROL_OFF_GENERATION);
}

void signal_boot_complete(void) {
  /* The VMM pauses every vCPU on this store and snapshots the machine: a
   * clone resumes right after it. */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  *boot_complete_page = BOOT_COMPLETE_VALUE;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void debug_exit(uint8_t code) {
  if (boot_complete_page) {
    /* A store always exits to the VMM; a port would need the I/O bitmap,
     * which an emulated SVM refuses in a restored clone (see
     * devices/legacy/boot_complete.h). */
    boot_complete_page[BOOT_COMPLETE_EXIT_OFFSET] = code;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
  } else if (ioperm(DEBUG_EXIT_PORT, 1, 1) == 0) {
    /* Before machine_open: the port, asked for only now so that the
     * program, forked earlier, does not inherit it. */
    outb(code, DEBUG_EXIT_PORT);
  } else {
    say("ioperm(0x%x): %s; waiting for the VMM's timeout", DEBUG_EXIT_PORT, strerror(errno));
  }
  /* No debug-exit device (or it did not end the VM): stop here for good. */
  for (;;) pause();
}

static uint64_t control_u64(unsigned offset) { return *(volatile uint64_t *)(control_page + offset); }

void apply_clone_identity(void) {
  if (control_u64(CONTROL_OFF_MAGIC) != CONTROL_MAGIC) return;
  uint64_t generation = control_u64(CONTROL_OFF_GENERATION);
  if (generation == last_generation) return;
  last_generation = generation;

  uint64_t wall_ns = control_u64(CONTROL_OFF_WALL_CLOCK_NS);
  if (wall_ns != 0) {
    struct timespec ts = {.tv_sec = (time_t)(wall_ns / 1000000000ull), .tv_nsec = (long)(wall_ns % 1000000000ull)};
    if (clock_settime(CLOCK_REALTIME, &ts) != 0) say("clock_settime: %s", strerror(errno));
  }

  struct {
    struct rand_pool_info info;
    uint64_t words[2];
  } entropy;
  memset(&entropy, 0, sizeof entropy);
  entropy.words[0] = control_u64(CONTROL_OFF_SEED);
  entropy.words[1] = control_u64(CONTROL_OFF_CLONE_ID) ^ generation;
  entropy.info.entropy_count = 64;
  entropy.info.buf_size = sizeof entropy.words;
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    say("open /dev/urandom: %s; clones share the snapshot's RNG state", strerror(errno));
    return;
  }
  if (ioctl(fd, RNDADDENTROPY, &entropy) != 0 || ioctl(fd, RNDRESEEDCRNG) != 0) {
    say("seeding the kernel RNG: %s", strerror(errno));
  }
  close(fd);
}
