// The acquire that `thaw acquire` and `thaw invoke` both start with: its
// flags and the request itself.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "rpc/pool_client.h"

namespace thaw::cli {

struct AcquireArgs {
  std::string template_name;
  uint64_t lease_ms = 30000;
  uint64_t timeout_ms = 1000;
};

// --lease-ms and --timeout-ms (the template is each command's positional).
inline void add_acquire_options(CLI::App& cmd, AcquireArgs& args) {
  cmd.add_option("--lease-ms", args.lease_ms, "Lease length (thawd releases the clone after it)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3600000}))
      ->capture_default_str();
  cmd.add_option("--timeout-ms", args.timeout_ms, "How long to wait for a warm clone (0-60000)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{60000}))
      ->capture_default_str();
}

// Sends Pool.acquire and returns the promised Vm without waiting: calls made
// on it are pipelined and leave before the acquire has answered.
inline rpc::schema::Vm::Client send_acquire(rpc::PoolConnection& conn, const AcquireArgs& args) {
  auto req = conn.pool().acquireRequest();
  req.setTemplate(args.template_name);
  req.setLeaseMs(args.lease_ms);
  req.setTimeoutMs(args.timeout_ms);
  return req.send().getVm();
}

}  // namespace thaw::cli
