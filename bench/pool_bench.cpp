// The pool service under load, through the real thawd and its Cap'n Proto
// socket:
//   1. warm acquire latency (RPC round trip until the clone runs), invoke
//      latency with the guest's own share, and pool hits/misses, at several
//      request rates (open loop: requests start on a fixed schedule);
//   2. the autoscaler under a step in request rate: pool size, target and
//      misses over time, and the misses left once it has settled.
// QEMU has no warm pool to compare with; its restore is compared in
// thaw_bench_restore.
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <kj/exception.h>

#include "bench/json_report.h"
#include "bench/pool_load.h"
#include "bench/process_timer.h"
#include "bench/thawd_child.h"

namespace {

using thaw::bench::LoadResult;
using thaw::bench::LoadSpec;
using thaw::bench::process_use;
using thaw::bench::ProcessUse;

void print_rate_header() {
  std::printf("%7s %6s %7s | %22s | %15s | %22s | %15s | %5s %6s %5s\n", "rate/s", "sent", "got/s",
              "acquire ms min/p50/p99", "in thawd p50/p99", "invoke ms min/p50/p99", "guest ms p50/p99", "hits",
              "misses", "late");
}

void print_rate_row(double rate, const LoadResult& r) {
  auto a = thaw::bench::summarize(r.acquire_ms);
  auto i = thaw::bench::summarize(r.invoke_ms);
  auto g = thaw::bench::summarize(r.guest_ms);
  auto t = thaw::bench::summarize(r.acquire_in_thawd_ms);
  std::printf("%7.0f %6zu %7.1f | %6.3f %6.3f %8.3f | %6.3f %8.3f | %6.3f %6.3f %8.3f | %6.3f %8.3f | %5llu %6llu %5zu\n",
              rate, r.sent, r.achieved_rate, a.min_ms, a.median_ms, a.p99_ms, t.median_ms, t.p99_ms, i.min_ms,
              i.median_ms, i.p99_ms, g.median_ms, g.p99_ms, static_cast<unsigned long long>(r.hits), static_cast<unsigned long long>(r.misses), r.late);
  if (r.failures > 0) std::printf("        %zu failed; first: %s\n", r.failures, r.first_failure.c_str());
}

std::vector<double> parse_rates(const std::string& text) {
  std::vector<double> rates;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    double r = 0;
    try {
      r = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(r > 0) || r > 5000) {
      throw CLI::ValidationError("--rates", "'" + item + "' is not a request rate in (0, 5000]");
    }
    rates.push_back(r);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return rates;
}

// Closed-loop acquire -> invoke -> release, `total` requests in rounds of
// `round`, with thawd's fds and RSS after each: a leak shows as growth
// that keeps going, not as the first round's warm-up.
size_t soak(const std::string& socket, pid_t thawd, size_t total, unsigned clients, const std::string& function,
            size_t crash_every, thaw::bench::JsonReport& report) {
  constexpr size_t kRound = 10000;
  std::printf("\nsoak: %zu acquire -> invoke %s -> release, closed loop, %u clients, a guest crash every %zu "
              "requests; thawd's (and its workers') fds and RSS per round\n",
              total, function.c_str(), clients, crash_every);
  std::printf("%10s %6s %9s %10s %10s %8s %9s\n", "requests", "fds", "RSS MiB", "acq p50", "acq p99", "crashes",
              "failures");
  size_t crashes = 0, answered = 0, soak_failures = 0;
  LoadSpec spec;
  spec.socket = socket;
  spec.template_name = "rates";
  spec.function = function;
  spec.clients = clients;
  spec.closed_loop_requests = 1000;  // warm-up: pools, caches and allocator arenas settle
  size_t failures = thaw::bench::run_load(spec).failures;
  const ProcessUse start = process_use(thawd);
  std::printf("%10s %6zu %9.1f\n", "warm-up", start.fds, start.rss_mib);
  spec.crash_every = crash_every;
  for (size_t done = 0; done < total;) {
    spec.closed_loop_requests = std::min(kRound, total - done);
    auto result = thaw::bench::run_load(spec);
    done += spec.closed_loop_requests;
    failures += result.failures;
    soak_failures += result.failures;
    crashes += result.crashes;
    answered += result.acquire_ms.size();
    const ProcessUse now = process_use(thawd);
    auto a = thaw::bench::summarize(result.acquire_ms);
    std::printf("%10zu %6zu %9.1f %10.3f %10.3f %8zu %9zu\n", done, now.fds, now.rss_mib, a.median_ms, a.p99_ms,
                result.crashes, result.failures);
    if (result.failures > 0) std::printf("           first failure: %s\n", result.first_failure.c_str());
    std::fflush(stdout);
    report.value("soak " + std::to_string(done) + ": fds", static_cast<double>(now.fds));
    report.value("soak " + std::to_string(done) + ": rss_mib", now.rss_mib);
  }
  const ProcessUse end = process_use(thawd);
  std::printf("  growth after the warm-up: %+lld fds, %+.1f MiB RSS\n",
              static_cast<long long>(end.fds) - static_cast<long long>(start.fds), end.rss_mib - start.rss_mib);
  // Every request is accounted for: answered, crashed as injected, or failed.
  const size_t lost = total - std::min(total, answered + crashes + soak_failures);
  std::printf("  %zu answered, %zu injected crashes failed as they must, %zu failed, %zu lost\n", answered, crashes,
              soak_failures, lost);
  report.value("soak: answered", static_cast<double>(answered));
  report.value("soak: crashes", static_cast<double>(crashes));
  report.value("soak: lost", static_cast<double>(lost));
  failures += lost;
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"thaw's pool benchmark: warm acquire and invoke latency through thawd's RPC at several request\n"
               "rates, then the autoscaler under a step in request rate. Starts its own thawd with two\n"
               "templates of the mini guest; needs /dev/kvm."};
  std::string rates_text = "25,50,100,200";
  double seconds_per_rate = 4;
  unsigned clients = 8;
  std::string function = "echo";
  double step_low = 5, step_high = 200, step_seconds = 5, cooldown_seconds = 2;
  uint64_t hold_ms = 50;
  bool skip_rates = false, skip_step = false;
  std::string thawd = THAWD, kernel = THAW_MINI_GUEST;
  app.add_option("--rates", rates_text, "Request rates to measure, requests/s, comma-separated")->capture_default_str();
  app.add_option("--seconds", seconds_per_rate, "Seconds of load per rate")->capture_default_str()->check(
      CLI::Range(0.5, 600.0));
  app.add_option("--clients", clients, "Concurrent RPC clients that take the scheduled requests")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--function", function, "Guest function each request invokes (echo: 64 bytes; hash: 64 KiB)")
      ->capture_default_str()
      ->check(CLI::IsMember({"echo", "hash"}));
  app.add_option("--step-low", step_low, "Autoscaler step: the rate before the step, requests/s")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 2000.0));
  app.add_option("--step-high", step_high, "Autoscaler step: the rate after it")->capture_default_str()->check(
      CLI::Range(0.1, 2000.0));
  app.add_option("--step-seconds", step_seconds, "Seconds of each phase of the step")->capture_default_str()->check(
      CLI::Range(1.0, 600.0));
  app.add_option("--step-cooldown", cooldown_seconds, "Seconds without requests after the step (the pool shrinks)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--hold-ms", hold_ms, "Autoscaler step: how long each client holds its clone")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000));
  app.add_flag("--skip-rates", skip_rates, "Only run the autoscaler step");
  app.add_flag("--skip-step", skip_step, "Only run the request rates");
  app.add_option("--kernel", kernel, "Guest kernel (the mini guest)")->capture_default_str();
  size_t soak_requests = 0;
  app.add_option("--soak", soak_requests,
                 "After the rest, this many more requests (closed loop), printing thawd's fds and RSS every 10,000 "
                 "(0: no soak)")
      ->capture_default_str();
  size_t crash_every = 1000;
  app.add_option("--crash-every", crash_every,
                 "In the soak, every Nth request makes its guest crash (the agent's \"crash\"): it must fail as "
                 "DISCONNECTED and the pool must replace the clone (0: none)")
      ->capture_default_str();
  std::string json_path;
  bool via_thawd = false;
  app.add_flag("--via-thawd", via_thawd,
               "Lease through thawd's socket (one more hop to the template's worker) instead of the template's "
               "direct socket");
  app.add_option("--json", json_path,
                 "Also write the samples of each rate, the step's timeline and its acquire samples as JSON");
  std::vector<double> rates;
  try {
    app.parse(argc, argv);
    rates = parse_rates(rates_text);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  thaw::bench::ThawdOptions options;
  options.thawd = thawd;
  options.autoscale_period_ms = 250;
  options.pools = {thaw::bench::mini_agent_pool("rates", kernel, 4, 16),
                   thaw::bench::mini_agent_pool("step", kernel, 1, 32)};

  std::fprintf(stderr, "starting thawd (two templates of the mini guest, 128 MiB)\n");
  thaw::bench::ThawdChild daemon(options);
  try {
    daemon.start(std::chrono::seconds(60));
    daemon.wait_warm(std::chrono::seconds(60));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }

  size_t failures = 0;
  thaw::bench::JsonReport report("pool");
  if (!skip_rates) {
    std::printf("\nwarm acquire -> invoke %s -> release, open loop, %u clients, %.1f s per rate (pool 'rates': "
                "min_warm 4, max_warm 16)\n",
                function.c_str(), clients, seconds_per_rate);
    print_rate_header();
    for (double rate : rates) {
      std::fprintf(stderr, "  %.0f requests/s for %.1f s\n", rate, seconds_per_rate);
      LoadSpec spec;
      spec.socket = daemon.lease_socket("rates", via_thawd);
      spec.template_name = "rates";
      spec.function = function;
      spec.clients = clients;
      spec.phases = {{rate, seconds_per_rate}};
      auto result = thaw::bench::run_load(spec);
      print_rate_row(rate, result);
      failures += result.failures;
      const std::string at = "at " + std::to_string(static_cast<int>(rate)) + "/s: ";
      report.samples(at + "acquire", result.acquire_ms);
      report.samples(at + "acquire in thawd", result.acquire_in_thawd_ms);
      report.samples(at + "invoke", result.invoke_ms);
      report.samples(at + "release", result.release_ms);
      report.value(at + "misses", static_cast<double>(result.misses));
      if (rate == 100) {
        auto a = thaw::bench::summarize(result.acquire_ms);
        std::printf("        target at 100/s: acquire p50 <= 0.200 ms (%s), p99 <= 1.000 ms (%s)\n",
                    a.median_ms <= 0.2 ? "met" : "missed", a.p99_ms <= 1.0 ? "met" : "missed");
      }
    }
    std::printf("  late = requests that started more than 1 ms after their scheduled time (the clients fell behind)\n");
    try {
      auto floor = thaw::bench::summarize(
          thaw::bench::null_rpc_round_trips(daemon.lease_socket("rates", via_thawd), "rates", 200,
                                            std::chrono::milliseconds(10)));
      std::printf("  floor: a null RPC (Vm.info, answered on thawd's loop, no VM touched) after 10 ms idle: "
                  "min %.3f, p50 %.3f, p99 %.3f ms\n",
                  floor.min_ms, floor.median_ms, floor.p99_ms);
    } catch (const kj::Exception& e) {
      std::printf("  floor: not measured: %s\n", e.getDescription().cStr());
      ++failures;
    }
  }

  if (!skip_step) {
    std::printf("\nautoscaler step: %.0f -> %.0f requests/s, %.0f s each, clones held %llu ms, then %.0f s idle (pool "
                "'step': min_warm 1, max_warm 32, autoscaler period 250 ms)\n",
                step_low, step_high, step_seconds, static_cast<unsigned long long>(hold_ms), cooldown_seconds);
    std::fprintf(stderr, "  step %.0f -> %.0f requests/s\n", step_low, step_high);
    LoadSpec spec;
    spec.socket = daemon.lease_socket("step", via_thawd);
    spec.template_name = "step";
    spec.function = "";  // acquire, hold, release: the pool's size is what is measured
    spec.hold_ms = hold_ms;
    spec.clients = std::max(clients, 16u);
    spec.phases = {{step_low, step_seconds}, {step_high, step_seconds}, {0, cooldown_seconds}};
    spec.timeline_period = std::chrono::milliseconds(250);
    auto result = thaw::bench::run_load(spec);
    failures += result.failures;
    report.samples("step: acquire", result.acquire_ms);
    std::printf("%7s %7s %9s %7s %6s %7s %7s\n", "t s", "rate/s", "acquires", "misses", "warm", "leased", "target");
    for (const auto& p : result.timeline) {
      const std::string at = "step t=" + std::to_string(p.t_seconds).substr(0, 5) + "s: ";
      report.value(at + "warm", p.warm);
      report.value(at + "leased", p.leased);
      report.value(at + "target", p.target);
      report.value(at + "misses", static_cast<double>(p.misses));
      std::printf("%7.2f %7.0f %9llu %7llu %6u %7u %7u\n", p.t_seconds, p.offered_rate,
                  static_cast<unsigned long long>(p.acquires), static_cast<unsigned long long>(p.misses), p.warm,
                  p.leased, p.target);
    }
    // Settled: the second half of the high phase.
    uint64_t late_misses = 0, late_acquires = 0;
    for (const auto& p : result.timeline) {
      if (p.t_seconds > step_seconds * 1.5 && p.t_seconds <= step_seconds * 2 + 0.5) {
        late_misses += p.misses;
        late_acquires += p.acquires;
      }
    }
    auto a = thaw::bench::summarize(result.acquire_ms);
    std::printf("  acquire ms min/p50/p99 over the whole step: %.3f / %.3f / %.3f; hits %llu, misses %llu\n", a.min_ms,
                a.median_ms, a.p99_ms, static_cast<unsigned long long>(result.hits),
                static_cast<unsigned long long>(result.misses));
    std::printf("  settled (second half of the high phase): %llu misses in %llu acquires (target: 0) -> %s\n",
                static_cast<unsigned long long>(late_misses), static_cast<unsigned long long>(late_acquires),
                late_misses == 0 ? "met" : "missed");
    if (result.failures > 0) std::printf("  %zu failed; first: %s\n", result.failures, result.first_failure.c_str());
  }

  if (soak_requests > 0) {
    failures += soak(daemon.lease_socket("rates", via_thawd), daemon.pid(), soak_requests, clients, function,
                     crash_every, report);
  }

  std::printf("\nQEMU has no warm pool to run the same load on; thaw_bench_restore compares its -incoming restore.\n");
  int status = daemon.stop();
  if (status != 0) std::fprintf(stderr, "thawd exited with %d; its log:\n%s\n", status, daemon.log_text().c_str());
  return failures == 0 && status == 0 && report.write(json_path) ? 0 : 1;
}
