// The `Vm` capability: one leased clone. invoke and renew run on the
// WorkerPool (they block on the guest or the pool); release and info never
// block and are answered on the event loop. The server object
// owns the lease: when the capability is dropped without release() (the
// client let go of it, disconnected or crashed), its destructor releases it
// (PoolBackend::release never blocks).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <kj/memory.h>

#include "rpc/pool_backend.h"
#include "rpc/thaw.capnp.h"
#include "rpc/validation.h"
#include "rpc/worker_pool.h"

namespace thaw::rpc {

// A lease that releases itself. Made on a worker right after acquire, so a
// lease whose caller went away before the answer is released too.
class Lease {
 public:
  Lease(PoolBackend& backend, pool::LeaseInfo info) : backend_(backend), info_(std::move(info)) {}
  ~Lease();  // backend.release(id) unless disarmed
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  uint64_t id() const { return info_.lease_id; }
  const pool::LeaseInfo& info() const { return info_; }
  // The lease is being released explicitly; the destructor leaves it be.
  void disarm() { armed_ = false; }
  bool armed() const { return armed_; }

 private:
  PoolBackend& backend_;
  pool::LeaseInfo info_;
  bool armed_ = true;
};

// Cap'n Proto's generated Server classes have a non-virtual destructor
// (capnp destroys them through Capability::Server, which has a virtual one).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
// Told of every invoke that reached the pool: its template, how long it took
// and, for one that failed, "failed", "overloaded" or "disconnected" (null
// when it succeeded). Runs on the event loop thread (metrics).
using InvokeObserver = std::function<void(const std::string& template_name, double seconds, const char* error_kind)>;
// An InvokeObserver's error_kind for a failed invoke.
const char* invoke_error_kind(const kj::Exception& e);

class VmServer final : public schema::Vm::Server {
 public:
  VmServer(kj::Own<Lease> lease, PoolBackend& backend, WorkerPool& workers, const Limits& limits,
           InvokeObserver on_invoked = {})
      : lease_(kj::mv(lease)),
        backend_(backend),
        workers_(workers),
        limits_(limits),
        on_invoked_(std::move(on_invoked)) {}

 protected:
  kj::Promise<void> invoke(InvokeContext context) override;
  kj::Promise<void> renew(RenewContext context) override;
  kj::Promise<void> release(ReleaseContext context) override;
  kj::Promise<void> info(InfoContext context) override;

 private:
  void require_leased() const;

  kj::Own<Lease> lease_;
  PoolBackend& backend_;
  WorkerPool& workers_;
  const Limits& limits_;
  InvokeObserver on_invoked_;
};
#pragma GCC diagnostic pop

// Milliseconds from now until `t`, 0 when past.
uint64_t ms_until(std::chrono::steady_clock::time_point t);

}  // namespace thaw::rpc
