#include "rpc/daemon/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

namespace thaw::daemon {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Row = pool::PoolStats::PerTemplate;

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  // 50 us .. 5 s: a warm hit is well under a millisecond, a refill wait is not.
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return kBuckets;
}

}  // namespace

class Metrics::PoolCollector : public prometheus::Collectable {
 public:
  PoolCollector(const rpc::PoolBackend& backend, const rpc::ConnectionCounters* connections)
      : backend_(backend), connections_(connections) {}

  std::vector<MetricFamily> Collect() const override {
    pool::PoolStats stats;
    try {
      stats = backend_.stats();
    } catch (const std::exception& e) {
      spdlog::warn("metrics: pool stats failed: {}", e.what());
      return {};
    }
    std::vector<MetricFamily> out;
    auto family = [&](const char* name, const char* help, MetricType type, auto value) {
      MetricFamily f{name, help, type, {}};
      for (const auto& row : stats.templates) {
        ClientMetric m;
        m.label.push_back({"template", row.name});
        double v = static_cast<double>(value(row));
        if (type == MetricType::Counter) {
          m.counter.value = v;
        } else {
          m.gauge.value = v;
        }
        f.metric.push_back(std::move(m));
      }
      out.push_back(std::move(f));
    };
    auto gauge = MetricType::Gauge;
    auto counter = MetricType::Counter;
    family("thaw_pool_warm", "Warm (restored, paused) clones", gauge, [](const Row& r) { return r.warm; });
    family("thaw_pool_leased", "Clones leased to callers", gauge, [](const Row& r) { return r.leased; });
    family("thaw_pool_target_warm", "Warm clones the autoscaler aims for", gauge,
           [](const Row& r) { return r.target_warm; });
    family("thaw_pool_private_memory_mib", "Private guest memory of warm and leased clones (smaps), MiB", gauge,
           [](const Row& r) { return r.private_memory_mib; });
    family("thaw_pool_acquires_total", "Acquires answered with a clone", counter, [](const Row& r) { return r.acquires; });
    family("thaw_pool_hits_total", "Acquires served from a warm clone", counter, [](const Row& r) { return r.hits; });
    family("thaw_pool_misses_total", "Acquires that waited for a refill", counter, [](const Row& r) { return r.misses; });
    family("thaw_pool_overloaded_total", "Acquires that found no clone within their timeout", counter,
           [](const Row& r) { return r.overloaded; });
    family("thaw_pool_restores_total", "Clones restored from the snapshot", counter,
           [](const Row& r) { return r.restores; });
    family("thaw_pool_restore_failures_total", "Restores that failed", counter,
           [](const Row& r) { return r.restore_failures; });
    family("thaw_pool_scale_ups_total", "Autoscaler decisions that raised the target", counter,
           [](const Row& r) { return r.scale_ups; });
    family("thaw_pool_scale_downs_total", "Autoscaler decisions that lowered the target", counter,
           [](const Row& r) { return r.scale_downs; });
    family("thaw_pool_resets_total", "Clones reset in place after release", counter, [](const Row& r) { return r.resets; });
    family("thaw_pool_reset_failures_total", "Resets that failed (the clone was destroyed)", counter,
           [](const Row& r) { return r.reset_failures; });
    family("thaw_pool_destroyed_total", "Clones destroyed", counter, [](const Row& r) { return r.destroyed; });
    family("thaw_pool_expired_leases_total", "Leases that ran out before release", counter,
           [](const Row& r) { return r.expired_leases; });
    family("thaw_pool_restore_median_ms", "Median of recent background restores, ms", gauge,
           [](const Row& r) { return r.restore_ms.median_ms; });
    family("thaw_pool_reset_median_ms", "Median of recent resets in place, ms", gauge,
           [](const Row& r) { return r.reset_ms.median_ms; });
    if (connections_) add_connection_families(out);
    return out;
  }

 private:
  // The RPC listener's limits at work (rpc/rpc_listener.h), unlabelled.
  void add_connection_families(std::vector<MetricFamily>& out) const {
    auto one = [&](const char* name, const char* help, MetricType type, double v) {
      ClientMetric m;
      (type == MetricType::Counter ? m.counter.value : m.gauge.value) = v;
      out.push_back(MetricFamily{name, help, type, {m}});
    };
    const auto& c = *connections_;
    one("thaw_rpc_connections_open", "RPC connections open now", MetricType::Gauge, c.open.load());
    one("thaw_rpc_connections_accepted_total", "RPC connections accepted", MetricType::Counter, c.accepted.load());
    one("thaw_rpc_connections_refused_total", "Connections closed at once: max_connections were open",
        MetricType::Counter, c.refused_over_limit.load());
    one("thaw_rpc_oversized_messages_total", "Connections closed for a message over max_message_kib",
        MetricType::Counter, c.oversized_messages.load());
    one("thaw_rpc_stalled_messages_total", "Connections closed for a message not complete within message_timeout_ms",
        MetricType::Counter, c.stalled_messages.load());
  }

  const rpc::PoolBackend& backend_;
  const rpc::ConnectionCounters* connections_;
};

Metrics::Metrics(const std::string& bind_address, const rpc::PoolBackend& backend,
                 const rpc::ConnectionCounters* connections)
    : registry_(std::make_shared<prometheus::Registry>()),
      acquire_latency_(&prometheus::BuildHistogram()
                            .Name("thaw_acquire_latency_seconds")
                            .Help("Acquire latency, request until the clone runs (as the pool measures it)")
                            .Register(*registry_)),
      collector_(std::make_shared<PoolCollector>(backend, connections)) {
  exposer_ = std::make_unique<prometheus::Exposer>(bind_address);
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(collector_);
  spdlog::info("metrics on http://{}/metrics", bind_address);
}

Metrics::~Metrics() = default;

void Metrics::observe_acquire(const pool::LeaseInfo& lease) {
  acquire_latency_->Add({{"template", lease.template_name}}, latency_buckets()).Observe(lease.timings.acquire_ms / 1e3);
}

}  // namespace thaw::daemon
