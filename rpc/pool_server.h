// The `Pool` capability thawd serves on its socket. Every argument is checked
// here (rpc/validation.h). Pool calls that may block run on the WorkerPool,
// so a slow acquire, cold boot or guest never stalls the event loop or other
// clients; an acquire that finds a warm clone is answered on the loop itself.
#pragma once

#include <functional>
#include <string>

#include "rpc/pool_backend.h"
#include "rpc/thaw.capnp.h"
#include "rpc/validation.h"
#include "rpc/vm_server.h"
#include "rpc/worker_pool.h"

namespace thaw::rpc {

struct ServerOptions {
  Limits limits;
  // Called on the event loop thread after each successful acquire (metrics).
  std::function<void(const pool::LeaseInfo&)> on_acquired;
  // The same for thawd's routing server, which sees no LeaseInfo: the
  // template and how long the acquire took across its worker.
  std::function<void(const std::string& template_name, double seconds)> on_acquired_in;
  // Called on the event loop thread after each acquire that got OVERLOADED.
  std::function<void(const std::string& template_name)> on_overloaded;
  // Called on the event loop thread after each invoke (vm_server.h).
  InvokeObserver on_invoked;
};

// Cap'n Proto's generated Server classes have a non-virtual destructor
// (capnp destroys them through Capability::Server, which has a virtual one).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class PoolServer final : public schema::Pool::Server {
 public:
  // `backend` and `workers` must outlive every capability this server hands out.
  PoolServer(PoolBackend& backend, WorkerPool& workers, ServerOptions options)
      : backend_(backend), workers_(workers), options_(std::move(options)) {}

 protected:
  kj::Promise<void> createTemplate(CreateTemplateContext context) override;
  kj::Promise<void> listTemplates(ListTemplatesContext context) override;
  kj::Promise<void> deleteTemplate(DeleteTemplateContext context) override;
  kj::Promise<void> acquire(AcquireContext context) override;
  kj::Promise<void> stats(StatsContext context) override;
  kj::Promise<void> setPolicy(SetPolicyContext context) override;

 private:
  void answer_acquire(AcquireContext& context, kj::Own<class Lease> lease);

  PoolBackend& backend_;
  WorkerPool& workers_;
  ServerOptions options_;
};
#pragma GCC diagnostic pop

}  // namespace thaw::rpc
