// Register state of the boot vCPU at the kernel's 64-bit entry point
// (Linux boot.rst, "64-bit boot protocol"): long mode with the identity map,
// flat __BOOT_CS/__BOOT_DS segments, interrupts off, boot_params in RSI.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace thaw::vmm::x86 {

// Control register bits (Intel SDM vol. 3, 2.5).
inline constexpr uint64_t kCr0Pe = 1ull << 0;   // protected mode
inline constexpr uint64_t kCr0Mp = 1ull << 1;   // WAIT honours TS
inline constexpr uint64_t kCr0Et = 1ull << 4;   // x87 present (hard-wired on modern CPUs)
inline constexpr uint64_t kCr0Ne = 1ull << 5;   // native x87 error reporting
inline constexpr uint64_t kCr0Nw = 1ull << 29;  // not write-through
inline constexpr uint64_t kCr0Cd = 1ull << 30;  // cache disable
inline constexpr uint64_t kCr0Pg = 1ull << 31;  // paging
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;

inline constexpr uint64_t kRflagsReserved1 = 0x2;  // bit 1 always reads as 1
inline constexpr uint16_t kFpuControlWordDefault = 0x37f;  // FNINIT value: all exceptions masked
inline constexpr uint32_t kMxcsrDefault = 0x1f80;          // all SSE exceptions masked

// Long-mode special registers. Starts from `current` (what KVM_GET_SREGS
// returned) so KVM-owned fields such as apic_base and the interrupt bitmap
// survive; replaces CRs, EFER, segments, GDT, IDT and TR.
kvm_sregs long_mode_sregs(const kvm_sregs& current, uint64_t cr3);

// RIP at `entry`, RSI at the zero page, a stack from the layout, IF clear.
kvm_regs boot_regs(uint64_t entry, uint64_t boot_params_addr);

// x87 and SSE control words as after FNINIT/reset.
kvm_fpu boot_fpu();

}  // namespace thaw::vmm::x86
