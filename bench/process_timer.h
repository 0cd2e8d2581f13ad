// Times whole processes (fork, exec, wait) and summarises the runs.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "base/sample_summary.h"

namespace thaw::bench {

using Summary = SampleSummary;
inline Summary summarize(std::vector<double> samples_ms) { return summarize_samples(std::move(samples_ms)); }

struct ProcessRun {
  double wall_ms = 0;
  int exit_code = -1;  // -1 when killed by a signal
};

// Runs argv once with stdout/stderr sent to /dev/null and stdin from
// `stdin_path` (empty: inherited); measures from just before fork to the
// moment wait returns.
ProcessRun time_process(const std::vector<std::string>& argv, const std::string& stdin_path = {});

// Runs argv `runs` times; a run whose exit code is not `expected_exit` is
// reported and counted as failed.
struct Series {
  std::string name;
  Summary summary;
  std::vector<double> samples_ms;  // the successful runs
  size_t failures = 0;
};
Series time_series(const std::string& name, const std::vector<std::string>& argv, size_t runs, int expected_exit,
                   bool show_progress, const std::string& stdin_path = {});

// Runs a shell command line; everything it printed on stdout, and its exit
// status (-1 when it did not exit normally).
std::pair<std::string, int> capture_stdout(const std::string& line);

// Searches PATH for `program`; empty when absent.
std::string find_in_path(const std::string& program);

}  // namespace thaw::bench
