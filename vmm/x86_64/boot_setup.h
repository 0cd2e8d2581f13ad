// The x86-64 boot façade: everything a cold boot writes into guest memory
// before the first instruction, and the register values for the boot vCPU.
// Pure: no /dev/kvm, only guest memory and KVM structs.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmm/loader/kernel_image.h"
#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::x86 {

using KernelFormat = loader::KernelFormat;  // kElf64, kBzImage

struct BootSetupInput {
  std::span<const uint8_t> kernel_image{};  // whole file
  std::string kernel_name{};                // for error messages (path)
  std::span<const uint8_t> initrd{};        // empty = no initrd
  std::string initrd_name{};
  std::string cmdline{};
  unsigned vcpu_count = 1;
};

struct BootInfo {
  KernelFormat format = KernelFormat::kElf64;
  uint64_t entry = 0;             // 64-bit entry point (guest physical)
  uint64_t boot_params_addr = 0;  // zero page, passed in RSI
  uint64_t cr3 = 0;               // PML4 of the identity map
  uint64_t kernel_end = 0;        // first byte after the loaded kernel
  uint64_t initrd_addr = 0, initrd_size = 0;
  std::optional<uint64_t> pvh_entry{};  // from the ELF PVH note (XEN_ELFNOTE_PHYS32_ENTRY=18), info only
};

// Loads the kernel (ELF64 or bzImage, detected), the initrd and the command
// line, and writes boot_params (with e820), GDT, IDT, TSS, identity page
// tables and the MP table for vcpu_count CPUs. Throws InputError for bad
// input, naming the file and the problem.
BootInfo setup_boot(GuestMemory& mem, const BootSetupInput& in);

// Long-mode special registers for the boot vCPU, starting from `current`
// (KVM_GET_SREGS) so apic_base and the like survive.
kvm_sregs long_mode_sregs(const kvm_sregs& current, const BootInfo& info);

// RIP=entry, RSI=boot_params, RFLAGS=0x2, RSP/RBP = the boot stack.
kvm_regs boot_regs(const BootInfo& info);

// FPU: fcw 0x37f, mxcsr 0x1f80.
kvm_fpu boot_fpu();

// MSRs a fresh vCPU should get (see msrs.h).
std::vector<kvm_msr_entry> boot_msrs();

// Rewrites KVM_GET_SUPPORTED_CPUID's entries for vCPU `index` of `count` (see cpuid.h).
void configure_cpuid(std::vector<kvm_cpuid_entry2>& entries, unsigned index, unsigned count);

// Largest vCPU count the MP table supports (APIC IDs).
unsigned max_mptable_vcpus();

}  // namespace thaw::vmm::x86
