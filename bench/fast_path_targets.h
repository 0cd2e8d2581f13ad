// Issue 12's targets for the restore fast path and density, checked against
// the --json results of one run of thaw_bench_restore and thaw_bench_density
// (bench/fast_path_targets.sh makes both, then thaw_bench_targets reads them).
// Pure: JSON in, verdicts out, so the checks are tested without a VM.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace thaw::bench {

struct TargetCheck {
  std::string what;            // "restore -> first guest instruction, median"
  std::string goal;            // "<= 1 ms"
  std::optional<double> value; // absent: that figure is not in the results
  std::string unit;            // "ms", "/s", "x", "MiB"
  std::string source;          // the row or value it was read from
  bool met = false;
};

// `restore` and `density` are the two benchmarks' --json documents. The
// restore rows are those of the pool's own way to restore on the results'
// KVM backend: into a prepared VM shell on PVM, without one elsewhere
// (pool/warm_pool.cpp). Throws std::invalid_argument naming what is wrong
// when a document is not that benchmark's result.
std::vector<TargetCheck> check_fast_path_targets(const nlohmann::json& restore, const nlohmann::json& density);

// The table a person reads: one line a target, and a last line counting.
std::string describe(const std::vector<TargetCheck>& checks);

// The checks as JSON, for the combined result file.
nlohmann::json to_json(const std::vector<TargetCheck>& checks);

}  // namespace thaw::bench
