/* thaw-mini: read the command line and memory map from Linux's boot_params
 * (64-bit boot protocol) or from PVH's hvm_start_info. Only the few fields we
 * use are described; offsets are those of the public ABIs. */
#include "boot_info.h"

#include <stddef.h>

#include "layout.h"

/* Linux struct boot_params ("zero page"). */
#define BP_E820_ENTRIES 0x1e8  /* u8 */
#define BP_CMD_LINE_PTR 0x228  /* u32, hdr.cmd_line_ptr */
#define BP_E820_TABLE 0x2d0    /* struct boot_e820_entry[128] */
#define BP_E820_MAX 128

/* Xen/PVH struct hvm_start_info. */
#define HVM_START_MAGIC 0x336ec578
#define HVM_MAGIC 0x00         /* u32 */
#define HVM_VERSION 0x04       /* u32; memmap fields exist from version 1 */
#define HVM_CMDLINE_PADDR 0x18 /* u64 */
/* 0x20 is rsdp_paddr (u64); the memory map follows it. */
#define HVM_MEMMAP_PADDR 0x28  /* u64 */
#define HVM_MEMMAP_ENTRIES 0x30 /* u32 */
#define HVM_MEMMAP_MAX 128     /* a sanity cap, not an ABI limit */

#define MEMORY_TYPE_RAM 1
#define IDENTITY_MAP_END 0x100000000ull

/* Adds one memory-map entry to info. */
static void add_entry(struct boot_info *info, uint64_t addr, uint64_t size, uint32_t type) {
  if (type != MEMORY_TYPE_RAM) return;
  info->ram_bytes += size;
  if (addr <= IMAGE_BASE && IMAGE_BASE - addr < size) {
    uint64_t end = addr + size;
    info->image_ram_end = end > IDENTITY_MAP_END ? IDENTITY_MAP_END : end;
  }
}

struct __attribute__((packed)) e820_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

struct __attribute__((packed)) hvm_memmap_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};

static uint8_t read_u8(uint64_t addr) { return *(const volatile uint8_t *)addr; }
static uint32_t read_u32(uint64_t addr) { return *(const volatile uint32_t *)addr; }
static uint64_t read_u64(uint64_t addr) { return *(const volatile uint64_t *)addr; }

static const char *cmdline_at(uint64_t paddr) { return paddr ? (const char *)paddr : ""; }

static struct boot_info from_boot_params(uint64_t bp) {
  struct boot_info info = {cmdline_at(read_u32(bp + BP_CMD_LINE_PTR)), 0, 0, 0};
  unsigned count = read_u8(bp + BP_E820_ENTRIES);
  if (count > BP_E820_MAX) count = BP_E820_MAX;
  const struct e820_entry *entries = (const struct e820_entry *)(bp + BP_E820_TABLE);
  for (unsigned i = 0; i < count; i++) {
    add_entry(&info, entries[i].addr, entries[i].size, entries[i].type);
  }
  info.ram_known = count > 0;
  return info;
}

static struct boot_info from_hvm_start_info(uint64_t si) {
  struct boot_info info = {"", 0, 0, 0};
  if (si == 0 || read_u32(si + HVM_MAGIC) != HVM_START_MAGIC) return info;
  info.cmdline = cmdline_at(read_u64(si + HVM_CMDLINE_PADDR));
  if (read_u32(si + HVM_VERSION) < 1) return info;
  uint64_t map = read_u64(si + HVM_MEMMAP_PADDR);
  unsigned count = read_u32(si + HVM_MEMMAP_ENTRIES);
  if (map == 0) return info;
  if (count > HVM_MEMMAP_MAX) count = HVM_MEMMAP_MAX;
  const struct hvm_memmap_entry *entries = (const struct hvm_memmap_entry *)map;
  for (unsigned i = 0; i < count; i++) {
    add_entry(&info, entries[i].addr, entries[i].size, entries[i].type);
  }
  info.ram_known = count > 0;
  return info;
}

struct boot_info read_boot_info(unsigned kind, uint64_t info) {
  if (kind == BOOT_KIND_PVH) return from_hvm_start_info(info);
  return from_boot_params(info);
}
