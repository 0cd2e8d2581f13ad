// thaw's main job: build a template from the mini guest, start the real
// thawd, drive acquire -> invoke -> release through the real RPC from several
// concurrent clients, and print cold boot versus warm clones.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/process_timer.h"
#include "bench/thawd_child.h"
#include "rpc/convert.h"
#include "rpc/pool_client.h"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Samples {
  std::mutex mutex;
  std::vector<double> acquire, invoke, guest, release;
  size_t failures = 0;
  std::string first_failure;
};

void row(const char* name, const std::vector<double>& v) {
  auto s = thaw::bench::summarize(v);
  std::printf("  %-38s %9.3f %9.3f %9.3f   (%zu)\n", name, s.min_ms, s.median_ms, s.p99_ms, s.runs);
}

// The daemon's own figures (its most recent samples).
void latency_row(const char* name, const thaw::pool::LatencySummary& l) {
  std::printf("  %-38s %9.3f %9.3f %9.3f   (%llu)\n", name, l.min_ms, l.median_ms, l.p99_ms,
              static_cast<unsigned long long>(l.count));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"thaw's main job: a template from the mini guest, the real thawd, and a short load through the\n"
               "real Cap'n Proto RPC (acquire -> invoke -> release), then cold boot versus warm clones."};
  size_t total = 1000;
  unsigned clients = 4;
  unsigned warm = 8;
  std::string thaw_cli = THAW_CLI, thawd = THAWD, kernel = THAW_MINI_GUEST;
  app.add_option("--requests", total, "acquire -> invoke -> release cycles in all")->capture_default_str();
  app.add_option("--clients", clients, "Concurrent RPC clients")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--warm", warm, "Warm clones the pool keeps (min_warm)")->capture_default_str();
  app.add_option("--kernel", kernel, "Guest kernel (the mini guest)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  thaw::bench::ThawdOptions options;
  options.thawd = thawd;
  thaw::bench::BenchPool pool;
  pool.kernel = kernel;
  pool.min_warm = warm;
  pool.max_warm = warm * 2;
  options.pools.push_back(pool);

  // Cold boot, whole process, for the comparison.
  std::fprintf(stderr, "[1/4] cold boot: 20 whole-process boots of the mini guest\n");
  auto cold = thaw::bench::time_series("cold boot", {thaw_cli, "boot", "--console", "none", "--kernel", kernel}, 20, 0,
                                       false);

  std::fprintf(stderr, "[2/4] starting thawd (template: cold boot + snapshot, then %u warm clones)\n", warm);
  thaw::bench::ThawdChild daemon(options);
  double template_cold_ms = 0;
  try {
    daemon.start(std::chrono::seconds(60));
    daemon.wait_warm(std::chrono::seconds(60));
    thaw::rpc::PoolConnection conn(daemon.socket());
    auto list = conn.pool().listTemplatesRequest().send().wait(conn.wait_scope()).getTemplates();
    if (list.size() > 0) template_cold_ms = list[0].getColdBootMs();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  const std::string socket = daemon.socket();

  std::fprintf(stderr, "[3/4] load: %zu acquire -> invoke(hash) -> release from %u clients\n", total, clients);
  Samples samples;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::vector<std::thread> threads;
  for (unsigned c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      thaw::rpc::PoolConnection conn(socket);
      auto& ws = conn.wait_scope();
      while (next.fetch_add(1) < total) {
        try {
          auto t0 = Clock::now();
          auto acq = conn.pool().acquireRequest();
          acq.setTemplate("mini");
          acq.setLeaseMs(30000);
          acq.setTimeoutMs(5000);
          auto vm = acq.send().wait(ws).getVm();
          double acquire_ms = ms_since(t0);
          auto t1 = Clock::now();
          auto inv = vm.invokeRequest();
          inv.setFunction("hash");
          uint64_t n = 65536;
          inv.setPayload(kj::arrayPtr(reinterpret_cast<const kj::byte*>(&n), sizeof n));
          inv.setTimeoutMs(10000);
          auto result = inv.send().wait(ws);
          double invoke_ms = ms_since(t1);
          double guest_ms = result.getGuestMs();
          auto t2 = Clock::now();
          vm.releaseRequest().send().wait(ws);
          double release_ms = ms_since(t2);
          std::lock_guard lock(samples.mutex);
          if (result.getStatus() != 0) {
            if (samples.failures++ == 0) samples.first_failure = "invoke status " + std::to_string(result.getStatus());
          } else {
            samples.acquire.push_back(acquire_ms);
            samples.invoke.push_back(invoke_ms);
            samples.guest.push_back(guest_ms);
            samples.release.push_back(release_ms);
          }
        } catch (const kj::Exception& e) {
          std::lock_guard lock(samples.mutex);
          if (samples.failures++ == 0) samples.first_failure = e.getDescription().cStr();
        }
        size_t d = done.fetch_add(1) + 1;
        if (d % 100 == 0) std::fprintf(stderr, "\r  %zu/%zu", d, total);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::fprintf(stderr, "\n[4/4] stats and shutdown\n");
  thaw::pool::PoolStats::PerTemplate stats;
  try {
    thaw::rpc::PoolConnection conn(socket);
    auto reply = conn.pool().statsRequest().send().wait(conn.wait_scope()).getStats();
    auto all = thaw::rpc::from_schema(reply);
    if (!all.templates.empty()) stats = all.templates.front();
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "stats: %s\n", e.getDescription().cStr());
  }
  uint32_t clones = stats.warm + stats.leased;
  double private_mib_per_clone = clones > 0 ? stats.private_memory_mib / clones : 0;
  int daemon_status = daemon.stop();

  std::printf("\nthaw: cold boot versus warm clones (mini guest, 128 MiB), milliseconds\n");
  std::printf("  %-38s %9s %9s %9s\n", "", "min", "median", "p99");
  std::printf("  %-38s %9.3f %9.3f %9.3f   (%zu)\n", "cold boot, whole process", cold.summary.min_ms,
              cold.summary.median_ms, cold.summary.p99_ms, cold.summary.runs);
  std::printf("  %-38s %9.3f   (template: cold boot to boot-complete in thawd)\n", "template cold boot", template_cold_ms);
  latency_row("restore of a clone (thawd, background)", stats.restore_ms);
  row("warm acquire (RPC, until running)", samples.acquire);
  row("invoke hash(64 KiB), RPC + vsock", samples.invoke);
  row("  of which the guest's own time", samples.guest);
  row("release (RPC round trip)", samples.release);
  latency_row("reset in place (thawd, background)", stats.reset_ms);
  std::printf("  private guest memory per clone: %.3f MiB (%u clones, smaps)\n", private_mib_per_clone, clones);
  std::printf("  pool: %llu hits, %llu misses, %llu overloaded; %llu restores, %llu resets, %llu destroyed\n",
              static_cast<unsigned long long>(stats.hits), static_cast<unsigned long long>(stats.misses),
              static_cast<unsigned long long>(stats.overloaded), static_cast<unsigned long long>(stats.restores),
              static_cast<unsigned long long>(stats.resets), static_cast<unsigned long long>(stats.destroyed));
  std::printf("  failures: %zu%s%s\n", samples.failures, samples.failures ? ": " : "", samples.first_failure.c_str());
  return samples.failures == 0 && daemon_status == 0 ? 0 : 1;
}
