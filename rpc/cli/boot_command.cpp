// `thaw boot`: cold-boots a kernel to its boot-complete write and prints the
// boot time split into VM set-up, kernel load and guest run.
#include <string.h>

#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/sample_summary.h"
#include "base/unix_socket.h"
#include "rpc/cli/background_teardown.h"
#include "rpc/cli/boot_options.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/console_output.h"
#include "rpc/cli/stop_signals.h"
#include "rpc/cli/vsock_socket.h"
#include "vmm/cpuid_cache.h"
#include "vmm/vm.h"

namespace thaw::cli {

namespace {

const char* format_name(vmm::x86::KernelFormat f) { return f == vmm::x86::KernelFormat::kElf64 ? "ELF64" : "bzImage"; }

int run_boot(BootOptions& opt) {
  check_boot_vsock(opt);
  // Before the VM (its threads inherit the blocked mask) and before the
  // clock starts (its thread is no part of the boot).
  StopSignals signals;
  opt.config.requested_at = std::chrono::steady_clock::now();
  opt.config.cpuid_cache_dir = vmm::default_cpuid_cache_dir();
  if (opt.json && opt.console == "stdout") opt.console = "stderr";  // keep stdout pure JSON
  ConsoleOutput console(opt.console);
  console.validate();
  opt.config.console = console.sink();
  opt.config.boot_complete_action = opt.on_boot_complete == "pause"      ? vmm::BootCompleteAction::kPause
                                    : opt.on_boot_complete == "continue" ? vmm::BootCompleteAction::kContinue
                                                                         : vmm::BootCompleteAction::kStop;
  auto vm = vmm::Vm::create(opt.config);
  console.open();
  vm->start();
  bool finished = wait_stopping_on_signal(signals, vm->control(),
                                          [&] { return vm->wait(std::chrono::milliseconds(opt.timeout_ms)); });
  if (finished && vm->state() == vmm::RunState::kPaused) vm->stop(vmm::StopReason::kBootComplete, "paused at boot complete");
  console.flush();

  auto reason = vm->stop_reason();
  auto booted = vm->boot_complete_after();
  const auto& t = vm->timings();
  bool failed = vmm::stop_reason_is_failure(reason) || (!booted && reason != vmm::StopReason::kGuestExit &&
                                                        reason != vmm::StopReason::kGuestReset &&
                                                        reason != vmm::StopReason::kGuestPowerOff);
  const int stopped_by = reason == vmm::StopReason::kHostRequest ? signals.received() : 0;
  if (opt.json) {
    nlohmann::json out = {
        {"kernel", opt.config.kernel_path},
        {"format", format_name(vm->boot_info().format)},
        {"mem_mib", opt.config.mem_mib},
        {"vcpus", opt.config.vcpus},
        {"boot_complete", booted.has_value()},
        {"stop_reason", vmm::stop_reason_name(reason)},
        {"stop_detail", vm->stop_detail()},
        {"exits", vm->exit_count()},
        {"ms", {{"vm_setup", to_ms(t.vm_setup)}, {"kernel_load", to_ms(t.kernel_load)}}},
    };
    if (!opt.config.vsock_path.empty()) out["vsock"] = opt.config.vsock_path;
    if (booted) {
      out["ms"]["guest_run"] = to_ms(t.guest_run);
      out["ms"]["total"] = to_ms(*booted);
    }
    std::cout << out.dump(2) << std::endl;
  } else {
    std::fprintf(stdout, "\nthaw: %s (%s, %llu MiB, %u vCPU%s): %s\n", opt.config.kernel_path.c_str(),
                 format_name(vm->boot_info().format), static_cast<unsigned long long>(opt.config.mem_mib),
                 opt.config.vcpus, opt.config.vcpus == 1 ? "" : "s",
                 booted ? "reached boot-complete" : "did not reach boot-complete");
    if (!opt.config.vsock_path.empty()) std::fprintf(stdout, "  vsock        %s\n", opt.config.vsock_path.c_str());
    std::fprintf(stdout, "  vm set-up    %9.3f ms\n  kernel load  %9.3f ms\n", to_ms(t.vm_setup), to_ms(t.kernel_load));
    if (booted) {
      std::fprintf(stdout, "  guest run    %9.3f ms\n  total        %9.3f ms  (request to boot-complete)\n",
                   to_ms(t.guest_run), to_ms(*booted));
    }
    std::fprintf(stdout, "  exits        %9llu\n", static_cast<unsigned long long>(vm->exit_count()));
    std::fprintf(stdout, "  ended by     %s%s%s\n", vmm::stop_reason_name(reason), vm->stop_detail().empty() ? "" : ": ",
                 vm->stop_detail().c_str());
  }
  if (!opt.inline_teardown) hand_teardown_to_background();
  if (failed && stopped_by != 0) {
    std::cerr << "thaw: stopped by SIG" << ::sigabbrev_np(stopped_by) << " before boot-complete\n";
    return kExitGuestFailure;
  }
  if (failed) {
    std::cerr << "thaw: guest failed: " << vmm::stop_reason_name(reason)
              << (vm->stop_detail().empty() ? "" : ": " + vm->stop_detail()) << "\n";
    return kExitGuestFailure;
  }
  return kExitOk;
}

}  // namespace

void add_boot_options(CLI::App& cmd, BootOptions& opt) {
  cmd.add_option("--kernel", opt.config.kernel_path, "Kernel image: ELF64 (vmlinux, thaw-mini.elf) or bzImage")
      ->required();
  cmd.add_option("--initrd", opt.config.initrd_path, "Initial ramdisk to load beside the kernel");
  cmd.add_option("--cmdline", opt.config.cmdline, "Kernel command line")->capture_default_str();
  cmd.add_option("--mem", opt.config.mem_mib, "Guest RAM in MiB")->capture_default_str();
  cmd.add_option("--vcpus", opt.config.vcpus, "Number of vCPUs")->capture_default_str();
  cmd.add_flag("--no-pit", [&opt](int64_t) { opt.config.pit = false; },
               "No in-kernel PIT (i8254): saves milliseconds per VM and per restored clone; for guests that do not "
               "use it (the mini guest's timer is the LAPIC's; Linux calibrates with the PIT unless told not to)");
  cmd.add_option("--console", opt.console, "Guest serial console: stdout, stderr, none or a file path")
      ->capture_default_str();
  cmd.add_option("--timeout-ms", opt.timeout_ms, "Give up (and fail) after this many milliseconds")
      ->capture_default_str();
  opt.vsock = cmd.add_option(
      "--vsock", opt.config.vsock_path,
      "Give the guest a virtio-vsock device (announced on its kernel command line) whose host end is the unix "
      "socket PATH, removed when the VM ends. A host client connects to PATH, writes \"CONNECT <port>\\n\" and "
      "reads \"OK <port>\\n\", then has a stream to the guest's port; the guest's connections to host port P "
      "go to PATH_P. PATH's directory must exist and PATH fit in " + std::to_string(kMaxUnixPathBytes) +
          " bytes. A stale socket there (nobody accepts on it: a killed VMM's) is replaced; a socket in use, or "
          "any other file, is an error (exit 2) and is left alone. A snapshot keeps the device: restore it with "
          "`thaw restore --vsock-dir`.")
                  ->type_name("PATH");
  cmd.add_flag("--json", opt.json, "Print the result as JSON on stdout (console then goes to stderr)");
}

void check_boot_vsock(const BootOptions& opt) {
  if (opt.vsock != nullptr && opt.vsock->count() > 0) check_vsock_socket(opt.config.vsock_path, "--vsock");
}

void add_boot_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<BootOptions>();
  auto* cmd = app.add_subcommand("boot", "Cold-boot a kernel until it writes the boot-complete byte");
  add_boot_options(*cmd, *opt);
  cmd->add_option("--on-boot-complete", opt->on_boot_complete,
                  "What to do at boot-complete: stop, pause (then stop) or continue (until the guest exits)")
      ->check(CLI::IsMember({"stop", "pause", "continue"}))
      ->capture_default_str();
  cmd->add_flag("--inline-teardown", opt->inline_teardown,
                "Tear the VM down before exiting instead of in a background child (slower exit on PVM)");
  cmd->footer(
      "Exit status: 0 boot-complete reached (or the guest exited cleanly), 1 guest failure or timeout,\n"
      "2 bad input (flag, file, kernel image, --vsock path), 3 host or KVM error.\n"
      "SIGINT or SIGTERM stops the VM (a --vsock socket is removed) and thaw reports as usual: exit 0\n"
      "once boot-complete was reached, 1 before. To keep a serving guest (--on-boot-complete continue)\n"
      "running, give a --timeout-ms long enough, then stop it with a signal.");
  cmd->callback([&run, opt] { run = [opt] { return run_boot(*opt); }; });
}

}  // namespace thaw::cli
