#include "rpc/pool_server.h"

#include <spdlog/spdlog.h>

#include "rpc/convert.h"
#include "rpc/error_mapping.h"
#include "rpc/vm_server.h"

namespace thaw::rpc {

kj::Promise<void> PoolServer::createTemplate(CreateTemplateContext context) {
  auto params = context.getParams();
  auto spec = from_schema(params.getSpec());
  auto policy = from_schema(params.getPolicy());
  check_spec(spec, options_.limits);
  check_policy(policy, options_.limits);
  spdlog::info("createTemplate {}: kernel {}, {} MiB, policy {}..{} warm", spec.name, spec.kernel, spec.mem_mib,
               policy.min_warm, policy.max_warm);
  // Boxed, as below: GCC 12 at -O3 misreads strings inside kj's ExceptionOr.
  return workers_.run([&backend = backend_, spec, policy] { return kj::heap(backend.create_template(spec, policy)); })
      .then([context](kj::Own<pool::TemplateInfo> info) mutable { to_schema(*info, context.getResults().initInfo()); })
      .catch_([name = spec.name](kj::Exception&& e) {
        // The operator learns why a template was refused, not only the client.
        spdlog::warn("createTemplate {} failed: {}", name, error_message(e));
        kj::throwFatalException(kj::mv(e));
      });
}

kj::Promise<void> PoolServer::listTemplates(ListTemplatesContext context) {
  // Vectors travel boxed: GCC 12 misreads them inside kj's ExceptionOr
  // (-Wmaybe-uninitialized).
  return workers_.run([&backend = backend_] { return kj::heap(backend.list_templates()); })
      .then([context](kj::Own<std::vector<pool::TemplateInfo>> templates) mutable {
        auto list = context.getResults().initTemplates(static_cast<unsigned>(templates->size()));
        for (unsigned i = 0; i < list.size(); ++i) to_schema((*templates)[i], list[i]);
      });
}

kj::Promise<void> PoolServer::deleteTemplate(DeleteTemplateContext context) {
  std::string name = to_string(context.getParams().getName());
  check_template_name(name, "name");
  spdlog::info("deleteTemplate {}", name);
  return workers_.run([&backend = backend_, name] { backend.delete_template(name); });
}

kj::Promise<void> PoolServer::setPolicy(SetPolicyContext context) {
  auto params = context.getParams();
  std::string name = to_string(params.getName());
  check_template_name(name, "name");
  auto policy = from_schema(params.getPolicy());
  check_policy(policy, options_.limits);
  spdlog::info("setPolicy {}: {}..{} warm, {} MiB", name, policy.min_warm, policy.max_warm, policy.memory_budget_mib);
  return workers_.run([&backend = backend_, name, policy] { backend.set_policy(name, policy); });
}

kj::Promise<void> PoolServer::stats(StatsContext context) {
  return workers_.run([&backend = backend_] { return kj::heap(backend.stats()); })
      .then([context](kj::Own<pool::PoolStats> s) mutable { to_schema(*s, context.getResults().initStats()); });
}

kj::Promise<void> PoolServer::acquire(AcquireContext context) {
  auto params = context.getParams();
  std::string name = to_string(params.getTemplate());
  check_template_name(name, "template");
  uint64_t lease_ms = params.getLeaseMs();
  check_acquire_lease_ms(lease_ms, options_.limits);
  uint64_t timeout_ms = params.getTimeoutMs();
  check_timeout_ms(timeout_ms, options_.limits);
  // Fast path: a warm clone is handed out right here on the event loop, a
  // few tens of microseconds, with no hand-off to a worker and back.
  try {
    if (auto info = backend_.try_acquire(name, lease_ms)) {
      answer_acquire(context, kj::heap<Lease>(backend_, std::move(*info)));
      return kj::READY_NOW;
    }
  } catch (...) {
    return exception_to_kj(std::current_exception());
  }
  // None warm: wait for a refill on a worker. The Lease is made there: if
  // this call is cancelled before the answer (the client went away), it
  // dies there and releases the clone.
  return workers_
      .run([&backend = backend_, name, lease_ms, timeout_ms] {
        return kj::heap<Lease>(backend, backend.acquire(name, lease_ms, std::chrono::milliseconds(timeout_ms)));
      })
      .then([this, context](kj::Own<Lease> lease) mutable { answer_acquire(context, kj::mv(lease)); },
            [this, name](kj::Exception&& e) {
              if (e.getType() == kj::Exception::Type::OVERLOADED && options_.on_overloaded) options_.on_overloaded(name);
              kj::throwFatalException(kj::mv(e));
            });
}

void PoolServer::answer_acquire(AcquireContext& context, kj::Own<Lease> lease) {
  spdlog::debug("acquire {}: lease {} clone {} in {:.3f} ms{}", lease->info().template_name, lease->id(),
                lease->info().identity.clone_id, lease->info().timings.acquire_ms,
                lease->info().timings.pool_hit ? "" : " (waited for a refill)");
  if (options_.on_acquired) options_.on_acquired(lease->info());
  context.getResults().setVm(kj::heap<VmServer>(kj::mv(lease), backend_, workers_, options_.limits, options_.on_invoked));
}

}  // namespace thaw::rpc
