#include "base/sample_summary.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace thaw {

SampleSummary summarize_samples(std::vector<double> samples_ms) {
  SampleSummary s;
  s.runs = samples_ms.size();
  if (samples_ms.empty()) return s;
  std::sort(samples_ms.begin(), samples_ms.end());
  auto rank = [&](double p) {
    size_t idx = static_cast<size_t>(std::ceil(p * static_cast<double>(samples_ms.size()))) - 1;
    return samples_ms[std::min(idx, samples_ms.size() - 1)];
  };
  s.min_ms = samples_ms.front();
  s.median_ms = rank(0.5);
  s.p99_ms = rank(0.99);
  s.mean_ms = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) / static_cast<double>(samples_ms.size());
  return s;
}

}  // namespace thaw
