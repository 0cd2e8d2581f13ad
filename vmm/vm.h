// A VM: owns guest memory, the buses and devices, the vCPUs and their
// threads. Wiring is explicit here; devices never see KVM.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "devices/bus.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm_host.h"
#include "vmm/machine_state.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/program_load.h"
#include "vmm/run_control.h"
#include "vmm/vcpu.h"
#include "vmm/vm_config.h"
#include "vmm/x86_64/boot_setup.h"

namespace thaw::devices {
class Serial8250;
class I8042;
class BootComplete;
class DebugExit;
class GuestMemoryAccess;
class MmioTransport;
class VsockDevice;
}  // namespace thaw::devices

namespace thaw::vmm {

// The kernel and initrd files of a VmConfig, read and checked (regular file,
// size, ELF64 or bzImage magic) before any KVM object exists.
struct BootImages {
  std::vector<uint8_t> kernel;
  std::vector<uint8_t> initrd;  // empty: none
  std::optional<ProgramFiles> program;  // config.program's file and packed files
};
BootImages read_boot_images(const VmConfig& config);

// Holds the device work that writes guest memory on its own thread (the
// vsock muxer) while alive, so that device state and guest RAM stay in step:
// from a state capture until RAM is saved, or from dropping RAM until the
// devices' state is back. Nests.
class DeviceQuiesce {
 public:
  explicit DeviceQuiesce(devices::VsockDevice* vsock);
  ~DeviceQuiesce();
  DeviceQuiesce(const DeviceQuiesce&) = delete;
  DeviceQuiesce& operator=(const DeviceQuiesce&) = delete;

 private:
  devices::VsockDevice* vsock_;
};

// How Vm::restore_state applies a state.
struct StateRestoreOptions {
  bool allow_tsc_mismatch = false;  // run on at the host's TSC rate when the saved one cannot be had
  bool reset_in_place = false;      // this VM already runs the state's CPUID (KVM refuses a change once run) and TSC rate
};

class Vm {
 public:
  // Validates the config, creates the VM, memory, irqchip, devices and
  // vCPUs, and loads the kernel. Nothing runs yet. Throws InputError for bad
  // input and SysError for a refused syscall; a failed create leaves nothing
  // behind (every resource is owned before the next step that can fail).
  static std::unique_ptr<Vm> create(const VmConfig& config);
  // The same machine without a kernel: memory comes from a snapshot and the
  // caller applies saved vCPU, VM and device state before start(). `shell`:
  // a VM prepared ahead (vm_shells.h); none: one is made now on `kvm`.
  static std::unique_ptr<Vm> create_for_restore(const VmConfig& config, const KvmHost& kvm, GuestMemory memory,
                                                std::optional<kvm::VmFd> shell = std::nullopt);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Starts one thread per vCPU.
  void start();
  // Pauses every vCPU at a consistent point; false if it took longer than `timeout`.
  bool pause(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void resume();
  // Stops every vCPU and joins the threads.
  void stop(StopReason reason = StopReason::kHostRequest, std::string detail = {});

  // Waits until the VM pauses or stops, e.g. at boot complete. On timeout
  // the VM is stopped with StopReason::kTimeout and false is returned.
  bool wait(std::chrono::milliseconds timeout);

  RunControl& control() { return control_; }
  RunState state() const { return control_.state(); }
  StopReason stop_reason() const { return control_.stop_reason(); }
  std::string stop_detail() const { return control_.stop_detail(); }

  // Set when the guest wrote 123 to the boot-complete address.
  std::optional<std::chrono::nanoseconds> boot_complete_after() const;
  const BootTimings& timings() const { return timings_; }
  const x86::BootInfo& boot_info() const { return boot_info_; }
  // Where a program guest's program, stack, files and mailbox went; unset
  // without config.program and on a restored clone (which reads the info
  // page instead: read_program_info in vmm/program_mailbox.h).
  const std::optional<loader::ProgramLayout>& program_layout() const { return program_layout_; }
  const VmConfig& config() const { return config_; }
  GuestMemory& memory() { return memory_; }
  kvm::VmFd& vm_fd() { return vm_fd_; }
  std::vector<std::unique_ptr<Vcpu>>& vcpus() { return vcpus_; }
  uint64_t exit_count() const;
  bool started() const { return started_; }
  // How many times the guest reported a clean exit (debug-exit code 0).
  uint64_t guest_exits() const { return guest_exits_.load(std::memory_order_relaxed); }

  // The KVM backend (for a snapshot's host fingerprint), read once at creation.
  kvm::KvmBackend backend() const { return backend_; }

  // The machine apart from RAM: every vCPU, the VM-wide KVM chips and
  // clock, and every device (vmm/vm_state.cpp keeps the one device list).
  // The VM must be paused (pause()) or not yet started. Hold
  // quiesce_devices() from before this until guest RAM is saved.
  MachineState save_state();
  // Throws StateError naming the first thing in `state` this VM cannot
  // take (vCPU count, MSRs, reserved bits, a vsock device it lacks or has);
  // devices check the rest of theirs in restore_state. Touches nothing.
  void check_state(const MachineState& state) const;
  // Applies a checked state: devices, then the VM-wide chips, then each
  // vCPU. The VM must be paused or not started. Throws StateError for
  // device state a device refuses (before any KVM state is touched) and
  // SysError for a refused ioctl.
  void restore_state(const MachineState& state, const StateRestoreOptions& options = {});
  DeviceQuiesce quiesce_devices() { return DeviceQuiesce(vsock_.get()); }

  // The devices, for save()/restore() next to their code.
  devices::Serial8250& serial() { return *serial_; }
  devices::I8042& i8042() { return *i8042_; }
  devices::BootComplete& boot_complete() { return *boot_complete_; }
  devices::DebugExit& debug_exit() { return *debug_exit_; }
  // The virtio-vsock device and its MMIO transport; null without a
  // VmConfig::vsock_path.
  devices::VsockDevice* vsock() { return vsock_.get(); }
  devices::MmioTransport* vsock_transport() { return vsock_transport_.get(); }

  // The command line the guest gets: config().cmdline plus the
  // virtio_mmio.device= entries of the devices the VM has.
  std::string kernel_cmdline() const;

 private:
  Vm(VmConfig config, kvm::VmFd vm_fd, GuestMemory memory);
  void register_memory();
  void create_devices();
  void create_vsock();
  static std::unique_ptr<Vm> build(const VmConfig& config, const KvmHost& kvm, GuestMemory memory,
                                   std::optional<kvm::VmFd> shell);
  void create_vcpus();
  void configure_boot_vcpus(const std::vector<kvm_cpuid_entry2>& supported_cpuid);
  void load_kernel(const BootImages& images);
  void on_boot_complete(std::chrono::nanoseconds since_request);
  // A guest's exit code, from the debug-exit port or the boot-complete page.
  void on_exit_code(uint8_t code, const char* where);

  VmConfig config_;
  kvm::VmFd vm_fd_;
  GuestMemory memory_;
  RunControl control_;
  devices::Bus pio_bus_{"pio"};
  devices::Bus mmio_bus_{"mmio"};
  std::shared_ptr<devices::Serial8250> serial_;
  std::shared_ptr<devices::I8042> i8042_;
  std::shared_ptr<devices::BootComplete> boot_complete_;
  std::shared_ptr<devices::DebugExit> debug_exit_;
  // The buses hold the transport too; the transport holds the device, whose
  // muxer thread it stops from touching memory_ before either goes away.
  std::shared_ptr<devices::GuestMemoryAccess> device_memory_;
  std::shared_ptr<devices::VsockDevice> vsock_;
  std::shared_ptr<devices::MmioTransport> vsock_transport_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  x86::BootInfo boot_info_{};
  std::optional<loader::ProgramLayout> program_layout_;
  BootTimings timings_;
  std::chrono::steady_clock::time_point started_at_{};
  bool started_ = false;
  std::atomic<uint64_t> guest_exits_{0};
  // Host facts state capture and restore need, read once at creation.
  kvm::KvmBackend backend_ = kvm::KvmBackend::kUnknown;
  std::vector<uint32_t> msr_indices_;
  size_t xsave_size_ = 0;
  bool tsc_scaling_ = false;
  mutable std::mutex boot_mutex_;
  std::optional<std::chrono::nanoseconds> boot_complete_after_;
};

}  // namespace thaw::vmm
