// What the RPC server needs from the pool: pool::PoolManager's calls, behind
// an interface so the server can run over a fake in tests that need no KVM.
// Calls may block, and the server runs them on its WorkerPool, except the
// three marked "never blocks", which it runs on its event loop to spare a
// warm acquire two thread hand-offs. Errors are the pool's
// (pool::BadArgument, NotFound, Overloaded, GuestGone).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pool/pool_types.h"

namespace thaw::rpc {

class PoolBackend {
 public:
  virtual ~PoolBackend() = default;

  virtual pool::TemplateInfo create_template(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy) = 0;
  virtual std::vector<pool::TemplateInfo> list_templates() const = 0;
  virtual void delete_template(const std::string& name) = 0;
  virtual void set_policy(const std::string& name, const pool::PoolPolicy& policy) = 0;

  virtual pool::LeaseInfo acquire(const std::string& template_name, uint64_t lease_ms,
                                  std::chrono::milliseconds timeout) = 0;
  // Never blocks: a lease when a warm clone is there, nullopt when none is.
  virtual std::optional<pool::LeaseInfo> try_acquire(const std::string& template_name, uint64_t lease_ms) = 0;
  virtual pool::LeaseInfo renew(uint64_t lease_id, uint64_t lease_ms) = 0;
  virtual void release(uint64_t lease_id) = 0;                      // never blocks
  virtual pool::LeaseInfo lease_info(uint64_t lease_id) const = 0;  // never blocks
  virtual pool::InvokeResult invoke(uint64_t lease_id, const std::string& function,
                                    const std::vector<uint8_t>& payload, std::chrono::milliseconds timeout) = 0;

  virtual pool::PoolStats stats() const = 0;
};

}  // namespace thaw::rpc
