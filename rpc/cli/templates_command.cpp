// `thaw templates`: the templates thawd serves, with their pools.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "rpc/cli/client_options.h"
#include "rpc/cli/commands.h"
#include "rpc/convert.h"
#include "rpc/pool_client.h"

namespace thaw::cli {

namespace {

int run_templates(const ClientOptions& opt) {
  rpc::PoolConnection conn(opt.socket);
  auto reply = conn.pool().listTemplatesRequest().send().wait(conn.wait_scope());
  std::vector<pool::TemplateInfo> templates;
  for (auto t : reply.getTemplates()) templates.push_back(rpc::from_schema(t));
  if (opt.json) {
    auto out = nlohmann::json::array();
    for (const auto& t : templates) {
      out.push_back({{"name", t.name},
                     {"kernel", t.spec.kernel},
                     {"initrd", t.spec.initrd},
                     {"cmdline", t.spec.cmdline},
                     {"mem_mib", t.spec.mem_mib},
                     {"vcpus", t.spec.vcpus},
                     {"policy",
                      {{"min_warm", t.policy.min_warm},
                       {"max_warm", t.policy.max_warm},
                       {"memory_budget_mib", t.policy.memory_budget_mib}}},
                     {"snapshot_dir", t.snapshot_dir},
                     {"warm", t.warm},
                     {"leased", t.leased},
                     {"target_warm", t.target_warm},
                     {"cold_boot_ms", t.cold_boot_ms}});
    }
    std::cout << out.dump(2) << std::endl;
    return kExitOk;
  }
  if (templates.empty()) {
    std::puts("no templates (add a [[pool]] to thawd's config)");
    return kExitOk;
  }
  std::printf("%-20s %5s %6s %6s %9s %8s %10s  %s\n", "NAME", "WARM", "LEASED", "TARGET", "MIN..MAX", "MEM MiB",
              "COLD BOOT", "KERNEL");
  for (const auto& t : templates) {
    std::string range = std::to_string(t.policy.min_warm) + ".." + std::to_string(t.policy.max_warm);
    std::printf("%-20s %5u %6u %6u %9s %8llu %7.1f ms  %s\n", t.name.c_str(), t.warm, t.leased, t.target_warm,
                range.c_str(), static_cast<unsigned long long>(t.spec.mem_mib), t.cold_boot_ms, t.spec.kernel.c_str());
  }
  return kExitOk;
}

}  // namespace

void add_templates_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<ClientOptions>();
  auto* cmd = app.add_subcommand("templates", "List thawd's templates and their warm pools");
  add_client_options(*cmd, *opt);
  cmd->callback([&run, opt] { run = [opt] { return run_rpc_command([&] { return run_templates(*opt); }); }; });
}

}  // namespace thaw::cli
