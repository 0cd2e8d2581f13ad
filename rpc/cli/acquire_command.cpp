// `thaw acquire`: leases a clone from thawd, prints who it is, holds it for
// --hold-ms and releases it.
#include <cstdio>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "rpc/cli/acquire_request.h"
#include "rpc/cli/client_options.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/lease_view.h"
#include "rpc/pool_client.h"

namespace thaw::cli {

namespace {

struct AcquireOptions {
  ClientOptions client;
  AcquireArgs acquire;
  uint64_t hold_ms = 0;
};

int run_acquire(const AcquireOptions& opt) {
  rpc::PoolConnection conn(opt.client.socket);
  auto& ws = conn.wait_scope();
  auto start = std::chrono::steady_clock::now();
  auto vm = send_acquire(conn, opt.acquire);
  // Pipelined: info() goes out before the acquire has answered.
  auto info = LeaseView::from(vm.infoRequest().send().wait(ws));
  double round_trip_ms = ms_since(start);
  if (!opt.client.json) {
    info.print();
    std::printf("  round trip   %9.3f ms  (acquire + info, as this client saw it)\n", round_trip_ms);
    if (opt.hold_ms > 0) std::printf("holding for %llu ms\n", static_cast<unsigned long long>(opt.hold_ms));
    std::fflush(stdout);
  }
  if (opt.hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opt.hold_ms));
  auto release_start = std::chrono::steady_clock::now();
  vm.releaseRequest().send().wait(ws);
  double release_ms = ms_since(release_start);
  if (opt.client.json) {
    auto out = info.json();
    out["round_trip_ms"] = round_trip_ms;
    out["held_ms"] = opt.hold_ms;
    out["release_ms"] = release_ms;
    std::cout << out.dump(2) << std::endl;
  } else {
    std::printf("released in %.3f ms\n", release_ms);
  }
  return kExitOk;
}

}  // namespace

void add_acquire_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<AcquireOptions>();
  auto* cmd = app.add_subcommand("acquire", "Lease a running clone from thawd, print it, hold it, release it");
  cmd->add_option("template", opt->acquire.template_name, "Template name")->required();
  add_acquire_options(*cmd, opt->acquire);
  cmd->add_option("--hold-ms", opt->hold_ms, "Hold the lease this long before releasing it")->capture_default_str();
  add_client_options(*cmd, opt->client);
  cmd->callback([&run, opt] { run = [opt] { return run_rpc_command([&] { return run_acquire(*opt); }); }; });
}

}  // namespace thaw::cli
