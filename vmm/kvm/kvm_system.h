// Owner of /dev/kvm: system-wide queries and VM creation. Only translates
// ioctls; what to do with the answers is decided above (vm.cpp, doctor).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/kvm/vm_fd.h"

namespace thaw::vmm::kvm {

// Which kernel module backs /dev/kvm; on PVM guest ring 0 is emulated.
enum class KvmBackend { kIntel, kAmd, kPvm, kUnknown };
const char* backend_name(KvmBackend backend);
// Reads /sys/module to tell the backend apart. Pure apart from stat(2).
KvmBackend detect_backend(const std::string& sys_module_dir = "/sys/module");

class KvmSystem {
 public:
  // Opens /dev/kvm (or `path`) and checks the API version is 12.
  static KvmSystem open(const std::string& path = "/dev/kvm");

  int api_version() const;
  // KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific value.
  int check_extension(int capability) const;
  int vcpu_mmap_size() const;
  unsigned max_vcpus() const;
  std::vector<kvm_cpuid_entry2> supported_cpuid() const;
  std::vector<uint32_t> msr_index_list() const;

  VmFd create_vm() const;
  // The same with KVM_GET_VCPU_MMAP_SIZE already asked (it never changes).
  VmFd create_vm(int vcpu_mmap_size) const;
  int fd() const { return fd_.get(); }

 private:
  explicit KvmSystem(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace thaw::vmm::kvm
