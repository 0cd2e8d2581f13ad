// thawd's serving loop on its own thread, minus the daemon around it: the
// real PoolServer and RpcListener over a backend the test gives, on a real
// unix socket, with the listener's connection limits and counters.
#pragma once

#include <future>
#include <string>
#include <thread>

#include "rpc/pool_server.h"
#include "rpc/rpc_listener.h"
#include "rpc/worker_pool.h"

namespace thaw::rpc {

class InProcessServer {
 public:
  InProcessServer(PoolBackend& backend, const std::string& socket, ConnectionLimits limits = {}) : backend_(backend) {
    std::promise<kj::Own<const kj::CrossThreadPromiseFulfiller<void>>> stop_ready;
    auto stop_future = stop_ready.get_future();
    thread_ = std::thread([this, socket, limits, &stop_ready] {
      auto io = kj::setupAsyncIo();
      WorkerPool workers(16);
      {
        capnp::Capability::Client bootstrap = kj::heap<PoolServer>(backend_, workers, ServerOptions{});
        RpcListener listener(*io.lowLevelProvider, bootstrap, counters_, limits);
        listener.listen(socket);
        auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
        stop_ready.set_value(kj::mv(paf.fulfiller));
        paf.promise.wait(io.waitScope);
      }
      workers.shutdown();
    });
    stop_ = stop_future.get();
  }
  ~InProcessServer() {
    stop_->fulfill();
    thread_.join();
  }
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  const ConnectionCounters& counters() const { return counters_; }

 private:
  PoolBackend& backend_;
  ConnectionCounters counters_;
  std::thread thread_;
  kj::Own<const kj::CrossThreadPromiseFulfiller<void>> stop_;
};

}  // namespace thaw::rpc
