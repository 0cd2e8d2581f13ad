// thaw's main job: build a template from the mini guest, start the real
// thawd, drive acquire -> invoke -> release through the real RPC from several
// concurrent clients, and print cold boot versus warm clones.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/json_report.h"
#include "bench/pool_load.h"
#include "bench/program_job.h"
#include "bench/process_timer.h"
#include "bench/thawd_child.h"
#include "rpc/convert.h"
#include "rpc/pool_client.h"
#include "vmm/kvm_host_check.h"

namespace {

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
  CLI::App app{"thaw's main job: a template from the mini guest (or, --guest linux, a Linux one), the real thawd,\n"
               "and a short load through the real Cap'n Proto RPC (acquire -> invoke -> release), then cold boot\n"
               "versus warm clones."};
  size_t total = 1000;
  unsigned clients = 4;
  unsigned warm = 8;
  std::string thaw_cli = THAW_CLI, thawd = THAWD, kernel = THAW_MINI_GUEST;
  app.add_option("--requests", total, "acquire -> invoke -> release cycles in all")->capture_default_str();
  app.add_option("--clients", clients, "Concurrent RPC clients")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--warm", warm, "Warm clones the pool keeps (min_warm)")->capture_default_str();
  app.add_option("--kernel", kernel, "Guest kernel (the mini guest)")->capture_default_str();
  unsigned program_requests = 200;
  app.add_option("--program-requests", program_requests, "Warm requests of the real-program step (busybox)")
      ->capture_default_str();
  std::string guest = "mini";
  app.add_option("--guest", guest,
                 "mini: the mini guest's agent (hash 64 KiB). linux: a Linux template (--linux-kernel) running "
                 "busybox sha256sum under thaw-init; needs hardware KVM")
      ->check(CLI::IsMember({"mini", "linux"}))
      ->capture_default_str();
  std::string linux_kernel = THAW_DEFAULT_LINUX_KERNEL;
  app.add_option("--linux-kernel", linux_kernel, "The Linux guest's bzImage (deploy/linux/build-kernel.sh builds it)")
      ->capture_default_str();
  bool via_thawd = false;
  app.add_flag("--via-thawd", via_thawd,
               "Lease through thawd's socket (one more hop to the template's worker) instead of the template's "
               "direct socket");
  std::string json_path;
  app.add_option("--json", json_path,
                 "Also write the results to this file as JSON: every sample of the load, and min/median/p99 of "
                 "each row");
  CLI11_PARSE(app, argc, argv);

  // Every step below runs VMs: say once, plainly, why that cannot work here
  // instead of letting each child fail on /dev/kvm.
  if (auto host = thaw::vmm::check_kvm_host(); !host.device_usable) {
    std::fprintf(stderr, "thaw-main-job: this host cannot run VMs, so the main job cannot run here:\n");
    for (const auto& line : host.explain()) std::fprintf(stderr, "  - %s\n", line.c_str());
    return 3;
  }

  const bool linux_guest = guest == "linux";
  if (linux_guest) {
    if (std::string why = thaw::bench::linux_guest_unavailable(linux_kernel); !why.empty()) {
      std::fprintf(stderr, "thaw-main-job: --guest linux cannot run here: %s\n", why.c_str());
      return why.find("--linux-kernel") != std::string::npos ? 2 : 3;
    }
  }

  thaw::bench::ThawdOptions options;
  options.thawd = thawd;
  const std::string template_name = linux_guest ? "linux" : "mini";
  options.pools.push_back(linux_guest ? thaw::bench::linux_busybox_pool(template_name, linux_kernel, warm, warm * 2)
                                      : thaw::bench::mini_agent_pool(template_name, kernel, warm, warm * 2));

  // Cold boot, whole process, for the comparison (the mini guest's; a
  // Linux template's cold boot is the template row below).
  thaw::bench::Series cold;
  if (!linux_guest) {
    std::fprintf(stderr, "[1/5] cold boot: 20 whole-process boots of the mini guest\n");
    cold = thaw::bench::time_series("cold boot", {thaw_cli, "boot", "--console", "none", "--kernel", kernel}, 20, 0,
                                    false);
  }

  std::fprintf(stderr, "[2/5] starting thawd (template: cold boot + snapshot, then %u warm clones)\n", warm);
  thaw::bench::ThawdChild daemon(options);
  double template_cold_ms = 0;
  // Linux boots for seconds (minutes on an emulated CPU) before thawd listens.
  const auto start_timeout = std::chrono::seconds(linux_guest ? 900 : 60);
  try {
    daemon.start(start_timeout);
    daemon.wait_warm(start_timeout);
    thaw::rpc::PoolConnection conn(daemon.socket());
    auto listed = conn.pool().listTemplatesRequest().send().wait(conn.wait_scope());  // owns the reader below
    auto list = listed.getTemplates();
    if (list.size() > 0) template_cold_ms = list[0].getColdBootMs();

  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  // A FaaS backend after latency leases on the template's own socket, which
  // its worker serves without thawd's hop (README, "Security model").
  std::string socket;
  try {
    socket = daemon.lease_socket(template_name, via_thawd);
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "listing templates: %s\n", e.getDescription().cStr());
    return 1;
  }
  const std::string path_taken = socket == daemon.socket() ? "thawd's socket" : "the template's direct socket";

  const char* function = linux_guest ? "run" : "hash";
  std::fprintf(stderr, "[3/5] load: %zu acquire -> invoke(%s) -> release from %u clients\n", total, function, clients);
  thaw::bench::LoadSpec load;
  load.socket = socket;
  load.template_name = template_name;
  load.function = function;
  load.clients = clients;
  load.closed_loop_requests = total;
  load.on_progress = [](size_t done, size_t all) {
    if (done % 100 == 0 || done == all) std::fprintf(stderr, "\r  %zu/%zu", done, all);
  };
  thaw::bench::LoadResult samples;
  try {
    samples = thaw::bench::run_load(load);
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "\nload: %s\n", e.getDescription().cStr());
    return 1;
  }
  std::fprintf(stderr, "\n[4/5] stats and shutdown\n");
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

  std::printf("\nthaw: cold boot versus warm clones (%s, 128 MiB; leases through %s), milliseconds\n",
              linux_guest ? "Linux guest, busybox sha256sum" : "mini guest", path_taken.c_str());
  std::printf("  %-38s %9s %9s %9s\n", "", "min", "median", "p99");
  if (!linux_guest) {
    std::printf("  %-38s %9.3f %9.3f %9.3f   (%zu)\n", "cold boot, whole process", cold.summary.min_ms,
                cold.summary.median_ms, cold.summary.p99_ms, cold.summary.runs);
  }
  std::printf("  %-38s %9.3f   (template: cold boot to boot-complete in thawd)\n", "template cold boot", template_cold_ms);
  latency_row("restore of a clone (thawd, background)", stats.restore_ms);
  row("warm acquire (RPC, until running)", samples.acquire_ms);
  row("  of which thawd's own time", samples.acquire_in_thawd_ms);
  row(linux_guest ? "invoke run(64 B), RPC + vsock" : "invoke hash(64 KiB), RPC + vsock", samples.invoke_ms);
  row("  of which the guest's own time", samples.guest_ms);
  row("release (RPC round trip)", samples.release_ms);
  latency_row("reset in place (thawd, background)", stats.reset_ms);
  std::printf("  private guest memory per clone: %.3f MiB (%u clones, smaps)\n", private_mib_per_clone, clones);
  std::printf("  pool: %llu hits, %llu misses, %llu overloaded; %llu restores, %llu resets, %llu destroyed\n",
              static_cast<unsigned long long>(stats.hits), static_cast<unsigned long long>(stats.misses),
              static_cast<unsigned long long>(stats.overloaded), static_cast<unsigned long long>(stats.restores),
              static_cast<unsigned long long>(stats.resets), static_cast<unsigned long long>(stats.destroyed));
  std::printf("  failures: %zu%s%s\n", samples.failures, samples.failures ? ": " : "", samples.first_failure.c_str());

  thaw::bench::ProgramJobSpec program;
  program.thaw_cli = thaw_cli;
  program.warm_requests = program_requests;
  thaw::bench::ProgramJobResult program_result;
  if (linux_guest) {
    program_result.skipped = "the Linux guest ran the program in the load above";
  } else {
    std::fprintf(stderr, "[5/5] a real program: %s %s through thaw run (%u warm requests)\n",
                 program.program.c_str(), program.applet.c_str(), program.warm_requests);
    program_result = thaw::bench::run_program_job(program);
    thaw::bench::print_program_job(program, program_result);
  }
  if (!json_path.empty()) {
    using thaw::bench::samples_json;
    using thaw::bench::summary_json;
    auto latency = [](const thaw::pool::LatencySummary& l) {
      return nlohmann::json{{"min_ms", l.min_ms}, {"median_ms", l.median_ms}, {"p99_ms", l.p99_ms}, {"count", l.count}};
    };
    nlohmann::json out = {
        {"guest", guest},
        {"leases_through", path_taken},
        {"environment", thaw::bench::environment_json()},
        {"cold_boot_whole_process", summary_json(cold.summary)},
        {"template_cold_boot_ms", template_cold_ms},
        {"restore_in_thawd", latency(stats.restore_ms)},
        {"acquire", samples_json(samples.acquire_ms)},
        {"acquire_in_thawd", samples_json(samples.acquire_in_thawd_ms)},
        {linux_guest ? "invoke_run_64b" : "invoke_hash_64k", samples_json(samples.invoke_ms)},
        {"invoke_guest", samples_json(samples.guest_ms)},
        {"release", samples_json(samples.release_ms)},
        {"reset_in_thawd", latency(stats.reset_ms)},
        {"private_mib_per_clone", private_mib_per_clone},
        {"hits", stats.hits},
        {"misses", stats.misses},
        {"failures", samples.failures},
        {"program",
         {{"program", program.program},
          {"applet", program.applet},
          {"payload_bytes", program.payload_bytes},
          {"skipped", program_result.skipped},
          {"failure", program_result.failure},
          {"host_process", summary_json(program_result.host_process)},
          {"cold", summary_json(program_result.cold)},
          {"warm", summary_json(program_result.warm)},
          {"reset", summary_json(program_result.reset)},
          {"syscalls_per_request", program_result.syscalls_per_request},
          {"output_matches_host", program_result.output_matches_host}}},
    };
    std::ofstream(json_path) << out.dump(2) << "\n";
  }
  return samples.failures == 0 && daemon_status == 0 && program_result.failure.empty() ? 0 : 1;
}
