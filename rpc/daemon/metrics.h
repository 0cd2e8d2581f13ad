// thawd's Prometheus endpoint (text format over HTTP, prometheus-cpp's
// civetweb Exposer). Pool gauges and counters are read from the pool's own
// stats at each scrape, so they are never stale and need no polling thread:
//   thaw_pool_warm / _leased / _target_warm / _private_memory_mib   gauges
//   thaw_pool_{acquires,hits,misses,overloaded,restores,restore_failures,
//              resets,reset_failures,destroyed,expired_leases,
//              scale_ups,scale_downs}_total                        counters
// and the acquire latency as the RPC server sees it:
//   thaw_acquire_latency_seconds                                   histogram
// All labelled {template="..."}. And the RPC listener's limits at work:
//   thaw_rpc_connections_open                                       gauge
//   thaw_rpc_{connections_accepted,connections_refused,
//             oversized_messages,stalled_messages}_total             counters
#pragma once

#include <memory>
#include <string>

#include "pool/pool_types.h"
#include "rpc/pool_backend.h"
#include "rpc/rpc_listener.h"

namespace prometheus {
class Exposer;
class Registry;
template <typename T>
class Family;
class Histogram;
}  // namespace prometheus

namespace thaw::daemon {

class Metrics {
 public:
  // Serves http://<bind_address>/metrics. Throws when it cannot bind.
  // `connections` (optional, must outlive this) adds thaw_rpc_* families.
  Metrics(const std::string& bind_address, const rpc::PoolBackend& backend,
          const rpc::ConnectionCounters* connections = nullptr);
  ~Metrics();

  void observe_acquire(const pool::LeaseInfo& lease);

 private:
  class PoolCollector;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* acquire_latency_;
  std::shared_ptr<PoolCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace thaw::daemon
