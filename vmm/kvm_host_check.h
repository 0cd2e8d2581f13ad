// Why /dev/kvm is or is not usable on this host, in facts a user can act on:
// the device node, the kvm modules and why they did not bind, the CPU's
// virtualization flags and the node's permissions. Used by `thaw doctor`
// and by error messages; reads files only, never opens a VM.
#pragma once

#include <string>
#include <vector>

namespace thaw::vmm {

// Where the facts come from; tests point these at a scratch directory.
struct HostPaths {
  std::string kvm_device = "/dev/kvm";
  std::string sys_module_dir = "/sys/module";
  std::string proc_misc = "/proc/misc";
  std::string cpuinfo = "/proc/cpuinfo";
  // Kernel log lines to search for a module's reason not to bind. Empty:
  // read the kernel log (klogctl; may be refused without privilege).
  std::vector<std::string> kernel_log;
  bool read_kernel_log = true;
};

struct KvmHostCheck {
  bool device_exists = false;   // the node is there
  bool device_usable = false;   // opened read-write
  int open_errno = 0;           // why it could not be opened (0: it could, or it does not exist)
  bool misc_registered = false; // /proc/misc lists "kvm": a backend bound
  std::vector<std::string> modules;  // kvm, kvm_intel, kvm_amd, kvm_pvm: those loaded
  std::string cpu_virt_flag;    // "vmx", "svm" or empty
  bool is_pvm_guest = false;    // the kernel says it is itself a kvm-pvm guest
  std::string kernel_log_reason;  // the kernel log line that says why, if one was found
  std::string device_group;     // group owning the node, when it exists
  bool in_device_group = false; // this process is in that group (or is root)

  // One line per finding, then what to do; empty when the device is usable.
  std::vector<std::string> explain() const;
};

KvmHostCheck check_kvm_host(const HostPaths& paths = {});

// Whether this host's KVM is PVM (/sys/module/kvm_pvm), read once and
// remembered: vCPU threads, which may not open files under their seccomp
// filter, ask it when they explain an emulation failure.
bool host_kvm_is_pvm();

}  // namespace thaw::vmm
