// thawd's Prometheus endpoint (text format over HTTP, prometheus-cpp's
// civetweb Exposer). Pool gauges and counters are read from the pool's own
// stats at each scrape, so they are never stale and need no polling thread:
//   thaw_pool_warm / _leased / _target_warm / _private_memory_bytes gauges
//   thaw_pool_min_warm / _max_warm / _memory_budget_bytes           gauges (policy)
//   thaw_pool_{acquires,hits,misses,overloaded,restores,restore_failures,
//              resets,reset_failures,destroyed,expired_leases,
//              scale_ups,scale_downs}_total                        counters
//   thaw_pool_restore_seconds / _reset_seconds                      histograms
// and what the RPC server sees:
//   thaw_acquire_latency_seconds / thaw_invoke_latency_seconds      histograms
//   thaw_invoke_errors_total{kind=failed|overloaded|disconnected}  counter
// All labelled {template="..."}. thaw_build_info{version} is 1. And the
// RPC listener's limits at work:
//   thaw_rpc_connections_open                                       gauge
//   thaw_rpc_{connections_accepted,connections_refused,oversized_messages,
//             stalled_messages,over_budget_messages}_total           counters
#pragma once

#include <memory>
#include <string>

#include "pool/pool_types.h"
#include "rpc/daemon/template_admin.h"
#include "rpc/rpc_listener.h"

namespace prometheus {
class Exposer;
class Registry;
template <typename T>
class Family;
class Histogram;
class Counter;
}  // namespace prometheus

namespace thaw::daemon {

class Metrics {
 public:
  // Serves http://<bind_address>/metrics. Throws when it cannot bind.
  // `connections` (optional, must outlive this) adds thaw_rpc_* families.
  Metrics(const std::string& bind_address, const TemplateAdmin& pools,
          const rpc::ConnectionCounters* connections = nullptr);
  ~Metrics();

  void observe_acquire(const pool::LeaseInfo& lease);
  // An acquire timed where thawd answered it (across a template worker).
  void observe_acquire(const std::string& template_name, double seconds);
  // `error_kind`: null for a good invoke, else failed, overloaded or disconnected.
  void observe_invoke(const std::string& template_name, double seconds, const char* error_kind);

 private:
  class PoolCollector;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* acquire_latency_;
  prometheus::Family<prometheus::Histogram>* invoke_latency_;
  prometheus::Family<prometheus::Counter>* invoke_errors_;
  std::shared_ptr<PoolCollector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace thaw::daemon
