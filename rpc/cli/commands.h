// The `thaw` subcommands. Each registers its options on the CLI11 app and
// runs when chosen; exit codes are shared so scripts can tell failures apart.
#pragma once

#include <CLI/CLI.hpp>

namespace thaw::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitGuestFailure = 1,  // the guest failed, crashed or timed out
  kExitBadInput = 2,      // a flag, file or image was wrong
  kExitHostError = 3,     // KVM or the host refused something (or thawd is unreachable)
  kExitOverloaded = 4,    // thawd had no clone within the caller's timeout
};

// Adds `thaw boot`; `run` is set to the function that executes it.
void add_boot_command(CLI::App& app, std::function<int()>& run);
// Adds `thaw snapshot`.
void add_snapshot_command(CLI::App& app, std::function<int()>& run);
// Adds `thaw restore`.
void add_restore_command(CLI::App& app, std::function<int()>& run);
// Adds `thaw doctor`.
void add_doctor_command(CLI::App& app, std::function<int()>& run);
// RPC clients of thawd: `thaw templates`, `thaw acquire`, `thaw invoke`, `thaw stats`.
void add_templates_command(CLI::App& app, std::function<int()>& run);
void add_acquire_command(CLI::App& app, std::function<int()>& run);
void add_invoke_command(CLI::App& app, std::function<int()>& run);
void add_stats_command(CLI::App& app, std::function<int()>& run);
// `thaw run`: the user's own static program, cold start then warm clones.
void add_run_command(CLI::App& app, std::function<int()>& run);
// `thaw template create|delete|policy`: createTemplate, deleteTemplate, setPolicy.
void add_template_command(CLI::App& app, std::function<int()>& run);

}  // namespace thaw::cli
