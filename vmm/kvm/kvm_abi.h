// KVM ioctls whose argument ends in a flexible array, with layouts and
// ioctl numbers thaw defines itself.
//
// Why: Debian 12's <linux/kvm.h> declares those arrays with
// __DECLARE_FLEX_ARRAY, which in C++ puts a 1-byte empty struct in front of
// the array. That makes sizeof(struct kvm_cpuid2) 12 instead of 8, so both
// the ioctl numbers (which encode the size) and the offset of the entries
// are wrong in C++: the kernel answers EINVAL. These headers are exact.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace thaw::vmm::kvm::abi {

struct CpuidHeader {  // followed by nent x kvm_cpuid_entry2
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {  // followed by nmsrs x kvm_msr_entry
  uint32_t nmsrs;
  uint32_t pad;
};
struct MsrListHeader {  // followed by nmsrs x uint32_t
  uint32_t nmsrs;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(MsrListHeader) == 4);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);

inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);

}  // namespace thaw::vmm::kvm::abi
