/* thaw-mini function runtime: the user windows of program_copy.c.
 *
 * The files archive and the mailbox stay supervisor-only at their identity
 * addresses (the program must not write its request header or its files).
 * Ring-3 copies reach them through aliases above 4 GiB instead, which the
 * identity map leaves unused (PDPT entry 4):
 *
 *   [4 GiB, 4 GiB + 4 MiB)    stdout and stderr buffers, user read/write
 *   [4 GiB + 4 MiB, ...)      files archive, mailbox header and stdin,
 *                             user read-only
 *
 * Each alias keeps its physical offset within a 2 MiB page, so whole 2 MiB
 * stretches map with one directory entry and only the ends need 4 KiB
 * tables. Built once per template boot, before the snapshot: at most a few
 * hundred entries of emulated ring-0 work. */
#include "layout.h"
#include "program.h"
#include "program_arch.h"
#include "program_runtime.h"

#define ALIAS_BASE 0x100000000ull
#define ALIAS_WRITABLE_BASE ALIAS_BASE
#define ALIAS_READ_ONLY_BASE (ALIAS_BASE + 2 * PAGE_2M_SIZE)
#define ALIAS_END (ALIAS_BASE + 512 * PAGE_2M_SIZE)
#define PAGE_2M_SIZE 0x200000ull
#define PAGE_4K_SIZE 0x1000ull
#define ALIAS_TABLES 4 /* the ends: two for the writable window, two for the other */

extern uint64_t pdpt[];

static uint64_t alias_directory[512] __attribute__((aligned(4096)));
static uint64_t alias_tables[ALIAS_TABLES][512] __attribute__((aligned(4096)));
static uint32_t alias_tables_used;

/* The 4 KiB table behind directory entry `pde`, made on first use; 0 if
 * none is left. */
static uint64_t *alias_table(uint64_t pde) {
  if (alias_directory[pde] & PTE_PRESENT) return (uint64_t *)(uintptr_t)(alias_directory[pde] & ~0xfffull);
  if (alias_tables_used == ALIAS_TABLES) return 0;
  uint64_t *table = alias_tables[alias_tables_used++];
  alias_directory[pde] = (uintptr_t)table | PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED;
  return table;
}

/* Maps physical [phys, phys + size) for ring 3 at the virtual address that
 * has phys's offset within a 2 MiB page, from `base` on. Returns that
 * address, or 0 if it does not fit. */
static uint64_t map_alias(uint64_t base, uint64_t phys, uint64_t size, uint64_t write) {
  const uint64_t user = base + (phys & (PAGE_2M_SIZE - 1));
  const uint64_t flags = PTE_PRESENT | PTE_USER | PTE_AD | write;
  if (size == 0 || user + size > ALIAS_END || user + size < user) return 0;
  uint64_t virt = user, end = phys + size;
  while (phys < end) {
    const uint64_t pde = (virt - ALIAS_BASE) / PAGE_2M_SIZE;
    if ((phys & (PAGE_2M_SIZE - 1)) == 0 && end - phys >= PAGE_2M_SIZE) {
      alias_directory[pde] = phys | flags | PTE_LARGE;
      phys += PAGE_2M_SIZE;
      virt += PAGE_2M_SIZE;
      continue;
    }
    uint64_t *table = alias_table(pde);
    if (!table) return 0;
    do {
      table[(virt / PAGE_4K_SIZE) % 512] = (phys & ~(PAGE_4K_SIZE - 1)) | flags;
      phys = (phys & ~(PAGE_4K_SIZE - 1)) + PAGE_4K_SIZE;
      virt = (virt & ~(PAGE_4K_SIZE - 1)) + PAGE_4K_SIZE;
    } while (phys < end && (phys & (PAGE_2M_SIZE - 1)) != 0);
  }
  return user;
}

void program_map_user_windows(struct program_runtime *rt) {
  const struct thaw_program_info *info = &rt->info;
  const uint64_t output = info->mailbox_addr + MAILBOX_STDOUT_OFFSET;
  const uint64_t output_size = MAILBOX_STDOUT_CAPACITY + MAILBOX_STDERR_CAPACITY;
  const uint64_t input = info->files_addr;
  const uint64_t input_size = output - info->files_addr;
  uint64_t user_output = map_alias(ALIAS_WRITABLE_BASE, output, output_size, PTE_WRITE);
  uint64_t user_input = map_alias(ALIAS_READ_ONLY_BASE, input, input_size, 0);
  rt->window_count = 0;
  if (user_output) {
    rt->windows[rt->window_count++] =
        (struct user_window){(const uint8_t *)(uintptr_t)output, output_size, user_output, 1};
  }
  if (user_input) {
    rt->windows[rt->window_count++] =
        (struct user_window){(const uint8_t *)(uintptr_t)input, input_size, user_input, 0};
  }
  /* Without a window the copies run in ring 0: slower, still correct. */
  if (!user_output || !user_input) program_arch_log("user windows missing", rt->window_count);
  pdpt[4] = (uintptr_t)alias_directory | PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED;
}
