#include "vmm/kvm/vcpu_fd.h"

#include <memory>

#include "vmm/kvm/kvm_abi.h"
#include "vmm/kvm/kvm_ioctl.h"

namespace thaw::vmm::kvm {

std::string VcpuFd::context() const { return "vCPU " + std::to_string(id_); }

bool VcpuFd::run() {
  // No EINTR retry here: a signal is how another thread kicks this vCPU out.
  if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) return true;
  if (errno == EINTR || errno == EAGAIN) return false;
  throw_errno("KVM_RUN", context());
}

#define THAW_VCPU_GETTER(Type, name, REQUEST)                                  \
  Type VcpuFd::name() const {                                                  \
    Type value{};                                                              \
    checked_ioctl(fd_.get(), REQUEST, &value, #REQUEST, context());       \
    return value;                                                              \
  }
#define THAW_VCPU_SETTER(Type, name, REQUEST)                                  \
  void VcpuFd::name(const Type& value) {                                       \
    checked_ioctl(fd_.get(), REQUEST, &value, #REQUEST, context());       \
  }

THAW_VCPU_GETTER(kvm_regs, get_regs, KVM_GET_REGS)
THAW_VCPU_SETTER(kvm_regs, set_regs, KVM_SET_REGS)
THAW_VCPU_GETTER(kvm_sregs, get_sregs, KVM_GET_SREGS)
THAW_VCPU_SETTER(kvm_sregs, set_sregs, KVM_SET_SREGS)
THAW_VCPU_GETTER(kvm_fpu, get_fpu, KVM_GET_FPU)
THAW_VCPU_SETTER(kvm_fpu, set_fpu, KVM_SET_FPU)
THAW_VCPU_GETTER(kvm_lapic_state, get_lapic, KVM_GET_LAPIC)
THAW_VCPU_SETTER(kvm_lapic_state, set_lapic, KVM_SET_LAPIC)
THAW_VCPU_GETTER(kvm_mp_state, get_mp_state, KVM_GET_MP_STATE)
THAW_VCPU_SETTER(kvm_mp_state, set_mp_state, KVM_SET_MP_STATE)
THAW_VCPU_GETTER(kvm_vcpu_events, get_vcpu_events, KVM_GET_VCPU_EVENTS)
THAW_VCPU_SETTER(kvm_vcpu_events, set_vcpu_events, KVM_SET_VCPU_EVENTS)
THAW_VCPU_GETTER(kvm_xcrs, get_xcrs, KVM_GET_XCRS)
THAW_VCPU_SETTER(kvm_xcrs, set_xcrs, KVM_SET_XCRS)
THAW_VCPU_GETTER(kvm_debugregs, get_debugregs, KVM_GET_DEBUGREGS)
THAW_VCPU_SETTER(kvm_debugregs, set_debugregs, KVM_SET_DEBUGREGS)

#undef THAW_VCPU_GETTER
#undef THAW_VCPU_SETTER

void VcpuFd::set_cpuid2(const std::vector<kvm_cpuid_entry2>& entries) {
  std::vector<uint8_t> buffer(sizeof(abi::CpuidHeader) + entries.size() * sizeof(kvm_cpuid_entry2));  // zero-filled
  reinterpret_cast<abi::CpuidHeader*>(buffer.data())->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(buffer.data() + sizeof(abi::CpuidHeader), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  checked_ioctl(fd_.get(), abi::kSetCpuid2, buffer.data(), "KVM_SET_CPUID2", context());
}

void VcpuFd::set_msrs(const std::vector<kvm_msr_entry>& entries) {
  std::vector<uint8_t> buffer(sizeof(abi::MsrsHeader) + entries.size() * sizeof(kvm_msr_entry));
  auto* header = reinterpret_cast<abi::MsrsHeader*>(buffer.data());
  header->nmsrs = static_cast<uint32_t>(entries.size());
  std::memcpy(buffer.data() + sizeof(abi::MsrsHeader), entries.data(), entries.size() * sizeof(kvm_msr_entry));
  // KVM_SET_MSRS returns how many it set; it stops at the first it refuses.
  int set = checked_ioctl(fd_.get(), abi::kSetMsrs, buffer.data(), "KVM_SET_MSRS", context());
  if (static_cast<size_t>(set) < entries.size()) {
    char ctx[96];
    std::snprintf(ctx, sizeof ctx, "vCPU %u: MSR 0x%x refused (%d of %zu set)", id_, entries[set].index, set,
                  entries.size());
    throw SysError("KVM_SET_MSRS", EINVAL, ctx);
  }
}

std::vector<kvm_msr_entry> VcpuFd::get_msrs(const std::vector<uint32_t>& indices) const {
  // KVM_GET_MSRS stops at the first unreadable index; skip it and go on.
  std::vector<kvm_msr_entry> result;
  size_t next = 0;
  while (next < indices.size()) {
    size_t count = indices.size() - next;
    std::vector<uint8_t> buffer(sizeof(abi::MsrsHeader) + count * sizeof(kvm_msr_entry));  // zero-filled
    reinterpret_cast<abi::MsrsHeader*>(buffer.data())->nmsrs = static_cast<uint32_t>(count);
    auto* entries = reinterpret_cast<kvm_msr_entry*>(buffer.data() + sizeof(abi::MsrsHeader));
    for (size_t i = 0; i < count; ++i) entries[i].index = indices[next + i];
    int got = checked_ioctl(fd_.get(), abi::kGetMsrs, buffer.data(), "KVM_GET_MSRS", context());
    result.insert(result.end(), entries, entries + got);
    next += static_cast<size_t>(got) + 1;  // +1 skips the index KVM refused
  }
  return result;
}

std::vector<kvm_cpuid_entry2> VcpuFd::get_cpuid2() const {
  // E2BIG when the buffer is too small; KVM's own limit is 256 entries.
  for (uint32_t capacity = 256; capacity <= 4096; capacity *= 2) {
    std::vector<uint8_t> buffer(sizeof(abi::CpuidHeader) + capacity * sizeof(kvm_cpuid_entry2));  // zero-filled
    auto* header = reinterpret_cast<abi::CpuidHeader*>(buffer.data());
    header->nent = capacity;
    int rc;
    do {
      rc = ::ioctl(fd_.get(), abi::kGetCpuid2, buffer.data());
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      auto* first = reinterpret_cast<const kvm_cpuid_entry2*>(buffer.data() + sizeof(abi::CpuidHeader));
      return {first, first + header->nent};
    }
    if (errno != E2BIG) throw_errno("KVM_GET_CPUID2", context());
  }
  throw SysError("KVM_GET_CPUID2", E2BIG, context() + ": more than 4096 entries");
}

std::vector<uint8_t> VcpuFd::get_xsave2(size_t size) const {
  if (size < abi::kXsaveLegacySize) {
    throw SysError("KVM_GET_XSAVE2", EINVAL, context() + ": size " + std::to_string(size) + " is below 4096");
  }
  std::vector<uint8_t> area(size);
  checked_ioctl(fd_.get(), abi::kGetXsave2, area.data(), "KVM_GET_XSAVE2", context());
  return area;
}

std::vector<uint8_t> VcpuFd::get_xsave() const {
  std::vector<uint8_t> area(abi::kXsaveLegacySize);
  checked_ioctl(fd_.get(), abi::kGetXsave, area.data(), "KVM_GET_XSAVE", context());
  return area;
}

void VcpuFd::set_xsave(const std::vector<uint8_t>& area) {
  if (area.size() < abi::kXsaveLegacySize) {
    throw SysError("KVM_SET_XSAVE", EINVAL, context() + ": " + std::to_string(area.size()) + " bytes, below 4096");
  }
  checked_ioctl(fd_.get(), abi::kSetXsave, area.data(), "KVM_SET_XSAVE", context());
}

uint32_t VcpuFd::get_tsc_khz() const {
  return static_cast<uint32_t>(checked_ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0, "KVM_GET_TSC_KHZ", context()));
}

void VcpuFd::set_tsc_khz(uint32_t khz) {
  checked_ioctl(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz), "KVM_SET_TSC_KHZ",
                context() + ", " + std::to_string(khz) + " kHz");
}

UniqueFd VcpuFd::stats_fd() const {
  return UniqueFd(checked_ioctl(fd_.get(), KVM_GET_STATS_FD, 0, "KVM_GET_STATS_FD", context()));
}

void VcpuFd::kvmclock_ctrl() { checked_ioctl(fd_.get(), KVM_KVMCLOCK_CTRL, 0, "KVM_KVMCLOCK_CTRL", context()); }

}  // namespace thaw::vmm::kvm
