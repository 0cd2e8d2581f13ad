// The function runtime through the real thawd: a user's static program as a
// template, requests as acquire -> invoke("run", payload) -> release over
// the real Cap'n Proto RPC, side by side with the same program started as a
// host process (fork + exec + pipe) on the same input, the template's cold
// start, and `thaw run` (no daemon) for syscalls and VM exits per request.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/json_report.h"
#include "bench/process_timer.h"
#include "bench/thawd_child.h"
#include "rpc/pool_client.h"
#include "vmm/kvm_host_check.h"

namespace {

using thaw::bench::samples_json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Case {
  std::string label;      // "busybox sha256sum, 4 KiB"
  std::string pool;       // thawd template
  std::string payload;    // file with the request
  std::vector<std::string> host_argv;   // the same program on the host
  std::vector<std::string> run_args;    // thaw run: --program ... --arg ...
};

struct CaseResult {
  std::vector<double> request_ms, acquire_ms, invoke_ms, release_ms;
  thaw::bench::Series host;
  double cold_ms = 0;
  nlohmann::json thaw_run;  // the `thaw run --json` summary
  size_t failures = 0;
  std::string first_failure;
  bool matches_host = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + ("'" + a + "'");
  return line;
}

// One acquire -> invoke -> release; throws on an RPC or program failure.
std::string one_request(thaw::rpc::PoolConnection& conn, const Case& c, const std::string& payload, CaseResult& r) {
  auto& ws = conn.wait_scope();
  const auto t0 = Clock::now();
  auto acq = conn.pool().acquireRequest();
  acq.setTemplate(c.pool);
  acq.setLeaseMs(30000);
  acq.setTimeoutMs(5000);
  auto vm = acq.send().wait(ws).getVm();
  const double acquire_ms = ms_since(t0);
  const auto t1 = Clock::now();
  auto inv = vm.invokeRequest();
  inv.setFunction("run");
  inv.setPayload(kj::arrayPtr(reinterpret_cast<const kj::byte*>(payload.data()), payload.size()));
  inv.setTimeoutMs(10000);
  auto reply = inv.send().wait(ws);
  const double invoke_ms = ms_since(t1);
  const double request_ms = ms_since(t0);
  if (reply.getStatus() != 0) throw std::runtime_error("program status " + std::to_string(reply.getStatus()));
  auto out = reply.getPayload();
  std::string stdout_text(reinterpret_cast<const char*>(out.begin()), out.size());
  const auto t2 = Clock::now();
  vm.releaseRequest().send().wait(ws);
  r.acquire_ms.push_back(acquire_ms);
  r.invoke_ms.push_back(invoke_ms);
  r.request_ms.push_back(request_ms);
  r.release_ms.push_back(ms_since(t2));
  return stdout_text;
}

void row(const char* name, const thaw::bench::Summary& s) {
  std::printf("  %-42s %9.3f %9.3f %9.3f   (%zu)\n", name, s.min_ms, s.median_ms, s.p99_ms, s.runs);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The function runtime through the real thawd: busybox sha256sum of 4 and 64 KiB and a Lua handler as\n"
               "program templates, request -> response over the real RPC, beside the same program as a host process."};
  unsigned requests = 300, host_runs = 200, run_requests = 100;
  std::string busybox = "/bin/busybox", lua = THAW_LUA, json_path;
  app.add_option("--requests", requests, "acquire -> invoke -> release cycles per case")->capture_default_str();
  app.add_option("--host-runs", host_runs, "Host process runs per case")->capture_default_str();
  app.add_option("--run-requests", run_requests, "Warm requests of the `thaw run` row")->capture_default_str();
  app.add_option("--busybox", busybox, "A static busybox")->capture_default_str();
  app.add_option("--lua", lua, "thaw-lua, the static Lua interpreter (empty: no Lua case)")->capture_default_str();
  app.add_option("--json", json_path, "Also write every sample and summary to this file as JSON");
  CLI11_PARSE(app, argc, argv);

  if (auto host = thaw::vmm::check_kvm_host(); !host.device_usable) {
    std::fprintf(stderr, "thaw-bench-program: this host cannot run VMs:\n");
    for (const auto& line : host.explain()) std::fprintf(stderr, "  - %s\n", line.c_str());
    return 3;
  }
  if (::access(busybox.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "thaw-bench-program: %s is missing (apt-get install busybox-static)\n", busybox.c_str());
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("thaw-bench-program-" + std::to_string(::getpid()));
  fs::create_directories(dir / "lua");
  for (size_t size : {4096u, 65536u}) {
    std::ofstream out(dir / ("payload-" + std::to_string(size)), std::ios::binary);
    for (size_t i = 0; i < size; ++i) out.put(static_cast<char>((i * 31 + 7) & 0xff));
  }
  // A handler a FaaS user might write: parse numbers, answer with a summary.
  std::ofstream(dir / "lua" / "handler.lua")
      << "return function(body)\n  local n, sum = 0, 0\n  for x in body:gmatch('%d+') do n = n + 1; sum = sum + tonumber(x) end\n"
         "  return string.format('%d numbers, sum %d\\n', n, sum)\nend\n";
  {
    std::ofstream out(dir / "payload-lua");
    for (int i = 0; i < 500; ++i) out << i * 7 << (i % 10 == 9 ? "\n" : " ");
  }
  const bool with_lua = !lua.empty() && ::access(lua.c_str(), X_OK) == 0;

  thaw::bench::ThawdOptions options;
  options.thawd = THAWD;
  auto program_pool = [](const std::string& name, const std::string& program, std::vector<std::string> args,
                         const std::string& files) {
    thaw::daemon::PoolConfig pool;
    pool.spec.name = name;
    pool.spec.kernel = THAW_MINI_GUEST;
    pool.spec.cmdline = "console=ttyS0 thaw.quiet=1";
    pool.spec.mem_mib = 64;
    pool.spec.program = program;
    pool.spec.args = std::move(args);
    pool.spec.files_dir = files;
    pool.policy = thaw::pool::PoolPolicy{2, 4, 1024};
    return pool;
  };
  options.pools.push_back(program_pool("sha", busybox, {"sha256sum"}, ""));
  if (with_lua) options.pools.push_back(program_pool("lua", lua, {"/handler.lua"}, (dir / "lua").string()));

  std::vector<Case> cases;
  for (size_t size : {4096u, 65536u}) {
    const std::string payload = (dir / ("payload-" + std::to_string(size))).string();
    cases.push_back({"busybox sha256sum, " + std::to_string(size / 1024) + " KiB", "sha", payload,
                     {busybox, "sha256sum"}, {"--program", busybox, "--arg", "sha256sum"}});
  }
  if (with_lua) {
    cases.push_back({"Lua handler (thaw-lua), 2 KiB of numbers", "lua", (dir / "payload-lua").string(),
                     {lua, (dir / "lua" / "handler.lua").string()},
                     {"--program", lua, "--files", (dir / "lua").string(), "--arg", "/handler.lua"}});
  }

  std::fprintf(stderr, "thaw-bench-program: starting thawd (%zu program templates: cold boot to the ready point)\n",
               options.pools.size());
  thaw::bench::ThawdChild daemon(options);
  std::vector<CaseResult> results(cases.size());
  try {
    daemon.start(std::chrono::seconds(60));
    daemon.wait_warm(std::chrono::seconds(60));
    thaw::rpc::PoolConnection conn(daemon.socket());
    auto listed = conn.pool().listTemplatesRequest().send().wait(conn.wait_scope());  // owns the readers below
    auto list = listed.getTemplates();
    for (size_t i = 0; i < cases.size(); ++i) {
      auto& r = results[i];
      const auto& c = cases[i];
      for (auto t : list) {
        if (std::string(t.getName().cStr()) == c.pool) r.cold_ms = t.getColdBootMs();
      }
      const std::string payload = read_file(c.payload);
      auto [expected, host_rc] = thaw::bench::capture_stdout(command_line(c.host_argv) + " <" + c.payload);
      std::fprintf(stderr, "[%zu/%zu] %s: host process x%u, thawd x%u, thaw run x%u\n", i + 1, cases.size(),
                   c.label.c_str(), host_runs, requests, run_requests);
      r.host = thaw::bench::time_series("host process", c.host_argv, host_runs, 0, false, c.payload);
      for (unsigned n = 0; n < requests; ++n) {
        try {
          std::string out = one_request(conn, c, payload, r);
          if (n == 0) r.matches_host = host_rc == 0 && out == expected;
        } catch (const std::exception& e) {
          if (r.failures++ == 0) r.first_failure = e.what();
        }
      }
      std::vector<std::string> run = {THAW_CLI, "run", "--json", "--payload-file", c.payload, "--repeat",
                                      std::to_string(run_requests)};
      run.insert(run.end(), c.run_args.begin(), c.run_args.end());
      auto [json_text, rc] = thaw::bench::capture_stdout(command_line(run) + " 2>/dev/null");
      r.thaw_run = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
      if (rc != 0 && r.failures++ == 0) r.first_failure = "thaw run exited " + std::to_string(rc);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thaw-bench-program: %s\n%s\n", e.what(), daemon.log_text().c_str());
    fs::remove_all(dir);
    return 1;
  }
  const int daemon_status = daemon.stop();

  nlohmann::json report = nlohmann::json::array();
  size_t failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto& r = results[i];
    failures += r.failures + (r.matches_host ? 0 : 1);
    const auto request = thaw::bench::summarize(r.request_ms);
    std::printf("\n%s, milliseconds\n  %-42s %9s %9s %9s\n", c.label.c_str(), "", "min", "median", "p99");
    row("host process (fork + exec + pipe)", r.host.summary);
    std::printf("  %-42s %9.3f   (thawd: boot + program init to ready)\n", "template cold start", r.cold_ms);
    row("thawd request -> response (acquire+invoke)", request);
    row("  of which acquire (RPC)", thaw::bench::summarize(r.acquire_ms));
    row("  of which invoke run (RPC + guest)", thaw::bench::summarize(r.invoke_ms));
    row("release (RPC)", thaw::bench::summarize(r.release_ms));
    if (r.thaw_run.is_object()) {
      auto warm = r.thaw_run["warm"];
      std::printf("  %-42s %9.3f %9.3f %9.3f   (%u)\n", "thaw run warm request (no daemon)",
                  warm["min_ms"].get<double>(), warm["median_ms"].get<double>(), warm["p99_ms"].get<double>(),
                  run_requests);
      std::printf("  per request: %llu syscalls, %llu VM exits to thaw",
                  r.thaw_run["syscalls_per_request"].get<unsigned long long>(),
                  r.thaw_run.value("vm_exits_per_request", 0ull));
      // KVM's own counters: on PVM each emulated instruction is guest ring 0
      // (~0.7 us each), and each page fault a shadow-MMU fill.
      const auto kvm = r.thaw_run.value("kvm_counters_per_request", nlohmann::json::object());
      if (!kvm.empty()) {
        std::printf("; in KVM: %.0f exits, %.0f page faults, %.0f instructions emulated (guest ring 0)",
                    kvm.value("exits", 0.0), kvm.value("pf_taken", 0.0), kvm.value("insn_emulation", 0.0));
      }
      std::printf("\n");
    }
    if (request.median_ms > 0) {
      std::printf("  host process / thawd request (medians): %.2fx; cold / thawd request: %.1fx\n",
                  r.host.summary.median_ms / request.median_ms, r.cold_ms / request.median_ms);
    }
    std::printf("  output equals the host's: %s; failures: %zu%s%s\n", r.matches_host ? "yes" : "NO", r.failures,
                r.failures ? ": " : "", r.first_failure.c_str());
    report.push_back({{"case", c.label},
                      {"host_process", samples_json(r.host.samples_ms)},
                      {"template_cold_ms", r.cold_ms},
                      {"request", samples_json(r.request_ms)},
                      {"acquire", samples_json(r.acquire_ms)},
                      {"invoke", samples_json(r.invoke_ms)},
                      {"release", samples_json(r.release_ms)},
                      {"thaw_run", r.thaw_run},
                      {"matches_host", r.matches_host},
                      {"failures", r.failures}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << report.dump(2) << "\n";
  fs::remove_all(dir);
  return failures == 0 && daemon_status == 0 ? 0 : 1;
}
