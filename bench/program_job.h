// The main job's real-program step: Debian's static busybox as the user's
// function through `thaw run` (cold start to its first stdin read, then warm
// clones of that moment), beside the same program started as a host process
// (fork + exec + pipe) on the same input.
#pragma once

#include <cstddef>
#include <string>

#include "base/sample_summary.h"

namespace thaw::bench {

struct ProgramJobSpec {
  std::string thaw_cli;                  // the thaw binary
  std::string program = "/bin/busybox";  // static; skipped (with the reason) when absent
  std::string applet = "sha256sum";
  size_t payload_bytes = 4096;
  unsigned warm_requests = 200;
  unsigned cold_runs = 5;
  unsigned host_runs = 100;
};

struct ProgramJobResult {
  std::string skipped;  // why the step did not run, or empty
  std::string failure;  // what went wrong, or empty
  SampleSummary cold, warm, reset, host_process;
  double syscalls_per_request = 0;
  bool output_matches_host = false;
};

ProgramJobResult run_program_job(const ProgramJobSpec& spec);

// The step's rows under the main job's table.
void print_program_job(const ProgramJobSpec& spec, const ProgramJobResult& result);

}  // namespace thaw::bench
