// The most recent N durations of one kind (restores, resets), summarised as
// min / median / p99 for stats. A fixed ring, so a long-running daemon's
// figures follow what it does now, and memory stays bounded. Not
// thread-safe: WarmPool keeps it under its own lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pool/pool_types.h"

namespace thaw::pool {

class LatencyWindow {
 public:
  explicit LatencyWindow(size_t capacity = 512);
  // Negative or NaN samples are ignored.
  void add(double ms);
  LatencySummary summary() const;

 private:
  size_t capacity_;
  std::vector<double> ring_;
  size_t next_ = 0;
  uint64_t count_ = 0;
};

}  // namespace thaw::pool
