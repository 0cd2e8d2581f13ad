// One CPUID entry for tests that build a vCPU's CPUID by hand.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace thaw::vmm::testing {

inline kvm_cpuid_entry2 cpuid_leaf(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                                   uint32_t edx) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

}  // namespace thaw::vmm::testing
