#include "vmm/x86_64/boot_setup.h"

#include <gtest/gtest.h>

#include "synthetic_images.h"
#include "vmm/x86_64/boot_params.h"
#include "vmm/x86_64/gdt.h"
#include "vmm/x86_64/layout.h"
#include "vmm/x86_64/mptable.h"

namespace thaw::vmm::x86 {
namespace {

using testing::input_error_of;

constexpr uint64_t kRam = 128 << 20;

class BootSetupTest : public ::testing::Test {
 protected:
  GuestMemory mem = GuestMemory::create(kRam);
  std::vector<uint8_t> kernel = testing::make_minimal_elf();
  BootSetupInput input(std::string cmdline = "console=ttyS0") {
    return {.kernel_image = kernel, .kernel_name = "mini.elf", .cmdline = std::move(cmdline)};
  }
};

TEST_F(BootSetupTest, ElfKernelBootInfo) {
  std::vector<uint8_t> code(16, 0x90);
  kernel = testing::make_elf(0x100000, {testing::ElfSegment{PT_LOAD, 0x100000, code, 0x5000},
                                        testing::ElfSegment{PT_NOTE, 0, testing::xen_note(18, 0x100008), 0}});
  auto info = setup_boot(mem, input());
  EXPECT_EQ(info.format, KernelFormat::kElf64);
  EXPECT_EQ(info.entry, 0x100000u);
  EXPECT_EQ(info.boot_params_addr, kZeroPageAddr);
  EXPECT_EQ(info.cr3, kPml4Addr);
  EXPECT_EQ(info.kernel_end, 0x105000u);
  EXPECT_EQ(info.initrd_addr, 0u);
  EXPECT_EQ(info.initrd_size, 0u);
  EXPECT_EQ(info.pvh_entry, std::optional<uint64_t>(0x100008));
}

TEST_F(BootSetupTest, WritesEveryBootStructure) {
  auto info = setup_boot(mem, {.kernel_image = kernel, .kernel_name = "k", .vcpu_count = 3});
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(kGdtAddr + kCodeSelector)), boot_code_descriptor().low_word());
  EXPECT_NE(mem.read_obj<uint64_t>(GuestAddress(info.cr3)) & 1, 0u) << "PML4[0] present";
  auto fp = mem.read_obj<MpFloatingPointer>(GuestAddress(kMpTableAddr));
  EXPECT_EQ(std::memcmp(fp.signature, "_MP_", 4), 0);
  auto hdr = mem.read_obj<MpConfigHeader>(GuestAddress(fp.config_table_addr));
  EXPECT_EQ(hdr.entry_count, 3 + 1 + 1 + 16 + 2);
  auto bp = mem.read_obj<BootParams>(GuestAddress(kZeroPageAddr));
  EXPECT_EQ(bp.hdr.version, kBootProtocolElf);
  EXPECT_EQ(bp.hdr.cmd_line_ptr, kCmdlineAddr);
  EXPECT_EQ(mem.host_base()[kCmdlineAddr], 0) << "empty command line is just a NUL";
}

TEST_F(BootSetupTest, InitrdGoesHighPageAligned) {
  std::vector<uint8_t> initrd(10000);
  for (size_t i = 0; i < initrd.size(); ++i) initrd[i] = static_cast<uint8_t>(i * 13);
  auto in = input();
  in.initrd = initrd;
  in.initrd_name = "initrd.cpio";
  auto info = setup_boot(mem, in);
  EXPECT_EQ(info.initrd_addr, (kRam - 10000) & ~0xfffull);
  EXPECT_EQ(info.initrd_addr % 4096, 0u);
  EXPECT_LE(info.initrd_addr + info.initrd_size, kRam);
  EXPECT_EQ(info.initrd_size, 10000u);
  EXPECT_EQ(std::memcmp(mem.host_base() + info.initrd_addr, initrd.data(), initrd.size()), 0);
  auto bp = mem.read_obj<BootParams>(GuestAddress(kZeroPageAddr));
  EXPECT_EQ(bp.hdr.ramdisk_image, info.initrd_addr);
  EXPECT_EQ(bp.hdr.ramdisk_size, 10000u);
}

TEST_F(BootSetupTest, InitrdRespectsTheBzImageAddressLimit) {
  kernel = testing::make_bzimage(
      {.init_size = 0x200000, .pref_address = 0, .kernel_alignment = 0x100000, .initrd_addr_max = 0x3f'ffff});
  std::vector<uint8_t> initrd(0x1800, 0xab);
  auto in = input();
  in.initrd = initrd;
  auto info = setup_boot(mem, in);
  EXPECT_EQ(info.kernel_end, 0x300000u);
  EXPECT_EQ(info.initrd_addr, 0x3fe000u);  // last byte 0x3ff7ff <= initrd_addr_max
  EXPECT_GE(info.initrd_addr, info.kernel_end);
}

TEST_F(BootSetupTest, RejectsAnInitrdThatDoesNotFit) {
  std::vector<uint8_t> initrd(127 << 20);
  auto in = input();
  in.initrd = initrd;
  in.initrd_name = "huge.cpio";
  auto msg = input_error_of([&] { setup_boot(mem, in); });
  EXPECT_CONTAINS(msg, "initrd 'huge.cpio' is 133169152 bytes; only");
  EXPECT_CONTAINS(msg, "kernel's end 0x102000");
}

TEST_F(BootSetupTest, RejectsATooLongCommandLine) {
  auto msg = input_error_of([&] { setup_boot(mem, input(std::string(3000, 'x'))); });
  EXPECT_CONTAINS(msg, "command line is 3000 bytes; ELF kernel 'mini.elf' accepts at most 2047");
  EXPECT_NO_THROW(setup_boot(mem, input(std::string(2047, 'x'))));
}

TEST_F(BootSetupTest, RejectsBadVcpuCounts) {
  auto in = input();
  in.vcpu_count = 0;
  EXPECT_CONTAINS(input_error_of([&] { setup_boot(mem, in); }), "vCPU count 0");
  in.vcpu_count = max_mptable_vcpus() + 1;
  EXPECT_CONTAINS(input_error_of([&] { setup_boot(mem, in); }), "vCPU count 255");
  in.vcpu_count = max_mptable_vcpus();
  EXPECT_NO_THROW(setup_boot(mem, in));
}

TEST_F(BootSetupTest, RejectsAnUnknownKernelFormat) {
  kernel.assign(4096, 0);
  EXPECT_CONTAINS(input_error_of([&] { setup_boot(mem, input()); }), "neither ELF64 nor bzImage");
}

TEST(BootSetup, RejectsTooLittleRam) {
  auto mem = GuestMemory::create(512 << 10);
  auto kernel = testing::make_minimal_elf();
  auto msg = input_error_of([&] { setup_boot(mem, {.kernel_image = kernel, .kernel_name = "k"}); });
  EXPECT_CONTAINS(msg, "guest RAM below 4 GiB is 512 KiB");
}

}  // namespace
}  // namespace thaw::vmm::x86
