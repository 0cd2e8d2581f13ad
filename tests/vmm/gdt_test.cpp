#include "vmm/x86_64/gdt.h"

#include <gtest/gtest.h>

namespace thaw::vmm::x86 {
namespace {

TEST(Gdt, DescriptorsHaveTheWellKnownEncodings) {
  // The flat 64-bit code and data descriptors every x86-64 boot loader uses.
  EXPECT_EQ(boot_code_descriptor().low_word(), 0x00af'9b00'0000'ffffull);
  EXPECT_EQ(boot_data_descriptor().low_word(), 0x00cf'9300'0000'ffffull);
  // Busy 64-bit TSS at kTssAddr, byte-granular limit 0x67.
  EXPECT_EQ(boot_tss_descriptor().low_word(), 0x0000'8b00'0580'0067ull);
  EXPECT_EQ(boot_tss_descriptor().high_word(), 0u);
}

TEST(Gdt, TableHasEachDescriptorAtItsSelector) {
  auto gdt = boot_gdt();
  EXPECT_EQ(gdt[0], 0u);
  EXPECT_EQ(gdt[kCodeSelector / 8], boot_code_descriptor().low_word());
  EXPECT_EQ(gdt[kDataSelector / 8], boot_data_descriptor().low_word());
  EXPECT_EQ(gdt[kTssSelector / 8], boot_tss_descriptor().low_word());
  EXPECT_EQ(kGdtLimit, kGdtSlots * 8 - 1);
}

TEST(Gdt, DecodeInvertsEncodeIncludingA64BitSystemBase) {
  SegmentDescriptor d{.base = 0x1234'5678'9abc'def0ull, .limit = 0xabcde, .type = 0x9, .s = false, .dpl = 3,
                      .present = true, .avl = true, .l = false, .db = false, .g = true};
  auto back = SegmentDescriptor::decode(d.low_word(), d.high_word());
  EXPECT_EQ(back.base, d.base);
  EXPECT_EQ(back.limit, d.limit);
  EXPECT_EQ(back.type, d.type);
  EXPECT_EQ(back.dpl, 3);
  EXPECT_TRUE(back.present);
  EXPECT_TRUE(back.avl);
  EXPECT_TRUE(back.g);
  // A code/data descriptor has no high word: the base stays 32-bit.
  auto code = SegmentDescriptor::decode(boot_code_descriptor().low_word(), ~0ull);
  EXPECT_EQ(code.base, 0u);
}

TEST(Gdt, CodeSegmentToKvm) {
  kvm_segment cs = to_kvm_segment(boot_code_descriptor(), kCodeSelector);
  EXPECT_EQ(cs.selector, 0x10);
  EXPECT_EQ(cs.base, 0u);
  EXPECT_EQ(cs.limit, 0xffff'ffffu);  // 4 KiB granular 0xfffff
  EXPECT_EQ(cs.type, 0xb);
  EXPECT_EQ(cs.present, 1);
  EXPECT_EQ(cs.dpl, 0);
  EXPECT_EQ(cs.db, 0);
  EXPECT_EQ(cs.s, 1);
  EXPECT_EQ(cs.l, 1);
  EXPECT_EQ(cs.g, 1);
  EXPECT_EQ(cs.unusable, 0);
}

TEST(Gdt, DataAndTssSegmentsToKvm) {
  kvm_segment ds = to_kvm_segment(boot_data_descriptor(), kDataSelector);
  EXPECT_EQ(ds.selector, 0x18);
  EXPECT_EQ(ds.type, 0x3);
  EXPECT_EQ(ds.db, 1);
  EXPECT_EQ(ds.l, 0);
  EXPECT_EQ(ds.limit, 0xffff'ffffu);
  kvm_segment tr = to_kvm_segment(boot_tss_descriptor(), kTssSelector);
  EXPECT_EQ(tr.selector, 0x20);
  EXPECT_EQ(tr.type, 0xb);
  EXPECT_EQ(tr.s, 0);
  EXPECT_EQ(tr.base, kTssAddr);
  EXPECT_EQ(tr.limit, 0x67u);
  EXPECT_EQ(tr.g, 0);
  kvm_segment unusable = to_kvm_segment(SegmentDescriptor{}, 0);
  EXPECT_EQ(unusable.unusable, 1);
}

TEST(Gdt, WritesTablesIntoGuestMemory) {
  auto mem = GuestMemory::create(128 << 20);
  std::memset(mem.host_base() + kGdtAddr, 0xee, 0x100);
  write_descriptor_tables(mem);
  auto gdt = mem.read_obj<std::array<uint64_t, kGdtSlots>>(GuestAddress(kGdtAddr));
  EXPECT_EQ(gdt, boot_gdt());
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(kIdtAddr)), 0u);
  EXPECT_EQ(mem.read_obj<uint16_t>(GuestAddress(kTssAddr + 0x66)), 0x68);  // no I/O bitmap
}

}  // namespace
}  // namespace thaw::vmm::x86
