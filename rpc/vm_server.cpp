#include "rpc/vm_server.h"

#include <spdlog/spdlog.h>

#include "rpc/convert.h"
#include "rpc/error_mapping.h"

namespace thaw::rpc {

// On the event loop, like the Release call: PoolBackend::release never
// blocks (the reset runs on the pool's own threads).
Lease::~Lease() {
  if (!armed_) return;
  uint64_t id = info_.lease_id;
  spdlog::debug("lease {} ({}) dropped without release; releasing it", id, info_.template_name);
  try {
    backend_.release(id);
  } catch (const pool::NotFound& e) {
    spdlog::debug("lease {}: already gone ({})", id, e.what());  // expired meanwhile
  } catch (const std::exception& e) {
    spdlog::warn("lease {}: release after the capability was dropped failed: {}", id, e.what());
  }
}

uint64_t ms_until(std::chrono::steady_clock::time_point t) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<uint64_t>(left.count()) : 0;
}

const char* invoke_error_kind(const kj::Exception& e) {
  switch (e.getType()) {
    case kj::Exception::Type::OVERLOADED: return "overloaded";
    case kj::Exception::Type::DISCONNECTED: return "disconnected";
    default: return "failed";
  }
}

void VmServer::require_leased() const {
  if (!lease_->armed()) throw_bad_argument("lease " + std::to_string(lease_->id()) + " was released");
}

kj::Promise<void> VmServer::invoke(InvokeContext context) {
  require_leased();
  auto params = context.getParams();
  std::string function = to_string(params.getFunction());
  check_function(function, limits_);
  auto data = params.getPayload();
  check_payload(function, data.size(), limits_);
  uint64_t timeout_ms = params.getTimeoutMs();
  check_timeout_ms(timeout_ms, limits_);
  if (timeout_ms == 0) timeout_ms = limits_.default_invoke_timeout_ms;
  std::vector<uint8_t> payload(data.begin(), data.end());
  context.releaseParams();
  auto observe = [observer = on_invoked_, name = lease_->info().template_name,
                  start = std::chrono::steady_clock::now()](const char* error_kind) {
    if (!observer) return;
    observer(name, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), error_kind);
  };
  return workers_
      .run([&backend = backend_, id = lease_->id(), function = std::move(function), payload = std::move(payload),
            timeout_ms] {
        // Boxed: GCC 12 misreads a vector inside kj's ExceptionOr (-Wmaybe-uninitialized).
        return kj::heap(backend.invoke(id, function, payload, std::chrono::milliseconds(timeout_ms)));
      })
      .then([context](kj::Own<pool::InvokeResult> result) mutable {
        auto out = context.getResults();
        out.setStatus(result->status);
        out.setPayload(kj::arrayPtr(result->payload.data(), result->payload.size()));
        out.setTotalMs(result->total_ms);
        out.setGuestMs(result->guest_ms);
        // Only a program template's invoke has one; the agent's stays unset.
        if (!result->stderr_bytes.empty()) {
          out.setStderr(kj::arrayPtr(result->stderr_bytes.data(), result->stderr_bytes.size()));
        }
      })
      .then([observe]() { observe(nullptr); },
            [observe](kj::Exception&& e) {
              observe(invoke_error_kind(e));
              kj::throwFatalException(kj::mv(e));
            });
}

kj::Promise<void> VmServer::renew(RenewContext context) {
  require_leased();
  uint64_t lease_ms = context.getParams().getLeaseMs();
  check_lease_ms(lease_ms, limits_);
  // Boxed: GCC 12 at -O3 misreads a LeaseInfo inside kj's ExceptionOr (-Wmaybe-uninitialized).
  return workers_
      .run([&backend = backend_, id = lease_->id(), lease_ms] { return kj::heap(backend.renew(id, lease_ms)); })
      .then([context](kj::Own<pool::LeaseInfo> info) mutable {
        context.getResults().setExpiresInMs(ms_until(info->expires_at));
      });
}

kj::Promise<void> VmServer::release(ReleaseContext /*context*/) {
  require_leased();
  // From here on the release is under way whatever happens to this call, so
  // the destructor must not release a second time. The backend's release
  // never blocks (the reset runs in the background): answered on the loop.
  lease_->disarm();
  try {
    backend_.release(lease_->id());
  } catch (...) {
    return exception_to_kj(std::current_exception());
  }
  return kj::READY_NOW;
}

kj::Promise<void> VmServer::info(InfoContext context) {
  require_leased();
  pool::LeaseInfo info;
  try {
    info = backend_.lease_info(lease_->id());  // never blocks
  } catch (...) {
    return exception_to_kj(std::current_exception());
  }
  auto out = context.getResults();
  out.setLeaseId(info.lease_id);
  out.setTemplateName(info.template_name);
  out.setCloneId(info.identity.clone_id);
  out.setSeed(info.identity.seed);
  out.setGeneration(info.identity.generation);
  out.setVsockPath(info.vsock_path);
  out.setAcquireMs(info.timings.acquire_ms);
  out.setPoolHit(info.timings.pool_hit);
  out.setExpiresInMs(ms_until(info.expires_at));
  return kj::READY_NOW;
}

}  // namespace thaw::rpc
