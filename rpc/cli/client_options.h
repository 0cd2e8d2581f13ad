// What the RPC client commands (templates, template, acquire, invoke, stats) share:
// --socket and --json, and one mapping from RPC errors to exit codes.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace thaw::cli {

struct ClientOptions {
  std::string socket = "/run/thaw/thaw.sock";
  bool json = false;
};

// --socket PATH (or numeric HOST:PORT) and --json.
void add_client_options(CLI::App& cmd, ClientOptions& opt);

// Runs an RPC command body: prints a server error as "thaw: error: ..." and
// maps it to an exit code (FAILED: bad input, OVERLOADED: kExitOverloaded,
// DISCONNECTED from the guest: guest failure; cannot connect: host error).
int run_rpc_command(const std::function<int()>& body);

// Milliseconds since `start`.
double ms_since(std::chrono::steady_clock::time_point start);

}  // namespace thaw::cli
