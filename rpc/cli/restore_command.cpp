// `thaw restore`: restores clones of a snapshot in this process and reports
// the latency of each stage.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "rpc/cli/background_teardown.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/console_output.h"
#include "snapshot/vm_snapshot.h"

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
};

struct Stats {
  double min = 0, median = 0, max = 0;
};

Stats stats(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v.front(), v[(v.size() - 1) / 2], v.back()};
}

double ms(std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e6; }

int run_restore(RestoreCliOptions& opt) {
  if (opt.clones == 0) throw InputError("--clones is 0; restore at least one clone");
  snapshot::RestoreOptions options;
  options.memory = snapshot::parse_memory_backing(opt.memory);
  options.verify_memory = opt.verify;
  auto read_start = Clock::now();
  auto loaded = snapshot::read_snapshot_dir(opt.dir);
  double read_ms = ms(Clock::now() - read_start);

  ConsoleOutput console(opt.console);  // clone 0 only
  console.validate();
  std::vector<snapshot::RestoredVm> clones;
  std::vector<double> map, create, apply, restore_total, to_first_entry;
  for (unsigned i = 0; i < opt.clones; ++i) {
    auto requested = Clock::now();
    options.console = i == 0 ? console.sink() : vmm::ConsoleSink{};
    if (i == 0) console.open();
    auto clone = snapshot::restore_vm(loaded, options);
    clone.vm->start();
    // The request ends when the vCPU thread enters the guest.
    while (clone.vm->vcpus().front()->first_entry_ns() == 0) std::this_thread::yield();
    auto entered = Clock::time_point(Clock::duration(clone.vm->vcpus().front()->first_entry_ns()));
    map.push_back(ms(clone.timings.map_memory));
    create.push_back(ms(clone.timings.create_vm));
    apply.push_back(ms(clone.timings.apply_state));
    restore_total.push_back(ms(clone.timings.total));
    to_first_entry.push_back(ms(entered - requested));
    clones.push_back(std::move(clone));
    if (!opt.json && opt.clones >= 10 && (i + 1) % std::max(1u, opt.clones / 10) == 0) {
      std::fprintf(stderr, "\r  restored %u/%u clones", i + 1, opt.clones);
    }
  }
  if (!opt.json && opt.clones >= 10) std::fprintf(stderr, "\n");
  if (opt.run_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opt.run_ms));
  unsigned exited_ok = 0, failed = 0, running = 0;
  std::string first_failure;
  for (auto& clone : clones) {
    auto state = clone.vm->state();
    auto reason = clone.vm->stop_reason();
    if (state == vmm::RunState::kStopped && vmm::stop_reason_is_failure(reason)) {
      ++failed;
      if (first_failure.empty()) first_failure = std::string(vmm::stop_reason_name(reason)) + ": " + clone.vm->stop_detail();
    } else if (state == vmm::RunState::kStopped) {
      ++exited_ok;
    } else {
      ++running;
    }
    clone.vm->stop();
  }
  console.flush();
  hand_teardown_to_background();

  auto s_map = stats(map), s_create = stats(create), s_apply = stats(apply), s_total = stats(restore_total),
       s_entry = stats(to_first_entry);
  if (opt.json) {
    auto j = [](const Stats& s) { return nlohmann::json{{"min", s.min}, {"median", s.median}, {"max", s.max}}; };
    nlohmann::json out = {{"dir", opt.dir},         {"clones", opt.clones},     {"memory", opt.memory},
                          {"read_state_ms", read_ms}, {"map_memory_ms", j(s_map)}, {"create_vm_ms", j(s_create)},
                          {"apply_state_ms", j(s_apply)}, {"restore_ms", j(s_total)},
                          {"request_to_first_entry_ms", j(s_entry)},
                          {"still_running", running}, {"exited_cleanly", exited_ok}, {"failed", failed}};
    std::cout << out.dump(2) << std::endl;
  } else {
    std::printf("thaw: restored %u clone%s of %s (memory: %s)\n", opt.clones, opt.clones == 1 ? "" : "s",
                opt.dir.c_str(), opt.memory.c_str());
    std::printf("  %-30s %9s %9s %9s  (ms)\n", "", "min", "median", "max");
    std::printf("  %-30s %9.3f  (once)\n", "read state file", read_ms);
    auto row = [](const char* name, const Stats& s) {
      std::printf("  %-30s %9.3f %9.3f %9.3f\n", name, s.min, s.median, s.max);
    };
    row("map memory", s_map);
    row("create VM", s_create);
    row("apply vCPU/VM/device state", s_apply);
    row("restore total", s_total);
    row("request -> first guest entry", s_entry);
    std::printf("  after %llu ms: %u running, %u exited cleanly, %u failed\n",
                static_cast<unsigned long long>(opt.run_ms), running, exited_ok, failed);
  }
  if (failed > 0) {
    std::cerr << "thaw: " << failed << " clone(s) failed; first: " << first_failure << "\n";
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
  cmd->add_option("--memory", opt->memory,
                  "Guest memory: private (MAP_PRIVATE of the memory file, lazy, shared page cache), eager (io_uring "
                  "read into anonymous memory) or uffd (userfaultfd handler serves pages)")
      ->check(CLI::IsMember({"private", "eager", "uffd"}))
      ->capture_default_str();
  cmd->add_option("--run-ms", opt->run_ms, "Let the clones run this long before stopping them")->capture_default_str();
  cmd->add_option("--console", opt->console, "Console of clone 0: stdout, stderr, none or a file")->capture_default_str();
  cmd->add_flag("--verify", opt->verify, "eager: check every memory chunk's XXH3 while reading");
  cmd->add_flag("--json", opt->json, "Print the result as JSON");
  cmd->callback([&run, opt] { run = [opt] { return run_restore(*opt); }; });
}

}  // namespace thaw::cli
