// Leases: which clone each lease id holds and until when. A reaper thread
// sleeps until the earliest expiry and hands expired leases to a callback
// (the pool then recycles the clone as if it were released).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "pool/clone.h"
#include "pool/pool_types.h"

namespace thaw::pool {

class LeaseTable {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    LeaseInfo info;
    std::shared_ptr<Clone> clone;
  };
  using ExpiredFn = std::function<void(Entry)>;

  // Starts the reaper; `on_expired` runs on its thread, outside the table's
  // lock. Lease ids are first_id, first_id + id_step, ... (disjoint between
  // the shards of one template, pool_shard.h).
  explicit LeaseTable(ExpiredFn on_expired, uint64_t first_id = 1, uint64_t id_step = 1);
  ~LeaseTable();
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;
  // Stops the reaper (idempotent). Leases stay in the table.
  void stop();

  // Assigns info.lease_id and stores the lease. Wakes the reaper only when
  // this lease expires before every other one.
  LeaseInfo add(LeaseInfo info, std::shared_ptr<Clone> clone);
  // Removes and returns the lease; nullopt when there is none (already
  // released or expired).
  std::optional<Entry> take(uint64_t lease_id);
  std::vector<Entry> take_template(const std::string& template_name);
  std::vector<Entry> take_all();
  // NotFound for an unknown lease.
  LeaseInfo renew(uint64_t lease_id, Clock::time_point expires_at);
  Entry get(uint64_t lease_id) const;
  // The identity the lease's clone now runs with (a program template's
  // requests each get a fresh seed and clock). No-op for a lease gone.
  void set_identity(uint64_t lease_id, const CloneIdentity& identity);
  size_t size() const;

 private:
  void reaper_main();
  void erase_locked(std::map<uint64_t, Entry>::iterator it);

  ExpiredFn on_expired_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<uint64_t, Entry> leases_;
  std::set<std::pair<Clock::time_point, uint64_t>> by_expiry_;
  uint64_t next_id_;
  const uint64_t id_step_;
  bool stopping_ = false;
  std::thread reaper_;
};

}  // namespace thaw::pool
