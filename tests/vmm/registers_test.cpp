#include "vmm/x86_64/registers.h"

#include <gtest/gtest.h>

#include <set>

#include "synthetic_images.h"
#include "vmm/x86_64/boot_setup.h"
#include "vmm/x86_64/layout.h"
#include "vmm/x86_64/msrs.h"

namespace thaw::vmm::x86 {
namespace {

// Roughly what KVM_GET_SREGS returns for a fresh vCPU: real mode, CD|NW|ET.
kvm_sregs reset_sregs() {
  kvm_sregs s{};
  s.cr0 = 0x6000'0010;
  s.apic_base = 0xfee0'0900;
  s.cs.selector = 0xf000;
  s.cs.base = 0xffff'0000;
  s.interrupt_bitmap[0] = 0x42;
  return s;
}

BootInfo sample_info() {
  return BootInfo{.format = KernelFormat::kElf64, .entry = 0x1000000, .boot_params_addr = kZeroPageAddr,
                  .cr3 = kPml4Addr, .kernel_end = 0x2000000};
}

TEST(Registers, LongModeSregs) {
  kvm_sregs s = long_mode_sregs(reset_sregs(), sample_info());
  EXPECT_EQ(s.cr0 & (kCr0Pe | kCr0Pg), kCr0Pe | kCr0Pg);
  EXPECT_EQ(s.cr0 & kCr0Et, kCr0Et);
  EXPECT_EQ(s.cr0 & (kCr0Cd | kCr0Nw), 0u) << "caches must be on";
  EXPECT_EQ(s.cr3, kPml4Addr);
  EXPECT_EQ(s.cr4 & kCr4Pae, kCr4Pae);
  EXPECT_EQ(s.efer, kEferLme | kEferLma);
  EXPECT_EQ(s.cs.selector, 0x10);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.cs.base, 0u);
  for (const kvm_segment* seg : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(seg->selector, 0x18);
    EXPECT_EQ(seg->type, 0x3);
    EXPECT_EQ(seg->present, 1);
  }
  EXPECT_EQ(s.tr.selector, 0x20);
  EXPECT_EQ(s.tr.type, 0xb);
  EXPECT_EQ(s.gdt.base, kGdtAddr);
  EXPECT_EQ(s.gdt.limit, kGdtSlots * 8 - 1);
  EXPECT_EQ(s.idt.base, kIdtAddr);
  EXPECT_EQ(s.idt.limit, kIdtLimit);
  // KVM's own fields survive.
  EXPECT_EQ(s.apic_base, 0xfee0'0900u);
  EXPECT_EQ(s.interrupt_bitmap[0], 0x42u);
}

TEST(Registers, BootRegs) {
  kvm_regs r = boot_regs(sample_info());
  EXPECT_EQ(r.rip, 0x1000000u);
  EXPECT_EQ(r.rsi, 0x7000u);
  EXPECT_EQ(r.rflags, 0x2u);
  EXPECT_EQ(r.rsp, kBootStackPointer);
  EXPECT_EQ(r.rbp, kBootStackPointer);
  EXPECT_EQ(r.rsp % 16, 0u);
  EXPECT_GT(r.rsp, kZeroPageAddr + 0x1000) << "stack must not grow into the zero page at once";
  EXPECT_EQ(r.rax, 0u);
}

TEST(Registers, BootFpu) {
  kvm_fpu f = boot_fpu();
  EXPECT_EQ(f.fcw, 0x37f);
  EXPECT_EQ(f.mxcsr, 0x1f80u);
}

TEST(Msrs, BootMsrsHaveTheExpectedValues) {
  auto msrs = boot_msrs();
  std::set<uint32_t> seen;
  auto value_of = [&](uint32_t index) -> std::optional<uint64_t> {
    for (const auto& m : msrs)
      if (m.index == index) return m.data;
    return std::nullopt;
  };
  for (const auto& m : msrs) EXPECT_TRUE(seen.insert(m.index).second) << "duplicate MSR 0x" << std::hex << m.index;
  for (uint32_t zero : {0x174u, 0x175u, 0x176u, 0xc0000081u, 0xc0000082u, 0xc0000083u, 0xc0000084u, 0xc0000102u,
                        0x10u}) {
    ASSERT_TRUE(value_of(zero).has_value()) << std::hex << zero;
    EXPECT_EQ(*value_of(zero), 0u) << std::hex << zero;
  }
  EXPECT_EQ(value_of(0x1a0), std::optional<uint64_t>(1));         // fast strings
  EXPECT_EQ(value_of(0x2ff), std::optional<uint64_t>(0x800 | 6));  // MTRRs on, WB default
}

}  // namespace
}  // namespace thaw::vmm::x86
