#include "bench/parallel_fill.h"

#include <algorithm>
#include <limits>

namespace thaw::bench {

std::optional<double> first_at_least(const std::vector<WarmSample>& samples, uint32_t n) {
  for (const auto& s : samples) {
    if (s.warm >= n) return s.at_s;
  }
  return std::nullopt;
}

uint32_t warm_at(const std::vector<WarmSample>& samples, double t) {
  uint32_t warm = 0;
  for (const auto& s : samples) {
    if (s.at_s > t) break;
    warm = s.warm;
  }
  return warm;
}

std::optional<ParallelFill> parallel_fill(const std::vector<std::vector<WarmSample>>& shards,
                                          const std::vector<uint32_t>& targets) {
  if (shards.size() < 2 || shards.size() != targets.size()) return std::nullopt;
  double from = 0;
  double to = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < shards.size(); ++k) {
    const auto began = first_at_least(shards[k], 1);
    const auto filled = first_at_least(shards[k], std::max<uint32_t>(targets[k], 1));
    if (!began || !filled) return std::nullopt;
    from = std::max(from, *began);
    to = std::min(to, *filled);
  }
  if (to <= from) return std::nullopt;
  ParallelFill out{from, to, 0, 0};
  int64_t added = 0;
  for (const auto& samples : shards) {
    added += static_cast<int64_t>(warm_at(samples, to)) - static_cast<int64_t>(warm_at(samples, from));
  }
  out.restored = static_cast<uint32_t>(std::max<int64_t>(added, 0));
  out.per_second = out.restored / (to - from);
  return out;
}

}  // namespace thaw::bench
