// A client connection to thawd, for the `thaw` CLI and the tests: its own kj
// event loop on the calling thread; wait on promises with wait_scope().
//
//   thaw::rpc::PoolConnection conn("/run/thaw/thaw.sock");
//   auto req = conn.pool().acquireRequest();
//   req.setTemplate("mini"); req.setLeaseMs(30000); req.setTimeoutMs(1000);
//   auto vm = req.send().wait(conn.wait_scope()).getVm();
#pragma once

#include <string>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "rpc/thaw.capnp.h"

namespace thaw::rpc {

inline constexpr const char* kDefaultSocket = "/run/thaw/thaw.sock";

class PoolConnection {
 public:
  // A unix socket path or numeric HOST:PORT. SysError when nothing answers.
  explicit PoolConnection(const std::string& address);
  ~PoolConnection();
  PoolConnection(const PoolConnection&) = delete;
  PoolConnection& operator=(const PoolConnection&) = delete;

  schema::Pool::Client& pool() { return pool_; }
  kj::WaitScope& wait_scope() { return io_.waitScope; }

 private:
  kj::AsyncIoContext io_;
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Own<capnp::TwoPartyClient> client_;
  schema::Pool::Client pool_;
};

}  // namespace thaw::rpc
