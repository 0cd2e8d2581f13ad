/* thaw-mini function runtime: moving payload bytes in ring 3.
 *
 * On PVM hosts guest ring 0 is emulated, and `rep movsb` costs about one
 * emulated instruction per byte (~0.7 us): a 64 KiB request took 45 ms
 * longer than an empty one when read() copied in ring 0. Ring 3 runs
 * natively. So read() and write() only check and account in ring 0 and
 * queue the copy; the system call then returns through a small ring-3
 * trampoline in the stub page (program_entry.S) that does the queued
 * copies and jumps back to the caller. That costs no extra ring change:
 * the return to ring 3 happens anyway.
 *
 * Ring 3 can only copy what it can address: the program's own memory, and
 * the user windows the arch layer sets up (program_user_alias.c: the files
 * archive and the mailbox read-only, stdout and stderr writable). A copy
 * with an end outside them, a tiny one, or one past a full queue is done in
 * ring 0 right away (after the queue, to keep the order). */
#include "program_runtime.h"

/* Below this, queuing costs about as many ring-0 instructions as copying. */
#define RING3_COPY_MIN 32

/* Where ring 3 sees the kernel view [p, p + len), or 0 if it cannot. */
static uint64_t user_address_of(const struct program_runtime *rt, const uint8_t *p, uint64_t len, int write) {
  uint64_t addr = (uint64_t)((intptr_t)p - rt->user_offset);
  if (user_range_ok(rt, addr, len)) return addr;
  for (uint32_t i = 0; i < rt->window_count; i++) {
    const struct user_window *w = &rt->windows[i];
    if (write && !w->writable) continue;
    if (p >= w->kernel && (uint64_t)(p - w->kernel) <= w->size && len <= w->size - (uint64_t)(p - w->kernel)) {
      return w->user + (uint64_t)(p - w->kernel);
    }
  }
  return 0;
}

void copy_for_user(struct program_runtime *rt, uint8_t *dst, const uint8_t *src, uint64_t len) {
  if (len == 0) return;
  /* A /tmp file's storage is user memory, so a program can read a file into
   * itself: overlapping ends are moved in ring 0, never queued (the
   * trampoline copies forward only). */
  if (dst < src + len && src < dst + len) {
    program_run_pending_copies(rt);
    __builtin_memmove(dst, src, len);
    return;
  }
  /* Once one copy is queued, later ones queue too, or the queue is run
   * first: either way they land in the order the call made them. */
  if ((len >= RING3_COPY_MIN || rt->pending_count > 0) && rt->pending_count < PROGRAM_PENDING_COPIES) {
    uint64_t user_dst = user_address_of(rt, dst, len, 1);
    uint64_t user_src = user_address_of(rt, src, len, 0);
    if (user_dst && user_src) {
      struct pending_copy *c = &rt->pending[rt->pending_count++];
      c->dst = dst;
      c->src = src;
      c->user_dst = user_dst;
      c->user_src = user_src;
      c->len = len;
      return;
    }
  }
  program_run_pending_copies(rt);
  __builtin_memcpy(dst, src, len);
}

void program_run_pending_copies(struct program_runtime *rt) {
  for (uint32_t i = 0; i < rt->pending_count; i++) {
    __builtin_memcpy(rt->pending[i].dst, rt->pending[i].src, rt->pending[i].len);
  }
  rt->pending_count = 0;
}
