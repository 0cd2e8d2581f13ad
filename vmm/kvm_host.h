// /dev/kvm opened once, with what every VM made from it needs to know read
// once: the backend (kvm_pvm, kvm_intel, kvm_amd), the vCPU limit, the size
// of a vCPU's kvm_run mapping and the MSR index list.
//
// A pool restores thousands of clones from one template; opening /dev/kvm,
// asking these again (six ioctls and three stat calls) and closing it again
// for each was work on the restore path. A pool (or a loop of restores)
// opens one KvmHost and hands it to every restore; a one-off restore or
// boot opens its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vmm/kvm/kvm_system.h"

namespace thaw::vmm {

class KvmHost {
 public:
  // Opens `path` (SysError when it cannot, naming it) and asks it once.
  static std::shared_ptr<const KvmHost> open(const std::string& path = "/dev/kvm");

  const kvm::KvmSystem& system() const { return system_; }
  const std::string& path() const { return path_; }
  kvm::KvmBackend backend() const { return backend_; }
  unsigned max_vcpus() const { return max_vcpus_; }
  const std::vector<uint32_t>& msr_indices() const { return msr_indices_; }
  // KVM_CREATE_VM with the kvm_run size already known.
  kvm::VmFd create_vm() const { return system_.create_vm(vcpu_mmap_size_); }

  KvmHost(const KvmHost&) = delete;
  KvmHost& operator=(const KvmHost&) = delete;

 private:
  KvmHost(kvm::KvmSystem system, std::string path);

  kvm::KvmSystem system_;
  std::string path_;
  kvm::KvmBackend backend_;
  unsigned max_vcpus_;
  int vcpu_mmap_size_;
  std::vector<uint32_t> msr_indices_;
};

}  // namespace thaw::vmm
