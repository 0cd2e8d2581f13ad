// Per-vCPU CPUID: KVM_GET_SUPPORTED_CPUID describes what the host can offer;
// each vCPU then needs its own APIC ID and a topology that matches the number
// of vCPUs in the VM (one package, `count` cores, one thread per core).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace thaw::vmm::x86 {

// Leaves and bits touched (Intel SDM vol. 2A, CPUID).
inline constexpr uint32_t kCpuidLeafFeatures = 0x1;
inline constexpr uint32_t kCpuidLeafCacheParams = 0x4;
inline constexpr uint32_t kCpuidLeafPowerMgmt = 0x6;
inline constexpr uint32_t kCpuidLeafTopology = 0xb;
inline constexpr uint32_t kCpuidLeafTopologyV2 = 0x1f;

inline constexpr uint32_t kLeaf1EcxHypervisor = 1u << 31;
inline constexpr uint32_t kLeaf1EdxHtt = 1u << 28;

// Topology level types in leaf 0xB/0x1F ECX[15:8].
inline constexpr uint32_t kTopologyLevelInvalid = 0;
inline constexpr uint32_t kTopologyLevelSmt = 1;
inline constexpr uint32_t kTopologyLevelCore = 2;

// Rewrites `entries` (as KVM_GET_SUPPORTED_CPUID returned them) for vCPU
// `index` of `count`. Pure: entries not named above are left alone.
void configure_cpuid(std::vector<kvm_cpuid_entry2>& entries, unsigned index, unsigned count);

}  // namespace thaw::vmm::x86
