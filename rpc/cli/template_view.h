// A template as the `thaw template` commands print it: the same JSON object
// and table row as `thaw templates`, so scripts read both the same way.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "pool/pool_types.h"

namespace thaw::cli {

inline nlohmann::json policy_json(const pool::PoolPolicy& p) {
  return {{"min_warm", p.min_warm}, {"max_warm", p.max_warm}, {"memory_budget_mib", p.memory_budget_mib}};
}

inline nlohmann::json template_json(const pool::TemplateInfo& t) {
  return {{"name", t.name},
          {"kernel", t.spec.kernel},
          {"initrd", t.spec.initrd},
          {"cmdline", t.spec.cmdline},
          {"mem_mib", t.spec.mem_mib},
          {"vcpus", t.spec.vcpus},
          {"policy", policy_json(t.policy)},
          {"snapshot_dir", t.snapshot_dir},
          {"warm", t.warm},
          {"leased", t.leased},
          {"target_warm", t.target_warm},
          {"cold_boot_ms", t.cold_boot_ms}};
}

inline void print_template_header() {
  std::printf("%-20s %5s %6s %6s %9s %8s %10s  %s\n", "NAME", "WARM", "LEASED", "TARGET", "MIN..MAX", "MEM MiB",
              "COLD BOOT", "KERNEL");
}

inline void print_template_row(const pool::TemplateInfo& t) {
  std::string range = std::to_string(t.policy.min_warm) + ".." + std::to_string(t.policy.max_warm);
  std::printf("%-20s %5u %6u %6u %9s %8llu %7.1f ms  %s\n", t.name.c_str(), t.warm, t.leased, t.target_warm,
              range.c_str(), static_cast<unsigned long long>(t.spec.mem_mib), t.cold_boot_ms, t.spec.kernel.c_str());
}

}  // namespace thaw::cli
