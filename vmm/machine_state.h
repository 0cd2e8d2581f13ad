// Plain state structs of the machine KVM runs: per vCPU and per VM. They
// are filled and applied by vmm/state_capture.cpp; only snapshot/ turns
// them into the Cap'n Proto state file. Devices keep their own state
// structs next to their code (devices/legacy/*.h).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace thaw::vmm {

// Everything KVM holds for one vCPU, in the order restore applies it.
struct VcpuState {
  uint32_t vcpu_id = 0;
  std::vector<kvm_cpuid_entry2> cpuid;
  kvm_mp_state mp_state{};
  kvm_regs regs{};
  kvm_sregs sregs{};
  // KVM_GET_XSAVE2 bytes (KVM_CAP_XSAVE2 sized; may exceed 4096 with AMX);
  // empty when the host has no XSAVE, then `fpu` is used instead.
  std::vector<uint8_t> xsave;
  kvm_fpu fpu{};
  kvm_xcrs xcrs{};
  kvm_debugregs debugregs{};
  kvm_lapic_state lapic{};
  std::vector<kvm_msr_entry> msrs;
  kvm_vcpu_events events{};
  uint32_t tsc_khz = 0;
};

// VM-wide in-kernel devices and clock.
struct VmState {
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

}  // namespace thaw::vmm
