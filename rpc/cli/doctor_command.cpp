// `thaw doctor`: what this host's KVM can do for thaw, in words a user can
// act on.
#include <linux/kvm.h>

#include <cstdio>
#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "rpc/cli/commands.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm_host_check.h"
#include "base/landlock.h"
#include "base/proc_self_status.h"
#include "base/process_namespaces.h"
#include "devices/virtio/vsock_seccomp.h"
#include "rpc/daemon/daemon_seccomp.h"
#include "rpc/daemon/worker_cgroups.h"
#include "vmm/vcpu_seccomp.h"
#include "vmm/x86_64/boot_setup.h"

namespace thaw::cli {

namespace {

// Where cgroup v2 is and what its root offers: template workers get memory
// and pids limits only where thawd's subtree hands both down.
std::string describe_cgroup2() {
  const std::string mount = daemon::cgroup2_mount_point(read_kernel_text("/proc/self/mountinfo"));
  if (mount.empty()) return "not mounted: template workers get no cgroup of their own";
  std::string controllers = read_kernel_text(mount + "/cgroup.controllers");
  while (!controllers.empty() && controllers.back() == '\n') controllers.pop_back();
  return "mounted at " + mount + ", controllers " + (controllers.empty() ? "none" : controllers) +
         "; template workers get a cgroup each where thawd has a subtree (worker_cgroups), with memory and task "
         "limits where it hands memory and pids down";
}

struct Capability {
  int id;
  const char* name;
  const char* used_for;
  bool required;
};

// Every capability thaw relies on, and what it is for.
constexpr Capability kCapabilities[] = {
    {KVM_CAP_IRQCHIP, "IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC", true},
    {KVM_CAP_PIT2, "PIT2", "in-kernel timer (PIT)", true},
    {KVM_CAP_USER_MEMORY, "USER_MEMORY", "guest RAM slots", true},
    {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR", "Intel real-mode TSS", true},
    {KVM_CAP_EXT_CPUID, "EXT_CPUID", "CPUID for the guest", true},
    {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT", "race-free vCPU pause", true},
    {KVM_CAP_XSAVE, "XSAVE", "snapshot: FPU/vector state", false},
    {KVM_CAP_XCRS, "XCRS", "snapshot: XCR0", false},
    {KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS", "snapshot: pending events", false},
    {KVM_CAP_DEBUGREGS, "DEBUGREGS", "snapshot: debug registers", false},
    {KVM_CAP_ADJUST_CLOCK, "ADJUST_CLOCK", "snapshot: kvmclock", false},
    {KVM_CAP_KVMCLOCK_CTRL, "KVMCLOCK_CTRL", "restore: tell the guest it was paused", false},
    {KVM_CAP_IRQFD, "IRQFD", "virtio interrupts", false},
    {KVM_CAP_IOEVENTFD, "IOEVENTFD", "virtio queue notifications", false},
    {KVM_CAP_READONLY_MEM, "READONLY_MEM", "read-only memory slots", false},
    {KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "MANUAL_DIRTY_LOG_PROTECT2", "dirty-page tracking", false},
    {KVM_CAP_TSC_CONTROL, "TSC_CONTROL", "restore on a host with another TSC rate", false},
};

void print_limits(vmm::kvm::KvmBackend backend) {
  std::puts("\nWhat this means:");
  switch (backend) {
    case vmm::kvm::KvmBackend::kPvm:
      std::puts(
          "  - /dev/kvm is PVM (pagetable-based virtualization): guest ring 3 runs natively, guest ring 0\n"
          "    is EMULATED at roughly 1.5 M instructions/s. Keep guest kernels' ring-0 work small; thaw's\n"
          "    mini guest (guest/mini) is built for this and is the default guest.\n"
          "  - Ring-0 XSAVE/XRSTOR, POPCNT, INT3 and CLAC/STAC end the run with KVM_EXIT_INTERNAL_ERROR\n"
          "    (emulation failure). Boot Linux with: noxsave clearcpuid=popcnt,smap,smep,...\n"
          "  - The guest's CPUID shows the host CPU whatever KVM_SET_CPUID2 says; hide features on the\n"
          "    guest's command line instead.\n"
          "  - A Linux boot to init is impractically slow here (timer interrupts livelock); test Linux on\n"
          "    hardware KVM (kvm_intel / kvm_amd).");
      break;
    case vmm::kvm::KvmBackend::kIntel:
    case vmm::kvm::KvmBackend::kAmd:
      std::puts("  - Hardware virtualization: guests run at native speed; Linux guests are fully supported.");
      break;
    case vmm::kvm::KvmBackend::kUnknown:
      std::puts("  - Unknown KVM backend: thaw should work, but nothing about its speed is known.");
      break;
  }
}

// No usable /dev/kvm: say what was found and what to do instead of failing
// on the open.
int report_no_kvm(const vmm::KvmHostCheck& host, bool json) {
  auto why = host.explain();
  if (json) {
    nlohmann::json out = {{"ok", false},
                          {"kvm_device", host.device_exists ? "present" : "missing"},
                          {"modules", host.modules},
                          {"cpu_virtualization_flag", host.cpu_virt_flag},
                          {"pvm_guest", host.is_pvm_guest},
                          {"reasons", why}};
    if (host.open_errno != 0) out["open_error"] = std::strerror(host.open_errno);
    std::cout << out.dump(2) << std::endl;
    return kExitHostError;
  }
  std::puts("KVM: not usable on this host\n");
  for (const auto& line : why) std::printf("  - %s\n", line.c_str());
  std::puts("\nthaw cannot run VMs on this host (exit status 3).");
  return kExitHostError;
}

int run_doctor(bool json) {
  auto backend = vmm::kvm::detect_backend();
  auto host = vmm::check_kvm_host();
  if (!host.device_usable) return report_no_kvm(host, json);
  auto kvm = vmm::kvm::KvmSystem::open();
  int missing_required = 0;
  nlohmann::json caps = nlohmann::json::object();
  for (const auto& cap : kCapabilities) {
    int value = kvm.check_extension(cap.id);
    caps[cap.name] = value;
    if (value <= 0 && cap.required) ++missing_required;
  }
  auto cpuid = kvm.supported_cpuid();
  auto msrs = kvm.msr_index_list();
  unsigned max_vcpus = std::min(kvm.max_vcpus(), vmm::x86::max_mptable_vcpus());
  // Compiling it here is what a VM does first: a broken libseccomp shows now.
  const SeccompFilter& vcpu_filter = vmm::vcpu_thread_filter();
  const SeccompFilter& vsock_filter = devices::vsock_muxer_filter();
  const SeccompFilter& worker_filter = daemon::template_worker_filter();
  const SeccompFilter& thawd_filter = daemon::thawd_filter();
  const int landlock = landlock_abi();
  auto filter_json = [](const SeccompFilter& f) {
    return nlohmann::json{{"filter", f.name()}, {"rules", f.rule_count()}, {"bpf_instructions", f.instruction_count()}};
  };
  if (json) {
    nlohmann::json out = {{"backend", vmm::kvm::backend_name(backend)}, {"api_version", kvm.api_version()},
                          {"capabilities", caps},  {"max_vcpus", max_vcpus},
                          {"supported_cpuid_entries", cpuid.size()}, {"msr_index_list", msrs.size()},
                          {"seccomp", {{"vcpu_threads", filter_json(vcpu_filter)},
                                       {"vsock_muxer_threads", filter_json(vsock_filter)},
                                       {"template_workers", filter_json(worker_filter)},
                                       {"thawd", filter_json(thawd_filter)}}},
                          {"landlock_abi", landlock},
                          {"user_namespaces", user_namespace_refusal().empty()},
                          {"cgroup2", describe_cgroup2()},
                          {"ok", missing_required == 0}};
    std::cout << out.dump(2) << std::endl;
    return missing_required == 0 ? kExitOk : kExitHostError;
  }
  std::printf("KVM backend:      %s\n", vmm::kvm::backend_name(backend));
  std::printf("KVM API version:  %d\n", kvm.api_version());
  std::printf("vCPUs per VM:     up to %u\n", max_vcpus);
  std::printf("CPUID entries:    %zu supported\n", cpuid.size());
  std::printf("MSR index list:   %zu MSRs\n", msrs.size());
  std::printf("Seccomp:          every vCPU thread runs under filter '%s' (%zu rules, %zu BPF instructions)\n",
              vcpu_filter.name().c_str(), vcpu_filter.rule_count(), vcpu_filter.instruction_count());
  std::printf("                  every vsock muxer thread under filter '%s' (%zu rules, %zu BPF instructions)\n",
              vsock_filter.name().c_str(), vsock_filter.rule_count(), vsock_filter.instruction_count());
  std::printf("                  every template worker under filter '%s' (%zu rules, %zu BPF instructions),\n",
              worker_filter.name().c_str(), worker_filter.rule_count(), worker_filter.instruction_count());
  std::printf("                  thawd itself (template_workers) under '%s' (%zu rules, %zu BPF instructions)\n",
              thawd_filter.name().c_str(), thawd_filter.rule_count(), thawd_filter.instruction_count());
  if (landlock > 0) {
    std::printf("Landlock:         ABI %d: each template worker sees only its snapshots, vsock sockets, the KVM device "
                "and the images it may read\n",
                landlock);
  } else {
    std::printf("Landlock:         not available (kernel without it, or refused): template workers are not confined "
                "to their directories, only by seccomp and their user\n");
  }
  if (std::string refused = user_namespace_refusal(); refused.empty()) {
    std::printf("Namespaces:       each template worker enters its own user, network, IPC and UTS namespaces\n");
  } else {
    std::printf("Namespaces:       user namespaces refused (%s): template workers enter only what a process with "
                "their rights may\n",
                refused.c_str());
  }
  std::printf("Cgroup v2:        %s\n", describe_cgroup2().c_str());
  std::puts("\nCapabilities thaw uses:");
  for (const auto& cap : kCapabilities) {
    int value = caps[cap.name];
    std::printf("  %-26s %-4s %s%s\n", cap.name, value > 0 ? "yes" : "NO", cap.used_for,
                cap.required && value <= 0 ? "  [REQUIRED]" : "");
  }
  print_limits(backend);
  if (missing_required > 0) {
    std::printf("\n%d required capabilit%s missing: thaw cannot run VMs on this host.\n", missing_required,
                missing_required == 1 ? "y is" : "ies are");
    return kExitHostError;
  }
  std::puts("\nthaw can run VMs on this host.");
  return kExitOk;
}

}  // namespace

void add_doctor_command(CLI::App& app, std::function<int()>& run) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("doctor", "Report the KVM backend, capabilities and known platform limits");
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->footer(
      "Exit status: 0 thaw can run VMs here, 3 it cannot: /dev/kvm is missing or cannot be opened (the\n"
      "report says why: module, CPU flags, permissions) or a capability thaw requires is missing.");
  cmd->callback([&run, json] { run = [json] { return run_doctor(*json); }; });
}

}  // namespace thaw::cli
