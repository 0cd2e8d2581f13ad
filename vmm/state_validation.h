// Checks on saved machine state before any of it reaches an ioctl. A
// snapshot file is untrusted input: these catch corrupt or foreign state
// with a message naming the field, instead of a bare EINVAL from KVM (or,
// worse, a value KVM accepts and the guest dies of). Pure functions: no KVM.
//
// They check what KVM or the machine would refuse or cannot make sense of
// (sizes, counts, reserved bits, enum ranges, impossible control-register
// combinations). They do not judge ordinary guest register values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vmm/machine_state.h"

namespace thaw::vmm {

// What the restoring host and VM look like.
struct ValidationContext {
  std::vector<uint32_t> msr_indices;  // KVM_GET_MSR_INDEX_LIST of this host
  uint32_t vcpu_count = 1;            // vCPUs of the VM being restored into
  uint64_t memory_size = 0;           // guest RAM bytes (0: not checked)
  size_t xsave_size = 0;              // this host's XSAVE area size (0: no XSAVE)
};

// KVM's limit on CPUID entries per vCPU (KVM_MAX_CPUID_ENTRIES).
inline constexpr size_t kMaxCpuidEntries = 256;

// Each returns when `state` may be applied and otherwise throws StateError
// (base/errors.h) naming the problem, e.g. "vCPU 0: sregs.efer 0x10000 sets
// reserved bits 0x10000".
void validate_vcpu_state(const VcpuState& state, const ValidationContext& ctx);
void validate_vm_state(const VmState& state);
// All of a machine's KVM state: every vCPU (one per vCPU of the VM, ids
// 0..n-1 in order) and the VM state. Devices check their own state in
// restore(). Call before the first restore ioctl.
void validate_machine_state(const MachineState& state, const ValidationContext& ctx);

}  // namespace thaw::vmm
