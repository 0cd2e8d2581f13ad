// What a user asks for when creating a VM: kernel, memory, vCPUs, console,
// and what to do at the guest's boot-complete write.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace thaw::vmm {

struct VmThreadSpawners;  // vm_thread_spawners.h

enum class BootCompleteAction { kContinue, kPause, kStop };
const char* boot_complete_action_name(BootCompleteAction action);

// Receives the guest's serial output as it is written.
using ConsoleSink = std::function<void(std::span<const char>)>;

// A user's static x86-64 Linux program for the mini guest to run in ring 3
// (thaw.after=program; see vmm/program_load.h and guest/mini/program_abi.h).
struct ProgramSpec {
  std::string path;               // host path of the executable
  std::vector<std::string> args;  // argv[1..]; argv[0] is the guest path "/" + basename(path)
  std::vector<std::string> env;   // KEY=VALUE, merged over PATH, HOME and TERM defaults
  std::string files_dir;          // packed into a cpio for the guest; empty: no files
};

struct VmConfig {
  std::string kernel_path;
  std::string initrd_path;  // empty: no initrd
  std::string cmdline = "console=ttyS0 reboot=k panic=-1";
  uint64_t mem_mib = 128;
  unsigned vcpus = 1;
  BootCompleteAction boot_complete_action = BootCompleteAction::kStop;
  // A clean guest exit (0 on the debug-exit port) stops the VM; with this
  // set it pauses it instead, so a pool can reset the clone in place.
  bool pause_on_guest_exit = false;
  ConsoleSink console;  // empty: the console output is dropped
  // When the VM was asked for: the boot-complete device measures from here.
  std::chrono::steady_clock::time_point requested_at = std::chrono::steady_clock::now();
  std::string kvm_path = "/dev/kvm";
  // Where KVM's supported-CPUID answer is cached between processes; empty:
  // no cache. See vmm/cpuid_cache.h.
  std::string cpuid_cache_dir;
  // The host end of the guest's virtio-vsock device: a unix socket path
  // (Firecracker's convention, see devices/virtio/vsock_device.h). Empty:
  // no vsock device. Vm::create appends the device to the command line.
  std::string vsock_path;
  // Set: load this program after the kernel and append thaw.after=program
  // to the command line. Needs a mini guest kernel and no initrd.
  std::optional<ProgramSpec> program;
  // vCPU threads run under thaw's seccomp filter (vmm/vcpu_seccomp.h), and
  // the vsock device's muxer thread under its own (devices/virtio/vsock_seccomp.h).
  // Off only to debug the VMM itself (strace, gdb calls).
  bool vcpu_seccomp = true;
  // With vcpu_seccomp: spawners that start the VM's filtered threads
  // already filtered (vmm/vm_thread_spawners.h), as a pool shares them;
  // null: each thread applies its filter as it starts.
  std::shared_ptr<VmThreadSpawners> thread_spawners;
  // An in-kernel PIT (i8254). Creating one costs milliseconds (KVM starts a
  // kernel thread for it); the mini guest never uses it (its timer is the
  // LAPIC's), Linux calibrates with it unless told otherwise.
  bool pit = true;
};

// The boot split into the stages a user can act on.
struct BootTimings {
  std::chrono::nanoseconds vm_setup{0};     // /dev/kvm, VM, memory, irqchip, vCPUs, devices
  std::chrono::nanoseconds kernel_load{0};  // read image, place kernel/initrd, boot structures, registers
  std::chrono::nanoseconds guest_run{0};    // first KVM_RUN to the boot-complete write
  std::chrono::nanoseconds since_request{0};  // request to boot-complete write
};

}  // namespace thaw::vmm
