// What the template worker processes cost a client: the same load through
// two thawds side by side, one holding every clone itself
// (template_workers = false) and one with the template in a sandboxed
// worker process (the default), in alternating rounds so that both see the
// same machine. Closed loop: acquire -> invoke -> release, back to back.
// The hop thawd -> worker is one more Cap'n Proto round trip per call on a
// unix socket; the target is an acquire median within +50 us of in-process.
// A third column: the same worker thawd, through the template's direct
// socket (the worker serves it itself: no hop).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/sample_summary.h"
#include "bench/json_report.h"
#include "bench/pool_load.h"
#include "bench/thawd_child.h"
#include "rpc/pool_client.h"

namespace {

struct Mode {
  const char* name;
  bool workers;
  std::unique_ptr<thaw::bench::ThawdChild> daemon;  // null: the previous mode's thawd
  thaw::bench::LoadResult total;
  std::string socket;
};

void append(std::vector<double>& to, const std::vector<double>& from) { to.insert(to.end(), from.begin(), from.end()); }

void print_row(const char* what, const std::vector<double>& in_thawd, const std::vector<double>& in_worker,
               const std::vector<double>& direct) {
  auto a = thaw::summarize_samples(in_thawd);
  auto b = thaw::summarize_samples(in_worker);
  auto c = thaw::summarize_samples(direct);
  std::printf("%-22s | %7.3f %7.3f %7.3f | %7.3f %7.3f %7.3f | %7.3f %7.3f %7.3f | %+6.0f %+6.0f\n", what, a.min_ms,
              a.median_ms, a.p99_ms, b.min_ms, b.median_ms, b.p99_ms, c.min_ms, c.median_ms, c.p99_ms,
              (b.median_ms - a.median_ms) * 1000, (c.median_ms - a.median_ms) * 1000);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"thaw's isolation benchmark: acquire, invoke and release through thawd with every clone in thawd's\n"
               "own process and with the template in a sandboxed worker process, side by side in one run.\n"
               "Starts two thawds with one template of the mini guest each; needs /dev/kvm."};
  size_t requests = 500;
  unsigned rounds = 4, clients = 1;
  std::string function = "echo";
  std::string thawd = THAWD, kernel = THAW_MINI_GUEST, json_path;
  app.add_option("--requests", requests, "Requests per round and mode")->capture_default_str()->check(
      CLI::Range(10, 1000000));
  app.add_option("--rounds", rounds, "Rounds; the two modes alternate within each")->capture_default_str()->check(
      CLI::Range(1, 100));
  app.add_option("--clients", clients, "Concurrent clients (1: latency without queueing)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--function", function, "Guest function (echo: 64 bytes; hash: 64 KiB)")
      ->capture_default_str()
      ->check(CLI::IsMember({"echo", "hash"}));
  app.add_option("--kernel", kernel, "Guest kernel (the mini guest)")->capture_default_str();
  app.add_option("--json", json_path, "Also write every sample and the medians as JSON");
  CLI11_PARSE(app, argc, argv);

  std::vector<Mode> modes;
  modes.push_back({"in thawd", false, nullptr, {}, {}});
  modes.push_back({"in a worker", true, nullptr, {}, {}});
  modes.push_back({"direct to the worker", true, nullptr, {}, {}});
  for (auto& mode : modes) {
    if (&mode == &modes[2]) {
      // The template's direct socket, as the worker thawd lists it.
      thaw::rpc::PoolConnection conn(modes[1].daemon->socket());
      auto list = conn.pool().listTemplatesRequest().send().wait(conn.wait_scope());
      for (auto t : list.getTemplates()) mode.socket = t.getDirectSocket().cStr();
      if (mode.socket.empty()) {
        std::fprintf(stderr, "the worker thawd lists no direct socket for the template\n");
        return 1;
      }
      continue;
    }
    thaw::bench::ThawdOptions options;
    options.thawd = thawd;
    options.template_workers = mode.workers;
    options.pools = {thaw::bench::mini_agent_pool("iso", kernel, 4, 16)};
    std::fprintf(stderr, "starting thawd with the clones %s\n", mode.name);
    mode.daemon = std::make_unique<thaw::bench::ThawdChild>(options);
    try {
      mode.daemon->start(std::chrono::seconds(60));
      mode.daemon->wait_warm(std::chrono::seconds(60));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    mode.socket = mode.daemon->socket();
  }

  size_t failures = 0;
  for (unsigned round = 0; round < rounds; ++round) {
    for (auto& mode : modes) {
      std::fprintf(stderr, "  round %u/%u: %zu requests, clones %s\n", round + 1, rounds, requests, mode.name);
      thaw::bench::LoadSpec spec;
      spec.socket = mode.socket;
      spec.template_name = "iso";
      spec.function = function;
      spec.clients = clients;
      spec.closed_loop_requests = requests;
      auto r = thaw::bench::run_load(spec);
      failures += r.failures;
      if (r.failures > 0) std::fprintf(stderr, "  %zu failed: %s\n", r.failures, r.first_failure.c_str());
      append(mode.total.acquire_ms, r.acquire_ms);
      append(mode.total.acquire_in_thawd_ms, r.acquire_in_thawd_ms);
      append(mode.total.invoke_ms, r.invoke_ms);
      append(mode.total.release_ms, r.release_ms);
    }
  }

  const auto& a = modes[0].total;
  const auto& b = modes[1].total;
  const auto& c = modes[2].total;
  std::printf("\nacquire -> invoke %s -> release, closed loop, %u client(s), %u rounds x %zu requests per mode\n",
              function.c_str(), clients, rounds, requests);
  std::printf("%-22s | %-23s | %-23s | %-23s | %-13s\n", "ms", "clones in thawd", "worker, via thawd",
              "worker, direct socket", "p50 - thawd us");
  std::printf("%-22s | %7s %7s %7s | %7s %7s %7s | %7s %7s %7s | %6s %6s\n", "", "min", "p50", "p99", "min", "p50",
              "p99", "min", "p50", "p99", "via", "direct");
  print_row("acquire (client)", a.acquire_ms, b.acquire_ms, c.acquire_ms);
  print_row("acquire (in the pool)", a.acquire_in_thawd_ms, b.acquire_in_thawd_ms, c.acquire_in_thawd_ms);
  print_row("invoke (client)", a.invoke_ms, b.invoke_ms, c.invoke_ms);
  print_row("release (client)", a.release_ms, b.release_ms, c.release_ms);
  auto median = [](const std::vector<double>& v) { return thaw::summarize_samples(v).median_ms; };
  double delta_us = (median(b.acquire_ms) - median(a.acquire_ms)) * 1000;
  double direct_us = (median(c.acquire_ms) - median(a.acquire_ms)) * 1000;
  std::printf("target: acquire p50 within +50 us of in-process: via thawd %+.0f us (%s), direct %+.0f us (%s)\n",
              delta_us, delta_us <= 50 ? "met" : "missed", direct_us, direct_us <= 50 ? "met" : "missed");

  thaw::bench::JsonReport report("isolation");
  for (const auto& mode : modes) {
    std::string prefix = std::string(mode.name) + ": ";
    report.samples(prefix + "acquire", mode.total.acquire_ms);
    report.samples(prefix + "acquire in the pool", mode.total.acquire_in_thawd_ms);
    report.samples(prefix + "invoke", mode.total.invoke_ms);
    report.samples(prefix + "release", mode.total.release_ms);
  }
  report.value("acquire p50 delta us, via thawd", delta_us);
  report.value("acquire p50 delta us, direct socket", direct_us);
  report.value("failures", static_cast<double>(failures));
  if (!report.write(json_path)) return 1;
  for (auto& mode : modes) {
    if (mode.daemon) mode.daemon->stop();
  }
  return failures == 0 ? 0 : 1;
}
