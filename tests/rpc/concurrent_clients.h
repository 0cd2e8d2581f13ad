// Many RPC clients at once, for the server tests (in-process and the real
// thawd): each client on its own thread with its own PoolConnection, since a
// kj event loop belongs to one thread.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <kj/exception.h>

#include "rpc/error_mapping.h"
#include "rpc/pool_client.h"

namespace thaw::testing {

struct ConcurrentClientsResult {
  int ok = 0;          // calls that returned
  int overloaded = 0;  // calls that threw OVERLOADED
  int failed = 0;      // calls that threw anything else
  // Per client: the message of its last call that threw (OVERLOADED
  // included), or empty when none did.
  std::vector<std::string> last_error;
};

// Starts `clients` threads together; each connects to `address` and runs
// `call(connection)` `calls_each` times, catching what a call throws. Returns
// once every thread has finished.
template <typename Call>
ConcurrentClientsResult run_concurrent_clients(const std::string& address, int clients, int calls_each,
                                               const Call& call) {
  std::atomic<int> ok{0}, overloaded{0}, failed{0};
  std::vector<std::string> last_error(clients);
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      rpc::PoolConnection c(address);
      for (int i = 0; i < calls_each; ++i) {
        KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] { call(c); })) {
          (e->getType() == kj::Exception::Type::OVERLOADED ? overloaded : failed)++;
          last_error[t] = rpc::error_message(*e);
        } else {
          ok++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return {ok.load(), overloaded.load(), failed.load(), std::move(last_error)};
}

}  // namespace thaw::testing
