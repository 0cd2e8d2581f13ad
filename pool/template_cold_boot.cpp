#include "pool/template_cold_boot.h"

#include <unistd.h>

#include <filesystem>

#include "base/errors.h"
#include "pool/linux_initramfs.h"
#include "pool/program_clone.h"
#include "snapshot/vm_snapshot.h"

namespace thaw::pool {

std::string vsock_socket_path(const std::string& vsock_dir, const std::string& what) {
  std::error_code ec;
  std::filesystem::create_directories(vsock_dir, ec);
  if (ec) throw SysError("mkdir", ec.value(), "vsock directory " + vsock_dir);
  return vsock_dir + "/" + what + ".sock";
}

double cold_boot_and_snapshot(const TemplateSpec& spec, Clone& cold, const std::string& dir,
                              const PoolManagerConfig& config) {
  const std::string& name = spec.name;
  vmm::VmConfig vm_config;
  vm_config.kernel_path = spec.kernel;
  vm_config.initrd_path = spec.initrd;
  vm_config.cmdline = spec.cmdline;
  vm_config.mem_mib = spec.mem_mib;
  vm_config.vcpus = spec.vcpus;
  vm_config.boot_complete_action = vmm::BootCompleteAction::kPause;
  vm_config.kvm_path = config.kvm_device;
  vm_config.console = [tail = &cold.console](std::span<const char> bytes) { tail->append(bytes); };
  // A kernel template's snapshot carries a vsock device (each clone gets its
  // own socket; a live one at the path refuses the template, a stale one is
  // replaced); a program template's mailbox replaces it. A Linux
  // template boots from an initramfs packed here, read once at VM creation.
  std::string initramfs;
  if (spec.is_linux()) {
    initramfs = write_linux_initramfs(spec, config.linux_init_agent, dir);
    cold.vsock_path = vsock_socket_path(config.vsock_dir, name + "-template");
    configure_linux_boot(vm_config, spec, initramfs, cold.vsock_path);
  } else if (spec.uses_mailbox()) {
    configure_program_boot(vm_config, spec);
  } else {
    cold.vsock_path = vsock_socket_path(config.vsock_dir, name + "-template");
    vm_config.vsock_path = cold.vsock_path;
  }
  try {
    cold.restored.vm = vmm::Vm::create(vm_config);
  } catch (const InputError& e) {
    if (!initramfs.empty()) ::unlink(initramfs.c_str());
    throw BadArgument("template '" + name + "': " + e.what());
  }
  // The kernel has its copy in guest RAM now.
  if (!initramfs.empty()) ::unlink(initramfs.c_str());
  vmm::Vm& vm = cold.vm();
  try {
    snapshot::boot_and_snapshot(vm, dir, config.cold_boot_timeout);
  } catch (const snapshot::BootIncomplete& e) {
    if (spec.uses_mailbox()) throw BadArgument("template '" + name + "': " + program_not_ready_reason(vm));
    throw BadArgument("template '" + name + "': " + e.what() + "; console:\n" + cold.console.text());
  }
  return vm.boot_complete_after()->count() / 1e6;
}

}  // namespace thaw::pool
