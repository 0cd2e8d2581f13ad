// Serves a bootstrap capability on listening sockets, one two-party RPC
// connection per client, all on the calling thread's kj event loop.
// stop_accepting() closes the listening sockets; disconnect_all() drops every
// connection, and with them every capability the clients held (so each
// client's Vm leases are released).
#pragma once

#include <string>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

namespace thaw::rpc {

class RpcListener {
 public:
  RpcListener(kj::LowLevelAsyncIoProvider& low_level, capnp::Capability::Client bootstrap);
  ~RpcListener() noexcept(false);
  RpcListener(const RpcListener&) = delete;
  RpcListener& operator=(const RpcListener&) = delete;

  // rpc/socket_address.h: a unix socket path or numeric HOST:PORT.
  void listen(const std::string& address);
  void stop_accepting();  // also removes the unix socket files
  void disconnect_all();

  // Accepts that failed (and were retried after a back-off) since start.
  uint64_t accept_failures = 0;

 private:
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"  // kj's ErrorHandler; never deleted through it
  struct ErrorLogger final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&& exception) override;
  };
#pragma GCC diagnostic pop
  kj::Promise<void> accept_loop(kj::ConnectionReceiver& receiver);

  ErrorLogger error_logger_;
  kj::LowLevelAsyncIoProvider& low_level_;
  capnp::Capability::Client bootstrap_;
  kj::Own<capnp::TwoPartyServer> server_;
  std::vector<kj::Own<kj::ConnectionReceiver>> receivers_;
  std::vector<std::string> unix_paths_;
  kj::Own<kj::TaskSet> accepting_;
  unsigned accept_failures_in_a_row_ = 0;
};

// How long to wait before accepting again after `failures_in_a_row` failed
// accepts in a row.
kj::Duration accept_backoff(unsigned failures_in_a_row);

}  // namespace thaw::rpc
