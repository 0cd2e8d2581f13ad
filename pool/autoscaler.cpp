#include "pool/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace thaw::pool {

namespace {

uint32_t saturate_u32(double v) {
  if (!(v > 0)) return 0;  // also NaN
  if (v >= static_cast<double>(std::numeric_limits<uint32_t>::max())) return std::numeric_limits<uint32_t>::max();
  return static_cast<uint32_t>(v);
}

}  // namespace

AutoscaleDecision autoscale(const AutoscaleInput& in) {
  AutoscaleDecision d;
  const double exposed_seconds = std::max(0.0, in.refill_seconds) + std::max(0.0, in.stall_seconds);
  double backlog = std::ceil(std::max(0.0, in.arrival_rate_per_s) * exposed_seconds);
  d.demand = saturate_u32(backlog + static_cast<double>(in.headroom));
  uint32_t lo = std::min(in.policy.min_warm, in.policy.max_warm);
  uint32_t clamped = std::clamp(d.demand, lo, in.policy.max_warm);

  d.budget_clones = budget_clones(in.policy, in.private_mib_per_clone);
  uint32_t budget_warm = d.budget_clones > in.leased ? d.budget_clones - in.leased : 0;
  d.target = std::min(clamped, budget_warm);
  d.budget_limited = d.target < clamped;
  return d;
}

uint32_t budget_clones(const PoolPolicy& policy, double private_mib_per_clone) {
  double per_clone = private_mib_per_clone > 0 ? private_mib_per_clone : 1.0;
  return saturate_u32(std::floor(static_cast<double>(policy.memory_budget_mib) / per_clone));
}

uint32_t prepared_shell_count(const PoolPolicy& policy, double private_mib_per_clone, uint32_t clones, uint32_t cap) {
  uint32_t can_hold = std::min(policy.max_warm, budget_clones(policy, private_mib_per_clone));
  return std::min(can_hold > clones ? can_hold - clones : 0, cap);
}

std::string describe(const AutoscaleInput& in, const AutoscaleDecision& d) {
  return fmt::format("target {} (demand {}: rate {:.2f}/s x (refill {:.3f} s + stall {:.3f} s) + {}; min {} max {}; "
                     "budget {} MiB = {} clones at {:.1f} MiB, {} leased{})",
                     d.target, d.demand, in.arrival_rate_per_s, in.refill_seconds, in.stall_seconds, in.headroom,
                     in.policy.min_warm,
                     in.policy.max_warm, in.policy.memory_budget_mib, d.budget_clones, in.private_mib_per_clone,
                     in.leased, d.budget_limited ? "; limited by the budget" : "");
}

void RateEstimator::add_interval(uint64_t events, double seconds) {
  if (!(seconds > 0)) return;
  double sample = static_cast<double>(events) / seconds;
  rate_ = primed_ ? alpha_ * sample + (1 - alpha_) * rate_ : sample;
  // An exponential average never reaches zero by itself, and any rate above
  // zero asks for one clone more than headroom: after one acquire an idle
  // pool would keep that clone for minutes. Below one acquire per 20 s, none.
  if (rate_ < kNegligibleRatePerS) rate_ = 0;
  primed_ = true;
}

void DurationEstimator::add_sample(double seconds) {
  if (!(seconds >= 0)) return;
  value_ = primed_ ? alpha_ * seconds + (1 - alpha_) * value_ : seconds;
  primed_ = true;
}

}  // namespace thaw::pool
