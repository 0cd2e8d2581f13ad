#include "vmm/kvm_host.h"

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

}  // namespace thaw::vmm
