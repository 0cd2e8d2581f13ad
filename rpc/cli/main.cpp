// thaw: cold-boot, snapshot and restore microVMs on KVM.
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <iostream>

#include "rpc/cli/commands.h"
#include "rpc/cli/program_options.h"
#include "base/errors.h"

int main(int argc, char** argv) {
  // Logs go to stderr so stdout stays clean for --json and the console.
  spdlog::set_default_logger(spdlog::stderr_color_mt("thaw"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_level(spdlog::level::warn);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=info|debug

  CLI::App app{"thaw: snapshot/restore fast-start microVMs on Linux KVM.\n"
               "Cold-boots a guest kernel to its boot-complete write (a byte of 123 to MMIO 0xd0000000)."};
  app.require_subcommand(1);
  std::string log_level;
  app.add_option("--log-level", log_level, "trace, debug, info, warn (default), error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  std::function<int()> run;
  thaw::cli::add_boot_command(app, run);
  thaw::cli::add_snapshot_command(app, run);
  thaw::cli::add_restore_command(app, run);
  thaw::cli::add_doctor_command(app, run);
  thaw::cli::add_templates_command(app, run);
  thaw::cli::add_template_command(app, run);
  thaw::cli::add_acquire_command(app, run);
  thaw::cli::add_invoke_command(app, run);
  thaw::cli::add_stats_command(app, run);
  thaw::cli::add_run_command(app, run);
  try {
    app.name("thaw");
    auto args = thaw::cli::cli_arguments_joining_dash_values(argc, argv);
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : thaw::cli::kExitBadInput;
  }
  if (!log_level.empty()) spdlog::set_level(spdlog::level::from_str(log_level));
  try {
    return run();
  } catch (const thaw::InputError& e) {
    std::cerr << "thaw: error: " << e.what() << "\n";
    return thaw::cli::kExitBadInput;
  } catch (const thaw::SysError& e) {
    std::cerr << "thaw: error: " << e.what() << "\n";
    return thaw::cli::kExitHostError;
  } catch (const std::exception& e) {
    std::cerr << "thaw: error: " << e.what() << "\n";
    return thaw::cli::kExitHostError;
  }
}
