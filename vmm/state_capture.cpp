#include "vmm/state_capture.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/errors.h"

namespace thaw::vmm {

namespace {

// KVM treats rates within 250 ppm of each other as the same
// (tsc_tolerance_ppm); so does thaw, so that two hosts of one CPU model
// whose calibrations differ in the last digits are not a mismatch.
constexpr uint64_t kTscTolerancePpm = 250;

bool same_tsc_rate(uint32_t a, uint32_t b) {
  uint64_t diff = a > b ? a - b : b - a;
  return diff * 1'000'000 <= static_cast<uint64_t>(b) * kTscTolerancePpm;
}

// TSC rate first: a rate this host cannot run must refuse the restore
// before any state changed, and the TSC MSR written later is interpreted
// at the vCPU's rate.
void restore_tsc_rate(kvm::VcpuFd& vcpu, uint32_t saved_khz, const VcpuRestoreOptions& options) {
  if (saved_khz == 0) return;  // not recorded
  uint32_t current = vcpu.get_tsc_khz();
  if (same_tsc_rate(saved_khz, current)) return;
  if (options.tsc_scaling) {
    vcpu.set_tsc_khz(saved_khz);
    return;
  }
  if (options.allow_tsc_mismatch) return;  // the guest's clocks run at the host's rate from here
  throw InputError("vCPU " + std::to_string(vcpu.id()) + ": tsc rate mismatch: the snapshot ran at " +
                   std::to_string(saved_khz) + " kHz, this host's vCPU runs at " + std::to_string(current) +
                   " kHz, and KVM cannot scale it here (no KVM_CAP_TSC_CONTROL); restore on a host with the same "
                   "TSC rate or allow the mismatch");
}

}  // namespace

bool guest_enabled_kvmclock(const std::vector<kvm_msr_entry>& msrs) {
  // KVM's paravirtual MSR numbers (Documentation/virt/kvm/x86/msr.rst).
  constexpr uint32_t kSystemTimeNew = 0x4b564d01;
  constexpr uint32_t kSystemTimeOld = 0x12;
  return std::any_of(msrs.begin(), msrs.end(), [](const kvm_msr_entry& msr) {
    return (msr.index == kSystemTimeNew || msr.index == kSystemTimeOld) && (msr.data & 1) != 0;
  });
}

size_t xsave_size(const kvm::VmFd& vm) {
  int size = vm.check_extension(KVM_CAP_XSAVE2);
  if (size > 0) return static_cast<size_t>(size);
  return vm.check_extension(KVM_CAP_XSAVE) > 0 ? 4096 : 0;
}

bool has_tsc_scaling(const kvm::VmFd& vm) { return vm.check_extension(KVM_CAP_TSC_CONTROL) > 0; }

VcpuState save_vcpu_state(kvm::VcpuFd& vcpu, const std::vector<uint32_t>& msr_indices, size_t xsave_size) {
  // Precondition: the VM is paused at a consistent point (state_capture.h).
  VcpuState state;
  state.vcpu_id = vcpu.id();
  state.cpuid = vcpu.get_cpuid2();
  state.mp_state = vcpu.get_mp_state();
  state.regs = vcpu.get_regs();
  state.sregs = vcpu.get_sregs();
  if (xsave_size > 4096) {
    state.xsave = vcpu.get_xsave2(xsave_size);
  } else if (xsave_size == 4096) {
    state.xsave = vcpu.get_xsave();
  }
  // The legacy FPU view too: cheap, and what restore uses without XSAVE.
  state.fpu = vcpu.get_fpu();
  if (xsave_size != 0) state.xcrs = vcpu.get_xcrs();
  state.debugregs = vcpu.get_debugregs();
  state.lapic = vcpu.get_lapic();
  state.msrs = vcpu.get_msrs(msr_indices);
  state.events = vcpu.get_vcpu_events();
  state.tsc_khz = vcpu.get_tsc_khz();
  return state;
}

void restore_vcpu_state(kvm::VcpuFd& vcpu, const VcpuState& state, const VcpuRestoreOptions& options) {
  if (!options.tsc_rate_already_set) restore_tsc_rate(vcpu, state.tsc_khz, options);
  // CPUID first: KVM checks CR4 bits (SREGS), XCR0 and the XSAVE area, and
  // which MSRs exist, against the guest's CPUID. A reset in place skips it:
  // KVM only accepts the identical table once the vCPU has run, and setting
  // it costs ~0.2 ms of host CPUID exits on nested hosts.
  if (!options.cpuid_already_set) vcpu.set_cpuid2(state.cpuid);
  // MP_STATE before the registers: a state change (INIT/SIPI handling) may
  // reset registers; what REGS/SREGS write next is what the vCPU runs with.
  vcpu.set_mp_state(state.mp_state);
  // REGS: general-purpose registers, RIP and RFLAGS; nothing depends on them.
  vcpu.set_regs(state.regs);
  // SREGS: control registers, EFER, segments and apic_base; the mode
  // (long mode, paging) the later steps are interpreted in.
  vcpu.set_sregs(state.sregs);
  // XSAVE (FPU without XSAVE): after CPUID, which decides the guest's
  // supported XSAVE features the area is checked against.
  if (!state.xsave.empty()) {
    vcpu.set_xsave(state.xsave);
  } else {
    vcpu.set_fpu(state.fpu);
  }
  // XCRS: XCR0 is checked against CPUID leaf 0xD; after XSAVE like QEMU.
  if (state.xcrs.nr_xcrs != 0) vcpu.set_xcrs(state.xcrs);
  // DEBUGREGS: DR0-3, DR6, DR7; independent, before the LAPIC like Firecracker.
  vcpu.set_debugregs(state.debugregs);
  // LAPIC after SREGS, whose apic_base decides the LAPIC mode (xAPIC or
  // x2APIC, enabled or not), and before MSRs, because the TSC-deadline MSR
  // needs the LAPIC (in TSC-deadline timer mode) to accept its value.
  vcpu.set_lapic(state.lapic);
  // MSRs: after CPUID (which MSRs exist), SREGS (EFER) and LAPIC (TSC deadline).
  vcpu.set_msrs(state.msrs);
  // VCPU_EVENTS last: pending/injected exceptions, interrupts, NMI and the
  // interrupt shadow go on top of the final registers; earlier writes
  // (SREGS' interrupt bitmap, LAPIC) must not overwrite them.
  vcpu.set_vcpu_events(state.events);
  // KVMCLOCK_CTRL: tells the guest's kvmclock the vCPU was stopped, so the
  // guest's watchdogs do not report a soft lockup for the snapshot's age.
  // Only for a guest that uses kvmclock (the mini guest does not: asking
  // cost every restore a failed ioctl and a thrown exception). EINVAL
  // still means nothing to tell.
  if (!guest_enabled_kvmclock(state.msrs)) return;
  try {
    vcpu.kvmclock_ctrl();
  } catch (const SysError& e) {
    if (e.error_number() != EINVAL) throw;
  }
}

VmState save_vm_state(kvm::VmFd& vm, bool has_pit) {
  // Precondition: the VM is paused (state_capture.h).
  VmState state;
  state.pic_master = vm.get_irqchip(KVM_IRQCHIP_PIC_MASTER);
  state.pic_slave = vm.get_irqchip(KVM_IRQCHIP_PIC_SLAVE);
  state.ioapic = vm.get_irqchip(KVM_IRQCHIP_IOAPIC);
  state.has_pit = has_pit;
  if (has_pit) state.pit = vm.get_pit2();
  state.clock = vm.get_clock();
  return state;
}

void restore_vm_state(kvm::VmFd& vm, const VmState& state) {
  vm.set_irqchip(state.pic_master);
  vm.set_irqchip(state.pic_slave);
  vm.set_irqchip(state.ioapic);
  if (state.has_pit) vm.set_pit2(state.pit);
  // The saved kvmclock value, with no flags: the guest's clock continues
  // from the moment of the snapshot, as if no time passed while it was
  // stored. KVM_CLOCK_REALTIME would make KVM add the wall time since the
  // save (and is refused by kernels before 5.16, which accept only 0);
  // wall-clock time is injected into a clone later by the pool instead.
  kvm_clock_data clock{};
  clock.clock = state.clock.clock;
  clock.flags = 0;
  vm.set_clock(clock);
}

}  // namespace thaw::vmm
