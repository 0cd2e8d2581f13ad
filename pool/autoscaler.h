// How many warm clones a template's pool should hold. Pure functions and a
// small rate estimator, so the policy is unit-testable without KVM:
//
//   demand = ceil(arrival_rate_per_s * (refill_seconds + stall_seconds)) + headroom
//   target = clamp(demand, min_warm, max_warm)
//   then limited by the memory budget: warm + leased clones together may
//   use at most memory_budget_mib of private memory, at the estimated
//   private MiB per clone.
//
// Refill runs one restore at a time, so rate * refill time is the number of
// acquires that arrive while one clone is being restored. stall_seconds
// adds the acquires that arrive while the host holds up refills and resets
// for a moment (a descheduled thread, a slow page fault): at a steady rate
// those, not the restore time, are what empties a small pool.
#pragma once

#include <cstdint>
#include <string>

#include "pool/pool_types.h"

namespace thaw::pool {

struct AutoscaleInput {
  PoolPolicy policy;
  double arrival_rate_per_s = 0;  // acquires per second, smoothed
  double refill_seconds = 0;      // one restore, smoothed
  uint32_t headroom = 1;
  double stall_seconds = 0;          // host stalls to ride out without a miss
  double private_mib_per_clone = 1;  // measured (peak) or estimated; > 0
  uint32_t leased = 0;               // leased clones count against the budget too
};

struct AutoscaleDecision {
  uint32_t target = 0;         // warm clones to keep
  uint32_t demand = 0;         // before min/max and the budget
  uint32_t budget_clones = 0;  // most clones (warm + leased) the budget allows
  bool budget_limited = false;  // the budget cut the target below clamp(demand)
};

AutoscaleDecision autoscale(const AutoscaleInput& input);
// Most clones, warm and leased together, that `policy`'s memory budget holds
// at `private_mib_per_clone` (taken as 1 when not above 0).
uint32_t budget_clones(const PoolPolicy& policy, double private_mib_per_clone);
// How many VM shells (vmm/vm_shells.h) a pool keeps ready for its coming
// restores: one for each clone it may still make, no more. That is the
// clones it may hold (max_warm warm ones; fewer where the budget holds
// fewer) less those it has (`clones`: restored and not yet destroyed), at most
// `cap`. A shell beyond it would never be used and only hold kernel memory.
uint32_t prepared_shell_count(const PoolPolicy& policy, double private_mib_per_clone, uint32_t clones, uint32_t cap);
// One line for the log: "target 4 (demand 3: rate 12.00/s x (refill 0.050 s + stall 0.020 s) + 1; ...)".
std::string describe(const AutoscaleInput& input, const AutoscaleDecision& decision);

// Exponentially weighted moving average of an event rate, fed with counts
// per interval. The first sample is taken as it is.
class RateEstimator {
 public:
  static constexpr double kNegligibleRatePerS = 0.05;  // smoothed rates below this read as 0
  explicit RateEstimator(double alpha = 0.3) : alpha_(alpha) {}
  void add_interval(uint64_t events, double seconds);
  double rate() const { return rate_; }

 private:
  double alpha_;
  double rate_ = 0;
  bool primed_ = false;
};

// The same smoothing for a duration sample (e.g. restore seconds).
class DurationEstimator {
 public:
  explicit DurationEstimator(double initial_seconds, double alpha = 0.3) : alpha_(alpha), value_(initial_seconds) {}
  void add_sample(double seconds);
  double seconds() const { return value_; }
  bool has_samples() const { return primed_; }  // false: seconds() is still the initial guess

 private:
  double alpha_;
  double value_;
  bool primed_ = false;
};

}  // namespace thaw::pool
