// The production PoolBackend: forwards to pool::PoolManager. Header-only so
// thaw_rpc (and the static `thaw` CLI, a client only) need not link thaw_pool;
// thawd does.
#pragma once

#include "pool/pool_manager.h"
#include "rpc/pool_backend.h"

namespace thaw::rpc {

class PoolManagerBackend final : public PoolBackend {
 public:
  explicit PoolManagerBackend(pool::PoolManager& manager) : m_(manager) {}

  pool::TemplateInfo create_template(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy) override {
    return m_.create_template(spec, policy);
  }
  std::vector<pool::TemplateInfo> list_templates() const override { return m_.list_templates(); }
  void delete_template(const std::string& name) override { m_.delete_template(name); }
  void set_policy(const std::string& name, const pool::PoolPolicy& policy) override { m_.set_policy(name, policy); }
  pool::LeaseInfo acquire(const std::string& template_name, uint64_t lease_ms,
                          std::chrono::milliseconds timeout) override {
    return m_.acquire(template_name, lease_ms, timeout);
  }
  std::optional<pool::LeaseInfo> try_acquire(const std::string& template_name, uint64_t lease_ms) override {
    return m_.try_acquire(template_name, lease_ms);
  }
  pool::LeaseInfo renew(uint64_t lease_id, uint64_t lease_ms) override { return m_.renew(lease_id, lease_ms); }
  void release(uint64_t lease_id) override { m_.release(lease_id); }
  pool::LeaseInfo lease_info(uint64_t lease_id) const override { return m_.lease_info(lease_id); }
  pool::InvokeResult invoke(uint64_t lease_id, const std::string& function, const std::vector<uint8_t>& payload,
                            std::chrono::milliseconds timeout) override {
    return m_.invoke(lease_id, function, payload, timeout);
  }
  pool::PoolStats stats() const override { return m_.stats(); }

 private:
  pool::PoolManager& m_;
};

}  // namespace thaw::rpc
