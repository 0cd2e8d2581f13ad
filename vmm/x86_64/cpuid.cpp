#include "vmm/x86_64/cpuid.h"

#include <algorithm>

namespace thaw::vmm::x86 {

namespace {

// Leaf 6 bits a guest cannot use: the host's turbo and hardware P-state
// (HWP) controls and the energy-bias MSR are not virtualized by KVM.
constexpr uint32_t kLeaf6EaxTurbo = 1u << 1;
constexpr uint32_t kLeaf6EaxHwpMask = 0x1fu << 7;  // HWP, notify, activity window, EPP, package req.
constexpr uint32_t kLeaf6EcxEnergyBias = 1u << 3;

void set_bits(uint32_t& reg, unsigned lo, unsigned width, uint32_t value) {
  uint32_t mask = (width >= 32 ? ~0u : ((1u << width) - 1)) << lo;
  reg = (reg & ~mask) | ((value << lo) & mask);
}

// Smallest shift s with (1 << s) >= n: how many x2APIC ID bits `n` cores need.
uint32_t id_bits(unsigned n) {
  uint32_t s = 0;
  while ((1u << s) < n) ++s;
  return s;
}

void configure_leaf1(kvm_cpuid_entry2& e, unsigned index, unsigned count) {
  set_bits(e.ebx, 24, 8, index);                       // initial APIC ID
  set_bits(e.ebx, 16, 8, std::min(count, 255u));       // logical processors per package
  if (count > 1) {
    e.edx |= kLeaf1EdxHtt;  // EBX[23:16] is only valid with HTT set
  } else {
    e.edx &= ~kLeaf1EdxHtt;
  }
  e.ecx |= kLeaf1EcxHypervisor;
}

void configure_leaf4(kvm_cpuid_entry2& e, unsigned count) {
  const uint32_t cache_type = e.eax & 0x1f;
  if (cache_type == 0) return;  // no more caches
  const uint32_t level = (e.eax >> 5) & 0x7;
  // EAX[31:26]: cores per package - 1 (6 bits).
  set_bits(e.eax, 26, 6, std::min(count, 64u) - 1);
  // EAX[25:14]: threads sharing this cache - 1. L1/L2 are per core (one
  // thread each), L3 is shared by the whole package.
  set_bits(e.eax, 14, 12, level >= 3 ? count - 1 : 0);
}

void configure_topology_leaf(kvm_cpuid_entry2& e, unsigned index, unsigned count) {
  const uint32_t level = e.index;
  e.edx = index;  // x2APIC ID, on every subleaf
  switch (level) {
    case 0:  // SMT: one thread per core
      e.eax = 0;
      e.ebx = 1;
      e.ecx = (kTopologyLevelSmt << 8) | level;
      break;
    case 1:  // core: `count` cores in the package
      e.eax = id_bits(count);
      e.ebx = count;
      e.ecx = (kTopologyLevelCore << 8) | level;
      break;
    default:  // no further levels
      e.eax = 0;
      e.ebx = 0;
      e.ecx = (kTopologyLevelInvalid << 8) | level;
      break;
  }
}

}  // namespace

void configure_cpuid(std::vector<kvm_cpuid_entry2>& entries, unsigned index, unsigned count) {
  count = std::max(count, 1u);
  for (auto& e : entries) {
    switch (e.function) {
      case kCpuidLeafFeatures:
        configure_leaf1(e, index, count);
        break;
      case kCpuidLeafCacheParams:
        configure_leaf4(e, count);
        break;
      case kCpuidLeafPowerMgmt:
        e.eax &= ~(kLeaf6EaxTurbo | kLeaf6EaxHwpMask);
        e.ecx &= ~kLeaf6EcxEnergyBias;
        break;
      case kCpuidLeafTopology:
      case kCpuidLeafTopologyV2:
        configure_topology_leaf(e, index, count);
        break;
      default:
        break;
    }
  }
}

}  // namespace thaw::vmm::x86
