// Owner of one vCPU fd and its kvm_run mapping: typed wrappers for the
// vCPU ioctls. Policy (order, values) lives in vmm/vcpu.cpp.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/memory/mapping.h"

namespace thaw::vmm::kvm {

class VcpuFd {
 public:
  VcpuFd(UniqueFd fd, Mapping run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}

  uint32_t id() const { return id_; }
  kvm_run* run_struct() const { return reinterpret_cast<kvm_run*>(run_.data()); }

  // KVM_RUN once. Returns false when interrupted by a signal (EINTR) or when
  // immediate_exit was set; throws SysError on any other failure.
  bool run();

  kvm_regs get_regs() const;
  void set_regs(const kvm_regs& regs);
  kvm_sregs get_sregs() const;
  void set_sregs(const kvm_sregs& sregs);
  kvm_fpu get_fpu() const;
  void set_fpu(const kvm_fpu& fpu);
  void set_cpuid2(const std::vector<kvm_cpuid_entry2>& entries);
  // Throws naming the first MSR KVM refused when it accepts fewer than given.
  void set_msrs(const std::vector<kvm_msr_entry>& entries);
  // Reads the given indices; entries KVM cannot read are left out.
  std::vector<kvm_msr_entry> get_msrs(const std::vector<uint32_t>& indices) const;
  kvm_lapic_state get_lapic() const;
  void set_lapic(const kvm_lapic_state& lapic);
  kvm_mp_state get_mp_state() const;
  void set_mp_state(const kvm_mp_state& state);
  kvm_vcpu_events get_vcpu_events() const;
  void set_vcpu_events(const kvm_vcpu_events& events);

  // --- snapshot state (KVM_CAP_XSAVE, XSAVE2, XCRS, DEBUGREGS, GET_TSC_KHZ) ---
  // KVM_GET_CPUID2: the CPUID table this vCPU was given (empty before any
  // KVM_SET_CPUID2).
  std::vector<kvm_cpuid_entry2> get_cpuid2() const;
  // KVM_GET_XSAVE2 into `size` bytes (KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on
  // the VM fd; at least 4096).
  std::vector<uint8_t> get_xsave2(size_t size) const;
  // KVM_GET_XSAVE: the legacy fixed 4096-byte area (no KVM_CAP_XSAVE2).
  std::vector<uint8_t> get_xsave() const;
  // KVM_SET_XSAVE: takes what get_xsave2/get_xsave returned (>= 4096 bytes;
  // the kernel reads as many as its KVM_CAP_XSAVE2 size).
  void set_xsave(const std::vector<uint8_t>& area);
  kvm_xcrs get_xcrs() const;
  void set_xcrs(const kvm_xcrs& xcrs);
  kvm_debugregs get_debugregs() const;
  void set_debugregs(const kvm_debugregs& regs);
  // KVM_GET_TSC_KHZ / KVM_SET_TSC_KHZ: this vCPU's TSC rate.
  uint32_t get_tsc_khz() const;
  void set_tsc_khz(uint32_t khz);
  // KVM_KVMCLOCK_CTRL: tells the guest's kvmclock the vCPU was paused. The
  // kernel answers EINVAL when the guest has not enabled kvmclock.
  void kvmclock_ctrl();
  // KVM_GET_STATS_FD (Linux 5.14+): a file of this vCPU's counters, read
  // with kvm::StatsReader.
  UniqueFd stats_fd() const;

 private:
  std::string context() const;
  UniqueFd fd_;
  Mapping run_;
  uint32_t id_;
};

}  // namespace thaw::vmm::kvm
