// A benchmark's results as JSON (--json FILE), for plotting and for tools:
// each row under its name with the raw samples and min/median/p99 in
// milliseconds, plus plain values (ratios, rates, sizes).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/sample_summary.h"

namespace thaw::bench {

// {min_ms, median_ms, p99_ms, runs}
nlohmann::json summary_json(const SampleSummary& summary);
// The same plus the samples themselves (samples_ms).
nlohmann::json samples_json(const std::vector<double>& samples_ms);

// Where a result was measured, so results from different machines and
// builds are not compared blindly: kernel, CPU model, KVM backend, cores,
// thaw's version and commit, and the UTC time.
nlohmann::json environment_json();

// /proc/meminfo in KiB by key ("MemAvailable", "Slab", "KernelStack"): what
// the host pays for what a benchmark holds, kernel memory included.
std::map<std::string, double> host_meminfo_kib();

class JsonReport {
 public:
  explicit JsonReport(std::string benchmark);  // with environment_json()
  // rows[name] = {samples_ms, min_ms, median_ms, p99_ms, runs}
  void samples(const std::string& name, const std::vector<double>& samples_ms);
  // values[name] = value
  void value(const std::string& name, double value);
  // Writes the report when `path` is not empty; false (and a message on
  // stderr) when it cannot.
  bool write(const std::string& path) const;

 private:
  nlohmann::ordered_json root_;  // rows in the order they were measured
};

}  // namespace thaw::bench
