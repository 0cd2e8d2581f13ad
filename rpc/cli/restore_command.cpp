// `thaw restore`: restores clones of a snapshot in this process and reports
// the latency of each stage.
#include <string.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/sample_summary.h"
#include "base/unix_socket.h"
#include "rpc/cli/background_teardown.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/console_output.h"
#include "rpc/cli/stop_signals.h"
#include "rpc/cli/vsock_socket.h"
#include "snapshot/vm_snapshot.h"
#include "vmm/control_page.h"

namespace thaw::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct RestoreCliOptions {
  std::string dir;
  unsigned clones = 1;
  std::string memory = "private";
  uint64_t run_ms = 0;
  std::string console = "none";
  bool verify = false;
  bool json = false;
  bool memory_given = false;  // --memory was on the command line
  bool record_working_set = false;
  bool prefetch = false;
  bool control_page = false;
  bool sequential = false;
  std::string vsock_dir;
  bool vsock_dir_given = false;  // --vsock-dir was on the command line
};

// Matches the snapshot's vsock device with --vsock-dir before any VM is
// made: clone i's socket is VSOCK_DIR/clone-<i>.sock. Checks every socket path,
// then creates the directory if missing. Returns whether clones get sockets.
bool prepare_vsock_dir(const RestoreCliOptions& opt, const snapshot::LoadedSnapshot& loaded, unsigned clones,
                       CreatedDirs& created) {
  const bool has_vsock = loaded.state.machine.devices.vsock.has_value();
  const std::string flag = "--vsock-dir " + opt.vsock_dir;
  if (!opt.vsock_dir_given) {
    if (has_vsock) {
      throw InputError("snapshot " + opt.dir +
                       " has a vsock device: give --vsock-dir VSOCK_DIR, where clone i gets its socket "
                       "VSOCK_DIR/clone-<i>.sock");
    }
    return false;
  }
  if (!has_vsock) {
    throw InputError(flag + ": snapshot " + opt.dir +
                     " has no vsock device (only a snapshot made with `thaw snapshot --vsock PATH` has one)");
  }
  if (opt.vsock_dir.empty()) throw InputError("--vsock-dir is empty; give the directory for the clones' sockets");
  const std::string socket_flag = flag + ": clone socket";
  check_vsock_path_length(clone_vsock_path(opt.vsock_dir, clones - 1), socket_flag);
  std::error_code ec;
  auto status = std::filesystem::status(opt.vsock_dir, ec);
  if (std::filesystem::is_directory(status)) {
    for (unsigned i = 0; i < clones; ++i) check_vsock_socket(clone_vsock_path(opt.vsock_dir, i), socket_flag);
  } else if (std::filesystem::exists(status)) {
    throw InputError(flag + " exists and is not a directory");
  }
  created.create(opt.vsock_dir, flag);
  return true;
}

// The clone control page (vmm/control_page.h): what a thaw.after=clone
// guest reads once it is resumed; clone_input is the clone's number.
void write_control_page(vmm::Vm& vm, unsigned clone_id) {
  auto page = vmm::fresh_control_page(/*generation=*/1, clone_id);
  page.clone_input = clone_id;
  vmm::write_control_page(vm.memory(), page);
}

struct Stats {
  double min = 0, median = 0, max = 0;
};

Stats stats(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v.front(), v[(v.size() - 1) / 2], v.back()};
}

constexpr uint64_t kDefaultRecordRunMs = 10000;

// Waits until the clone pauses or stops, `limit` passes, or SIGINT/SIGTERM
// comes, which stops the clone at once (a guest may run for seconds). True
// when the guest itself got there first.
bool wait_done_unless_signalled(vmm::Vm& vm, std::chrono::milliseconds limit, StopSignals& signals) {
  auto& control = vm.control();
  bool done = wait_stopping_on_signal(signals, control, [&] { return control.wait_paused_or_stopped(limit); });
  return done && signals.received() == 0;
}

// --record-working-set: one uffd clone runs until the guest pauses (its
// clean exit, with pause_on_guest_exit) or stops, or --run-ms passes; the
// pages its pager served become DIR/working-set.
int run_record(RestoreCliOptions& opt) {
  if (opt.clones != 1) {
    throw InputError("--record-working-set restores exactly one clone, not " + std::to_string(opt.clones));
  }
  if (opt.memory_given && opt.memory != "uffd") {
    throw InputError("--record-working-set needs --memory uffd (the pager sees each page's first touch), not " +
                     opt.memory);
  }
  if (opt.prefetch) {
    throw InputError("--record-working-set and --prefetch exclude each other: prefetched pages never fault");
  }
  opt.memory = "uffd";
  const uint64_t run_ms = opt.run_ms > 0 ? opt.run_ms : kDefaultRecordRunMs;
  snapshot::RestoreOptions options;
  options.memory = snapshot::MemoryBacking::kUffd;
  options.record_working_set = true;
  options.pause_on_guest_exit = true;
  auto loaded = snapshot::read_snapshot_dir(opt.dir);
  ConsoleOutput console(opt.console);
  console.validate();
  StopSignals signals;  // before the clone: its threads inherit the blocked mask
  CreatedDirs created;  // outlives the clone, whose socket goes first
  if (prepare_vsock_dir(opt, loaded, 1, created)) options.vsock_path = clone_vsock_path(opt.vsock_dir, 0);
  options.console = console.sink();
  console.open();
  auto clone = snapshot::restore_vm(loaded, options);
  if (opt.control_page) write_control_page(*clone.vm, 0);
  auto started = Clock::now();
  clone.vm->start();
  bool settled = wait_done_unless_signalled(*clone.vm, std::chrono::milliseconds(run_ms), signals);
  double ran_ms = to_ms(Clock::now() - started);
  if (int sig = signals.received()) {
    // Interrupted: a partial working set would make later clones fault on
    // the pages it missed, so none is written (an older one stays).
    clone.vm->stop();
    console.flush();
    std::cerr << "thaw: stopped by SIG" << ::sigabbrev_np(sig) << " after " << ran_ms
              << " ms; no working set written\n";
    return kExitGuestFailure;
  }
  auto reason = clone.vm->stop_reason();
  if (clone.vm->state() == vmm::RunState::kStopped && vmm::stop_reason_is_failure(reason)) {
    std::string why = std::string(vmm::stop_reason_name(reason)) + ": " + clone.vm->stop_detail();
    clone.vm->stop();
    console.flush();
    std::cerr << "thaw: the clone failed, no working set written: " << why << "\n";
    return kExitGuestFailure;
  }
  const char* how = clone.vm->state() == vmm::RunState::kPaused ? "paused at its exit" : "stopped cleanly";
  if (!settled) {
    // A guest that never finishes (a server): record what it touched so far.
    how = "still running; recorded the pages touched so far";
    clone.vm->pause();
  }
  auto ws = snapshot::save_recorded_working_set(clone, opt.dir);
  uint64_t served = clone.pager->pages_served();
  clone.vm->stop();
  console.flush();
  auto page_runs = snapshot::runs(ws);
  if (opt.json) {
    nlohmann::json out = {{"dir", opt.dir},           {"working_set", opt.dir + "/" + snapshot::kWorkingSetFileName},
                          {"pages", ws.pages.size()}, {"bytes", ws.bytes()},
                          {"runs", page_runs.size()}, {"pages_served", served},
                          {"ran_ms", ran_ms},         {"guest", how}};
    std::cout << out.dump(2) << std::endl;
  } else {
    std::printf("thaw: recorded the working set of %s: %zu pages (%.1f KiB) in %zu runs\n", opt.dir.c_str(),
                ws.pages.size(), static_cast<double>(ws.bytes()) / 1024.0, page_runs.size());
    std::printf("  the guest ran %.3f ms (%s); written to %s/%s\n", ran_ms, how, opt.dir.c_str(),
                snapshot::kWorkingSetFileName);
  }
  return kExitOk;
}

// What restoring and running the clones measured, before any reporting.
struct RestoreRun {
  double read_ms = 0;
  bool vsock = false;
  unsigned restored = 0;  // fewer than --clones after a signal
  std::vector<double> map, prefetch, create, apply, restore_total, to_first_entry, to_done, served;
  uint64_t prefetch_bytes = 0;
  unsigned exited_ok = 0, failed = 0, running = 0;
  std::string first_failure;
  int signal = 0;  // the SIGINT/SIGTERM that cut the run short, or 0
};

// Restores opt.clones clones of the snapshot, starts each, lets them run
// and stops them: every figure `thaw restore` reports.
RestoreRun measure_restores(const RestoreCliOptions& opt, ConsoleOutput& console, StopSignals& signals,
                            CreatedDirs& created) {
  RestoreRun run;
  snapshot::RestoreOptions options;
  options.memory = snapshot::parse_memory_backing(opt.memory);
  options.verify_memory = opt.verify;
  options.prefetch = opt.prefetch;
  const uint64_t wait_ms = opt.run_ms > 0 ? opt.run_ms : kDefaultRecordRunMs;
  auto read_start = Clock::now();
  auto loaded = snapshot::read_snapshot_dir(opt.dir);
  run.read_ms = to_ms(Clock::now() - read_start);
  run.vsock = prepare_vsock_dir(opt, loaded, opt.clones, created);
  options.kvm = vmm::KvmHost::open();  // once for all clones, as a pool does
  options.thread_spawners = vmm::VmThreadSpawners::start();
  std::vector<snapshot::RestoredVm> clones;
  for (unsigned i = 0; i < opt.clones && signals.received() == 0; ++i) {
    auto requested = Clock::now();
    options.console = i == 0 ? console.sink() : vmm::ConsoleSink{};
    if (run.vsock) options.vsock_path = clone_vsock_path(opt.vsock_dir, i);
    if (i == 0) console.open();
    auto clone = snapshot::restore_vm(loaded, options);
    if (opt.control_page) write_control_page(*clone.vm, i);
    clone.vm->start();
    // The request ends when the vCPU thread enters the guest.
    while (clone.vm->vcpus().front()->first_entry_ns() == 0) std::this_thread::yield();
    auto entered = Clock::time_point(Clock::duration(clone.vm->vcpus().front()->first_entry_ns()));
    if (opt.sequential) {
      // One clone at a time: the next is restored once this one is done.
      if (wait_done_unless_signalled(*clone.vm, std::chrono::milliseconds(wait_ms), signals)) {
        run.to_done.push_back(to_ms(Clock::now() - requested));
      }
    }
    run.map.push_back(to_ms(clone.timings.map_memory));
    run.prefetch.push_back(to_ms(clone.timings.prefetch));
    run.prefetch_bytes = std::max(run.prefetch_bytes, clone.timings.prefetch_bytes);
    run.create.push_back(to_ms(clone.timings.create_vm));
    run.apply.push_back(to_ms(clone.timings.apply_state));
    run.restore_total.push_back(to_ms(clone.timings.total));
    run.to_first_entry.push_back(to_ms(entered - requested));
    clones.push_back(std::move(clone));
    if (!opt.json && opt.clones >= 10 && (i + 1) % std::max(1u, opt.clones / 10) == 0) {
      std::fprintf(stderr, "\r  restored %u/%u clones", i + 1, opt.clones);
    }
  }
  if (!opt.json && opt.clones >= 10) std::fprintf(stderr, "\n");
  run.restored = static_cast<unsigned>(clones.size());
  if (opt.run_ms > 0 && !opt.sequential) signals.sleep_for(std::chrono::milliseconds(opt.run_ms));
  run.signal = signals.received();
  if (run.signal != 0) {
    std::fprintf(stderr, "thaw: SIG%s: stopping %zu clone(s)\n", ::sigabbrev_np(run.signal), clones.size());
  }
  for (auto& clone : clones) {
    if (clone.pager) run.served.push_back(static_cast<double>(clone.pager->pages_served()));
    auto state = clone.vm->state();
    auto reason = clone.vm->stop_reason();
    if (state == vmm::RunState::kStopped && vmm::stop_reason_is_failure(reason)) {
      ++run.failed;
      if (run.first_failure.empty()) {
        run.first_failure = std::string(vmm::stop_reason_name(reason)) + ": " + clone.vm->stop_detail();
      }
    } else if (state == vmm::RunState::kStopped && reason != vmm::StopReason::kHostRequest) {
      ++run.exited_ok;  // (a clone a signal stopped mid-wait was still running)
    } else {
      ++run.running;
    }
    clone.vm->stop();
  }
  return run;
}

void report_restores_json(const RestoreCliOptions& opt, const RestoreRun& run) {
  auto j = [](const std::vector<double>& v) {
    auto s = stats(v);
    return nlohmann::json{{"min", s.min}, {"median", s.median}, {"max", s.max}};
  };
  nlohmann::json out = {{"dir", opt.dir},
                        {"clones", run.restored},
                        {"memory", opt.memory},
                        {"read_state_ms", run.read_ms},
                        {"map_memory_ms", j(run.map)},
                        {"create_vm_ms", j(run.create)},
                        {"apply_state_ms", j(run.apply)},
                        {"restore_ms", j(run.restore_total)},
                        {"request_to_first_entry_ms", j(run.to_first_entry)},
                        {"prefetch", opt.prefetch},
                        {"prefetch_ms", j(run.prefetch)},
                        {"prefetch_bytes", run.prefetch_bytes},
                        {"still_running", run.running},
                        {"exited_cleanly", run.exited_ok},
                        {"failed", run.failed}};
  if (run.vsock) out["vsock_dir"] = opt.vsock_dir;
  if (run.signal != 0) out["stopped_by"] = std::string("SIG") + ::sigabbrev_np(run.signal);
  if (opt.sequential) {
    out["request_to_done_ms"] = j(run.to_done);
    out["done"] = run.to_done.size();
  }
  if (!run.served.empty()) out["uffd_pages_served"] = j(run.served);
  std::cout << out.dump(2) << std::endl;
}

void report_restores_table(const RestoreCliOptions& opt, const RestoreRun& run) {
  std::printf("thaw: restored %u clone%s of %s (memory: %s%s%s)\n", run.restored, run.restored == 1 ? "" : "s",
              opt.dir.c_str(), opt.memory.c_str(), opt.prefetch ? ", prefetch" : "",
              opt.sequential ? ", one at a time" : "");
  if (run.vsock && run.restored > 0) {
    std::printf("  vsock sockets: %s .. %s\n", clone_vsock_path(opt.vsock_dir, 0).c_str(),
                clone_vsock_path(opt.vsock_dir, run.restored - 1).c_str());
  }
  std::printf("  %-30s %9s %9s %9s  (ms)\n", "", "min", "median", "max");
  std::printf("  %-30s %9.3f  (once)\n", "read state file", run.read_ms);
  auto row = [](const char* name, const std::vector<double>& v) {
    auto s = stats(v);
    std::printf("  %-30s %9.3f %9.3f %9.3f\n", name, s.min, s.median, s.max);
  };
  row("map memory", run.map);
  if (opt.prefetch) {
    char name[64];
    std::snprintf(name, sizeof name, "prefetch (%.1f KiB)", static_cast<double>(run.prefetch_bytes) / 1024.0);
    row(name, run.prefetch);
  }
  row("create VM", run.create);
  row("apply vCPU/VM/device state", run.apply);
  row("restore total", run.restore_total);
  row("request -> first guest entry", run.to_first_entry);
  if (opt.sequential) row("request -> guest done", run.to_done);
  if (!run.served.empty()) {
    auto s = stats(run.served);
    std::printf("  %-30s %9.0f %9.0f %9.0f  (pages)\n", "uffd pages served", s.min, s.median, s.max);
  }
  const uint64_t wait_ms = opt.run_ms > 0 ? opt.run_ms : kDefaultRecordRunMs;
  if (opt.sequential && run.to_done.size() < run.restored && run.signal == 0) {
    std::printf("  %zu clone(s) were not done within %llu ms\n", run.restored - run.to_done.size(),
                static_cast<unsigned long long>(wait_ms));
  }
  if (run.signal != 0) {
    std::printf("  stopped by SIG%s: %u running, %u exited cleanly, %u failed\n", ::sigabbrev_np(run.signal),
                run.running, run.exited_ok, run.failed);
  } else if (opt.sequential) {  // each clone had its own wait, reported above
    std::printf("  at the end: %u running, %u exited cleanly, %u failed\n", run.running, run.exited_ok, run.failed);
  } else {
    std::printf("  after %llu ms: %u running, %u exited cleanly, %u failed\n",
                static_cast<unsigned long long>(opt.run_ms), run.running, run.exited_ok, run.failed);
  }
}

int run_restore(RestoreCliOptions& opt) {
  if (opt.record_working_set) return run_record(opt);
  if (opt.clones == 0) throw InputError("--clones is 0; restore at least one clone");
  ConsoleOutput console(opt.console);  // clone 0 only
  console.validate();
  StopSignals signals;  // before the clones: their threads inherit the blocked mask
  CreatedDirs created;  // outlives the clones, whose sockets go first
  RestoreRun run = measure_restores(opt, console, signals, created);
  console.flush();
  hand_teardown_to_background();
  if (opt.json) {
    report_restores_json(opt, run);
  } else {
    report_restores_table(opt, run);
  }
  if (run.failed > 0) {
    std::cerr << "thaw: " << run.failed << " clone(s) failed; first: " << run.first_failure << "\n";
    return kExitGuestFailure;
  }
  return kExitOk;
}

}  // namespace

void add_restore_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<RestoreCliOptions>();
  auto* cmd = app.add_subcommand("restore", "Restore clones of a snapshot in this process and time each stage");
  cmd->add_option("dir", opt->dir, "Snapshot directory (from `thaw snapshot`)")->required();
  cmd->add_option("--clones", opt->clones, "How many clones to restore and start")->capture_default_str();
  auto* memory = cmd->add_option("--memory", opt->memory,
                  "Guest memory: private (MAP_PRIVATE of the memory file, lazy, shared page cache), eager (io_uring "
                  "read into anonymous memory) or uffd (userfaultfd handler serves pages)")
      ->check(CLI::IsMember({"private", "eager", "uffd"}))
      ->capture_default_str();
  cmd->add_option("--run-ms", opt->run_ms, "Let the clones run this long before stopping them")->capture_default_str();
  cmd->add_option("--console", opt->console, "Console of clone 0: stdout, stderr, none or a file")->capture_default_str();
  cmd->add_flag("--verify", opt->verify, "eager: check every memory chunk's XXH3 while reading");
  cmd->add_flag("--json", opt->json, "Print the result as JSON");
  cmd->add_flag("--record-working-set", opt->record_working_set,
                "Restore one clone with uffd memory, run it until the guest exits (or --run-ms, default 10000), "
                "and write the pages it touched to DIR/working-set");
  cmd->add_flag("--prefetch", opt->prefetch,
                "private or uffd: make DIR/working-set's pages present before the vCPU runs (io_uring reads "
                "for uffd, MADV_POPULATE_READ for private)");
  cmd->add_flag("--control-page", opt->control_page,
                "Write the clone control page (guest/mini/layout.h) into each clone before it starts, as "
                "thaw.after=clone guests expect");
  cmd->add_flag("--sequential", opt->sequential,
                "Run each clone until it is done (or --run-ms, default 10000) before restoring the next, and "
                "report request -> guest done");
  auto* vsock_dir = cmd->add_option(
      "--vsock-dir", opt->vsock_dir,
      "For a snapshot made with --vsock (which needs it): clone i's vsock device listens on the unix socket "
      "VSOCK_DIR/clone-<i>.sock (see --vsock in `thaw boot --help`), removed when the clone ends. VSOCK_DIR is "
      "created if missing (and removed again at exit if thaw made it and it is empty). The socket paths must fit "
      "in " + std::to_string(kMaxUnixPathBytes) +
          " bytes; a stale socket is replaced, one in use or any other file there is an error (exit 2). A "
          "snapshot without a vsock device refuses --vsock-dir (exit 2).")
                        ->type_name("VSOCK_DIR");
  cmd->footer(
      "Exit status: 0 clones restored (and none failed), 1 a clone failed, 2 bad input (flag, snapshot,\n"
      "--vsock-dir), 3 host or KVM error. SIGINT or SIGTERM stops making clones, ends --run-ms or a\n"
      "--sequential wait early; the clones are stopped (their sockets removed) and reported, exit status\n"
      "as usual. With --record-working-set it stops the clone and writes no working set (exit 1).");
  cmd->callback([&run, opt, memory, vsock_dir] {
    opt->memory_given = memory->count() > 0;
    opt->vsock_dir_given = vsock_dir->count() > 0;
    run = [opt] { return run_restore(*opt); };
  });
}

}  // namespace thaw::cli
