// /dev/kvm opened once, with what every VM made from it needs to know read
// once: the backend (kvm_pvm, kvm_intel, kvm_amd), the vCPU limit, the size
// of a vCPU's kvm_run mapping and the MSR index list; and what KVM answers
// per VM but alike for every VM of this process (XSAVE size, TSC scaling),
// asked of the first VM.
//
// A pool restores thousands of clones from one template; opening /dev/kvm,
// asking these again (six ioctls and three stat calls) and closing it again
// for each was work on the restore path. A pool (or a loop of restores)
// opens one KvmHost and hands it to every restore; a one-off restore or
// boot opens its own.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
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

  // KVM_CHECK_EXTENSION on a VM fd for the XSAVE area size and TSC
  // scaling. KVM derives both from the host and this process (its
  // permitted XSAVE features), not the VM: `vm` is asked the first time
  // only, which saves every later VM two or three ioctls.
  struct VmCapabilities {
    size_t xsave_size = 0;  // state_capture.h's xsave_size()
    bool tsc_scaling = false;
  };
  const VmCapabilities& vm_capabilities(const kvm::VmFd& vm) const;

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
  mutable std::once_flag vm_capabilities_once_;
  mutable VmCapabilities vm_capabilities_;
};

}  // namespace thaw::vmm
