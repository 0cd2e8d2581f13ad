#include "rpc/cli/client_options.h"

#include <iostream>

#include <kj/exception.h>

#include "rpc/cli/commands.h"
#include "rpc/error_mapping.h"

namespace thaw::cli {

void add_client_options(CLI::App& cmd, ClientOptions& opt) {
  cmd.add_option("--socket", opt.socket, "thawd's unix socket (or numeric HOST:PORT for its TCP listener)")
      ->capture_default_str();
  cmd.add_flag("--json", opt.json, "Print the result as JSON on stdout");
  cmd.footer(
      "Exit status: 0 ok, 1 the guest failed (or answered a non-zero status), 2 bad input or unknown\n"
      "template, 3 thawd unreachable or a host error, 4 no clone within --timeout-ms (pool exhausted).");
}

int run_rpc_command(const std::function<int()>& body) {
  try {
    return body();
  } catch (const kj::Exception& e) {
    // Connection errors (SysError) and bad flags (InputError) go on to main().
    std::cerr << "thaw: error: " << rpc::error_message(e) << "\n";
    switch (rpc::error_kind(e)) {
      case rpc::ErrorKind::kFailed: return kExitBadInput;
      case rpc::ErrorKind::kHostError: return kExitHostError;
      case rpc::ErrorKind::kOverloaded: return kExitOverloaded;
      case rpc::ErrorKind::kDisconnected: return kExitGuestFailure;
      case rpc::ErrorKind::kOther: return kExitHostError;
    }
    return kExitHostError;
  }
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace thaw::cli
