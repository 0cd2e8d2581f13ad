// The boot flags `thaw boot` and `thaw snapshot` share.
#pragma once

#include <CLI/CLI.hpp>

#include "vmm/vm_config.h"

namespace thaw::cli {

struct BootOptions {
  vmm::VmConfig config;
  std::string console = "stdout";
  std::string on_boot_complete = "stop";
  uint64_t timeout_ms = 30000;
  bool json = false;
  bool inline_teardown = false;
  CLI::Option* vsock = nullptr;  // --vsock PATH: config.vsock_path
};

// --kernel, --initrd, --cmdline, --mem, --vcpus, --console, --timeout-ms,
// --vsock, --json.
void add_boot_options(CLI::App& cmd, BootOptions& opt);
// Checks --vsock, when given, before the VM is made (see rpc/cli/vsock_socket.h).
void check_boot_vsock(const BootOptions& opt);

}  // namespace thaw::cli
