// Capture and apply the machine state KVM holds: per vCPU (registers, FPU
// and vector state, LAPIC, MSRs, pending events, ...) and per VM (PIC,
// IOAPIC, PIT, kvmclock). Policy above the thin vmm/kvm layer: what to
// read, in which order to write it back, and which refusals to tolerate.
//
// Precondition for every save_*: the VM is paused at a consistent point.
// Vm::pause() (RunControl) gets there: each vCPU thread re-enters KVM_RUN
// with immediate_exit before it parks, so an I/O or MMIO exit in flight is
// completed (RIP is past the instruction) and nothing is half-done.
// restore_* need the vCPUs parked or not yet started.
//
// The order of a restore: restore_vm_state, then restore_vcpu_state for
// every vCPU, then resume/start. Call validate_machine_state
// (state_validation.h) on the whole state first, so a bad file touches no
// ioctl.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu_fd.h"
#include "vmm/kvm/vm_fd.h"
#include "vmm/machine_state.h"
#include "vmm/state_validation.h"

namespace thaw::vmm {

// The XSAVE area size this VM's vCPUs use: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)
// on the VM fd when non-zero, else 4096 with KVM_CAP_XSAVE, else 0 (no
// XSAVE: save and restore use KVM_GET/SET_FPU).
size_t xsave_size(const kvm::VmFd& vm);

// Whether KVM can run a vCPU at a TSC rate other than the host's
// (KVM_CAP_TSC_CONTROL).
bool has_tsc_scaling(const kvm::VmFd& vm);

// Whether the guest had turned kvmclock on (bit 0 of MSR_KVM_SYSTEM_TIME_NEW
// or the older MSR_KVM_SYSTEM_TIME among `msrs`). KVM_KVMCLOCK_CTRL only
// applies then; otherwise KVM answers EINVAL, so restore does not ask.
bool guest_enabled_kvmclock(const std::vector<kvm_msr_entry>& msrs);

// What restore needs to know about the host and what it may tolerate.
struct VcpuRestoreOptions {
  bool tsc_scaling = false;         // has_tsc_scaling() of the target VM
  bool allow_tsc_mismatch = false;  // run on at the host's rate when it differs and cannot be scaled
  bool cpuid_already_set = false;   // reset in place: this vCPU already has the snapshot's CPUID
  // Reset in place: this vCPU's TSC rate was checked (or scaled) against
  // the same snapshot when it was restored, so KVM_GET_TSC_KHZ is not asked again.
  bool tsc_rate_already_set = false;
};

// Reads everything in VcpuState. `msr_indices`: KvmSystem::msr_index_list();
// indices KVM cannot read on this vCPU are left out. `xsave_size`: see
// xsave_size(). The VM must be paused (see above).
VcpuState save_vcpu_state(kvm::VcpuFd& vcpu, const std::vector<uint32_t>& msr_indices, size_t xsave_size);

// Writes `state` back in the documented order (the .cpp says why for each
// step). Throws SysError naming the ioctl and vCPU, or InputError for a TSC
// rate this host cannot run. Validate first; this does not.
void restore_vcpu_state(kvm::VcpuFd& vcpu, const VcpuState& state, const VcpuRestoreOptions& options = {});

// PIC master (chip 0), PIC slave (1), IOAPIC (2), PIT2 (when `has_pit`: the
// VM was made with one) and the kvmclock.
VmState save_vm_state(kvm::VmFd& vm, bool has_pit = true);
// Writes VM state back. The clock is set to the saved value: the guest
// sees no time pass while it was snapshotted.
void restore_vm_state(kvm::VmFd& vm, const VmState& state);

}  // namespace thaw::vmm
