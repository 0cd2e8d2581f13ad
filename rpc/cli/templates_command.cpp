// `thaw templates`: the templates thawd serves, with their pools.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "rpc/cli/client_options.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/template_view.h"
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
    for (const auto& t : templates) out.push_back(template_json(t));
    std::cout << out.dump(2) << std::endl;
    return kExitOk;
  }
  if (templates.empty()) {
    std::puts("no templates (create one with `thaw template create`, or add a [[pool]] to thawd's config)");
    return kExitOk;
  }
  print_template_header();
  for (const auto& t : templates) print_template_row(t);
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
