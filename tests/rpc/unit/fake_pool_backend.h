// A PoolBackend with no VMs behind it, for the server's own tests: warm
// counts, leases with expiry, acquire that waits for a release, and invoke
// functions "echo", "sleep" (payload: decimal ms) and "crash" (GuestGone).
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "rpc/pool_backend.h"

namespace thaw::rpc::testing {

class FakePoolBackend : public PoolBackend {
 public:
  pool::TemplateInfo create_template(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy) override {
    std::lock_guard lock(mutex_);
    if (templates_.count(spec.name)) throw pool::BadArgument("template " + spec.name + " already exists");
    auto& t = templates_[spec.name];
    t.name = spec.name;
    t.spec = spec;
    t.policy = policy;
    t.warm = policy.max_warm;
    t.snapshot_dir = "/fake/" + spec.name;
    return t;
  }
  std::vector<pool::TemplateInfo> list_templates() const override {
    std::lock_guard lock(mutex_);
    std::vector<pool::TemplateInfo> out;
    for (const auto& [name, t] : templates_) out.push_back(t);
    return out;
  }
  void delete_template(const std::string& name) override {
    std::lock_guard lock(mutex_);
    if (!templates_.erase(name)) throw pool::NotFound("no such template: " + name);
  }
  void set_policy(const std::string& name, const pool::PoolPolicy& policy) override {
    std::lock_guard lock(mutex_);
    find(name).policy = policy;
  }
  pool::LeaseInfo acquire(const std::string& name, uint64_t lease_ms, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    find(name);
    ++blocking_acquires_;
    if (!changed_.wait_for(lock, timeout, [&] { return find(name).warm > 0; })) {
      throw pool::Overloaded("no warm clone of " + name + " within " + std::to_string(timeout.count()) + " ms");
    }
    return take_locked(name, lease_ms);
  }
  std::optional<pool::LeaseInfo> try_acquire(const std::string& name, uint64_t lease_ms) override {
    std::lock_guard lock(mutex_);
    if (find(name).warm == 0) return std::nullopt;
    return take_locked(name, lease_ms);
  }
  // Acquires that went to a worker (none was warm at the fast path).
  uint64_t blocking_acquires() const {
    std::lock_guard lock(mutex_);
    return blocking_acquires_;
  }
  pool::LeaseInfo renew(uint64_t id, uint64_t lease_ms) override {
    std::lock_guard lock(mutex_);
    auto& l = lease(id);
    l.expires_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(lease_ms);
    return l;
  }
  void release(uint64_t id) override {
    std::lock_guard lock(mutex_);
    auto& l = lease(id);
    auto& t = find(l.template_name);
    --t.leased;
    ++t.warm;
    leases_.erase(id);
    ++releases_;
    changed_.notify_all();
  }
  pool::LeaseInfo lease_info(uint64_t id) const override {
    std::lock_guard lock(mutex_);
    return const_cast<FakePoolBackend*>(this)->lease(id);
  }
  pool::InvokeResult invoke(uint64_t id, const std::string& function, const std::vector<uint8_t>& payload,
                            std::chrono::milliseconds /*timeout*/) override {
    { std::lock_guard lock(mutex_); lease(id); }
    pool::InvokeResult r;
    if (function == "echo") {
      r.payload = payload;
    } else if (function == "sleep") {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoul(std::string(payload.begin(), payload.end()))));
    } else if (function == "crash") {
      throw pool::GuestGone("guest of lease " + std::to_string(id) + " crashed");
    } else {
      r.status = 1;
    }
    r.total_ms = 0.2;
    return r;
  }
  pool::PoolStats stats() const override {
    std::lock_guard lock(mutex_);
    pool::PoolStats s;
    for (const auto& [name, t] : templates_) {
      pool::PoolStats::PerTemplate row;
      row.name = name;
      row.warm = t.warm;
      row.leased = t.leased;
      s.templates.push_back(row);
    }
    return s;
  }
  uint64_t releases() const {
    std::lock_guard lock(mutex_);
    return releases_;
  }

 private:
  pool::LeaseInfo take_locked(const std::string& name, uint64_t lease_ms) {
    auto& t = find(name);
    --t.warm;
    ++t.leased;
    pool::LeaseInfo lease;
    lease.lease_id = ++next_id_;
    lease.template_name = name;
    lease.identity.clone_id = lease.lease_id;
    lease.identity.seed = 0x1234 + lease.lease_id;
    lease.expires_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(lease_ms);
    lease.timings.acquire_ms = 0.1;
    leases_[lease.lease_id] = lease;
    return lease;
  }
  pool::TemplateInfo& find(const std::string& name) {
    auto it = templates_.find(name);
    if (it == templates_.end()) throw pool::NotFound("no such template: " + name);
    return it->second;
  }
  pool::LeaseInfo& lease(uint64_t id) {
    auto it = leases_.find(id);
    if (it == leases_.end()) throw pool::NotFound("no such lease: " + std::to_string(id));
    if (it->second.expires_at < std::chrono::steady_clock::now()) {
      auto& t = find(it->second.template_name);
      --t.leased;
      ++t.warm;
      leases_.erase(it);
      changed_.notify_all();
      throw pool::NotFound("no such lease: " + std::to_string(id) + " (expired)");
    }
    return it->second;
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, pool::TemplateInfo> templates_;
  std::map<uint64_t, pool::LeaseInfo> leases_;
  uint64_t next_id_ = 0;
  uint64_t blocking_acquires_ = 0;
  uint64_t releases_ = 0;
};

}  // namespace thaw::rpc::testing
