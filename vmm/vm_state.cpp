// Vm::save_state / check_state / restore_state: the one place that lists
// what a machine's state is made of and the order it is applied in.
#include <string>

#include "base/errors.h"
#include "devices/legacy/boot_complete.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial_8250.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/vsock_device.h"
#include "vmm/state_capture.h"
#include "vmm/state_validation.h"
#include "vmm/vm.h"

namespace thaw::vmm {

DeviceQuiesce::DeviceQuiesce(devices::VsockDevice* vsock) : vsock_(vsock) {
  if (vsock_) vsock_->pause_processing();
}

DeviceQuiesce::~DeviceQuiesce() {
  if (vsock_) vsock_->resume_processing();
}

MachineState Vm::save_state() {
  if (state() == RunState::kRunning) throw std::logic_error("Vm::save_state: pause the VM first");
  MachineState state;
  for (auto& vcpu : vcpus_) state.vcpus.push_back(save_vcpu_state(vcpu->fd(), msr_indices_, xsave_size_));
  state.vm = save_vm_state(vm_fd_, config_.pit);
  // Device queue work stays held while the devices are read, so the
  // transport's queue indices and the vsock device agree.
  auto quiesce = quiesce_devices();
  state.devices.serial = serial_->save();
  state.devices.i8042 = i8042_->save();
  state.devices.boot_complete = boot_complete_->save();
  state.devices.debug_exit = debug_exit_->save();
  if (vsock_) state.devices.vsock = VsockDeviceStates{vsock_transport_->save(), vsock_->save()};
  return state;
}

void Vm::check_state(const MachineState& state) const {
  if (state.devices.vsock.has_value() != (vsock_ != nullptr)) {
    throw StateError(state.devices.vsock ? "the state has a vsock device: give the clone a vsock socket path"
                                         : "the state has no vsock device, but a vsock socket path was given");
  }
  if (state.vm.has_pit != config_.pit) {
    throw StateError(state.vm.has_pit ? "the state has an in-kernel PIT; this VM was made without one"
                                      : "the state has no in-kernel PIT; this VM was made with one");
  }
  ValidationContext context;
  context.msr_indices = msr_indices_;
  context.vcpu_count = static_cast<uint32_t>(vcpus_.size());
  context.memory_size = memory_.size();
  context.xsave_size = xsave_size_;
  validate_machine_state(state, context);
}

void Vm::restore_state(const MachineState& state, const StateRestoreOptions& options) {
  if (state.devices.vsock.has_value() != (vsock_ != nullptr) || state.vcpus.size() != vcpus_.size() ||
      state.vm.has_pit != config_.pit) {
    throw std::logic_error("Vm::restore_state: the state was not checked against this VM (check_state)");
  }
  // The vsock device does no queue work (so raises no interrupt) until the
  // interrupt controllers are restored: KVM_SET_IRQCHIP and KVM_SET_LAPIC
  // would overwrite an edge sent before them.
  auto quiesce = quiesce_devices();
  // Devices check their own state; they go before anything reaches KVM.
  serial_->restore(state.devices.serial);
  i8042_->restore(state.devices.i8042);
  boot_complete_->restore(state.devices.boot_complete);
  debug_exit_->restore(state.devices.debug_exit);
  if (state.devices.vsock) {
    // The transport first: it resets the device (dropping any streams) and
    // activates it again; the device then drops what it has and queues a
    // transport-reset event for the guest driver.
    vsock_transport_->restore(state.devices.vsock->transport);
    vsock_->restore(state.devices.vsock->device);
  }
  // VM-wide chips first: the vCPUs' LAPICs then see the restored IOAPIC/PIC.
  restore_vm_state(vm_fd_, state.vm);
  VcpuRestoreOptions vcpu_options;
  vcpu_options.tsc_scaling = tsc_scaling_;
  vcpu_options.allow_tsc_mismatch = options.allow_tsc_mismatch;
  vcpu_options.cpuid_already_set = options.reset_in_place;
  vcpu_options.tsc_rate_already_set = options.reset_in_place;
  for (size_t i = 0; i < state.vcpus.size(); ++i) restore_vcpu_state(vcpus_[i]->fd(), state.vcpus[i], vcpu_options);
  if (vsock_transport_) vsock_transport_->notify_pending();
}

}  // namespace thaw::vmm
