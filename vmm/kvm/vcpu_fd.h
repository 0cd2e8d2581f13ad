// Owner of one vCPU fd and its kvm_run mapping: typed wrappers for the
// vCPU ioctls. Policy (order, values) lives in vmm/vcpu.cpp.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/memory/mapping.h"
#include "vmm/unique_fd.h"

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

 private:
  std::string context() const;
  UniqueFd fd_;
  Mapping run_;
  uint32_t id_;
};

}  // namespace thaw::vmm::kvm
