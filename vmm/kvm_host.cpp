#include "vmm/kvm_host.h"

#include "vmm/state_capture.h"

namespace thaw::vmm {

std::shared_ptr<const KvmHost> KvmHost::open(const std::string& path) {
  return std::shared_ptr<const KvmHost>(new KvmHost(kvm::KvmSystem::open(path), path));
}

KvmHost::KvmHost(kvm::KvmSystem system, std::string path)
    : system_(std::move(system)),
      path_(std::move(path)),
      backend_(kvm::detect_backend()),
      max_vcpus_(system_.max_vcpus()),
      vcpu_mmap_size_(system_.vcpu_mmap_size()),
      msr_indices_(system_.msr_index_list()) {}

const KvmHost::VmCapabilities& KvmHost::vm_capabilities(const kvm::VmFd& vm) const {
  std::call_once(vm_capabilities_once_, [&] {
    vm_capabilities_.xsave_size = xsave_size(vm);
    vm_capabilities_.tsc_scaling = has_tsc_scaling(vm);
  });
  return vm_capabilities_;
}

}  // namespace thaw::vmm
