// One template's pool: its snapshot, the warm (restored, paused, vCPU
// threads parked) clones, the counts the autoscaler and stats read, and the
// condition variable acquirers wait on. The restores, resets and teardowns
// themselves run on the manager's background threads; this class only
// keeps the books under its lock, so the acquire path is a pop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pool/autoscaler.h"
#include "pool/clone.h"
#include "pool/latency_window.h"
#include "pool/memory_usage.h"
#include "pool/pool_types.h"
#include "pool/template_store.h"
#include "snapshot/snapshot_dir.h"
#include "vmm/vm_shells.h"

namespace thaw::pool {

struct WarmPoolTuning {
  uint32_t headroom = 1;                 // autoscaler: warm clones beyond the expected backlog
  double stall_seconds = 0.02;           // autoscaler: host stalls planned for (AutoscaleInput)
  double initial_refill_seconds = 0.05;  // until a restore was timed
  double initial_clone_mib = 4;          // private MiB per clone until one was measured
  double clone_overhead_mib = 1;         // per clone, outside smaps (KVM's own memory)
  VmShells vm_shells = VmShells::kAuto;
};

class WarmPool {
 public:
  using Clock = std::chrono::steady_clock;

  WarmPool(TemplateRecord record, std::string dir, snapshot::LoadedSnapshot snapshot, WarmPoolTuning tuning,
           std::function<void()> wake_refill);

  const std::string& name() const { return record_.spec.name; }
  // The spec never changes after construction (only the policy does).
  bool uses_mailbox() const { return record_.spec.uses_mailbox(); }
  bool is_linux() const { return record_.spec.is_linux(); }
  const std::string& dir() const { return dir_; }
  const snapshot::LoadedSnapshot& snapshot() const { return snapshot_; }
  bool has_working_set() const { return has_working_set_; }
  bool deleted() const;
  // This template's prepared VM shells (vmm/vm_shells.h). The first call
  // makes them, up to max_warm (at most kMaxPreparedShells), in one batch
  // while the process is small; later calls return the same stock, which
  // restores then drain. On the refill thread. Null if none could be made,
  // and on hardware KVM (see the .cpp).
  vmm::VmShellStock* prepared_shells(const std::string& kvm_device);
  static constexpr uint32_t kMaxPreparedShells = 1024;
  // Shells beyond those the pool can still use (prepared_shell_count():
  // after a policy change, or with the template deleted), `most` of them,
  // for the caller to close. The stock is sized from max_warm and the
  // memory budget when it is made, and kept within them after.
  std::vector<vmm::kvm::VmFd> surplus_shells(size_t most);

  struct Taken {
    std::shared_ptr<Clone> clone;
    bool waited = false;
  };
  // Pops a warm clone, waiting until `deadline` for one. Overloaded when
  // none came in time; NotFound when the template was deleted meanwhile.
  Taken take(Clock::time_point deadline);
  // Pops a warm clone if there is one, without waiting (and without
  // counting a miss when there is none). NotFound when deleted.
  std::shared_ptr<Clone> try_take();
  // A lease ended and its clone is gone (crashed, unusable).
  void lease_ended();
  // A lease ended and its clone goes to a reset thread: it counts as
  // returning until begin_reset refuses it, the reset fails or put_back.
  void lease_returned(const Clone& clone);

  // Refill: reserves one restore when the pool wants another clone (below
  // its target or behind waiting acquirers, within max_warm and the
  // budget, not backing off after failures). Without waiting acquirers,
  // none when the clones expected back from their leases within a
  // restore's time would then find no room: they would be destroyed.
  bool reserve_restore();
  // Ends a reserved restore. Returns `clone` back when the pool does not
  // take it (deleted meanwhile): the caller destroys it.
  std::shared_ptr<Clone> finish_restore(std::shared_ptr<Clone> clone, double seconds);
  // Release: whether a returned clone should be reset and kept (below
  // max_warm and within the budget; a surplus over the target is trimmed
  // by the autoscaler if it lasts). When not, it no longer counts as
  // returning: the caller destroys it.
  bool begin_reset();
  // A reset clone goes warm again; returned back when the pool does not take it.
  std::shared_ptr<Clone> put_back(std::shared_ptr<Clone> clone, double reset_seconds);
  // Also ends its counting as returning.
  void count_reset_failure();
  void count_expired();
  // The caller destroys it (after this, it no longer counts).
  void forget(const Clone& clone);

  // Autoscaler tick: feeds the acquire rate, recomputes the target and
  // returns warm clones above it (the caller destroys them).
  std::vector<std::shared_ptr<Clone>> autoscale_tick(double period_seconds);
  // Host ranges of every live clone's guest memory (for the memory sampler).
  std::vector<HostRange> clone_ranges() const;
  void set_measured_private(const std::vector<uint64_t>& bytes_per_clone);

  void set_policy(const PoolPolicy& policy);
  // Marks the pool deleted, wakes waiting acquirers, returns the warm clones.
  std::vector<std::shared_ptr<Clone>> mark_deleted();

  TemplateInfo info() const;
  PoolStats::PerTemplate stats() const;
  // Counts one request's calls the runtime does not implement; logs each
  // number the first time this template sees it.
  void note_unknown_syscalls(const std::vector<uint16_t>& numbers);

 private:
  uint32_t shells_wanted_locked() const;
  uint32_t desired_locked() const;
  uint32_t warm_limit_locked() const;
  // Below max_warm and within the budget: a reset clone may go warm.
  bool has_room_locked() const;
  // Clones in reset, plus leased ones likely back within one restore time.
  uint32_t expected_returns_locked() const;
  // Pops warm_.back() as a lease; returns whether a refill is wanted.
  bool pop_locked(Taken& taken);
  AutoscaleInput autoscale_input_locked() const;
  AutoscaleDecision decide_locked() const;

  TemplateRecord record_;
  const std::string dir_;
  const snapshot::LoadedSnapshot snapshot_;
  const bool has_working_set_;
  const WarmPoolTuning tuning_;
  std::function<void()> wake_refill_;

  std::once_flag shells_once_;
  mutable std::mutex mutex_;
  std::unique_ptr<vmm::VmShellStock> shells_;  // set once, under mutex_
  std::condition_variable available_;
  std::deque<std::shared_ptr<Clone>> warm_;
  std::map<uint64_t, std::weak_ptr<Clone>> live_;  // serial -> clone, warm or leased
  uint32_t leased_ = 0;
  uint32_t restoring_ = 0;
  uint32_t resetting_ = 0;  // returned from a lease, not yet warm or destroyed
  uint32_t waiters_ = 0;
  uint32_t target_ = 0;
  uint32_t budget_clones_ = 0;
  bool deleted_ = false;
  // Restore failures back off: 0.1 s, doubling, at most 30 s.
  uint32_t failures_in_a_row_ = 0;
  Clock::time_point retry_after_{};

  RateEstimator rate_;
  DurationEstimator refill_;
  double planned_refill_seconds_;  // what the autoscaler plans a restore to take
  DurationEstimator hold_{0};  // how long leases last, once one returned
  // When the leases now out began to be out (leased_ went 0 -> 1): before
  // any lease returned, the oldest one's age is all that is known of how
  // long leases last, and a lower bound for it.
  Clock::time_point leases_out_since_{};
  uint64_t acquires_at_last_tick_ = 0;
  static constexpr uint32_t kSurplusTicks = 4;  // autoscaler ticks a surplus of warm clones is kept
  uint32_t surplus_ticks_ = 0;
  double peak_clone_mib_ = 0;  // measured, per clone
  double private_mib_ = 0;     // measured, all clones
  PoolStats::PerTemplate counters_;
  LatencyWindow restore_ms_;
  LatencyWindow reset_ms_;
};

}  // namespace thaw::pool
