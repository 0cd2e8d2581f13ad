#include "vmm/x86_64/boot_params.h"

#include <asm/bootparam.h>
#include <gtest/gtest.h>

#include <vector>

#include "synthetic_images.h"
#include "vmm/x86_64/boot_setup.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// Our structs against the kernel's uapi definition: same offsets.
TEST(BootParams, LayoutMatchesTheKernelUapiHeader) {
  EXPECT_EQ(sizeof(BootParams), sizeof(::boot_params));
  EXPECT_EQ(offsetof(BootParams, hdr), offsetof(::boot_params, hdr));
  EXPECT_EQ(offsetof(BootParams, e820_entries), offsetof(::boot_params, e820_entries));
  EXPECT_EQ(offsetof(BootParams, e820_table), offsetof(::boot_params, e820_table));
  EXPECT_EQ(offsetof(BootParams, ext_cmd_line_ptr), offsetof(::boot_params, ext_cmd_line_ptr));
  EXPECT_EQ(offsetof(BootParams, ext_ramdisk_image), offsetof(::boot_params, ext_ramdisk_image));
  EXPECT_EQ(offsetof(BootParams, sentinel), offsetof(::boot_params, sentinel));
  EXPECT_EQ(offsetof(SetupHeader, cmd_line_ptr), offsetof(::setup_header, cmd_line_ptr));
  EXPECT_EQ(offsetof(SetupHeader, ramdisk_image), offsetof(::setup_header, ramdisk_image));
  EXPECT_EQ(offsetof(SetupHeader, xloadflags), offsetof(::setup_header, xloadflags));
  EXPECT_EQ(offsetof(SetupHeader, init_size), offsetof(::setup_header, init_size));
  EXPECT_EQ(offsetof(SetupHeader, kernel_info_offset), offsetof(::setup_header, kernel_info_offset));
}

TEST(BootParams, ElfHeaderClaimsTheBootProtocol) {
  auto h = elf_setup_header();
  EXPECT_EQ(h.boot_flag, 0xaa55);
  EXPECT_EQ(h.header, 0x53726448u);  // "HdrS"
  EXPECT_EQ(h.version, 0x020f);
  EXPECT_EQ(h.cmdline_size, 2047u);
}

TEST(BootParams, FillsLoaderFields) {
  auto e820 = build_e820(plan_ram_regions(128 * kMiB));
  BootParams bp = build_boot_params({.header = elf_setup_header(),
                                     .cmdline_addr = kCmdlineAddr,
                                     .initrd_addr = 0x7f0'0000,
                                     .initrd_size = 0x1234,
                                     .e820 = e820});
  EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp.hdr.loadflags & kCanUseHeap, kCanUseHeap);
  EXPECT_NE(bp.hdr.heap_end_ptr, 0);
  EXPECT_EQ(bp.hdr.cmd_line_ptr, 0x20000u);
  EXPECT_EQ(bp.ext_cmd_line_ptr, 0u);
  EXPECT_EQ(bp.hdr.ramdisk_image, 0x7f00000u);
  EXPECT_EQ(bp.hdr.ramdisk_size, 0x1234u);
  EXPECT_EQ(bp.sentinel, 0);
  ASSERT_EQ(bp.e820_entries, 3);
  EXPECT_EQ(bp.e820_table[2].addr, 0x100000u);
  EXPECT_EQ(bp.e820_table[2].size, 127 * kMiB);
}

TEST(BootParams, RejectsTooManyE820Entries) {
  std::vector<E820Entry> e820(kE820MaxEntries + 1, E820Entry{0, 0x1000, 1});
  auto msg = testing::input_error_of([&] { build_boot_params({.header = elf_setup_header(), .e820 = e820}); });
  EXPECT_CONTAINS(msg, "129 entries");
  e820.pop_back();
  EXPECT_EQ(build_boot_params({.header = elf_setup_header(), .e820 = e820}).e820_entries, 128);
}

// What a guest sees: the zero page in RAM, its command line pointer at +0x228.
TEST(BootParams, GuestFindsItsCommandLineThroughTheZeroPage) {
  auto mem = GuestMemory::create(128 * kMiB);
  auto kernel = testing::make_minimal_elf();
  auto info = setup_boot(mem, {.kernel_image = kernel, .kernel_name = "mini", .cmdline = "console=ttyS0 quiet"});
  ASSERT_EQ(info.boot_params_addr, 0x7000u);
  auto ptr = mem.read_obj<uint32_t>(GuestAddress(info.boot_params_addr + 0x228));
  ASSERT_EQ(ptr, 0x20000u);
  auto text = mem.slice(GuestAddress(ptr), 20);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(text.data())), "console=ttyS0 quiet");
  EXPECT_EQ(mem.read_obj<uint16_t>(GuestAddress(info.boot_params_addr + 0x1fe)), 0xaa55);
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(info.boot_params_addr + 0x1e8)), 3);
}

}  // namespace
}  // namespace thaw::vmm::x86
