#include "rpc/rpc_listener.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "rpc/socket_address.h"

namespace thaw::rpc {

RpcListener::RpcListener(kj::LowLevelAsyncIoProvider& low_level, capnp::Capability::Client bootstrap)
    : low_level_(low_level),
      bootstrap_(kj::mv(bootstrap)),
      server_(kj::heap<capnp::TwoPartyServer>(bootstrap_)),
      accepting_(kj::heap<kj::TaskSet>(error_logger_)) {}

RpcListener::~RpcListener() noexcept(false) {
  stop_accepting();
  disconnect_all();
}

void RpcListener::listen(const std::string& address) {
  auto fd = listen_on(address);
  auto receiver = low_level_.wrapListenSocketFd(kj::mv(fd), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                                 kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK |
                                                                 kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  accepting_->add(accept_loop(*receiver));
  receivers_.push_back(kj::mv(receiver));
  if (is_unix_path(address)) unix_paths_.push_back(address);
  spdlog::info("listening on {}", address);
}

kj::Promise<void> RpcListener::accept_loop(kj::ConnectionReceiver& receiver) {
  return receiver.accept()
      .then([this, &receiver](kj::Own<kj::AsyncIoStream>&& connection) {
        accept_failures_in_a_row_ = 0;
        if (server_) server_->accept(kj::mv(connection));
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

void RpcListener::disconnect_all() { server_ = nullptr; }

void RpcListener::ErrorLogger::taskFailed(kj::Exception&& exception) {
  spdlog::error("rpc: accepting connections failed: {}", exception.getDescription().cStr());
}

}  // namespace thaw::rpc
