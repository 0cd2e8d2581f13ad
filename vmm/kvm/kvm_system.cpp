#include "vmm/kvm/kvm_system.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <memory>

#include "vmm/kvm/kvm_abi.h"
#include "vmm/kvm/kvm_ioctl.h"

namespace thaw::vmm::kvm {

const char* backend_name(KvmBackend backend) {
  switch (backend) {
    case KvmBackend::kIntel: return "kvm_intel";
    case KvmBackend::kAmd: return "kvm_amd";
    case KvmBackend::kPvm: return "kvm_pvm";
    case KvmBackend::kUnknown: break;
  }
  return "unknown";
}

KvmBackend detect_backend(const std::string& sys_module_dir) {
  struct stat st {};
  auto has = [&](const char* module) { return ::stat((sys_module_dir + "/" + module).c_str(), &st) == 0; };
  // PVM first: a host may have kvm_intel loaded too while /dev/kvm is PVM's.
  if (has("kvm_pvm")) return KvmBackend::kPvm;
  if (has("kvm_intel")) return KvmBackend::kIntel;
  if (has("kvm_amd")) return KvmBackend::kAmd;
  return KvmBackend::kUnknown;
}

KvmSystem KvmSystem::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) throw_errno("open", path + " (is KVM available and are you in the kvm group?)");
  KvmSystem kvm(std::move(fd));
  int version = kvm.api_version();
  if (version != KVM_API_VERSION) {
    throw SysError("KVM_GET_API_VERSION", EINVAL,
                   path + " reports API version " + std::to_string(version) + ", thaw needs " +
                       std::to_string(KVM_API_VERSION));
  }
  return kvm;
}

int KvmSystem::api_version() const {
  return checked_ioctl(fd_.get(), KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION");
}

int KvmSystem::check_extension(int capability) const {
  return checked_ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability, "KVM_CHECK_EXTENSION",
                       "capability " + std::to_string(capability));
}

int KvmSystem::vcpu_mmap_size() const {
  return checked_ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
}

unsigned KvmSystem::max_vcpus() const {
  // KVM_CAP_MAX_VCPUS is the hard limit; older kernels only report NR_VCPUS.
  int max = check_extension(KVM_CAP_MAX_VCPUS);
  if (max <= 0) max = check_extension(KVM_CAP_NR_VCPUS);
  return max > 0 ? static_cast<unsigned>(max) : 4u;
}

std::vector<kvm_cpuid_entry2> KvmSystem::supported_cpuid() const {
  // The kernel says E2BIG when the buffer is too small, but only after doing
  // all the work (~1 ms of CPUID exits on a nested host): start at KVM's
  // own maximum (256) so one call suffices, and grow only if a future
  // kernel has more.
  for (uint32_t capacity = 256; capacity <= 4096; capacity *= 2) {
    std::vector<uint8_t> buffer(sizeof(abi::CpuidHeader) + capacity * sizeof(kvm_cpuid_entry2));  // zero-filled
    auto* header = reinterpret_cast<abi::CpuidHeader*>(buffer.data());
    header->nent = capacity;
    if (::ioctl(fd_.get(), abi::kGetSupportedCpuid, buffer.data()) == 0) {
      auto* first = reinterpret_cast<const kvm_cpuid_entry2*>(buffer.data() + sizeof(abi::CpuidHeader));
      return {first, first + header->nent};
    }
    if (errno != E2BIG) throw_errno("KVM_GET_SUPPORTED_CPUID");
  }
  throw SysError("KVM_GET_SUPPORTED_CPUID", E2BIG, "more than 4096 entries");
}

std::vector<uint32_t> KvmSystem::msr_index_list() const {
  abi::MsrListHeader probe{0};
  // The first call fails with E2BIG and tells how many indices there are.
  if (::ioctl(fd_.get(), abi::kGetMsrIndexList, &probe) < 0 && errno != E2BIG) {
    throw_errno("KVM_GET_MSR_INDEX_LIST", "size query");
  }
  std::vector<uint32_t> buffer(1 + probe.nmsrs);
  buffer[0] = probe.nmsrs;
  checked_ioctl(fd_.get(), abi::kGetMsrIndexList, buffer.data(), "KVM_GET_MSR_INDEX_LIST");
  return {buffer.begin() + 1, buffer.begin() + 1 + buffer[0]};
}

VmFd KvmSystem::create_vm() const { return create_vm(vcpu_mmap_size()); }

VmFd KvmSystem::create_vm(int vcpu_mmap_size) const {
  int vm = checked_ioctl(fd_.get(), KVM_CREATE_VM, 0, "KVM_CREATE_VM");
  return VmFd(UniqueFd(vm), vcpu_mmap_size);
}

}  // namespace thaw::vmm::kvm
