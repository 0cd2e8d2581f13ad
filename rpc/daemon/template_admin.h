// What thawd's start-up, readiness report and metrics need of its pools, in
// either of its two shapes: every template in thawd's own process (a
// PoolManager) or each template in its own worker process (WorkerFleet).
// Calls block until answered.
#pragma once

#include <string>
#include <vector>

#include "pool/pool_manager.h"
#include "pool/pool_types.h"

namespace thaw::daemon {

class TemplateAdmin {
 public:
  virtual ~TemplateAdmin() noexcept(false) = default;  // kj members (WorkerFleet) may throw

  // Picks up the templates already in template_dir; returns their names.
  virtual std::vector<std::string> load_existing_templates() = 0;
  virtual pool::TemplateInfo create_template(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy) = 0;
  virtual void set_policy(const std::string& name, const pool::PoolPolicy& policy) = 0;
  virtual std::vector<pool::TemplateInfo> list_templates() const = 0;
  virtual pool::PoolStats stats() const = 0;
};

// Every template in this process.
class ManagerAdmin final : public TemplateAdmin {
 public:
  explicit ManagerAdmin(pool::PoolManager& manager) : m_(manager) {}

  std::vector<std::string> load_existing_templates() override { return m_.load_existing_templates(); }
  pool::TemplateInfo create_template(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy) override {
    return m_.create_template(spec, policy);
  }
  void set_policy(const std::string& name, const pool::PoolPolicy& policy) override { m_.set_policy(name, policy); }
  std::vector<pool::TemplateInfo> list_templates() const override { return m_.list_templates(); }
  pool::PoolStats stats() const override { return m_.stats(); }

 private:
  pool::PoolManager& m_;
};

}  // namespace thaw::daemon
