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

#include <cstddef>
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
inline constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, CpuidHeader);

// struct kvm_xsave is `__u32 region[1024]` followed by a flexible `extra[]`
// (used by KVM_GET_XSAVE2 when KVM_CAP_XSAVE2 reports more than 4096
// bytes). In C++ the flexible array makes sizeof 4100, so the header's
// KVM_GET_XSAVE/KVM_SET_XSAVE/KVM_GET_XSAVE2 encode the wrong size. The
// kernel's numbers encode 4096 for all three, whatever the real buffer size.
struct XsaveRegion {
  uint32_t region[1024];
};
static_assert(sizeof(XsaveRegion) == 4096);
inline constexpr size_t kXsaveLegacySize = sizeof(XsaveRegion);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, XsaveRegion);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, XsaveRegion);
inline constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, XsaveRegion);
// The values a C compiler computes from <linux/kvm.h> (checked with gcc).
static_assert(kGetCpuid2 == 0xc008ae91 && kGetXsave == 0x9000aea4 && kSetXsave == 0x5000aea5 &&
              kGetXsave2 == 0x9000aecf);

}  // namespace thaw::vmm::kvm::abi
