// `thaw run`: the user's own static program as a function, with no daemon.
// Cold-boots the mini guest with the program until it first reads stdin
// (the ready point), snapshots that moment, then answers the payload from a
// clone of it N times, resetting the clone to the snapshot after each
// request. Prints the program's output and cold start beside warm requests.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/linux_syscall_names.h"
#include "base/sample_summary.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/console_output.h"
#include "rpc/cli/program_options.h"
#include "snapshot/vm_snapshot.h"
#include "vmm/control_page.h"
#include "vmm/cpuid_cache.h"
#include "vmm/program_request.h"
#include "base/errors.h"

namespace thaw::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct RunOptions {
  ProgramOptions program;
  std::string payload_text;
  std::string payload_file;
  unsigned repeat = 100;
  unsigned cold_runs = 3;
  uint64_t timeout_ms = 10'000;
  uint64_t boot_timeout_ms = 60'000;
  std::string console = "none";
  bool json = false;
  CLI::Option* payload_text_opt = nullptr;
};

// Thrown when the program or the guest failed: exit 1, with the message.
struct GuestFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "thaw run: warm request 40/100" on one terminal line; nothing when stderr
// is not a terminal (logs) or the output is JSON. A null `what` clears it.
void progress(const RunOptions& opt, const char* what, unsigned i, unsigned n) {
  if (opt.json || ::isatty(STDERR_FILENO) == 0) return;
  if (what == nullptr) {
    std::fprintf(stderr, "\r%60s\r", "");
  } else {
    std::fprintf(stderr, "\rthaw run: %s %u/%u   ", what, i, n);
  }
}

std::string text_of(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

// A fresh VM of the program, booted to its ready point and paused there.
// Returns how long that took from the request.
std::unique_ptr<vmm::Vm> boot_to_ready(const vmm::VmConfig& base, const RunOptions& opt, double& ready_ms) {
  auto config = base;
  config.requested_at = Clock::now();
  auto vm = vmm::Vm::create(config);
  vm->start();
  vm->wait(std::chrono::milliseconds(opt.boot_timeout_ms));
  if (vm->state() != vmm::RunState::kPaused || !vm->boot_complete_after()) {
    vm->stop();
    std::string why = std::string(vmm::stop_reason_name(vm->stop_reason())) +
                      (vm->stop_detail().empty() ? "" : ": " + vm->stop_detail());
    std::string stderr_text;
    try {
      auto info = vmm::read_program_info(vm->memory());
      auto r = vmm::read_response(vm->memory(), info.mailbox_addr);
      if (r.outcome != vmm::ProgramOutcome::kNone) why = "the program " + vmm::describe(r) + " (" + why + ")";
      stderr_text = text_of(r.stderr_bytes);
    } catch (const InputError&) {
      // No readable mailbox: the guest kernel failed before it set one up.
    }
    throw GuestFailure("the program did not reach its ready point (its first read of stdin): " + why +
                       (stderr_text.empty() ? "" : "\nits stderr:\n" + stderr_text));
  }
  ready_ms = to_ms(*vm->boot_complete_after());
  return vm;
}

// The function runtime takes its getrandom seed and wall clock from the
// control page at the ready point of every request; without a fresh one,
// every request would draw the same "random" bytes and time would start at
// 1970. thawd's pool writes it at acquire; thaw run has no pool.
void write_fresh_identity(vmm::Vm& vm, uint64_t request_number) {
  vmm::write_control_page(vm.memory(), vmm::fresh_control_page(request_number, request_number));
}

// Serves one request and turns a timeout or a dead VM into GuestFailure;
// the program's own failure (non-zero status, fault) is the caller's to judge.
vmm::ProgramRequestResult serve(vmm::Vm& vm, std::span<const uint8_t> payload, const RunOptions& opt,
                                const vmm::kvm::StatsReader* stats = nullptr) {
  static uint64_t requests = 0;
  write_fresh_identity(vm, ++requests);
  auto r = vmm::serve_program_request(vm, payload, std::chrono::milliseconds(opt.timeout_ms), stats);
  if (r.end != vmm::RequestEnd::kAnswered) throw GuestFailure("request " + vmm::describe(r));
  return r;
}

nlohmann::json summary_json(const std::vector<double>& samples) {
  auto s = summarize_samples(samples);
  return {{"min_ms", s.min_ms}, {"median_ms", s.median_ms}, {"p99_ms", s.p99_ms}, {"samples_ms", samples}};
}

void print_row(const char* name, const std::vector<double>& samples) {
  auto s = summarize_samples(samples);
  std::fprintf(stderr, "  %-34s %9.3f %9.3f %9.3f   (%zu)\n", name, s.min_ms, s.median_ms, s.p99_ms, s.runs);
}

int run_program(RunOptions& opt) {
  // All of the user's input first: on any host, a wrong path is exit 2.
  auto payload = read_payload(opt.payload_text, opt.payload_file);
  vmm::VmConfig config = opt.program.vm_config();
  if (opt.repeat == 0) throw InputError("--repeat is 0; at least one warm request is needed");
  if (opt.cold_runs == 0) throw InputError("--cold-runs is 0; at least one cold start is needed");
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  config.pause_on_guest_exit = true;
  config.cpuid_cache_dir = vmm::default_cpuid_cache_dir();
  if (opt.json && opt.console == "stdout") opt.console = "stderr";
  ConsoleOutput console(opt.console);
  console.validate();
  config.console = console.sink();
  SnapshotScratch scratch;

  std::vector<double> cold_ms, ready_ms_all, warm_ms, reset_ms;
  std::optional<vmm::ProgramRequestResult> cold_answer;
  for (unsigned i = 0; i < opt.cold_runs; ++i) {
    progress(opt, "cold start", i + 1, opt.cold_runs);
    double ready_ms = 0;
    auto vm = boot_to_ready(config, opt, ready_ms);
    if (i == 0) {
      console.open();
      // Not part of the cold sample: a cold start has no snapshot to write.
      snapshot::save_vm_snapshot(*vm, scratch.path());
    }
    auto r = serve(*vm, payload, opt);
    ready_ms_all.push_back(ready_ms);
    cold_ms.push_back(ready_ms + to_ms(r.elapsed));
    if (!cold_answer) cold_answer = std::move(r);
    vm->stop();
  }

  snapshot::RestoreOptions restore_options;
  restore_options.pause_on_guest_exit = true;
  restore_options.console = config.console;
  auto snap = snapshot::read_snapshot_dir(scratch.path());
  auto clone = snapshot::restore_vm(snap, restore_options);
  // KVM's own counters of the warm requests (kernels before 5.14 have none).
  std::optional<vmm::kvm::StatsReader> stats;
  try {
    stats.emplace(clone.vm->vcpus().front()->fd().stats_fd());
  } catch (const std::exception& e) {
    if (!opt.json) std::fprintf(stderr, "thaw run: no KVM counters: %s\n", e.what());
  }
  vmm::kvm::Counters kvm_totals;
  std::optional<vmm::ProgramRequestResult> warm_answer;
  size_t differing = 0;
  for (unsigned i = 0; i < opt.repeat; ++i) {
    if (i % 10 == 0 || i + 1 == opt.repeat) progress(opt, "warm request", i + 1, opt.repeat);
    auto r = serve(*clone.vm, payload, opt, stats ? &*stats : nullptr);
    for (const auto& [name, value] : r.kvm_counters) kvm_totals[name] += value;
    warm_ms.push_back(to_ms(r.elapsed));
    auto reset = snapshot::reset_vm(clone, snap, restore_options);
    reset_ms.push_back(to_ms(reset.total));
    if (!warm_answer) {
      warm_answer = std::move(r);
    } else if (r.response.stdout_bytes != warm_answer->response.stdout_bytes ||
               r.response.status != warm_answer->response.status) {
      ++differing;
    }
  }
  clone.vm->stop();
  console.flush();
  progress(opt, nullptr, 0, 0);

  // Mean per request of the counters that explain where a request's time
  // goes (all of them in --json).
  nlohmann::json kvm_per_request = nlohmann::json::object();
  for (const auto& [name, total] : kvm_totals) kvm_per_request[name] = static_cast<double>(total) / opt.repeat;
  const auto& answer = warm_answer->response;
  const bool ok = answer.outcome == vmm::ProgramOutcome::kExited && answer.status == 0;
  if (opt.json) {
    nlohmann::json out = {
        {"program", opt.program.path},
        {"outcome", vmm::describe(answer)},
        {"status", answer.status},
        {"stdout_text", text_of(answer.stdout_bytes)},
        {"stderr_text", text_of(answer.stderr_bytes)},
        {"syscalls_per_request", answer.syscalls},
        {"vm_exits_per_request", warm_answer->vm_exits},
        {"kvm_counters_per_request", kvm_per_request},
        {"unknown_syscalls", answer.unknown_syscalls},
        {"cold_matches_warm", cold_answer->response.stdout_bytes == answer.stdout_bytes},
        {"warm_responses_differing", differing},
        {"cold", summary_json(cold_ms)},
        {"cold_ready", summary_json(ready_ms_all)},
        {"warm", summary_json(warm_ms)},
        {"reset", summary_json(reset_ms)},
    };
    std::cout << out.dump(2) << std::endl;
  } else {
    std::fwrite(answer.stdout_bytes.data(), 1, answer.stdout_bytes.size(), stdout);
    std::fflush(stdout);
    if (!answer.stderr_bytes.empty()) {
      std::fwrite(answer.stderr_bytes.data(), 1, answer.stderr_bytes.size(), stderr);
    }
    std::fprintf(stderr, "\nthaw run: %s: %s; %llu syscalls and %llu VM exits per request\n",
                 opt.program.path.c_str(), vmm::describe(answer).c_str(),
                 static_cast<unsigned long long>(answer.syscalls),
                 static_cast<unsigned long long>(warm_answer->vm_exits));
    if (!answer.unknown_syscalls.empty()) {
      std::string list;
      for (auto nr : answer.unknown_syscalls) list += " " + linux_syscall_name(nr) + " (" + std::to_string(nr) + ")";
      std::fprintf(stderr, "  unsupported system calls (answered -ENOSYS):%s\n", list.c_str());
    }
    if (!kvm_totals.empty()) {
      auto mean = [&](const char* name) { return kvm_per_request.value(name, 0.0); };
      std::fprintf(stderr,
                   "  KVM per request (mean): %.0f exits in the kernel, %.0f page faults (%.0f fixed, %.0f "
                   "to the guest), %.0f instructions emulated\n",
                   mean("exits"), mean("pf_taken"), mean("pf_fixed"), mean("pf_guest"), mean("insn_emulation"));
    }
    std::fprintf(stderr, "  %-34s %9s %9s %9s\n", "ms", "min", "median", "p99");
    print_row("cold start (boot + init + request)", cold_ms);
    print_row("  of which boot + init to ready", ready_ms_all);
    print_row("warm request (clone from snapshot)", warm_ms);
    print_row("reset to the snapshot (after each)", reset_ms);
    auto c = summarize_samples(cold_ms), w = summarize_samples(warm_ms);
    if (w.median_ms > 0) std::fprintf(stderr, "  cold / warm (medians): %.1fx\n", c.median_ms / w.median_ms);
    if (differing > 0) std::fprintf(stderr, "  %zu warm responses differed from the first\n", differing);
  }
  return ok ? kExitOk : kExitGuestFailure;
}

}  // namespace

void add_run_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand(
      "run", "Run your own static Linux program as a function: cold start once, then warm clones of its ready point");
  add_program_options(*cmd, opt->program, /*program_required=*/true);
  opt->payload_text_opt = cmd->add_option("--payload", opt->payload_text, "The request: the program's stdin");
  cmd->add_option("--payload-file", opt->payload_file, "Read the request (stdin) from this file (at most 1 MiB)")
      ->excludes(opt->payload_text_opt);
  cmd->add_option("--repeat", opt->repeat, "Warm requests to serve from the snapshot")->capture_default_str();
  cmd->add_option("--cold-runs", opt->cold_runs, "Cold starts to measure (fresh VM each)")->capture_default_str();
  cmd->add_option("--timeout-ms", opt->timeout_ms, "Deadline of one request, enforced from the host")
      ->capture_default_str();
  cmd->add_option("--boot-timeout-ms", opt->boot_timeout_ms, "Deadline of boot + program start-up")
      ->capture_default_str();
  cmd->add_option("--console", opt->console, "Guest serial console: stdout, stderr, none or a file path")
      ->capture_default_str();
  cmd->add_flag("--json", opt->json,
                "Print JSON on stdout: the response (stdout_text, stderr_text, status) and `cold`, `warm`, `reset` "
                "with min_ms, median_ms, p99_ms and samples_ms");
  cmd->footer(
      "The program must be a static x86-64 Linux executable. It starts as under Linux (argv, envp, auxv; files\n"
      "from --files read-only at /, a writable /tmp); the snapshot is taken when it first reads stdin, so its\n"
      "start-up never runs again. Each request: the payload is stdin, then end-of-file; stdout is the response,\n"
      "the exit status the status; then the clone is reset to the snapshot. See the README for the system calls.\n"
      "Program output goes to stdout, the report to stderr.\n"
      "Exit status: 0 the program exited 0, 1 it failed (status, fault, timeout, did not reach its ready point),\n"
      "2 bad input, 3 host or KVM error.");
  cmd->callback([&run, opt] {
    run = [opt] {
      try {
        return run_program(*opt);
      } catch (const GuestFailure& e) {
        std::cerr << "\nthaw: " << e.what() << "\n";
        return static_cast<int>(kExitGuestFailure);
      }
    };
  });
}

}  // namespace thaw::cli
