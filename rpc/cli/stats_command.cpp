// `thaw stats`: thawd's per-template counters.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "base/linux_syscall_names.h"
#include "rpc/cli/client_options.h"
#include "rpc/cli/commands.h"
#include "rpc/convert.h"
#include "rpc/pool_client.h"

namespace thaw::cli {

namespace {

nlohmann::json unknown_syscalls_json(const pool::PoolStats::PerTemplate& t) {
  auto out = nlohmann::json::array();
  for (const auto& u : t.unknown_syscalls) {
    out.push_back({{"number", u.number}, {"name", linux_syscall_name(u.number)}, {"requests", u.requests}});
  }
  return out;
}

nlohmann::json latency_json(const pool::LatencySummary& l) {
  return {{"count", l.count}, {"min", l.min_ms}, {"median", l.median_ms}, {"p99", l.p99_ms}};
}

int run_stats(const ClientOptions& opt) {
  rpc::PoolConnection conn(opt.socket);
  auto reply = conn.pool().statsRequest().send().wait(conn.wait_scope());
  auto stats = rpc::from_schema(reply.getStats());
  if (opt.json) {
    auto out = nlohmann::json::array();
    for (const auto& t : stats.templates) {
      out.push_back({{"name", t.name},
                     {"warm", t.warm},
                     {"leased", t.leased},
                     {"target_warm", t.target_warm},
                     {"acquires", t.acquires},
                     {"hits", t.hits},
                     {"misses", t.misses},
                     {"overloaded", t.overloaded},
                     {"restores", t.restores},
                     {"resets", t.resets},
                     {"reset_failures", t.reset_failures},
                     {"destroyed", t.destroyed},
                     {"expired_leases", t.expired_leases},
                     {"restore_failures", t.restore_failures},
                     {"scale_ups", t.scale_ups},
                     {"scale_downs", t.scale_downs},
                     {"private_memory_mib", t.private_memory_mib},
                     {"restore_ms", latency_json(t.restore_ms)},
                     {"reset_ms", latency_json(t.reset_ms)},
                     {"unknown_syscalls", unknown_syscalls_json(t)},
                     {"shard", t.shard}});
    }
    std::cout << out.dump(2) << std::endl;
    return kExitOk;
  }
  for (const auto& t : stats.templates) {
    // A spread template's direct socket answers for one shard only.
    std::string scope = t.shard.empty() ? "" : " (shard " + t.shard + " of its workers only)";
    std::printf(
        "%s%s\n  warm %u  leased %u  target %u  private memory %.1f MiB\n"
        "  acquires %llu (hits %llu, misses %llu)  overloaded %llu\n"
        "  restores %llu (failed %llu)  resets %llu (failed %llu)  destroyed %llu  expired leases %llu\n"
        "  autoscaler: %llu up, %llu down\n"
        "  restore ms: min %.3f median %.3f p99 %.3f   reset ms: min %.3f median %.3f p99 %.3f\n",
        t.name.c_str(), scope.c_str(), t.warm, t.leased, t.target_warm, t.private_memory_mib,
        static_cast<unsigned long long>(t.acquires), static_cast<unsigned long long>(t.hits),
        static_cast<unsigned long long>(t.misses), static_cast<unsigned long long>(t.overloaded),
        static_cast<unsigned long long>(t.restores), static_cast<unsigned long long>(t.restore_failures),
        static_cast<unsigned long long>(t.resets), static_cast<unsigned long long>(t.reset_failures),
        static_cast<unsigned long long>(t.destroyed), static_cast<unsigned long long>(t.expired_leases),
        static_cast<unsigned long long>(t.scale_ups), static_cast<unsigned long long>(t.scale_downs), t.restore_ms.min_ms,
        t.restore_ms.median_ms, t.restore_ms.p99_ms, t.reset_ms.min_ms, t.reset_ms.median_ms, t.reset_ms.p99_ms);
    if (!t.unknown_syscalls.empty()) {
      std::string list;
      for (const auto& u : t.unknown_syscalls) {
        list += (list.empty() ? "" : ", ") + linux_syscall_name(u.number) + " (" + std::to_string(u.requests) + ")";
      }
      std::printf("  unimplemented system calls (-ENOSYS to the program; requests): %s\n", list.c_str());
    }
  }
  if (stats.templates.empty()) std::puts("no templates");
  return kExitOk;
}

}  // namespace

void add_stats_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<ClientOptions>();
  auto* cmd = app.add_subcommand("stats", "Show thawd's pool counters per template");
  add_client_options(*cmd, *opt);
  cmd->callback([&run, opt] { run = [opt] { return run_rpc_command([&] { return run_stats(*opt); }); }; });
}

}  // namespace thaw::cli
