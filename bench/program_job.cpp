#include "bench/program_job.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bench/process_timer.h"

namespace thaw::bench {

namespace {

SampleSummary summary_of(const nlohmann::json& j) {
  std::vector<double> samples = j.at("samples_ms").get<std::vector<double>>();
  return summarize_samples(std::move(samples));
}

}  // namespace

ProgramJobResult run_program_job(const ProgramJobSpec& spec) {
  ProgramJobResult result;
  struct stat st {};
  if (::stat(spec.program.c_str(), &st) != 0) {
    result.skipped = spec.program + " is missing (apt-get install busybox-static)";
    return result;
  }
  char dir_template[] = "/tmp/thaw-program-job-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) {
    result.failure = "mkdtemp failed";
    return result;
  }
  const std::string dir = dir_template;
  const std::string payload = dir + "/payload";
  {
    std::ofstream out(payload, std::ios::binary);
    for (size_t i = 0; i < spec.payload_bytes; ++i) out.put(static_cast<char>((i * 31 + 7) & 0xff));
  }

  auto [expected, host_rc] = capture_stdout(spec.program + " " + spec.applet + " < " + payload);
  auto host = time_series("host process", {spec.program, spec.applet}, spec.host_runs, 0, false, payload);
  result.host_process = host.summary;

  const std::string line = spec.thaw_cli + " run --program " + spec.program + " --arg " + spec.applet +
                           " --payload-file " + payload + " --repeat " + std::to_string(spec.warm_requests) +
                           " --cold-runs " + std::to_string(spec.cold_runs) + " --json 2>" + dir + "/stderr";
  auto [json_text, rc] = capture_stdout(line);
  auto parsed = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (rc != 0 || parsed.is_discarded()) {
    std::ifstream err(dir + "/stderr");
    std::string why((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    result.failure = "thaw run exited " + std::to_string(rc) + ": " + why;
  } else {
    result.cold = summary_of(parsed.at("cold"));
    result.warm = summary_of(parsed.at("warm"));
    result.reset = summary_of(parsed.at("reset"));
    result.syscalls_per_request = parsed.at("syscalls_per_request").get<double>();
    result.output_matches_host = host_rc == 0 && parsed.at("stdout_text").get<std::string>() == expected;
    if (!result.output_matches_host) result.failure = "the clone's output differs from the host's busybox";
  }
  std::remove(payload.c_str());
  std::remove((dir + "/stderr").c_str());
  ::rmdir(dir.c_str());
  return result;
}

void print_program_job(const ProgramJobSpec& spec, const ProgramJobResult& r) {
  std::printf("\nthaw: a real program, `%s %s` of %zu bytes from stdin (static, unmodified), milliseconds\n",
              spec.program.c_str(), spec.applet.c_str(), spec.payload_bytes);
  if (!r.skipped.empty()) {
    std::printf("  skipped: %s\n", r.skipped.c_str());
    return;
  }
  auto row = [](const char* name, const SampleSummary& s) {
    std::printf("  %-38s %9.3f %9.3f %9.3f   (%zu)\n", name, s.min_ms, s.median_ms, s.p99_ms, s.runs);
  };
  std::printf("  %-38s %9s %9s %9s\n", "", "min", "median", "p99");
  row("host process (fork + exec + pipe)", r.host_process);
  if (r.cold.runs > 0) {
    row("cold start in thaw (boot, init, request)", r.cold);
    row("warm request (clone of the ready point)", r.warm);
    row("reset to the snapshot (after each)", r.reset);
    if (r.warm.median_ms > 0) {
      std::printf("  cold / warm: %.1fx; host process / warm: %.2fx (medians); %.0f syscalls per request\n",
                  r.cold.median_ms / r.warm.median_ms, r.host_process.median_ms / r.warm.median_ms,
                  r.syscalls_per_request);
    }
    std::printf("  output equals the host's busybox: %s\n", r.output_matches_host ? "yes" : "NO");
  }
  if (!r.failure.empty()) std::printf("  FAILED: %s\n", r.failure.c_str());
}

}  // namespace thaw::bench
