/* thaw-mini function runtime: the program's address space bookkeeping.
 *
 * All user memory [PROGRAM_USER_BASE, stack_top) is mapped, read-write and
 * executable, from the start (2 MiB pages set up at boot); brk and mmap only
 * decide which addresses the program may be handed and make sure they read
 * as zero, as Linux's fresh anonymous memory does. The brk heap grows up
 * from brk_start, mmaps are carved top-down below mmap_top. Zeroing is
 * `memset` (rep stosb in the guest: one instruction) and is skipped for
 * memory nobody has used since boot, which the VMM handed over zeroed. */
#include "program_runtime.h"

#define PROT_WRITE 0x2
#define MAP_SHARED 0x01
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_FIXED_NOREPLACE 0x100000
#define MREMAP_MAYMOVE 1
#define MADV_DONTNEED 4

static uint64_t page_up(uint64_t value) { return (value + PROGRAM_PAGE_SIZE - 1) & ~(PROGRAM_PAGE_SIZE - 1); }

void memory_init(struct program_runtime *rt) {
  rt->brk_current = rt->info.brk_start;
  rt->brk_high = rt->info.brk_start;
  rt->mmap_fresh_low = rt->info.mmap_top;
  rt->mapping_count = 0;
}

/* Zeroes [start, end) except the part nobody has used since boot:
 * [page_up(brk_high), mmap_fresh_low). */
static void zero_unless_fresh(struct program_runtime *rt, uint64_t start, uint64_t end) {
  uint64_t fresh_low = page_up(rt->brk_high), fresh_high = rt->mmap_fresh_low;
  if (fresh_low >= fresh_high) {
    if (end > start) __builtin_memset(user_ptr(rt, start), 0, end - start);
    return;
  }
  uint64_t below_end = end < fresh_low ? end : fresh_low;
  if (below_end > start) __builtin_memset(user_ptr(rt, start), 0, below_end - start);
  uint64_t above_start = start > fresh_high ? start : fresh_high;
  if (end > above_start) __builtin_memset(user_ptr(rt, above_start), 0, end - above_start);
}

/* Records that [start, end) was handed out, for zero_unless_fresh. */
static void mark_used(struct program_runtime *rt, uint64_t start) {
  if (start < rt->mmap_fresh_low) rt->mmap_fresh_low = start;
}

/* Removes [start, end) from the mapping table, trimming or splitting. */
static int unmap_range(struct program_runtime *rt, uint64_t start, uint64_t end) {
  for (uint32_t i = 0; i < rt->mapping_count;) {
    struct mapping *m = &rt->mappings[i];
    if (m->end <= start || m->start >= end) {
      i++;
      continue;
    }
    if (m->start >= start && m->end <= end) { /* fully covered: drop it */
      for (uint32_t j = i + 1; j < rt->mapping_count; j++) rt->mappings[j - 1] = rt->mappings[j];
      rt->mapping_count--;
      continue;
    }
    if (m->start < start && m->end > end) { /* a hole in the middle: split */
      if (rt->mapping_count == PROGRAM_MAX_MAPPINGS) return -PERR_NOMEM;
      for (uint32_t j = rt->mapping_count; j > i + 1; j--) rt->mappings[j] = rt->mappings[j - 1];
      rt->mapping_count++;
      rt->mappings[i + 1].start = end;
      rt->mappings[i + 1].end = m->end;
      m->end = start;
      return 0;
    }
    if (m->start < start) m->end = start;
    else m->start = end;
    i++;
  }
  return 0;
}

static int overlaps_mapping(const struct program_runtime *rt, uint64_t start, uint64_t end) {
  for (uint32_t i = 0; i < rt->mapping_count; i++) {
    if (rt->mappings[i].start < end && rt->mappings[i].end > start) return 1;
  }
  return 0;
}

/* Adds [start, end), replacing what was there, merging with neighbours. */
static int map_range(struct program_runtime *rt, uint64_t start, uint64_t end) {
  if (unmap_range(rt, start, end)) return -PERR_NOMEM;
  uint32_t i = 0;
  while (i < rt->mapping_count && rt->mappings[i].start < start) i++;
  int join_left = i > 0 && rt->mappings[i - 1].end == start;
  int join_right = i < rt->mapping_count && rt->mappings[i].start == end;
  if (join_left && join_right) {
    rt->mappings[i - 1].end = rt->mappings[i].end;
    for (uint32_t j = i + 1; j < rt->mapping_count; j++) rt->mappings[j - 1] = rt->mappings[j];
    rt->mapping_count--;
  } else if (join_left) {
    rt->mappings[i - 1].end = end;
  } else if (join_right) {
    rt->mappings[i].start = start;
  } else {
    if (rt->mapping_count == PROGRAM_MAX_MAPPINGS) return -PERR_NOMEM;
    for (uint32_t j = rt->mapping_count; j > i; j--) rt->mappings[j] = rt->mappings[j - 1];
    rt->mappings[i].start = start;
    rt->mappings[i].end = end;
    rt->mapping_count++;
  }
  return 0;
}

/* Highest free [a, a + len) below mmap_top and above the break: a, or 0. */
static uint64_t find_gap(const struct program_runtime *rt, uint64_t len) {
  uint64_t floor = page_up(rt->brk_current);
  uint64_t top = rt->info.mmap_top;
  for (uint32_t i = rt->mapping_count; i-- > 0;) {
    const struct mapping *m = &rt->mappings[i];
    if (m->start >= top) continue;
    if (m->end <= top && top - m->end >= len && top - len >= floor) return top - len;
    top = m->start;
  }
  if (top >= floor && top - floor >= len) return top - len;
  return 0;
}

/* The lowest mapping at or above brk_start bounds the break, and so does
 * mmap_top: a MAP_FIXED mapping in the stack must not let the break grow
 * over the stack (fuzz_guest_syscalls). */
static uint64_t brk_limit(const struct program_runtime *rt) {
  for (uint32_t i = 0; i < rt->mapping_count; i++) {
    if (rt->mappings[i].end > rt->info.brk_start) {
      return rt->mappings[i].start < rt->info.mmap_top ? rt->mappings[i].start : rt->info.mmap_top;
    }
  }
  return rt->info.mmap_top;
}

int64_t sys_brk(struct program_runtime *rt, uint64_t addr) {
  if (addr < rt->info.brk_start || addr > brk_limit(rt)) return (int64_t)rt->brk_current;
  if (addr > rt->brk_current) {
    zero_unless_fresh(rt, rt->brk_current, addr);
    if (addr > rt->brk_high) rt->brk_high = addr;
  }
  rt->brk_current = addr;
  return (int64_t)addr;
}

uint64_t memory_allocate(struct program_runtime *rt, uint64_t len) {
  len = page_up(len);
  uint64_t addr = find_gap(rt, len);
  if (addr == 0 || map_range(rt, addr, addr + len)) return 0;
  zero_unless_fresh(rt, addr, addr + len);
  mark_used(rt, addr);
  return addr;
}

void memory_release(struct program_runtime *rt, uint64_t addr, uint64_t len) {
  unmap_range(rt, addr, addr + page_up(len));
}

/* The bytes a file mapping copies: a regular archive file or a /tmp file. */
static int64_t file_source(struct program_runtime *rt, int64_t fd, const uint8_t **data, uint64_t *size) {
  struct open_file *file = fd_file(rt, fd);
  if (!file) return -PERR_BADF;
  if (file->kind == FILE_TMP) {
    *data = (const uint8_t *)user_ptr(rt, rt->tmp[file->node].addr);
    *size = rt->tmp[file->node].size;
    return 0;
  }
  if (file->kind != FILE_NODE) return -PERR_ACCES;
  const struct cpio_node *node = &rt->index.nodes[file->node];
  if (node->special == NODE_DEV_ZERO) {
    *data = 0;
    *size = 0;
    return 0;
  }
  if ((node->mode & MODE_TYPE_MASK) != MODE_REGULAR || node->special != NODE_PLAIN) return -PERR_ACCES;
  *data = node->data;
  *size = node->size;
  return 0;
}

int64_t sys_mmap(struct program_runtime *rt, uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags,
                 int64_t fd, uint64_t offset) {
  if (len == 0 || len > rt->info.stack_top || offset % PROGRAM_PAGE_SIZE) return -PERR_INVAL;
  len = page_up(len);
  const uint8_t *data = 0;
  uint64_t size = 0;
  if (!(flags & MAP_ANONYMOUS)) {
    int64_t error = file_source(rt, fd, &data, &size);
    if (error) return error;
    /* Writes would not reach the file: only private or read-only mappings. */
    if (data && (flags & MAP_SHARED) && (prot & PROT_WRITE) && !(flags & 0x02)) return -PERR_ACCES;
  }
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (addr % PROGRAM_PAGE_SIZE || !user_range_ok(rt, addr, len)) return -PERR_INVAL;
    if ((flags & MAP_FIXED_NOREPLACE) && overlaps_mapping(rt, addr, addr + len)) return -PERR_EXIST;
    if (map_range(rt, addr, addr + len)) return -PERR_NOMEM;
    zero_unless_fresh(rt, addr, addr + len);
    if (addr >= rt->info.brk_start && addr < rt->info.mmap_top) mark_used(rt, addr);
  } else {
    addr = memory_allocate(rt, len);
    if (addr == 0) return -PERR_NOMEM;
  }
  if (data && offset < size) {
    uint64_t count = size - offset < len ? size - offset : len;
    __builtin_memcpy(user_ptr(rt, addr), data + offset, count);
  }
  return (int64_t)addr;
}

int64_t sys_munmap(struct program_runtime *rt, uint64_t addr, uint64_t len) {
  if (len == 0 || addr % PROGRAM_PAGE_SIZE || !user_range_ok(rt, addr, page_up(len))) return -PERR_INVAL;
  return unmap_range(rt, addr, addr + page_up(len));
}

int64_t sys_mremap(struct program_runtime *rt, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                   uint64_t flags) {
  if (old_addr % PROGRAM_PAGE_SIZE || new_len == 0 || (flags & ~(uint64_t)MREMAP_MAYMOVE)) return -PERR_INVAL;
  old_len = page_up(old_len);
  new_len = page_up(new_len);
  if (!user_range_ok(rt, old_addr, old_len) || new_len > rt->info.stack_top) return -PERR_FAULT;
  if (new_len <= old_len) {
    unmap_range(rt, old_addr + new_len, old_addr + old_len);
    return (int64_t)old_addr;
  }
  /* Grow in place when the pages above are free and below mmap_top. */
  uint64_t grow_start = old_addr + old_len, grow_end = old_addr + new_len;
  if (grow_start >= page_up(rt->brk_current) && grow_end <= rt->info.mmap_top &&
      !overlaps_mapping(rt, grow_start, grow_end)) {
    if (map_range(rt, grow_start, grow_end)) return -PERR_NOMEM;
    zero_unless_fresh(rt, grow_start, grow_end);
    mark_used(rt, grow_start);
    return (int64_t)old_addr;
  }
  if (!(flags & MREMAP_MAYMOVE)) return -PERR_NOMEM;
  uint64_t new_addr = memory_allocate(rt, new_len);
  if (new_addr == 0) return -PERR_NOMEM;
  __builtin_memcpy(user_ptr(rt, new_addr), user_ptr(rt, old_addr), old_len);
  unmap_range(rt, old_addr, old_addr + old_len);
  return (int64_t)new_addr;
}

int64_t sys_madvise(struct program_runtime *rt, uint64_t addr, uint64_t len, uint64_t advice) {
  if (addr % PROGRAM_PAGE_SIZE) return -PERR_INVAL;
  /* Anonymous memory reads back as zero after MADV_DONTNEED on Linux. */
  if (advice == MADV_DONTNEED && len && user_range_ok(rt, addr, page_up(len))) {
    __builtin_memset(user_ptr(rt, addr), 0, page_up(len));
  }
  return 0;
}
