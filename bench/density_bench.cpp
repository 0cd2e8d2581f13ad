// Density and fill rate through the real thawd: one template of the mini
// guest with its agent whose min_warm is the target clone count. It times the
// fill (restores per second into a growing pool, on the pool's refill
// threads; for a spread pool also while every shard restores), then, with
// every clone warm and idle, what the host pays for them (/proc/meminfo,
// kernel memory included, and thawd's threads and fds), then acquire
// latency at a steady request rate.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/json_report.h"
#include "bench/parallel_fill.h"
#include "bench/pool_load.h"
#include "bench/process_timer.h"
#include "bench/thawd_child.h"
#include "pool/pool_shard.h"
#include "pool/refill_worker.h"
#include "rpc/pool_client.h"

namespace {

using Clock = std::chrono::steady_clock;

struct FillResult {
  double seconds = 0;        // from the first sample to the last clone
  uint32_t first_warm = 0;   // warm when the socket first answered
  thaw::pool::PoolStats::PerTemplate stats;
};

// Polls stats until the template has `clones` warm clones or `timeout` passes.
FillResult wait_filled(const std::string& socket, uint32_t clones, std::chrono::seconds timeout) {
  thaw::rpc::PoolConnection conn(socket);
  FillResult r;
  auto start = Clock::now();
  auto last_report = start;
  bool first = true;
  for (;;) {
    r.stats = thaw::bench::template_stats(conn, "dense");
    if (first) r.first_warm = r.stats.warm, first = false;
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (r.stats.warm >= clones || Clock::now() - start > timeout) return r;
    if (Clock::now() - last_report > std::chrono::seconds(2)) {
      std::fprintf(stderr, "  %u of %u clones warm after %.1f s\n", r.stats.warm, clones, r.seconds);
      last_report = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Each shard's warm count while a spread pool fills, from the shard's own
// socket, on a thread per shard: a shard's worker accepts only once it has
// started, and a call made before then waits for it.
class ShardFillWatch {
 public:
  ShardFillWatch(const std::vector<std::string>& sockets, Clock::time_point start) {
    for (const auto& path : sockets) {
      auto shard = std::make_shared<Shard>();
      shards_.push_back(shard);
      threads_.emplace_back([shard, path, start, stop = stop_] {
        while (!*stop) {
          try {
            thaw::rpc::PoolConnection conn(path);
            while (!*stop) {
              const uint32_t warm = thaw::bench::template_stats(conn, "dense").warm;
              const double at = std::chrono::duration<double>(Clock::now() - start).count();
              {
                std::lock_guard lock(shard->mutex);
                shard->samples.push_back({at, warm});
              }
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
          } catch (const std::exception&) {
            // Not accepting yet, or its worker restarted: try again.
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
  }
  // A thread still waiting on a worker that never started is let go: thawd's
  // exit ends its call.
  ~ShardFillWatch() {
    *stop_ = true;
    for (auto& t : threads_) t.detach();
  }
  ShardFillWatch(const ShardFillWatch&) = delete;
  ShardFillWatch& operator=(const ShardFillWatch&) = delete;

  // Waits (up to 2 s) for each shard's own count to reach `targets[k]`, as
  // the merged count already has, then stops the threads (each ends after
  // its call in flight) and gives every shard's samples.
  std::vector<std::vector<thaw::bench::WarmSample>> finish(const std::vector<uint32_t>& targets) {
    auto reached = [&] {
      for (size_t k = 0; k < shards_.size() && k < targets.size(); ++k) {
        std::lock_guard lock(shards_[k]->mutex);
        if (shards_[k]->samples.empty() || shards_[k]->samples.back().warm < targets[k]) return false;
      }
      return true;
    };
    for (auto deadline = Clock::now() + std::chrono::seconds(2); Clock::now() < deadline && !reached();) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    *stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::vector<std::vector<thaw::bench::WarmSample>> out;
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      out.push_back(shard->samples);
    }
    return out;
  }

 private:
  struct Shard {
    std::mutex mutex;
    std::vector<thaw::bench::WarmSample> samples;
  };
  std::shared_ptr<std::atomic<bool>> stop_ = std::make_shared<std::atomic<bool>>(false);
  std::vector<std::shared_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
};

void print_summary(thaw::bench::JsonReport& report, const std::string& name, const std::vector<double>& samples) {
  auto s = thaw::bench::summarize(samples);
  std::printf("  %-34s %9.3f %9.3f %9.3f  ms (%zu)\n", name.c_str(), s.min_ms, s.median_ms, s.p99_ms, s.runs);
  report.samples(name, samples);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Density through the real thawd: how fast a pool of the mini guest fills, what its idle warm clones "
               "cost the host, and acquire latency with all of them warm"};
  uint32_t clones = 1000;
  uint64_t mem_mib = 64;
  double rate = 100;
  double seconds = 10;
  std::string json_path;
  app.add_option("--clones", clones, "Warm clones to fill the pool with (its min_warm and max_warm)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--mem-mib", mem_mib, "Guest memory of the template")->capture_default_str()->check(CLI::Range(16, 4096));
  app.add_option("--rate", rate, "Acquire -> release requests per second, open loop, once the pool is full")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 5000.0));
  app.add_option("--seconds", seconds, "How long to apply that rate")->capture_default_str()->check(CLI::Range(1.0, 600.0));
  bool via_thawd = false;
  app.add_flag("--via-thawd", via_thawd,
               "Lease through thawd's socket (one more hop to the template's worker) instead of the template's "
               "direct socket");
  uint32_t refill_threads = 0;
  app.add_option("--refill-threads", refill_threads,
                 "thawd's refill_threads: restores in parallel while the pool fills (0: thawd's default, one per CPU "
                 "it may use, at most 4)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 64u));
  uint32_t clones_per_worker = 0;
  app.add_option("--clones-per-worker", clones_per_worker,
                 "thawd's clones_per_worker: spread the template over ceil(clones / this) worker processes (0: one "
                 "worker), to compare the page-fault fan-out of many VMs in one process (thaw_bench_fault_fanout). On the "
                 "direct sockets the load's clients are spread over the shards' own sockets; --via-thawd goes through "
                 "thawd, which spreads the acquires")
      ->capture_default_str()
      ->check(CLI::Range(0u, 65536u));
  app.add_option("--json", json_path, "Also write the samples and figures to this file as JSON");
  CLI11_PARSE(app, argc, argv);

  thaw::bench::ThawdOptions options;
  options.thawd = THAWD;
  options.refill_threads = refill_threads;
  options.clones_per_worker = clones_per_worker;
  auto pool = thaw::bench::mini_agent_pool("dense", THAW_MINI_GUEST, clones, clones);
  pool.spec.mem_mib = mem_mib;
  pool.policy.memory_budget_mib = 1 << 20;  // the count is the limit here, not memory
  options.pools = {pool};

  sync();  // settle the page cache's dirty pages before the baseline
  auto before = thaw::bench::host_meminfo_kib();
  std::fprintf(stderr, "starting thawd: template 'dense', mini guest with its agent, %llu MiB, %u warm clones\n",
               static_cast<unsigned long long>(mem_mib), clones);
  thaw::bench::ThawdChild daemon(options);
  thaw::bench::JsonReport report("density");
  try {
    daemon.start(std::chrono::seconds(60));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  const auto shard_sockets = daemon.shard_sockets("dense");
  ShardFillWatch shard_watch(shard_sockets, Clock::now());
  auto fill = wait_filled(daemon.socket(), clones, std::chrono::seconds(600));
  if (fill.stats.warm < clones) {
    std::fprintf(stderr, "only %u of %u clones warm after %.0f s; thawd's log:\n%s\n", fill.stats.warm, clones, fill.seconds,
                 daemon.log_text().c_str());
    return 1;
  }
  // Restores seen after the socket answered: none when a small pool was
  // full by then, and then there is no rate to give (not 0 /s).
  const uint32_t restored_seen = fill.stats.warm - fill.first_warm;
  const double restores_per_s = restored_seen > 0 ? restored_seen / fill.seconds : 0;
  const unsigned refill_threads_used = thaw::pool::refill_threads_for(refill_threads);
  const uint32_t workers = thaw::pool::shards_for(pool.policy, clones_per_worker);
  std::printf("\nFill: %u clones of a %llu MiB mini guest in %u worker process%s (%u refill thread%s in each, one "
              "restore each at a time)\n",
              clones, static_cast<unsigned long long>(mem_mib), workers, workers == 1 ? "" : "es", refill_threads_used,
              refill_threads_used == 1 ? "" : "s");
  if (restored_seen > 0) {
    std::printf("  %.0f restores/s (%u restored in %.2f s after the socket answered; %u were warm by then)\n",
                restores_per_s, restored_seen, fill.seconds, fill.first_warm);
  } else {
    std::printf("  restores/s not measured: all %u were warm before the socket answered (ask for more clones)\n",
                fill.first_warm);
  }
  const auto& r = fill.stats.restore_ms;
  std::printf("  restore in thawd (most recent): min %.3f, median %.3f, p99 %.3f ms\n", r.min_ms, r.median_ms, r.p99_ms);
  if (!shard_sockets.empty()) {
    // The rate above includes the later shards' start-up (they begin once
    // shard 1 has made the template); this counts only the shared stretch.
    std::vector<uint32_t> shares;
    for (uint32_t k = 0; k < shard_sockets.size(); ++k) {
      shares.push_back(thaw::pool::policy_share(pool.policy, {k, static_cast<uint32_t>(shard_sockets.size())}).max_warm);
    }
    const auto samples = shard_watch.finish(shares);
    auto at = [](std::optional<double> t) { return t ? fmt::format("{:.2f} s", *t) : std::string("never"); };
    for (size_t k = 0; k < samples.size(); ++k) {
      const auto began = thaw::bench::first_at_least(samples[k], 1);
      const auto filled = thaw::bench::first_at_least(samples[k], shares[k]);
      // Its own rate, from the first sample that saw a warm clone (the pool
      // may have held more by then) to the first that saw all of them.
      std::string shard_rate;
      const uint32_t seen_first = began ? thaw::bench::warm_at(samples[k], *began) : 0;
      if (began && filled && *filled > *began && seen_first < shares[k]) {
        shard_rate = fmt::format(" ({:.0f} restores/s)", (shares[k] - seen_first) / (*filled - *began));
      }
      std::printf("  shard %zu/%zu: first warm clone at %s, all %u at %s%s\n", k + 1, samples.size(), at(began).c_str(),
                  shares[k], at(filled).c_str(), shard_rate.c_str());
    }
    if (auto both = thaw::bench::parallel_fill(samples, shares)) {
      std::printf("  %.0f restores/s while every shard restored (%u restored from %.2f to %.2f s)\n", both->per_second,
                  both->restored, both->from_s, both->to_s);
      report.value("fill_restores_per_second_every_shard_restoring", both->per_second);
    } else {
      std::printf("  no stretch in which every shard restored at once (one was full before the last began)\n");
    }
  }
  report.value("clones", clones);
  report.value("mem_mib", static_cast<double>(mem_mib));
  if (restored_seen > 0) report.value("fill_restores_per_second", restores_per_s);
  report.value("refill_threads", refill_threads_used);
  report.value("worker_processes", workers);
  report.value("restore_median_ms", r.median_ms);
  report.value("restore_p99_ms", r.p99_ms);

  std::this_thread::sleep_for(std::chrono::seconds(1));  // idle: the clones settle
  auto after = thaw::bench::host_meminfo_kib();
  double used_mib = (before["MemAvailable"] - after["MemAvailable"]) / 1024;
  const auto use = thaw::bench::process_use(daemon.pid());
  const double threads = static_cast<double>(use.threads);
  const size_t fds = use.fds;
  std::printf("\nIdle warm clones: what the host pays (/proc/meminfo before thawd started and now)\n");
  std::printf("  host memory used       %9.1f MiB in all, %7.3f MiB a clone (MemAvailable)\n", used_mib,
              used_mib / clones);
  for (const char* key : {"AnonPages", "Slab", "SUnreclaim", "KernelStack", "PageTables"}) {
    double mib = (after[key] - before[key]) / 1024;
    std::printf("    of which %-12s %9.1f MiB, %7.3f MiB a clone\n", key, mib, mib / clones);
    report.value(std::string("host_") + key + "_mib", mib);
  }
  std::printf("  thawd's RSS            %9.1f MiB; the pool's own count of private memory %.1f MiB\n",
              use.rss_mib, fill.stats.private_memory_mib);
  std::printf("  thawd's threads        %9.0f (%.2f a clone); open fds %zu (%.2f a clone)\n", threads,
              threads / clones, fds, static_cast<double>(fds) / clones);
  // KVM_CREATE_VM walks every VMA of the worker (bench/vm_create_bench.cpp).
  std::printf("  memory mappings (VMAs) %9zu (%.2f a clone)\n", use.vmas, static_cast<double>(use.vmas) / clones);
  std::printf("  goal: 1,000 warm clones in <= 1 GiB of host memory: %s\n",
              clones >= 1000 ? (used_mib <= 1024 ? "met" : "missed") : "(fewer clones than the goal's)");
  report.value("host_memory_used_mib", used_mib);
  report.value("thawd_threads", threads);
  report.value("thawd_fds", static_cast<double>(fds));
  report.value("thawd_vmas", static_cast<double>(use.vmas));

  thaw::bench::LoadSpec spec;
  spec.socket = daemon.lease_socket("dense", via_thawd);
  spec.client_sockets = daemon.shard_sockets("dense", via_thawd);  // spread: each shard gets its share of the clients
  spec.template_name = "dense";
  spec.function = "";  // acquire -> release: the pool's hand-out alone
  spec.clients = 8;
  spec.phases = {{rate, seconds}};
  std::fprintf(stderr, "  %.0f acquires/s for %.0f s\n", rate, seconds);
  // One connection at a time on this thread (run_load makes its own here).
  auto stats_now = [&] {
    thaw::rpc::PoolConnection control(daemon.socket());
    return thaw::bench::template_stats(control, "dense");
  };
  auto stats_before = stats_now();
  auto load = thaw::bench::run_load(spec);
  auto stats_after = stats_now();
  std::printf("\nAcquire -> release at %.0f requests/s, open loop, %u clients, with %u clones warm\n", rate,
              spec.clients, clones);
  std::printf("  %-34s %9s %9s %9s\n", "", "min", "median", "p99");
  print_summary(report, "acquire (RPC until the clone runs)", load.acquire_ms);
  // Where an acquire's time goes: the pool's own share (take + hand-out, from
  // Vm.info) against the RPC round trip with no VM touched, each at 1,000
  // clones in the worker, to tell a slow hand-out from a slow event loop.
  print_summary(report, "  of which in the pool (Vm.info)", load.acquire_in_thawd_ms);
  print_summary(report, "release (RPC)", load.release_ms);
  try {
    print_summary(report, "floor: null RPC after 10 ms idle",
                  thaw::bench::null_rpc_round_trips(spec.socket, "dense", 200, std::chrono::milliseconds(10)));
  } catch (const kj::Exception& e) {
    std::printf("  floor: not measured: %s\n", e.getDescription().cStr());
  }
  auto a = thaw::bench::summarize(load.acquire_ms);
  std::printf("  %zu sent, %zu failed, %llu misses, %zu late; goal acquire p99 <= 1 ms: %s\n", load.sent,
              load.failures, static_cast<unsigned long long>(load.misses), load.late, a.p99_ms <= 1.0 ? "met" : "missed");
  if (load.failures) std::printf("  first failure: %s\n", load.first_failure.c_str());
  // Leased clones do not count as warm: each acquire makes the refill restore
  // a clone, and each release leaves a surplus that the pool destroys.
  std::printf("  meanwhile the pool restored %llu clones, reset %llu and destroyed %llu\n",
              static_cast<unsigned long long>(stats_after.restores - stats_before.restores),
              static_cast<unsigned long long>(stats_after.resets - stats_before.resets),
              static_cast<unsigned long long>(stats_after.destroyed - stats_before.destroyed));

  auto stop_start = Clock::now();
  int rc = daemon.stop();
  std::printf("\nthawd stopped (exit %d) in %.1f s, destroying %u clones\n", rc,
              std::chrono::duration<double>(Clock::now() - stop_start).count(), clones);
  bool written = report.write(json_path);
  return rc == 0 && load.failures == 0 && written ? 0 : 1;
}
