// The `Pool` thawd serves when each template lives in its own worker
// process (template_workers = true): every argument is checked here, as the
// in-process PoolServer checks it, then the call goes to the template's
// worker. An acquired clone comes back wrapped in a VmProxy, which passes
// its calls on to the worker, keeps thawd's metrics and names a worker that
// went away. Clients see the same interface and errors either way.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "rpc/daemon/worker_fleet.h"
#include "rpc/pool_server.h"
#include "rpc/thaw.capnp.h"
#include "rpc/vm_server.h"

namespace thaw::daemon {

// Cap'n Proto's generated Server classes have a non-virtual destructor
// (capnp destroys them through Capability::Server, which has a virtual one).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class RoutingPoolServer final : public schema::Pool::Server {
 public:
  // `fleet` must outlive every capability this server hands out.
  RoutingPoolServer(WorkerFleet& fleet, rpc::ServerOptions options)
      : fleet_(fleet), options_(std::move(options)) {}

 protected:
  kj::Promise<void> createTemplate(CreateTemplateContext context) override;
  kj::Promise<void> listTemplates(ListTemplatesContext context) override;
  kj::Promise<void> deleteTemplate(DeleteTemplateContext context) override;
  kj::Promise<void> acquire(AcquireContext context) override;
  kj::Promise<void> stats(StatsContext context) override;
  kj::Promise<void> setPolicy(SetPolicyContext context) override;

 private:
  WorkerFleet& fleet_;
  rpc::ServerOptions options_;
};

// One leased clone in a worker. Holds the worker (and so its connection)
// while the client holds the capability; dropping it drops the worker's Vm,
// which releases the lease there.
class VmProxy final : public schema::Vm::Server {
 public:
  VmProxy(schema::Vm::Client vm, std::shared_ptr<TemplateWorker> worker, const rpc::Limits& limits,
          rpc::InvokeObserver on_invoked)
      : vm_(kj::mv(vm)), worker_(std::move(worker)), limits_(limits), on_invoked_(std::move(on_invoked)) {}

 protected:
  kj::Promise<void> invoke(InvokeContext context) override;
  kj::Promise<void> renew(RenewContext context) override;
  kj::Promise<void> release(ReleaseContext context) override;
  kj::Promise<void> info(InfoContext context) override;

 private:
  // FAILED once release() has been called: the lease is over.
  void require_leased() const;

  schema::Vm::Client vm_;
  std::shared_ptr<TemplateWorker> worker_;
  const rpc::Limits& limits_;
  rpc::InvokeObserver on_invoked_;
  bool released_ = false;
};
#pragma GCC diagnostic pop

}  // namespace thaw::daemon
