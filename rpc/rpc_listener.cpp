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
  return receiver.accept().then([this, &receiver](kj::Own<kj::AsyncIoStream>&& connection) {
    if (server_) server_->accept(kj::mv(connection));
    return accept_loop(receiver);
  });
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
