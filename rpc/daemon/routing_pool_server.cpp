#include "rpc/daemon/routing_pool_server.h"

#include <spdlog/spdlog.h>

#include "rpc/convert.h"
#include "rpc/error_mapping.h"
#include "rpc/validation.h"

namespace thaw::daemon {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A synchronous throw (a bad argument, an unknown template) as a rejected
// promise, as Cap'n Proto would deliver it.
template <typename Fn>
kj::Promise<void> guarded(Fn&& fn) {
  try {
    return fn();
  } catch (kj::Exception& e) {
    return kj::mv(e);
  } catch (...) {
    return rpc::exception_to_kj(std::current_exception());
  }
}

}  // namespace

kj::Promise<void> RoutingPoolServer::createTemplate(CreateTemplateContext context) {
  return guarded([&] {
    auto params = context.getParams();
    auto spec = rpc::from_schema(params.getSpec());
    auto policy = rpc::from_schema(params.getPolicy());
    rpc::check_spec(spec, options_.limits);
    rpc::check_policy(policy, options_.limits);
    spdlog::info("createTemplate {}: kernel {}, {} MiB, policy {}..{} warm, in a worker process", spec.name,
                 spec.kernel, spec.mem_mib, policy.min_warm, policy.max_warm);
    return fleet_.create_async(spec, policy)
        .then([context](pool::TemplateInfo info) mutable { rpc::to_schema(info, context.getResults().initInfo()); })
        .catch_([name = spec.name](kj::Exception&& e) {
          spdlog::warn("createTemplate {} failed: {}", name, rpc::error_message(e));
          kj::throwFatalException(kj::mv(e));
        });
  });
}

kj::Promise<void> RoutingPoolServer::listTemplates(ListTemplatesContext context) {
  return fleet_.list_async().then([context](std::vector<pool::TemplateInfo> templates) mutable {
    auto list = context.getResults().initTemplates(static_cast<unsigned>(templates.size()));
    for (unsigned i = 0; i < list.size(); ++i) rpc::to_schema(templates[i], list[i]);
  });
}

kj::Promise<void> RoutingPoolServer::deleteTemplate(DeleteTemplateContext context) {
  return guarded([&] {
    std::string name = rpc::to_string(context.getParams().getName());
    rpc::check_template_name(name, "name");
    spdlog::info("deleteTemplate {}", name);
    return fleet_.remove_async(name);
  });
}

kj::Promise<void> RoutingPoolServer::setPolicy(SetPolicyContext context) {
  return guarded([&] {
    auto params = context.getParams();
    std::string name = rpc::to_string(params.getName());
    rpc::check_template_name(name, "name");
    auto policy = rpc::from_schema(params.getPolicy());
    rpc::check_policy(policy, options_.limits);
    spdlog::info("setPolicy {}: {}..{} warm, {} MiB", name, policy.min_warm, policy.max_warm,
                 policy.memory_budget_mib);
    return fleet_.set_policy_async(name, policy);
  });
}

kj::Promise<void> RoutingPoolServer::stats(StatsContext context) {
  return fleet_.stats_async().then(
      [context](pool::PoolStats s) mutable { rpc::to_schema(s, context.getResults().initStats()); });
}

kj::Promise<void> RoutingPoolServer::acquire(AcquireContext context) {
  return guarded([&] {
    auto params = context.getParams();
    std::string name = rpc::to_string(params.getTemplate());
    rpc::check_template_name(name, "template");
    rpc::check_acquire_lease_ms(params.getLeaseMs(), options_.limits);
    rpc::check_timeout_ms(params.getTimeoutMs(), options_.limits);
    auto worker = fleet_.serving(name);
    auto request = worker->pool().acquireRequest();
    request.setTemplate(name);
    request.setLeaseMs(params.getLeaseMs());
    request.setTimeoutMs(params.getTimeoutMs());
    auto start = std::chrono::steady_clock::now();
    return request.send().then(
        [this, context, worker, name, start](capnp::Response<schema::Pool::AcquireResults> response) mutable {
          if (options_.on_acquired_in) options_.on_acquired_in(name, seconds_since(start));
          context.getResults().setVm(kj::heap<VmProxy>(response.getVm(), worker, options_.limits, options_.on_invoked));
        },
        [this, name](kj::Exception&& e) {
          if (e.getType() == kj::Exception::Type::OVERLOADED && options_.on_overloaded) options_.on_overloaded(name);
          kj::throwFatalException(relay_error(kj::mv(e), name));
        });
  });
}

kj::Promise<void> VmProxy::invoke(InvokeContext context) {
  return guarded([&] {
    require_leased();
    auto params = context.getParams();
    auto function = params.getFunction();
    rpc::check_function(std::string_view(function.cStr(), function.size()), limits_);
    rpc::check_payload(std::string_view(function.cStr(), function.size()), params.getPayload().size(), limits_);
    rpc::check_timeout_ms(params.getTimeoutMs(), limits_);
    auto request = vm_.invokeRequest();
    request.setFunction(function);
    request.setPayload(params.getPayload());
    request.setTimeoutMs(params.getTimeoutMs());
    context.releaseParams();
    auto observe = [observer = on_invoked_, name = worker_->name(),
                    start = std::chrono::steady_clock::now()](const char* error_kind) {
      if (observer) observer(name, seconds_since(start), error_kind);
    };
    return request.send().then(
        [context, observe](capnp::Response<schema::Vm::InvokeResults> response) mutable {
          context.setResults(response);
          observe(nullptr);
        },
        [observe, name = worker_->name()](kj::Exception&& e) {
          observe(rpc::invoke_error_kind(e));
          kj::throwFatalException(relay_error(kj::mv(e), name));
        });
  });
}

kj::Promise<void> VmProxy::renew(RenewContext context) {
  require_leased();
  auto request = vm_.renewRequest();
  request.setLeaseMs(context.getParams().getLeaseMs());
  auto renewed = request.send().then(
      [context](capnp::Response<schema::Vm::RenewResults> response) mutable { context.setResults(response); });
  return relayed(kj::mv(renewed), worker_->name());
}

void VmProxy::require_leased() const {
  if (released_) rpc::throw_bad_argument("lease was released");
}

kj::Promise<void> VmProxy::release(ReleaseContext /*context*/) {
  require_leased();
  // Answered here, as the in-process server answers it at once (the reset
  // runs in the background there too): the worker's answer would add a
  // round trip to every request. The message is on its way before any
  // later call or the capability's drop, which follow it on the same
  // connection; a release the worker refuses is only logged.
  released_ = true;
  vm_.releaseRequest(capnp::MessageSize{4, 0}).send().detach([name = worker_->name()](kj::Exception&& e) {
    spdlog::warn("template '{}': release failed in its worker: {}", name, rpc::error_message(e));
  });
  return kj::READY_NOW;
}

kj::Promise<void> VmProxy::info(InfoContext context) {
  require_leased();
  auto answered = vm_.infoRequest(capnp::MessageSize{4, 0}).send().then(
      [context](capnp::Response<schema::Vm::InfoResults> response) mutable { context.setResults(response); });
  return relayed(kj::mv(answered), worker_->name());
}

}  // namespace thaw::daemon
