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
  nlohmann::json j = {{"name", t.name},
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
          {"cold_boot_ms", t.cold_boot_ms},
          {"worker_pid", t.worker_pid},  // 0: the clones live in thawd's own process
          {"direct_socket", t.direct_socket},
          {"workers", t.workers},
          {"shard", t.shard},  // "K/N": one shard's share only (a spread template's direct socket)
          {"shard_sockets", t.shard_sockets}};
  // Only a program template has these keys: a kernel template's object is unchanged.
  if (t.spec.is_program()) {
    j["program"] = t.spec.program;
    j["args"] = t.spec.args;
    j["env"] = t.spec.env;
    j["files_dir"] = t.spec.files_dir;
    j["guest"] = pool::guest_kind_name(t.spec.guest);
  }
  return j;
}

inline void print_template_header() {
  std::printf("%-20s %5s %6s %6s %9s %8s %10s %9s  %s\n", "NAME", "WARM", "LEASED", "TARGET", "MIN..MAX", "MEM MiB",
              "COLD BOOT", "WORKER", "KERNEL OR PROGRAM");
}

// "program /bin/busybox sha256sum" for a program template (its arguments
// as given, unquoted; "linux program ..." in a Linux guest), else the
// kernel's path.
inline std::string template_runs(const pool::TemplateInfo& t) {
  if (!t.spec.is_program()) return t.spec.kernel;
  std::string out = std::string(t.spec.is_linux() ? "linux " : "") + "program " + t.spec.program;
  for (const auto& a : t.spec.args) out += " " + a;
  return out;
}

inline void print_template_row(const pool::TemplateInfo& t) {
  std::string range = std::to_string(t.policy.min_warm) + ".." + std::to_string(t.policy.max_warm);
  // The worker process holding its clones; "-" when none does (thawd holds
  // them, or the worker is being restarted); "+N" more when it is spread.
  std::string worker = t.worker_pid == 0 ? "-" : std::to_string(t.worker_pid);
  if (t.worker_pid != 0 && t.workers > 1) worker += "+" + std::to_string(t.workers - 1);
  // A spread template's direct socket answers for one shard: its share only.
  if (!t.shard.empty()) worker = "shard " + t.shard;
  std::printf("%-20s %5u %6u %6u %9s %8llu %7.1f ms %9s  %s\n", t.name.c_str(), t.warm, t.leased, t.target_warm,
              range.c_str(), static_cast<unsigned long long>(t.spec.mem_mib), t.cold_boot_ms, worker.c_str(),
              template_runs(t).c_str());
}

}  // namespace thaw::cli
