// Serves a bootstrap capability on listening sockets, one two-party RPC
// connection per client, all on the calling thread's kj event loop.
// stop_accepting() closes the listening sockets; disconnect_all() drops every
// connection, and with them every capability the clients held (so each
// client's Vm leases are released).
//
// Anyone who can reach the socket can make thawd hold memory, so what one
// peer can pin is bounded: at most `max_connections` at once (more are
// closed at once), messages of at most `max_message_bytes`, and a message
// that has begun must arrive within `message_timeout` (MessageGuardStream).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "rpc/message_guard_stream.h"

namespace thaw::rpc {

struct ConnectionLimits {
  uint32_t max_connections = 256;
  MessageGuardStream::Limits message;  // its budget is the listener's own (below)
  // Declared bytes of messages in flight across every connection at once.
  uint64_t max_inflight_bytes = 256ull << 20;
};

// What the limits did, for the log and the metrics.
struct ConnectionCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused_over_limit{0};  // closed at accept: max_connections reached
  std::atomic<uint64_t> oversized_messages{0};  // disconnected: a message over max_message_bytes
  std::atomic<uint64_t> stalled_messages{0};    // disconnected: a message not complete in time
  std::atomic<uint64_t> over_budget_messages{0};  // disconnected: max_inflight_bytes across connections
  std::atomic<uint32_t> open{0};
};

class RpcListener {
 public:
  // `counters` must outlive the listener (metrics read them from another thread).
  RpcListener(kj::LowLevelAsyncIoProvider& low_level, capnp::Capability::Client bootstrap,
              ConnectionCounters& counters, ConnectionLimits limits = {});
  ~RpcListener() noexcept(false);
  RpcListener(const RpcListener&) = delete;
  RpcListener& operator=(const RpcListener&) = delete;

  // rpc/socket_address.h: a unix socket path or numeric HOST:PORT.
  void listen(const std::string& address);
  // Accepts on a socket already bound and listening (a template worker's
  // direct socket, which thawd binds and hands it); the file, if any, stays.
  void adopt(kj::AutoCloseFd listening);
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
  struct Connection;
  kj::Promise<void> accept_loop(kj::ConnectionReceiver& receiver);
  void serve(kj::Own<kj::AsyncIoStream> stream);

  ErrorLogger error_logger_;
  kj::LowLevelAsyncIoProvider& low_level_;
  capnp::Capability::Client bootstrap_;
  ConnectionCounters& counters_;
  const ConnectionLimits limits_;
  MessageGuardStream::InFlightBudget budget_;  // outlives the connections that share it
  kj::Own<kj::TaskSet> connections_;  // each task owns one connection until it disconnects
  std::vector<kj::Own<kj::ConnectionReceiver>> receivers_;
  std::vector<std::string> unix_paths_;
  kj::Own<kj::TaskSet> accepting_;
  unsigned accept_failures_in_a_row_ = 0;
};

// How long to wait before accepting again after `failures_in_a_row` failed
// accepts in a row.
kj::Duration accept_backoff(unsigned failures_in_a_row);

}  // namespace thaw::rpc
