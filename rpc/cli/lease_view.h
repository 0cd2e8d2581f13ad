// A leased clone as `thaw acquire` and `thaw invoke` print it.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "rpc/convert.h"
#include "rpc/thaw.capnp.h"

namespace thaw::cli {

struct LeaseView {
  uint64_t lease_id = 0, clone_id = 0, seed = 0, generation = 0, expires_in_ms = 0;
  std::string template_name, vsock_path;
  double acquire_ms = 0;  // the pool's own measure
  bool pool_hit = true;

  static LeaseView from(rpc::schema::Vm::InfoResults::Reader r) {
    LeaseView v;
    v.lease_id = r.getLeaseId();
    v.clone_id = r.getCloneId();
    v.seed = r.getSeed();
    v.generation = r.getGeneration();
    v.expires_in_ms = r.getExpiresInMs();
    v.template_name = rpc::to_string(r.getTemplateName());
    v.vsock_path = rpc::to_string(r.getVsockPath());
    v.acquire_ms = r.getAcquireMs();
    v.pool_hit = r.getPoolHit();
    return v;
  }

  nlohmann::json json() const {
    return {{"lease_id", lease_id},   {"template", template_name}, {"clone_id", clone_id},
            {"seed", seed},           {"generation", generation},  {"vsock_path", vsock_path},
            {"acquire_ms", acquire_ms}, {"pool_hit", pool_hit},    {"expires_in_ms", expires_in_ms}};
  }

  void print() const {
    std::printf("lease %llu of %s: clone %llu, seed 0x%llx, generation %llu\n",
                static_cast<unsigned long long>(lease_id), template_name.c_str(),
                static_cast<unsigned long long>(clone_id), static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(generation));
    std::printf("  acquire      %9.3f ms  (%s)\n", acquire_ms, pool_hit ? "warm pool hit" : "waited for a refill");
    std::printf("  expires in   %9llu ms\n", static_cast<unsigned long long>(expires_in_ms));
    std::printf("  vsock        %s\n", vsock_path.empty() ? "(none)" : vsock_path.c_str());
  }
};

}  // namespace thaw::cli
