// min, median, p99 (nearest rank) and mean of latency samples in
// milliseconds: the one summary every benchmark and report prints.
#pragma once

#include <cstddef>
#include <vector>

namespace thaw {

struct SampleSummary {
  double min_ms = 0, median_ms = 0, p99_ms = 0, mean_ms = 0;
  size_t runs = 0;
};

// Nearest-rank percentiles; all zero for no samples.
SampleSummary summarize_samples(std::vector<double> samples_ms);

}  // namespace thaw
