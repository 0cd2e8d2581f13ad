// The Linux "zero page" (struct boot_params) and its setup header, as our own
// packed structs. Offsets follow Documentation/arch/x86/zero-page.rst and
// boot.rst; static_asserts pin every field the VMM reads or writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "vmm/x86_64/e820.h"

namespace thaw::vmm::x86 {

// Values of the setup header.
inline constexpr uint16_t kBootFlagMagic = 0xaa55;
inline constexpr uint32_t kHdrSMagic = 0x5372'6448;  // "HdrS", little endian
inline constexpr uint16_t kBootProtocol2_06 = 0x0206;
inline constexpr uint16_t kBootProtocolElf = 0x020f;  // what we claim for ELF kernels
inline constexpr uint8_t kLoaderTypeUndefined = 0xff;

// loadflags
inline constexpr uint8_t kLoadedHigh = 1 << 0;
inline constexpr uint8_t kCanUseHeap = 1 << 7;
// xloadflags
inline constexpr uint16_t kXlfKernel64 = 1 << 0;

#pragma pack(push, 1)

// Offsets in comments are from the start of boot_params (the header lives at
// 0x1f1 there, and at the same offset in a bzImage file).
struct SetupHeader {
  uint8_t setup_sects;            // 0x1f1
  uint16_t root_flags;            // 0x1f2
  uint32_t syssize;               // 0x1f4
  uint16_t ram_size;              // 0x1f8
  uint16_t vid_mode;              // 0x1fa
  uint16_t root_dev;              // 0x1fc
  uint16_t boot_flag;             // 0x1fe
  uint16_t jump;                  // 0x200
  uint32_t header;                // 0x202
  uint16_t version;               // 0x206
  uint32_t realmode_swtch;        // 0x208
  uint16_t start_sys_seg;         // 0x20c
  uint16_t kernel_version;        // 0x20e
  uint8_t type_of_loader;         // 0x210
  uint8_t loadflags;              // 0x211
  uint16_t setup_move_size;       // 0x212
  uint32_t code32_start;          // 0x214
  uint32_t ramdisk_image;         // 0x218
  uint32_t ramdisk_size;          // 0x21c
  uint32_t bootsect_kludge;       // 0x220
  uint16_t heap_end_ptr;          // 0x224
  uint8_t ext_loader_ver;         // 0x226
  uint8_t ext_loader_type;        // 0x227
  uint32_t cmd_line_ptr;          // 0x228
  uint32_t initrd_addr_max;       // 0x22c
  uint32_t kernel_alignment;      // 0x230
  uint8_t relocatable_kernel;     // 0x234
  uint8_t min_alignment;          // 0x235
  uint16_t xloadflags;            // 0x236
  uint32_t cmdline_size;          // 0x238
  uint32_t hardware_subarch;      // 0x23c
  uint64_t hardware_subarch_data; // 0x240
  uint32_t payload_offset;        // 0x248
  uint32_t payload_length;        // 0x24c
  uint64_t setup_data;            // 0x250
  uint64_t pref_address;          // 0x258
  uint32_t init_size;             // 0x260
  uint32_t handover_offset;       // 0x264
  uint32_t kernel_info_offset;    // 0x268
};

struct BootParams {
  uint8_t screen_info[0x40];        // 0x000
  uint8_t apm_bios_info[0x14];      // 0x040
  uint8_t pad2[4];                  // 0x054
  uint64_t tboot_addr;              // 0x058
  uint8_t ist_info[0x10];           // 0x060
  uint64_t acpi_rsdp_addr;          // 0x070
  uint8_t pad3[8];                  // 0x078
  uint8_t hd0_info[0x10];           // 0x080
  uint8_t hd1_info[0x10];           // 0x090
  uint8_t sys_desc_table[0x10];     // 0x0a0
  uint8_t olpc_ofw_header[0x10];    // 0x0b0
  uint32_t ext_ramdisk_image;       // 0x0c0
  uint32_t ext_ramdisk_size;        // 0x0c4
  uint32_t ext_cmd_line_ptr;        // 0x0c8
  uint8_t pad4[0x74];               // 0x0cc
  uint8_t edid_info[0x80];          // 0x140
  uint8_t efi_info[0x20];           // 0x1c0
  uint32_t alt_mem_k;               // 0x1e0
  uint32_t scratch;                 // 0x1e4
  uint8_t e820_entries;             // 0x1e8
  uint8_t eddbuf_entries;           // 0x1e9
  uint8_t edd_mbr_sig_buf_entries;  // 0x1ea
  uint8_t kbd_status;               // 0x1eb
  uint8_t secure_boot;              // 0x1ec
  uint8_t pad5[2];                  // 0x1ed
  uint8_t sentinel;                 // 0x1ef
  uint8_t pad6[1];                  // 0x1f0
  SetupHeader hdr;                  // 0x1f1
  uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
  uint32_t edd_mbr_sig_buffer[16];  // 0x290
  E820Entry e820_table[kE820MaxEntries];  // 0x2d0
  uint8_t pad8[0x30];               // 0xcd0
  uint8_t eddbuf[0x1ec];            // 0xd00
  uint8_t pad9[0x114];              // 0xeec
};

#pragma pack(pop)

static_assert(sizeof(SetupHeader) == 0x26c - 0x1f1);
static_assert(offsetof(SetupHeader, header) == 0x202 - 0x1f1);
static_assert(offsetof(SetupHeader, cmd_line_ptr) == 0x228 - 0x1f1);
static_assert(offsetof(SetupHeader, xloadflags) == 0x236 - 0x1f1);
static_assert(offsetof(SetupHeader, init_size) == 0x260 - 0x1f1);
static_assert(offsetof(BootParams, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(BootParams, edid_info) == 0x140);
static_assert(offsetof(BootParams, e820_entries) == 0x1e8);
static_assert(offsetof(BootParams, sentinel) == 0x1ef);
static_assert(offsetof(BootParams, hdr) == 0x1f1);
static_assert(offsetof(BootParams, edd_mbr_sig_buffer) == 0x290);
static_assert(offsetof(BootParams, e820_table) == 0x2d0);
static_assert(offsetof(BootParams, eddbuf) == 0xd00);
static_assert(sizeof(BootParams) == 0x1000);

// Offset of the setup header in a bzImage file (same as in boot_params).
inline constexpr size_t kSetupHeaderFileOffset = offsetof(BootParams, hdr);

// The header an ELF kernel gets: enough of the boot protocol for Linux and
// the mini guest to find their command line and initrd at boot_params+0x228.
SetupHeader elf_setup_header();

// What the VMM fills in, whatever the kernel format.
struct BootParamsInput {
  SetupHeader header{};         // from the bzImage, or elf_setup_header()
  uint64_t cmdline_addr = 0;    // NUL-terminated command line
  uint64_t initrd_addr = 0;     // 0 = none
  uint64_t initrd_size = 0;
  std::span<const E820Entry> e820{};
};

// Builds the zero page. Throws InputError if e820 has more than
// kE820MaxEntries entries.
BootParams build_boot_params(const BootParamsInput& in);

}  // namespace thaw::vmm::x86
