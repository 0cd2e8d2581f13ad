#include "vmm/loader/bzimage_loader.h"

#include <gtest/gtest.h>

#include "synthetic_images.h"
#include "vmm/x86_64/boot_setup.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::loader {
namespace {

using testing::BzImageSpec;
using testing::input_error_of;
using testing::make_bzimage;

constexpr uint64_t kRam = 128 << 20;

std::string parse_error(const std::vector<uint8_t>& img, uint64_t ram = kRam) {
  return input_error_of([&] { parse_bzimage(img, "bzImage-6.1", ram); });
}

TEST(BzImage, LoadsTheProtectedModeKernelAtOneMiB) {
  auto mem = GuestMemory::create(kRam);
  auto img = make_bzimage();
  auto k = load_bzimage(mem, img, "bzImage-6.1");
  EXPECT_EQ(k.load_addr, 0x100000u);
  EXPECT_EQ(k.entry, 0x100200u);
  EXPECT_EQ(k.kernel_end, 0x1000000u + 0x200000u) << "init_size from pref_address wins over the file size";
  EXPECT_EQ(k.cmdline_limit, 2047u);
  EXPECT_EQ(k.initrd_addr_max, 0x7fff'ffffu);
  EXPECT_EQ(k.header.version, 0x020f);
  const size_t pm_offset = 5 * 512;
  ASSERT_EQ(std::memcmp(mem.host_base() + 0x100000, img.data() + pm_offset, img.size() - pm_offset), 0);
  EXPECT_EQ(mem.host_base()[0x100000 + 3], 21);
}

TEST(BzImage, ZeroSetupSectorsMeansFour) {
  auto img = make_bzimage({.setup_sects = 0});
  auto mem = GuestMemory::create(kRam);
  load_bzimage(mem, img, "old");
  EXPECT_EQ(std::memcmp(mem.host_base() + 0x100000, img.data() + 5 * 512, 64), 0);
}

TEST(BzImage, KernelBiggerThanInitSizeSetsTheEnd) {
  auto k = parse_bzimage(
      make_bzimage({.init_size = 0x1000, .pref_address = 0, .kernel_alignment = 0x1000, .pm_size = 0x3000}), "k",
      kRam);
  EXPECT_EQ(k.kernel_end, 0x103000u);
}

// The decompressor works from max(load address aligned to kernel_alignment,
// pref_address); init_size counts from there.
TEST(BzImage, DecompressionBufferFollowsAlignmentAndPrefAddress) {
  auto aligned = parse_bzimage(
      make_bzimage({.init_size = 0x200000, .pref_address = 0, .kernel_alignment = 0x400000}), "k", kRam);
  EXPECT_EQ(aligned.kernel_end, 0x600000u);
  auto preferred = parse_bzimage(
      make_bzimage({.init_size = 0x300000, .pref_address = 0x2000000, .kernel_alignment = 0x200000}), "k", kRam);
  EXPECT_EQ(preferred.kernel_end, 0x2300000u);
  EXPECT_EQ(preferred.load_addr, 0x100000u) << "the file still goes to 1 MiB";
}

TEST(BzImage, RejectsAnImageWithoutHdrS) {
  auto img = make_bzimage();
  img[0x202] = 'X';
  auto msg = parse_error(img);
  EXPECT_CONTAINS(msg, "bzImage 'bzImage-6.1'");
  EXPECT_CONTAINS(msg, "no \"HdrS\"");
}

TEST(BzImage, RejectsAMissingBootFlag) {
  auto img = make_bzimage();
  img[0x1fe] = 0;
  EXPECT_CONTAINS(parse_error(img), "not 0xaa55");
}

TEST(BzImage, RejectsAnOldProtocol) {
  auto msg = parse_error(make_bzimage({.version = 0x0205}));
  EXPECT_CONTAINS(msg, "boot protocol 2.05 is too old; 2.06 or later");
}

TEST(BzImage, RejectsAKernelWithoutA64BitEntry) {
  EXPECT_CONTAINS(parse_error(make_bzimage({.xloadflags = 0})), "lack XLF_KERNEL_64");
}

TEST(BzImage, RejectsAZImage) {
  EXPECT_CONTAINS(parse_error(make_bzimage({.loadflags = 0})), "LOADED_HIGH");
}

TEST(BzImage, RejectsATruncatedHeader) {
  auto img = make_bzimage();
  img.resize(0x240);
  EXPECT_CONTAINS(parse_error(img), "truncated: 576 bytes");
}

TEST(BzImage, RejectsSetupSectorsPastTheEndOfTheFile) {
  auto img = make_bzimage({.setup_sects = 30});
  img.resize(20 * 512);
  EXPECT_CONTAINS(parse_error(img), "30 setup sectors end at 0x3e00");
}

TEST(BzImage, RejectsInitSizeBiggerThanRam) {
  auto msg = parse_error(make_bzimage({.init_size = 0x1000'0000}));
  EXPECT_CONTAINS(msg, "init_size 0x10000000");
  EXPECT_CONTAINS(msg, "guest RAM below 4 GiB ends at 0x8000000");
}

// Found by fuzz_bzimage_loader: work_start + init_size wrapped to a small
// kernel_end, so the image was accepted and its decompressor would have
// written wherever the wrap put it.
TEST(BzImage, RejectsPrefAddressThatWrapsWithInitSize) {
  auto msg = parse_error(make_bzimage({.init_size = 0x200000, .pref_address = ~0ull - 0xfff}));
  EXPECT_CONTAINS(msg, "past the end of the address space");
  msg = parse_error(make_bzimage({.init_size = 0x1000, .pref_address = 0xffff'ffff'ffff'f000ull}));
  EXPECT_CONTAINS(msg, "past the end of the address space");
}

TEST(BzImage, RejectsPrefAddressPastRam) {
  auto msg = parse_error(make_bzimage({.init_size = 0x1000, .pref_address = 0x8000'0000'0000'0000ull}));
  EXPECT_CONTAINS(msg, "guest RAM below 4 GiB ends at");
}

TEST(BzImage, CmdlineLimitComesFromTheHeader) {
  EXPECT_EQ(parse_bzimage(make_bzimage({.cmdline_size = 16}), "k", kRam).cmdline_limit, 16u);
  EXPECT_EQ(parse_bzimage(make_bzimage({.cmdline_size = 0}), "k", kRam).cmdline_limit, 255u);
  // Never more than the area the layout reserves.
  EXPECT_EQ(parse_bzimage(make_bzimage({.cmdline_size = 0x100000}), "k", kRam).cmdline_limit,
            x86::kCmdlineAreaSize - 1);
}

TEST(BzImage, CmdlineLongerThanCmdlineSizeFailsTheBoot) {
  auto mem = GuestMemory::create(kRam);
  auto img = make_bzimage({.cmdline_size = 16});
  auto msg = input_error_of([&] {
    x86::setup_boot(mem, {.kernel_image = img, .kernel_name = "bz", .cmdline = "console=ttyS0 panic=1"});
  });
  EXPECT_CONTAINS(msg, "command line is 21 bytes; bzImage 'bz' (cmdline_size in its header) accepts at most 16");
  EXPECT_NO_THROW(x86::setup_boot(mem, {.kernel_image = img, .kernel_name = "bz", .cmdline = "console=ttyS0"}));
}

TEST(BzImage, BootParamsStartFromTheFileHeader) {
  auto mem = GuestMemory::create(kRam);
  auto img = make_bzimage();
  auto info = x86::setup_boot(mem, {.kernel_image = img, .kernel_name = "bz", .cmdline = "quiet"});
  EXPECT_EQ(info.format, x86::KernelFormat::kBzImage);
  EXPECT_EQ(info.entry, 0x100200u);
  EXPECT_FALSE(info.pvh_entry.has_value());
  auto bp = mem.read_obj<x86::BootParams>(GuestAddress(info.boot_params_addr));
  EXPECT_EQ(bp.hdr.header, x86::kHdrSMagic);
  EXPECT_EQ(bp.hdr.init_size, 0x200000u);
  EXPECT_EQ(bp.hdr.pref_address, 0x1000000u);
  EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp.hdr.loadflags, x86::kLoadedHigh | x86::kCanUseHeap);
  EXPECT_EQ(bp.hdr.cmd_line_ptr, x86::kCmdlineAddr);
  EXPECT_EQ(bp.hdr.cmdline_size, 2047u);
  EXPECT_EQ(bp.e820_entries, 3);
}

}  // namespace
}  // namespace thaw::vmm::loader
