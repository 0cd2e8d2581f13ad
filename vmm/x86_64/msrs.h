// MSR values a freshly created boot vCPU gets, so that a cold boot starts
// from the same architectural state every time.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace thaw::vmm::x86 {

// MSR indices (Intel SDM vol. 4). <asm/msr-index.h> is not a uapi header,
// so the few we need are named here.
inline constexpr uint32_t kMsrTsc = 0x10;
inline constexpr uint32_t kMsrSysenterCs = 0x174;
inline constexpr uint32_t kMsrSysenterEsp = 0x175;
inline constexpr uint32_t kMsrSysenterEip = 0x176;
inline constexpr uint32_t kMsrMiscEnable = 0x1a0;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;
inline constexpr uint32_t kMsrStar = 0xc000'0081;
inline constexpr uint32_t kMsrLstar = 0xc000'0082;
inline constexpr uint32_t kMsrCstar = 0xc000'0083;
inline constexpr uint32_t kMsrSyscallMask = 0xc000'0084;
inline constexpr uint32_t kMsrKernelGsBase = 0xc000'0102;

inline constexpr uint64_t kMiscEnableFastStrings = 1ull << 0;
// MTRRdefType: E (bit 11) enables MTRRs; the default type 6 is write-back,
// so all RAM is cacheable without any variable MTRR.
inline constexpr uint64_t kMtrrEnable = 1ull << 11;
inline constexpr uint64_t kMtrrTypeWriteBack = 6;

std::vector<kvm_msr_entry> boot_msrs();

}  // namespace thaw::vmm::x86
