#include "pool/warm_pool.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>

#include "base/linux_syscall_names.h"

namespace thaw::pool {

WarmPool::WarmPool(TemplateRecord record, std::string dir, snapshot::LoadedSnapshot snapshot, WarmPoolTuning tuning,
                   std::function<void()> wake_refill)
    : record_(std::move(record)),
      dir_(std::move(dir)),
      snapshot_(std::move(snapshot)),
      has_working_set_(std::filesystem::exists(dir_ + "/" + snapshot::kWorkingSetFileName)),
      tuning_(tuning),
      wake_refill_(std::move(wake_refill)),
      refill_(tuning.initial_refill_seconds),
      planned_refill_seconds_(tuning.initial_refill_seconds) {
  counters_.name = record_.spec.name;
  std::lock_guard lock(mutex_);
  auto d = decide_locked();
  target_ = d.target;
  budget_clones_ = d.budget_clones;
  counters_.target_warm = target_;
}

AutoscaleInput WarmPool::autoscale_input_locked() const {
  AutoscaleInput in;
  in.policy = record_.policy;
  in.arrival_rate_per_s = rate_.rate();
  in.refill_seconds = planned_refill_seconds_;
  in.headroom = tuning_.headroom;
  in.stall_seconds = tuning_.stall_seconds;
  in.private_mib_per_clone = std::max(tuning_.initial_clone_mib, peak_clone_mib_) + tuning_.clone_overhead_mib;
  in.leased = leased_;
  return in;
}

vmm::VmShellStock* WarmPool::prepared_shells(const std::string& kvm_device) {
  std::call_once(shells_once_, [&] {
    // Measured on PVM only. Under the emulated hardware-KVM machine of
    // .ci/run the machine itself stalled in 4 of 5 runs of the Linux
    // guest's tests with shells and in 1 of 4 without; until that is
    // understood, hardware KVM makes each VM at its restore unless asked.
    if (tuning_.vm_shells == VmShells::kOff) {
      spdlog::info("pool '{}': no prepared VM shells (turned off)", name());
      return;
    }
    if (auto backend = vmm::kvm::detect_backend();
        tuning_.vm_shells == VmShells::kAuto && backend != vmm::kvm::KvmBackend::kPvm) {
      spdlog::info("pool '{}': no prepared VM shells on {} (measured on PVM only)", name(),
                   vmm::kvm::backend_name(backend));
      return;
    }
    uint32_t count = 0;
    std::string bound;
    {
      std::lock_guard lock(mutex_);
      count = shells_wanted_locked();
      if (count < std::min(record_.policy.max_warm, kMaxPreparedShells)) {
        bound = fmt::format(" (max_warm {}; the memory budget holds {} clones)", record_.policy.max_warm,
                            budget_clones_);
      }
    }
    auto stock = std::make_unique<vmm::VmShellStock>(kvm_device);
    auto start = Clock::now();
    try {
      stock->fill(count);
    } catch (const std::exception& e) {
      spdlog::warn("pool '{}': {} VM shells prepared of {}: {}", name(), stock->size(), count, e.what());
    }
    spdlog::info("pool '{}': {} VM shells prepared in {:.1f} ms{}", name(), stock->size(),
                 std::chrono::duration<double, std::milli>(Clock::now() - start).count(), bound);
    std::lock_guard lock(mutex_);
    shells_ = std::move(stock);
  });
  std::lock_guard lock(mutex_);
  return shells_.get();
}

uint32_t WarmPool::shells_wanted_locked() const {
  return prepared_shell_count(record_.policy, autoscale_input_locked().private_mib_per_clone,
                              static_cast<uint32_t>(live_.size()), kMaxPreparedShells);
}

std::vector<vmm::kvm::VmFd> WarmPool::surplus_shells(size_t most) {
  std::lock_guard lock(mutex_);
  if (!shells_) return {};
  return shells_->trim(deleted_ ? 0 : shells_wanted_locked(), most);
}

AutoscaleDecision WarmPool::decide_locked() const { return pool::autoscale(autoscale_input_locked()); }

// Warm clones to have (restoring ones included): the target, or more while
// acquirers wait, within max_warm and the budget.
uint32_t WarmPool::desired_locked() const { return std::min(std::max(target_, waiters_), warm_limit_locked()); }

// The most warm clones (restoring ones included) the pool may hold: max_warm,
// and what the budget leaves beside the leased clones.
uint32_t WarmPool::warm_limit_locked() const {
  uint32_t room = budget_clones_ > leased_ ? budget_clones_ - leased_ : 0;
  return std::min(record_.policy.max_warm, room);
}

WarmPool::Taken WarmPool::take(Clock::time_point deadline) {
  Taken taken;
  std::unique_lock lock(mutex_);
  if (deleted_) throw NotFound("template '" + name() + "' was deleted");
  if (warm_.empty()) {
    taken.waited = true;
    ++waiters_;
    lock.unlock();
    wake_refill_();
    lock.lock();
    available_.wait_until(lock, deadline, [&] { return deleted_ || !warm_.empty(); });
    --waiters_;
    if (deleted_) throw NotFound("template '" + name() + "' was deleted");
    if (warm_.empty()) {
      ++counters_.overloaded;
      throw Overloaded("template '" + name() + "': no warm clone within the timeout (leased " +
                       std::to_string(leased_) + ", restoring " + std::to_string(restoring_) + ", target " +
                       std::to_string(target_) + ", max_warm " + std::to_string(record_.policy.max_warm) + ")");
    }
  }
  bool refill = pop_locked(taken);
  lock.unlock();
  if (refill) wake_refill_();
  return taken;
}

std::shared_ptr<Clone> WarmPool::try_take() {
  Taken taken;
  std::unique_lock lock(mutex_);
  if (deleted_) throw NotFound("template '" + name() + "' was deleted");
  if (warm_.empty()) return nullptr;
  bool refill = pop_locked(taken);
  lock.unlock();
  if (refill) wake_refill_();
  return std::move(taken.clone);
}

bool WarmPool::pop_locked(Taken& taken) {
  // Last in, first out: the most recently used clone has the warmest caches.
  taken.clone = std::move(warm_.back());
  warm_.pop_back();
  taken.clone->leased_at = Clock::now();
  if (leased_++ == 0) leases_out_since_ = taken.clone->leased_at;
  ++counters_.acquires;
  ++(taken.waited ? counters_.misses : counters_.hits);
  return warm_.size() + restoring_ < desired_locked();
}

bool WarmPool::deleted() const {
  std::lock_guard lock(mutex_);
  return deleted_;
}

void WarmPool::lease_ended() {
  std::lock_guard lock(mutex_);
  if (leased_ > 0) --leased_;
}

void WarmPool::lease_returned(const Clone& clone) {
  std::lock_guard lock(mutex_);
  if (leased_ > 0) --leased_;
  ++resetting_;
  hold_.add_sample(std::chrono::duration<double>(Clock::now() - clone.leased_at).count());
}

uint32_t WarmPool::expected_returns_locked() const {
  if (leased_ == 0) return resetting_;
  // A lease that typically ends within a restore's time is back before a
  // restore for it would be; long leases (FaaS calls that run for seconds)
  // count for next to nothing. Until one lease has returned, the leases
  // out are taken to last as long as they have so far: a first lease
  // younger than a restore counts as coming back (restoring for it filled
  // a small pool and got the returning clone destroyed), one that outlives
  // a restore soon counts for little (the autoscaler's tick asks again).
  const double refill = planned_refill_seconds_;
  const double hold =
      hold_.has_samples() ? hold_.seconds() : std::chrono::duration<double>(Clock::now() - leases_out_since_).count();
  const double share = hold <= refill ? 1.0 : refill / hold;
  return resetting_ + static_cast<uint32_t>(static_cast<double>(leased_) * share);
}

bool WarmPool::reserve_restore() {
  std::lock_guard lock(mutex_);
  if (deleted_ || Clock::now() < retry_after_) return false;
  const size_t supply = warm_.size() + restoring_;
  if (supply >= desired_locked()) return false;
  // A restore that would leave no room for the clones about to come back
  // from their leases only gets one of them destroyed: at a target near
  // max_warm that was a restore and a teardown per request. Waiting
  // acquirers get their restore anyway: a return is only an estimate.
  if (waiters_ == 0 && supply + expected_returns_locked() >= warm_limit_locked()) return false;
  ++restoring_;
  return true;
}

std::shared_ptr<Clone> WarmPool::finish_restore(std::shared_ptr<Clone> clone, double seconds) {
  std::unique_lock lock(mutex_);
  --restoring_;
  if (!clone) {
    ++counters_.restore_failures;
    ++failures_in_a_row_;
    auto backoff = std::chrono::milliseconds(100) * (1u << std::min(failures_in_a_row_ - 1, 9u));
    retry_after_ = Clock::now() + std::min<Clock::duration>(backoff, std::chrono::seconds(30));
    return nullptr;
  }
  failures_in_a_row_ = 0;
  refill_.add_sample(seconds);
  restore_ms_.add(seconds * 1e3);
  counters_.restore_seconds.add(seconds);
  // The slow restores, not the typical one, decide whether acquirers find
  // the pool empty: plan with the p99 of recent restores once there are a
  // few (idle clones cost little memory; misses cost milliseconds). Worked
  // out here, once per restore: the refill asks for it after every acquire,
  // under the lock acquires take.
  planned_refill_seconds_ = refill_.seconds();
  auto recent = restore_ms_.summary();
  if (recent.count >= 5) planned_refill_seconds_ = std::max(planned_refill_seconds_, recent.p99_ms / 1e3);
  ++counters_.restores;
  if (deleted_) return clone;
  live_[clone->serial] = clone;
  warm_.push_back(std::move(clone));
  lock.unlock();
  available_.notify_one();
  return nullptr;
}

// A returned clone is kept up to max_warm (and the budget), not only up to
// the target: a reset costs about a millisecond, a restore plus the
// teardown of the clone it replaces far more. Steady traffic then runs on
// resets alone; the autoscaler trims a surplus that outlasts a few ticks.
bool WarmPool::begin_reset() {
  std::lock_guard lock(mutex_);
  if (!deleted_ && has_room_locked()) return true;
  if (resetting_ > 0) --resetting_;
  return false;
}

bool WarmPool::has_room_locked() const { return warm_.size() + restoring_ < warm_limit_locked(); }

std::shared_ptr<Clone> WarmPool::put_back(std::shared_ptr<Clone> clone, double reset_seconds) {
  std::unique_lock lock(mutex_);
  if (resetting_ > 0) --resetting_;
  ++counters_.resets;
  reset_ms_.add(reset_seconds * 1e3);
  counters_.reset_seconds.add(reset_seconds);
  // Asked again: begin_reset() was asked before the reset, and the reset
  // threads run in parallel, so two may both have seen the last free slot.
  if (deleted_ || !has_room_locked()) return clone;
  warm_.push_back(std::move(clone));
  lock.unlock();
  available_.notify_one();
  return nullptr;
}

void WarmPool::count_reset_failure() {
  {
    std::lock_guard lock(mutex_);
    if (resetting_ > 0) --resetting_;
    ++counters_.reset_failures;
  }
  wake_refill_();  // the refill may have counted on this clone coming back
}

void WarmPool::count_expired() {
  std::lock_guard lock(mutex_);
  ++counters_.expired_leases;
}

void WarmPool::forget(const Clone& clone) {
  std::lock_guard lock(mutex_);
  live_.erase(clone.serial);
  ++counters_.destroyed;
}

std::vector<std::shared_ptr<Clone>> WarmPool::autoscale_tick(double period_seconds) {
  std::vector<std::shared_ptr<Clone>> surplus;
  std::lock_guard lock(mutex_);
  if (deleted_) return surplus;
  rate_.add_interval(counters_.acquires - acquires_at_last_tick_, period_seconds);
  acquires_at_last_tick_ = counters_.acquires;
  AutoscaleInput in = autoscale_input_locked();
  auto d = pool::autoscale(in);
  budget_clones_ = d.budget_clones;
  if (d.target != target_) {
    spdlog::info("pool '{}': {} (was {})", name(), describe(in, d), target_);
    ++(d.target > target_ ? counters_.scale_ups : counters_.scale_downs);
    target_ = d.target;
  }
  // Above max_warm or the budget: trim at once. Above what the pool wants:
  // once the surplus has lasted kSurplusTicks ticks, a quarter of it (at
  // least one) per tick, so a pause in traffic does not throw away the
  // clones its return would need (scale up fast, down slowly).
  uint32_t want = desired_locked();
  uint32_t keep = warm_limit_locked();
  auto warm = static_cast<uint32_t>(warm_.size());
  surplus_ticks_ = warm > want ? surplus_ticks_ + 1 : 0;
  if (surplus_ticks_ >= kSurplusTicks && warm > want) {
    uint32_t step = std::max<uint32_t>(1, (warm - want) / 4);
    keep = std::min(keep, warm - step);
  }
  while (warm_.size() > keep) {
    surplus.push_back(std::move(warm_.front()));  // the coldest first
    warm_.pop_front();
  }
  return surplus;
}

std::vector<HostRange> WarmPool::clone_ranges() const {
  std::vector<HostRange> ranges;
  std::lock_guard lock(mutex_);
  for (const auto& [serial, weak] : live_) {
    auto clone = weak.lock();
    if (!clone || !clone->restored.vm) continue;
    auto& memory = clone->restored.vm->memory();
    auto base = reinterpret_cast<uintptr_t>(memory.host_base());
    ranges.push_back({base, base + memory.size()});
  }
  return ranges;
}

void WarmPool::set_measured_private(const std::vector<uint64_t>& bytes_per_clone) {
  std::lock_guard lock(mutex_);
  double total = 0;
  for (uint64_t b : bytes_per_clone) {
    double mib = static_cast<double>(b) / (1 << 20);
    total += mib;
    peak_clone_mib_ = std::max(peak_clone_mib_, mib);
  }
  private_mib_ = total;
}

void WarmPool::set_policy(const PoolPolicy& policy) {
  std::lock_guard lock(mutex_);
  record_.policy = policy;
  auto d = decide_locked();
  if (d.target != target_) {
    ++(d.target > target_ ? counters_.scale_ups : counters_.scale_downs);
    target_ = d.target;
  }
  budget_clones_ = d.budget_clones;
}

std::vector<std::shared_ptr<Clone>> WarmPool::mark_deleted() {
  std::vector<std::shared_ptr<Clone>> warm;
  {
    std::lock_guard lock(mutex_);
    deleted_ = true;
    warm.assign(std::make_move_iterator(warm_.begin()), std::make_move_iterator(warm_.end()));
    warm_.clear();
  }
  available_.notify_all();
  return warm;
}

TemplateInfo WarmPool::info() const {
  std::lock_guard lock(mutex_);
  TemplateInfo info;
  info.name = name();
  info.spec = record_.spec;
  info.policy = record_.policy;
  info.snapshot_dir = dir_;
  info.warm = static_cast<uint32_t>(warm_.size());
  info.leased = leased_;
  info.target_warm = target_;
  info.cold_boot_ms = record_.cold_boot_ms;
  return info;
}

void WarmPool::note_unknown_syscalls(const std::vector<uint16_t>& numbers) {
  if (numbers.empty()) return;
  std::lock_guard lock(mutex_);
  auto& seen = counters_.unknown_syscalls;
  for (uint16_t nr : numbers) {
    auto it = std::find_if(seen.begin(), seen.end(), [nr](const auto& u) { return u.number == nr; });
    if (it != seen.end()) {
      ++it->requests;
      continue;
    }
    // Bounded like the mailbox's list per request: a program cannot grow it.
    if (seen.size() >= 512) continue;
    seen.push_back({nr, 1});
    spdlog::warn("template '{}': the program called {} ({}), which the function runtime does not implement; "
                 "it got -ENOSYS",
                 record_.spec.name, linux_syscall_name(nr), nr);
  }
}

PoolStats::PerTemplate WarmPool::stats() const {
  PoolStats::PerTemplate s;
  std::optional<LatencyWindow> restores, resets;
  {
    std::lock_guard lock(mutex_);
    s = counters_;
    s.warm = static_cast<uint32_t>(warm_.size());
    s.leased = leased_;
    s.target_warm = target_;
    s.private_memory_mib = private_mib_;
    restores = restore_ms_;
    resets = reset_ms_;
  }
  // Sorted outside the lock: stats are scraped while acquirers take clones.
  s.restore_ms = restores->summary();
  s.reset_ms = resets->summary();
  return s;
}

}  // namespace thaw::pool
