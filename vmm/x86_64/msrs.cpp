#include "vmm/x86_64/msrs.h"

namespace thaw::vmm::x86 {

namespace {
kvm_msr_entry msr(uint32_t index, uint64_t value) {
  kvm_msr_entry e{};
  e.index = index;
  e.data = value;
  return e;
}
}  // namespace

std::vector<kvm_msr_entry> boot_msrs() {
  return {
      // No fast system calls until the guest programs them itself.
      msr(kMsrSysenterCs, 0),
      msr(kMsrSysenterEsp, 0),
      msr(kMsrSysenterEip, 0),
      msr(kMsrStar, 0),
      msr(kMsrLstar, 0),
      msr(kMsrCstar, 0),
      msr(kMsrSyscallMask, 0),
      msr(kMsrKernelGsBase, 0),
      // Every boot starts its clock at 0, so cold boots compare.
      msr(kMsrTsc, 0),
      msr(kMsrMiscEnable, kMiscEnableFastStrings),
      msr(kMsrMtrrDefType, kMtrrEnable | kMtrrTypeWriteBack),
  };
}

}  // namespace thaw::vmm::x86
