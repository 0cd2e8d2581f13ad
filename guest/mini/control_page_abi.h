/* The control page: what the VMM and every guest mode agree on to hand a
 * paused clone its identity without a guest round trip (guest/mini/README.md,
 * "The control page"). One 4 KiB page of guest RAM the VMM may write before
 * it resumes a restored clone; the agent, thaw.after=clone and the function
 * runtime (getrandom seed, wall clock) read it when they resume. Nothing
 * else in the guest or the VMM's boot layout (zero page 0x7000, page tables
 * 0x9000-0xefff, command line 0x20000-0x2ffff, MP table 0x9fc00) uses it.
 *
 * Plain C, so the freestanding guest and the host's C++ (vmm/control_page.h,
 * which checks its struct against these offsets) include the same file.
 * Little-endian u64 fields. */
#ifndef THAW_MINI_CONTROL_PAGE_ABI_H
#define THAW_MINI_CONTROL_PAGE_ABI_H

#define CONTROL_PAGE_ADDR 0x80000
#define CONTROL_PAGE_SIZE 0x1000
#define CONTROL_MAGIC 0x4b434f4c57414854ull /* "THAWLOCK" as little-endian bytes */
#define CONTROL_OFF_MAGIC 0
#define CONTROL_OFF_GENERATION 8
#define CONTROL_OFF_CLONE_ID 16
#define CONTROL_OFF_SEED 24
#define CONTROL_OFF_WALL_CLOCK_NS 32
#define CONTROL_OFF_CLONE_INPUT 40
#define CONTROL_FIELDS_BYTES 48

#endif
