// `thaw snapshot`: cold-boots a kernel and, at the guest's boot-complete
// write, pauses the VM and saves it to a snapshot directory.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "base/sample_summary.h"
#include "rpc/cli/background_teardown.h"
#include "rpc/cli/boot_options.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/console_output.h"
#include "snapshot/vm_snapshot.h"
#include "vmm/cpuid_cache.h"

namespace thaw::cli {

namespace {

struct SnapshotOptions {
  BootOptions boot;
  std::string out;
};

int run_snapshot(SnapshotOptions& opt) {
  check_boot_vsock(opt.boot);
  opt.boot.config.requested_at = std::chrono::steady_clock::now();
  opt.boot.config.cpuid_cache_dir = vmm::default_cpuid_cache_dir();
  opt.boot.config.boot_complete_action = vmm::BootCompleteAction::kPause;
  if (opt.boot.json && opt.boot.console == "stdout") opt.boot.console = "stderr";
  ConsoleOutput console(opt.boot.console);
  console.validate();
  opt.boot.config.console = console.sink();
  auto vm = vmm::Vm::create(opt.boot.config);
  console.open();
  snapshot::SaveResult saved;
  try {
    saved = snapshot::boot_and_snapshot(*vm, opt.out, std::chrono::milliseconds(opt.boot.timeout_ms));
  } catch (const snapshot::BootIncomplete& e) {
    console.flush();
    std::cerr << "thaw: no snapshot: " << e.what() << "\n";
    return kExitGuestFailure;
  }
  console.flush();
  vm->stop(vmm::StopReason::kBootComplete, "snapshot taken");
  hand_teardown_to_background();
  const auto& w = saved.write;
  double mib_written = static_cast<double>(w.memory.bytes_written) / (1 << 20);
  if (opt.boot.json) {
    nlohmann::json out = {{"dir", opt.out},
                          {"mem_bytes", vm->memory().size()},
                          {"memory_bytes_written", w.memory.bytes_written},
                          {"zero_chunks", w.memory.zero_chunks},
                          {"state_bytes", w.state_bytes},
                          {"ms",
                           {{"boot", to_ms(*vm->boot_complete_after())},
                            {"capture", to_ms(saved.capture)},
                            {"memory_write", to_ms(w.memory.elapsed)},
                            {"save_total", to_ms(saved.total)}}},
                          {"vsock", vm->vsock() != nullptr}};
    std::cout << out.dump(2) << std::endl;
  } else {
    std::printf("\nthaw: snapshot of %s at boot-complete saved to %s\n", opt.boot.config.kernel_path.c_str(),
                opt.out.c_str());
    std::printf("  cold boot    %9.3f ms\n", to_ms(*vm->boot_complete_after()));
    std::printf("  capture      %9.3f ms  (vCPU, VM and device state)\n", to_ms(saved.capture));
    std::printf("  memory       %9.3f ms  (%.1f MiB written of %llu MiB, %llu zero chunks left as holes)\n",
                to_ms(w.memory.elapsed), mib_written, static_cast<unsigned long long>(vm->memory().size() >> 20),
                static_cast<unsigned long long>(w.memory.zero_chunks));
    std::printf("  state file   %9llu bytes\n", static_cast<unsigned long long>(w.state_bytes));
    std::printf("  total save   %9.3f ms\n", to_ms(saved.total));
    if (vm->vsock() != nullptr) {
      std::printf("  vsock        the snapshot has a vsock device: restore it with --vsock-dir\n");
    }
  }
  return kExitOk;
}

}  // namespace

void add_snapshot_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<SnapshotOptions>();
  auto* cmd = app.add_subcommand("snapshot", "Cold-boot a kernel and snapshot it at its boot-complete write");
  add_boot_options(*cmd, opt->boot);
  cmd->add_option("--out", opt->out, "Snapshot directory to write (created; an existing snapshot is replaced atomically)")
      ->required();
  cmd->callback([&run, opt] { run = [opt] { return run_snapshot(*opt); }; });
}

}  // namespace thaw::cli
