/* thaw-mini: the thaw.* options on the kernel command line. */
#ifndef THAW_MINI_OPTIONS_H
#define THAW_MINI_OPTIONS_H

#include <stdint.h>

#define DEFAULT_FN_BYTES 1048576

enum fault_kind { FAULT_NONE, FAULT_UD, FAULT_PF, FAULT_GP, FAULT_DE };

/* What the guest does after its boot-complete write (after_boot.c). */
enum after_kind { AFTER_IDLE, AFTER_TICKS, AFTER_SPLIT, AFTER_CLONE, AFTER_AGENT, AFTER_PROGRAM };

/* virtio_mmio.device=<size>@<base>:<irq>[:<id>] (Linux's syntax). */
#define MAX_VIRTIO_MMIO_DEVICES 4
struct virtio_mmio_option {
  uint64_t base;
  uint64_t size;
  uint32_t irq;
};

struct options {
  uint64_t fn_bytes;       /* thaw.fn_bytes=<decimal N> */
  enum fault_kind fault;   /* thaw.fault=ud|pf|gp|de */
  int exit_after_ready;    /* thaw.exit_after_ready=1 */
  int quiet;               /* thaw.quiet=1: print only exceptions */
  enum after_kind after;   /* thaw.after=idle|ticks:<N>|split|clone|agent|program */
  uint64_t after_ticks;    /* N of thaw.after=ticks:<N> */
  uint64_t tsc_khz;        /* thaw.tsc_khz=<decimal>; 0: unknown (calibrated) */
  unsigned virtio_count;   /* virtio_mmio.device= words kept (at most 4) */
  struct virtio_mmio_option virtio[MAX_VIRTIO_MMIO_DEVICES];
};

/* Unknown words and malformed values are ignored: defaults stay in force.
 * Words that start with neither "thaw." nor "virtio_mmio.device=" are skipped. */
struct options parse_options(const char *cmdline);

#endif
