// Restore benchmarks, in one process: restore latency per memory backing
// (to the guest's first instruction and to its answer), reset in place
// against dirty pages, private memory of idle clones, restores per second.
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/json_report.h"
#include "bench/process_timer.h"
#include "bench/qemu_restore.h"
#include "pool/program_clone.h"
#include "snapshot/memory_file.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/vm_snapshot.h"
#include "vmm/program_request.h"
#include "vmm/control_page.h"
#include "vmm/kvm/kvm_stats.h"

namespace {

using Clock = std::chrono::steady_clock;
using thaw::snapshot::MemoryBacking;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

using thaw::vmm::ControlPage;

// Prints a row and keeps its samples for --json.
void print_row(thaw::bench::JsonReport& report, const std::string& name, const std::vector<double>& samples) {
  auto s = thaw::bench::summarize(samples);
  std::printf("  %-44s %9.3f %9.3f %9.3f  ms (%zu runs)\n", name.c_str(), s.min_ms, s.median_ms, s.p99_ms, s.runs);
  report.samples(name, samples);
}

// Cold-boots the mini guest in clone mode and saves it at boot complete.
void make_snapshot(const std::string& dir, bool pit = true) {
  thaw::vmm::VmConfig config;
  config.kernel_path = THAW_MINI_GUEST;
  config.cmdline = "console=ttyS0 thaw.quiet=1 thaw.fn_bytes=4096 thaw.after=clone";
  config.boot_complete_action = thaw::vmm::BootCompleteAction::kPause;
  config.pit = pit;
  auto vm = thaw::vmm::Vm::create(config);
  thaw::snapshot::boot_and_snapshot(*vm, dir, std::chrono::seconds(60));
}

// Destroys clones on its own thread, as a pool would: tearing a VM down
// costs 15-25 ms on PVM (irqchip) and must not sit in the measured path.
class BackgroundDestroyer {
 public:
  BackgroundDestroyer() : thread_([this] { run(); }) {}
  ~BackgroundDestroyer() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }
  void destroy(thaw::snapshot::RestoredVm clone) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(clone));
    }
    ready_.notify_one();
  }
  // Waits until every clone handed over so far is gone: a memory baseline
  // taken while earlier clones are still being torn down reads low.
  void drain() {
    std::unique_lock lock(mutex_);
    drained_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      ready_.wait(lock, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto clone = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      clone = {};
      lock.lock();
      busy_ = false;
      drained_.notify_all();
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable drained_;
  bool busy_ = false;
  std::deque<thaw::snapshot::RestoredVm> queue_;
  bool done_ = false;
  std::thread thread_;
};

struct SmapsRollup {
  double pss_mib = 0, private_mib = 0, rss_mib = 0;
};

SmapsRollup read_smaps_rollup() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string key;
  double kib;
  std::string unit;
  SmapsRollup r;
  std::string line;
  while (std::getline(in, line)) {
    if (std::sscanf(line.c_str(), "Pss: %lf", &kib) == 1) r.pss_mib = kib / 1024;
    if (std::sscanf(line.c_str(), "Rss: %lf", &kib) == 1) r.rss_mib = kib / 1024;
    double clean = 0, dirty = 0;
    if (std::sscanf(line.c_str(), "Private_Clean: %lf", &clean) == 1) r.private_mib += clean / 1024;
    if (std::sscanf(line.c_str(), "Private_Dirty: %lf", &dirty) == 1) r.private_mib += dirty / 1024;
  }
  return r;
}

// Records the snapshot's working set once: a uffd clone run to its answer by
// `run_to_answer`, its faulted pages saved beside the snapshot in `dir`.
size_t record_working_set(const thaw::snapshot::LoadedSnapshot& loaded, const std::string& dir,
                          BackgroundDestroyer& destroyer,
                          const std::function<void(thaw::snapshot::RestoredVm&)>& run_to_answer) {
  thaw::snapshot::RestoreOptions record;
  record.memory = MemoryBacking::kUffd;
  record.record_working_set = true;
  record.pause_on_guest_exit = true;
  auto clone = thaw::snapshot::restore_vm(loaded, record);
  run_to_answer(clone);
  const size_t pages = thaw::snapshot::save_recorded_working_set(clone, dir).pages.size();
  destroyer.destroy(std::move(clone));
  return pages;
}

// Working-set prefetch for a program template (REAP, FaaSnap): busybox
// sha256sum of 64 KiB in the mini guest's function runtime, from restore to
// its answer, with the pages its first request touched prefetched or faulted
// in lazily; with the memory file in the page cache (a pool's steady state)
// and dropped from it before each restore (a template's first clones, or
// one whose file the kernel evicted).
void measure_program_prefetch(thaw::bench::JsonReport& report, size_t runs, const std::string& dir,
                              BackgroundDestroyer& destroyer) {
  constexpr char kBusybox[] = "/bin/busybox";
  std::printf("\nProgram template (busybox sha256sum, 64 KiB): request -> answered, working set prefetched or not\n");
  if (::access(kBusybox, X_OK) != 0) {
    std::printf("  skipped: %s is missing (apt install busybox-static)\n", kBusybox);
    return;
  }
  thaw::pool::TemplateSpec spec;
  spec.program = kBusybox;
  spec.args = {"sha256sum"};
  thaw::vmm::VmConfig config;
  config.kernel_path = THAW_MINI_GUEST;
  config.cmdline = "thaw.quiet=1";
  config.mem_mib = 64;
  thaw::pool::configure_program_boot(config, spec);  // as a program template's cold boot in thawd
  auto vm = thaw::vmm::Vm::create(config);
  thaw::snapshot::boot_and_snapshot(*vm, dir, std::chrono::seconds(60));
  vm.reset();
  auto loaded = thaw::snapshot::read_snapshot_dir(dir);
  const std::vector<uint8_t> payload(64 << 10, 'x');
  const std::string memory_file = dir + "/" + thaw::snapshot::kMemoryFileName;
  auto serve = [&](thaw::snapshot::RestoredVm& clone) {
    auto r = thaw::vmm::serve_program_request(*clone.vm, payload, std::chrono::seconds(10));
    if (r.end != thaw::vmm::RequestEnd::kAnswered || r.response.status != 0) {
      throw std::runtime_error("the program clone did not answer: " + thaw::vmm::describe(r));
    }
  };
  std::printf("  working set of one request: %zu pages\n", record_working_set(loaded, dir, destroyer, serve));
  std::printf("  %-44s %9s %9s %9s\n", "", "min", "median", "p99");
  for (bool cold_cache : {false, true}) {
    for (MemoryBacking backing : {MemoryBacking::kPrivate, MemoryBacking::kUffd}) {
      double medians[2] = {0, 0};
      for (bool prefetch : {false, true}) {
        std::vector<double> answered;
        for (size_t i = 0; i < runs; ++i) {
          if (cold_cache) {
            destroyer.drain();  // a mapped page stays cached
            thaw::snapshot::drop_cached_pages(memory_file);
          }
          thaw::snapshot::RestoreOptions options;
          options.memory = backing;
          options.prefetch = prefetch;
          options.pause_on_guest_exit = true;
          auto requested = Clock::now();
          auto clone = thaw::snapshot::restore_vm(loaded, options);
          serve(clone);
          answered.push_back(ms_since(requested));
          destroyer.destroy(std::move(clone));
        }
        std::string name = std::string("program, ") + thaw::snapshot::memory_backing_name(backing) +
                           (prefetch ? "+prefetch" : ", lazy") + (cold_cache ? ", file not cached" : "");
        print_row(report, name, answered);
        medians[prefetch] = thaw::bench::summarize(answered).median_ms;
      }
      const std::string key = std::string("program_prefetch_ratio_") + thaw::snapshot::memory_backing_name(backing) +
                              (cold_cache ? "_uncached" : "_cached");
      std::printf("  %-44s %9.2fx (lazy median / prefetched median)\n", key.c_str(), medians[0] / medians[1]);
      report.value(key, medians[0] / medians[1]);
    }
  }
}

// What KVM does between a clone's first instruction and its answer, as the
// pool restores it (private memory, the pool's KVM handle and spawners):
// the mean over `runs` restores of KVM's own counters (exits handled in the
// kernel, page faults, instructions emulated: on PVM guest ring 0 is
// emulated and every fault is a shadow-MMU fault) and of thaw's exits.
// Untimed, so that opening the stats file costs no timed restore anything.
void measure_kvm_work(thaw::bench::JsonReport& report, const thaw::snapshot::LoadedSnapshot& loaded, size_t runs,
                      const std::shared_ptr<const thaw::vmm::KvmHost>& kvm,
                      const std::shared_ptr<thaw::vmm::VmThreadSpawners>& spawners) {
  thaw::vmm::kvm::Counters totals;
  uint64_t io_exits = 0, mmio_exits = 0;
  for (size_t i = 0; i < runs; ++i) {
    thaw::snapshot::RestoreOptions options;
    options.kvm = kvm;
    options.thread_spawners = spawners;
    options.pause_on_guest_exit = true;
    auto clone = thaw::snapshot::restore_vm(loaded, options);
    auto& vcpu = *clone.vm->vcpus().front();
    std::optional<thaw::vmm::kvm::StatsReader> stats;
    try {
      stats.emplace(vcpu.fd().stats_fd());
    } catch (const std::exception& e) {
      std::printf("  KVM's counters: not available here (%s)\n", e.what());
      return;
    }
    auto before = stats->read();
    ControlPage page;
    page.clone_id = i;
    thaw::vmm::write_control_page(clone.vm->memory(), page);
    clone.vm->start();
    clone.vm->wait(std::chrono::seconds(10));
    for (const auto& [name, value] : thaw::vmm::kvm::counter_delta(stats->read(), before)) totals[name] += value;
    io_exits += vcpu.exit_counts().io.load();
    mmio_exits += vcpu.exit_counts().mmio.load();
    clone.vm->stop();
  }
  auto mean = [&](uint64_t total) { return static_cast<double>(total) / static_cast<double>(runs); };
  auto counter = [&](const char* name) {
    auto it = totals.find(name);
    return it == totals.end() ? 0.0 : mean(it->second);
  };
  std::printf("  first instruction -> answer, mean of %zu restores: %.0f exits in KVM (%.0f to thaw: %.0f I/O, %.0f "
              "MMIO), %.0f page faults (%.0f fixed, %.0f to the guest), %.0f instructions emulated\n",
              runs, counter("exits"), mean(io_exits + mmio_exits), mean(io_exits), mean(mmio_exits),
              counter("pf_taken"), counter("pf_fixed"), counter("pf_guest"), counter("insn_emulation"));
  for (const auto& [name, total] : totals) report.value("kvm_to_answer_" + name, mean(total));
  report.value("thaw_io_exits_to_answer", mean(io_exits));
  report.value("thaw_mmio_exits_to_answer", mean(mmio_exits));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Restore benchmarks for thaw (in one process, mini guest snapshot at boot complete)"};
  size_t runs = 50;
  std::string dir = "/tmp/thaw-bench-snapshot";
  std::vector<unsigned> idle_counts = {1, 10, 100};
  app.add_option("--runs", runs, "Timed runs per case")->capture_default_str();
  app.add_option("--dir", dir, "Where to write the snapshot")->capture_default_str();
  app.add_option("--idle-clones", idle_counts, "Clone counts for the memory measurement")->capture_default_str();
  bool no_qemu = false;
  unsigned qemu_ticks = 3;
  app.add_flag("--no-qemu", no_qemu, "Skip the comparison with QEMU's restore (-incoming)");
  app.add_option("--qemu-ticks", qemu_ticks, "Timer ticks the guest waits after the snapshot point in the QEMU comparison")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  std::string json_path;
  app.add_option("--json", json_path, "Also write every sample and figure to this file as JSON (QEMU's rows too)");
  CLI11_PARSE(app, argc, argv);
  thaw::bench::JsonReport report("restore");

  std::fprintf(stderr, "snapshotting the mini guest into %s\n", dir.c_str());
  make_snapshot(dir);
  auto loaded = thaw::snapshot::read_snapshot_dir(dir);
  // The same guest made without an in-kernel PIT (it never uses one).
  make_snapshot(dir + "-no-pit", /*pit=*/false);
  auto loaded_no_pit = thaw::snapshot::read_snapshot_dir(dir + "-no-pit");
  BackgroundDestroyer destroyer;

  std::printf("\nRestore in one process (mini guest, 128 MiB), milliseconds\n");
  std::printf("  %-44s %9s %9s %9s\n", "", "min", "median", "p99");
  const size_t ws_pages = record_working_set(loaded, dir, destroyer, [](thaw::snapshot::RestoredVm& clone) {
    thaw::vmm::write_control_page(clone.vm->memory(), ControlPage{});
    clone.vm->start();
    clone.vm->wait(std::chrono::seconds(10));
  });
  std::fprintf(stderr, "working set: %zu pages\n", ws_pages);
  struct Case {
    MemoryBacking backing;
    bool prefetch;
    bool vcpu_seccomp = true;
    bool pit = true;
    bool shell = false;  // the VM from a stock prepared ahead (untimed), as the pool restores
  };
  // The first four differ only in the vCPU threads' seccomp filter, the
  // in-kernel PIT and a prepared VM shell: what each costs.
  thaw::vmm::VmShellStock shells("/dev/kvm");
  // As a pool keeps them, for all its restores.
  auto kvm = thaw::vmm::KvmHost::open();
  auto spawners = thaw::vmm::VmThreadSpawners::start();
  for (Case c : {Case{MemoryBacking::kPrivate, false}, Case{MemoryBacking::kPrivate, false, true, true, true},
                 Case{MemoryBacking::kPrivate, false, false},
                 Case{MemoryBacking::kPrivate, false, true, false}, Case{MemoryBacking::kPrivate, true},
                 Case{MemoryBacking::kEager, false}, Case{MemoryBacking::kUffd, false},
                 Case{MemoryBacking::kUffd, true}}) {
    std::vector<double> first_entry, answered;
    for (size_t i = 0; i < runs; ++i) {
      thaw::snapshot::RestoreOptions options;
      options.kvm = kvm;
      options.thread_spawners = spawners;
      options.memory = c.backing;
      options.prefetch = c.prefetch;
      options.pause_on_guest_exit = true;
      options.vcpu_seccomp = c.vcpu_seccomp;
      if (c.shell) {
        shells.fill(1);
        options.shells = &shells;
      }
      auto requested = Clock::now();
      auto clone = thaw::snapshot::restore_vm(c.pit ? loaded : loaded_no_pit, options);
      ControlPage page;
      page.clone_id = i;
      page.clone_input = i & 0xff;
      thaw::vmm::write_control_page(clone.vm->memory(), page);
      clone.vm->start();
      while (clone.vm->vcpus().front()->first_entry_ns() == 0) std::this_thread::yield();
      first_entry.push_back(std::chrono::duration<double, std::milli>(
                                Clock::time_point(Clock::duration(clone.vm->vcpus().front()->first_entry_ns())) - requested)
                                .count());
      // The guest answers by finishing its clone function and reporting done.
      clone.vm->wait(std::chrono::seconds(10));
      answered.push_back(ms_since(requested));
      destroyer.destroy(std::move(clone));
    }
    std::string name = std::string(thaw::snapshot::memory_backing_name(c.backing)) + (c.prefetch ? "+prefetch" : "") +
                       (c.vcpu_seccomp ? "" : ", no seccomp") + (c.pit ? "" : ", no PIT") +
                       (c.shell ? ", prepared shell" : "");
    print_row(report, name + ": request -> first guest instruction", first_entry);
    print_row(report, name + ": request -> guest answered", answered);
  }
  measure_kvm_work(report, loaded, runs, kvm, spawners);

  measure_program_prefetch(report, runs, dir + "-program", destroyer);

  std::printf("\nReset in place (private memory) against pages dirtied since restore\n");
  std::printf("  %-44s %9s %9s %9s\n", "", "min", "median", "p99");
  for (uint64_t dirty_mib : {0ull, 1ull, 16ull, 64ull}) {
    thaw::snapshot::RestoreOptions options;
    options.pause_on_guest_exit = true;
    auto clone = thaw::snapshot::restore_vm(loaded, options);
    clone.vm->start();
    clone.vm->pause();
    std::vector<double> samples;
    for (size_t i = 0; i < runs; ++i) {
      // Dirty the pages as a guest would: private copies of file pages.
      auto span = clone.vm->memory().slice(thaw::vmm::GuestAddress(0x1000000), dirty_mib << 20);
      for (size_t off = 0; off < span.size(); off += 4096) span[off] = static_cast<uint8_t>(i + 1);
      auto start = Clock::now();
      thaw::snapshot::reset_vm(clone, loaded, options);
      samples.push_back(ms_since(start));
    }
    clone.vm->stop();
    std::string name = std::to_string(dirty_mib) + " MiB dirty";
    print_row(report, name, samples);
  }

  std::printf("\nPrivate memory of idle clones (private backing, this process)\n");
  destroyer.drain();
  auto base = read_smaps_rollup();
  for (unsigned count : idle_counts) {
    std::vector<thaw::snapshot::RestoredVm> clones;
    for (unsigned i = 0; i < count; ++i) {
      thaw::snapshot::RestoreOptions options;
      clones.push_back(thaw::snapshot::restore_vm(loaded, options));
      clones.back().vm->start();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto now = read_smaps_rollup();
    std::printf("  %4u idle clones: private %8.1f MiB total (%6.2f MiB each), PSS %8.1f MiB, RSS %8.1f MiB\n", count,
                now.private_mib - base.private_mib, (now.private_mib - base.private_mib) / count,
                now.pss_mib - base.pss_mib, now.rss_mib - base.rss_mib);
    report.value("idle_clones_" + std::to_string(count) + "_private_mib", now.private_mib - base.private_mib);
    for (auto& c : clones) c.vm->stop();
    for (auto& c : clones) destroyer.destroy(std::move(c));
    destroyer.drain();  // the next count's baseline starts from none
  }

  std::printf("\nSustained restores (restore, run to the guest's answer; destroyed in the background) for 3 s\n");
  auto until = Clock::now() + std::chrono::seconds(3);
  size_t done = 0;
  auto start = Clock::now();
  while (Clock::now() < until) {
    thaw::snapshot::RestoreOptions options;
    options.pause_on_guest_exit = true;
    auto clone = thaw::snapshot::restore_vm(loaded, options);
    ControlPage page;
    thaw::vmm::write_control_page(clone.vm->memory(), page);
    clone.vm->start();
    clone.vm->wait(std::chrono::seconds(10));
    destroyer.destroy(std::move(clone));
    ++done;
  }
  std::printf("  %.0f restores/s (%zu in %.2f s, one at a time)\n", static_cast<double>(done) / (ms_since(start) / 1000),
              done, ms_since(start) / 1000);
  report.value("restores_per_second", static_cast<double>(done) / (ms_since(start) / 1000));

  // A pool reuses clones: reset in place, hand the clone the next input, run it to its answer.
  {
    thaw::snapshot::RestoreOptions options;
    options.pause_on_guest_exit = true;
    auto clone = thaw::snapshot::restore_vm(loaded, options);
    ControlPage page;
    thaw::vmm::write_control_page(clone.vm->memory(), page);
    clone.vm->start();
    clone.vm->wait(std::chrono::seconds(10));
    size_t cycles = 0;
    auto cycle_start = Clock::now();
    auto cycle_until = cycle_start + std::chrono::seconds(3);
    while (Clock::now() < cycle_until) {
      thaw::snapshot::reset_vm(clone, loaded, options);
      page.clone_id = cycles;
      thaw::vmm::write_control_page(clone.vm->memory(), page);
      clone.vm->resume();
      clone.vm->wait(std::chrono::seconds(10));
      ++cycles;
    }
    std::printf("  %.0f reset-in-place cycles/s (reset, run to the guest's answer; %zu in %.2f s)\n",
                static_cast<double>(cycles) / (ms_since(cycle_start) / 1000), cycles, ms_since(cycle_start) / 1000);
    report.value("reset_cycles_per_second", static_cast<double>(cycles) / (ms_since(cycle_start) / 1000));
    destroyer.destroy(std::move(clone));
  }

  std::string qemu = no_qemu ? "" : thaw::bench::find_in_path("qemu-system-x86_64");
  if (qemu.empty()) {
    std::printf("\nQEMU restore comparison skipped (%s)\n", no_qemu ? "--no-qemu" : "qemu-system-x86_64 not installed");
    return report.write(json_path) ? 0 : 1;
  }
  thaw::bench::RestoreComparisonOptions compare;
  compare.qemu = qemu;
  compare.kernel = THAW_MINI_GUEST;
  compare.ticks = qemu_ticks;
  compare.runs = runs;
  bool ok = thaw::bench::run_qemu_restore_comparison(
      compare, [&](thaw::snapshot::RestoredVm clone) { destroyer.destroy(std::move(clone)); }, &report);
  const bool written = report.write(json_path);  // what was measured, even when a side failed
  return ok && written ? 0 : 1;
}
