#include "rpc/rpc_listener.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "rpc/socket_address.h"

namespace thaw::rpc {

// One client: its guarded stream, the two-party network over it and the
// RPC system serving the bootstrap capability. Members die in reverse
// order: RPC first, the stream last.
struct RpcListener::Connection {
  Connection(kj::Own<kj::AsyncIoStream> raw, kj::Timer& timer, const MessageGuardStream::Limits& limits,
             ConnectionCounters& shared_counters, capnp::Capability::Client bootstrap)
      : counters(shared_counters),
        stream(kj::heap<MessageGuardStream>(kj::mv(raw), timer, limits,
                                            [&shared_counters](MessageGuardStream::Violation kind, const std::string& why) {
                                              ++counter_for(shared_counters, kind);
                                              spdlog::warn("rpc: closing a connection: {}", why);
                                            })),
        network(*stream, capnp::rpc::twoparty::Side::SERVER, reader_options(limits)),
        rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))) {
    ++counters.open;
  }
  ~Connection() { --counters.open; }

  static capnp::ReaderOptions reader_options(const MessageGuardStream::Limits& limits) {
    capnp::ReaderOptions options;
    // Cap'n Proto's own bound on what one message may make it traverse,
    // the same as the framing bound (its default is 64 MiB).
    options.traversalLimitInWords = limits.max_message_bytes / 8 + 1;
    return options;
  }

  static std::atomic<uint64_t>& counter_for(ConnectionCounters& c, MessageGuardStream::Violation kind) {
    switch (kind) {
      case MessageGuardStream::Violation::kStalled: return c.stalled_messages;
      case MessageGuardStream::Violation::kOverBudget: return c.over_budget_messages;
      case MessageGuardStream::Violation::kOversized: break;
    }
    return c.oversized_messages;
  }

  ConnectionCounters& counters;
  kj::Own<MessageGuardStream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

RpcListener::RpcListener(kj::LowLevelAsyncIoProvider& low_level, capnp::Capability::Client bootstrap,
                         ConnectionCounters& counters, ConnectionLimits limits)
    : low_level_(low_level),
      bootstrap_(kj::mv(bootstrap)),
      counters_(counters),
      limits_(limits),
      connections_(kj::heap<kj::TaskSet>(error_logger_)),
      accepting_(kj::heap<kj::TaskSet>(error_logger_)) {
  budget_.limit_bytes = limits_.max_inflight_bytes;
}

void RpcListener::serve(kj::Own<kj::AsyncIoStream> stream) {
  if (!connections_) return;  // disconnect_all() ran: thawd is shutting down
  if (counters_.open.load() >= limits_.max_connections) {
    // Closed at once (dropping the stream): a refused client sees EOF, and
    // the ones already served keep their memory.
    if (counters_.refused_over_limit++ % 100 == 0) {
      spdlog::warn("rpc: {} connections open, the most max_connections allows; refusing more ({} so far)",
                   limits_.max_connections, counters_.refused_over_limit.load());
    }
    return;
  }
  ++counters_.accepted;
  auto message_limits = limits_.message;
  message_limits.budget = &budget_;
  auto connection = kj::heap<Connection>(kj::mv(stream), low_level_.getTimer(), message_limits, counters_, bootstrap_);
  auto disconnected = connection->network.onDisconnect();
  connections_->add(disconnected.attach(kj::mv(connection)));
}

RpcListener::~RpcListener() noexcept(false) {
  stop_accepting();
  disconnect_all();
}

void RpcListener::listen(const std::string& address) {
  adopt(listen_on(address));
  if (is_unix_path(address)) unix_paths_.push_back(address);
  spdlog::info("listening on {}", address);
}

void RpcListener::adopt(kj::AutoCloseFd listening) {
  auto receiver = low_level_.wrapListenSocketFd(kj::mv(listening), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                                       kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  accepting_->add(accept_loop(*receiver));
  receivers_.push_back(kj::mv(receiver));
}

kj::Promise<void> RpcListener::accept_loop(kj::ConnectionReceiver& receiver) {
  return receiver.accept()
      .then([this, &receiver](kj::Own<kj::AsyncIoStream>&& connection) {
        accept_failures_in_a_row_ = 0;
        serve(kj::mv(connection));
        return accept_loop(receiver);
      })
      .catch_([this, &receiver](kj::Exception&& e) -> kj::Promise<void> {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED pass: one failed
        // accept must not leave thawd up but deaf. Back off (the fds or
        // memory may come back as connections close) and keep accepting.
        ++accept_failures;
        auto delay = accept_backoff(accept_failures_in_a_row_++);
        spdlog::warn("rpc: accept failed ({}); retrying in {} ms", e.getDescription().cStr(), delay / kj::MILLISECONDS);
        return low_level_.getTimer().afterDelay(delay).then([this, &receiver] { return accept_loop(receiver); });
      });
}

kj::Duration accept_backoff(unsigned failures_in_a_row) {
  // 10 ms, doubling, at most 1 s: short enough that a transient shortage
  // costs little, long enough not to spin on a lasting one.
  unsigned shift = failures_in_a_row < 7 ? failures_in_a_row : 7;
  auto ms = 10LL << shift;
  return (ms > 1000 ? 1000 : ms) * kj::MILLISECONDS;
}

void RpcListener::stop_accepting() {
  accepting_ = kj::heap<kj::TaskSet>(error_logger_);  // cancels the accept loops
  receivers_.clear();
  for (const auto& path : unix_paths_) ::unlink(path.c_str());
  unix_paths_.clear();
}

void RpcListener::disconnect_all() { connections_ = nullptr; }

void RpcListener::ErrorLogger::taskFailed(kj::Exception&& exception) {
  spdlog::error("rpc: accepting connections failed: {}", exception.getDescription().cStr());
}

}  // namespace thaw::rpc
