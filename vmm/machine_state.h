// The machine's state apart from guest RAM, as one plain value: per vCPU
// and per VM (what KVM holds) and the devices (whose state structs live
// next to their code in devices/). Vm::save_state() fills it and
// Vm::restore_state() applies it (vmm/vm_state.cpp); only snapshot/ turns
// it into the Cap'n Proto state file. A new device adds its state here and
// two lines in vm_state.cpp, and its encoding in snapshot/.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "devices/legacy/boot_complete.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial_8250.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/vsock_device.h"

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
  // False for a VM made without an in-kernel PIT (VmConfig::pit): `pit` is
  // then unused and nothing is saved or restored for it.
  bool has_pit = true;
  kvm_clock_data clock{};
};

// The virtio-vsock device: its MMIO transport and the device itself. No
// connections: they are reset on restore, and nothing host-specific (the
// unix socket path) is saved, so every clone gets its own.
struct VsockDeviceStates {
  devices::VirtioMmioState transport;
  devices::VsockState device;

  bool operator==(const VsockDeviceStates&) const = default;
};

struct DeviceStates {
  devices::Serial8250State serial;
  devices::I8042State i8042;
  devices::BootCompleteState boot_complete;
  devices::DebugExitState debug_exit;
  std::optional<VsockDeviceStates> vsock;  // absent: the VM has no vsock device

  bool operator==(const DeviceStates&) const = default;
};

struct MachineState {
  std::vector<VcpuState> vcpus;  // one per vCPU, vcpu_id 0..n-1 in order
  VmState vm;
  DeviceStates devices;
};

}  // namespace thaw::vmm
