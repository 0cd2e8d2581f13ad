#include "rpc/pool_client.h"

#include "rpc/socket_address.h"

namespace thaw::rpc {

PoolConnection::PoolConnection(const std::string& address)
    : io_(kj::setupAsyncIo()),
      stream_(io_.lowLevelProvider->wrapSocketFd(connect_to(address),
                                                 kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP |
                                                     kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC)),
      client_(kj::heap<capnp::TwoPartyClient>(*stream_)),
      pool_(client_->bootstrap().castAs<schema::Pool>()) {}

PoolConnection::~PoolConnection() = default;

}  // namespace thaw::rpc
