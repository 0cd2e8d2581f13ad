#include "pool/lease_table.h"

#include <spdlog/spdlog.h>

#include "base/background_thread.h"

namespace thaw::pool {

LeaseTable::LeaseTable(ExpiredFn on_expired, uint64_t first_id, uint64_t id_step)
    : on_expired_(std::move(on_expired)), next_id_(first_id), id_step_(id_step) {
  reaper_ = std::thread([this] { reaper_main(); });
}

LeaseTable::~LeaseTable() { stop(); }

void LeaseTable::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (reaper_.joinable()) reaper_.join();
}

LeaseInfo LeaseTable::add(LeaseInfo info, std::shared_ptr<Clone> clone) {
  bool earliest;
  {
    std::lock_guard lock(mutex_);
    info.lease_id = next_id_;
    next_id_ += id_step_;
    earliest = by_expiry_.empty() || info.expires_at < by_expiry_.begin()->first;
    by_expiry_.emplace(info.expires_at, info.lease_id);
    leases_.emplace(info.lease_id, Entry{info, std::move(clone)});
  }
  if (earliest) wake_.notify_all();
  return info;
}

void LeaseTable::erase_locked(std::map<uint64_t, Entry>::iterator it) {
  by_expiry_.erase({it->second.info.expires_at, it->first});
  leases_.erase(it);
}

std::optional<LeaseTable::Entry> LeaseTable::take(uint64_t lease_id) {
  std::lock_guard lock(mutex_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return std::nullopt;
  Entry entry = std::move(it->second);
  erase_locked(it);
  return entry;
}

std::vector<LeaseTable::Entry> LeaseTable::take_template(const std::string& template_name) {
  std::vector<Entry> out;
  std::lock_guard lock(mutex_);
  for (auto it = leases_.begin(); it != leases_.end();) {
    auto next = std::next(it);
    if (it->second.info.template_name == template_name) {
      out.push_back(std::move(it->second));
      erase_locked(it);
    }
    it = next;
  }
  return out;
}

std::vector<LeaseTable::Entry> LeaseTable::take_all() {
  std::vector<Entry> out;
  std::lock_guard lock(mutex_);
  for (auto& [id, entry] : leases_) out.push_back(std::move(entry));
  leases_.clear();
  by_expiry_.clear();
  return out;
}

LeaseInfo LeaseTable::renew(uint64_t lease_id, Clock::time_point expires_at) {
  LeaseInfo info;
  bool earliest;
  {
    std::lock_guard lock(mutex_);
    auto it = leases_.find(lease_id);
    if (it == leases_.end()) throw NotFound("no lease " + std::to_string(lease_id) + " (released or expired)");
    by_expiry_.erase({it->second.info.expires_at, lease_id});
    it->second.info.expires_at = expires_at;
    by_expiry_.emplace(expires_at, lease_id);
    earliest = by_expiry_.begin()->second == lease_id;
    info = it->second.info;
  }
  if (earliest) wake_.notify_all();
  return info;
}

LeaseTable::Entry LeaseTable::get(uint64_t lease_id) const {
  std::lock_guard lock(mutex_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) throw NotFound("no lease " + std::to_string(lease_id) + " (released or expired)");
  return it->second;
}

void LeaseTable::set_identity(uint64_t lease_id, const CloneIdentity& identity) {
  std::lock_guard lock(mutex_);
  if (auto it = leases_.find(lease_id); it != leases_.end()) it->second.info.identity = identity;
}

size_t LeaseTable::size() const {
  std::lock_guard lock(mutex_);
  return leases_.size();
}

void LeaseTable::reaper_main() {
  make_this_thread_background();  // woken by acquires: must not preempt the RPC loop
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (by_expiry_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto [when, id] = *by_expiry_.begin();
    if (Clock::now() < when) {
      wake_.wait_until(lock, when);
      continue;
    }
    auto it = leases_.find(id);
    Entry entry = std::move(it->second);
    erase_locked(it);
    lock.unlock();
    spdlog::info("lease {} of template '{}' expired; reclaiming its clone", entry.info.lease_id,
                 entry.info.template_name);
    try {
      on_expired_(std::move(entry));
    } catch (const std::exception& e) {
      spdlog::error("reclaiming an expired lease: {}", e.what());
    }
    lock.lock();
  }
}

}  // namespace thaw::pool
