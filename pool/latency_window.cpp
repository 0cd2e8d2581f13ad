#include "pool/latency_window.h"

#include <algorithm>
#include <cmath>

namespace thaw::pool {

LatencyWindow::LatencyWindow(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {
  ring_.reserve(capacity_);
}

void LatencyWindow::add(double ms) {
  if (!(ms >= 0)) return;
  if (ring_.size() < capacity_) {
    ring_.push_back(ms);
  } else {
    ring_[next_] = ms;
  }
  next_ = (next_ + 1) % capacity_;
  ++count_;
}

LatencySummary LatencyWindow::summary() const {
  LatencySummary s;
  s.count = count_;
  if (ring_.empty()) return s;
  std::vector<double> sorted = ring_;
  std::sort(sorted.begin(), sorted.end());
  // Nearest rank: the smallest sample with at least p of the samples at or below it.
  auto rank = [&](double p) {
    auto at = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return sorted[std::clamp<size_t>(at, 1, sorted.size()) - 1];
  };
  s.min_ms = sorted.front();
  s.median_ms = rank(0.5);
  s.p99_ms = rank(0.99);
  return s;
}

}  // namespace thaw::pool
