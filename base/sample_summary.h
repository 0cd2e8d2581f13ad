// min, median, p99 (nearest rank) and mean of latency samples in
// milliseconds: the one summary every benchmark and report prints.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace thaw {

struct SampleSummary {
  double min_ms = 0, median_ms = 0, p99_ms = 0, mean_ms = 0;
  size_t runs = 0;
};

// A duration in milliseconds, the unit every report prints.
inline double to_ms(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentiles; all zero for no samples.
SampleSummary summarize_samples(std::vector<double> samples_ms);

}  // namespace thaw
