#include "rpc/daemon/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <limits>

namespace thaw::daemon {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Row = pool::PoolStats::PerTemplate;

// The pool's buckets (pool::LatencyHistogram), for every latency thawd exports.
const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets(pool::LatencyHistogram::kBoundsSeconds.begin(),
                                                                pool::LatencyHistogram::kBoundsSeconds.end());
  return kBuckets;
}

ClientMetric histogram_metric(const std::string& template_name, const pool::LatencyHistogram& h) {
  ClientMetric m;
  m.label.push_back({"template", template_name});
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum_seconds;
  for (size_t i = 0; i < h.at_most.size(); ++i) {
    m.histogram.bucket.push_back({h.at_most[i], pool::LatencyHistogram::kBoundsSeconds[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  return m;
}

}  // namespace

class Metrics::PoolCollector : public prometheus::Collectable {
 public:
  PoolCollector(const TemplateAdmin& backend, const rpc::ConnectionCounters* connections)
      : backend_(backend), connections_(connections) {}

  std::vector<MetricFamily> Collect() const override {
    pool::PoolStats stats;
    try {
      stats = backend_.stats();
    } catch (const std::exception& e) {
      spdlog::warn("metrics: pool stats failed: {}", e.what());
      return {};
    }
    std::vector<pool::TemplateInfo> templates;
    try {
      templates = backend_.list_templates();
    } catch (const std::exception& e) {
      spdlog::warn("metrics: listing templates failed: {}", e.what());
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
    family("thaw_pool_private_memory_bytes", "Private guest memory of warm and leased clones (smaps)", gauge,
           [](const Row& r) { return r.private_memory_mib * 1048576.0; });
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
    auto histograms = [&](const char* name, const char* help, auto pick) {
      MetricFamily f{name, help, MetricType::Histogram, {}};
      for (const auto& row : stats.templates) f.metric.push_back(histogram_metric(row.name, pick(row)));
      out.push_back(std::move(f));
    };
    histograms("thaw_pool_restore_seconds", "Restores of new clones from the snapshot (background refill)",
               [](const Row& r) { return r.restore_seconds; });
    histograms("thaw_pool_reset_seconds", "Resets in place of released clones",
               [](const Row& r) { return r.reset_seconds; });
    add_policy_families(out, templates);
    if (connections_) add_connection_families(out);
    return out;
  }

 private:
  // Each pool's policy, so headroom (warm vs max_warm, memory vs budget) can be alerted on.
  static void add_policy_families(std::vector<MetricFamily>& out, const std::vector<pool::TemplateInfo>& templates) {
    auto family = [&](const char* name, const char* help, auto value) {
      MetricFamily f{name, help, MetricType::Gauge, {}};
      for (const auto& t : templates) {
        ClientMetric m;
        m.label.push_back({"template", t.name});
        m.gauge.value = static_cast<double>(value(t.policy));
        f.metric.push_back(std::move(m));
      }
      out.push_back(std::move(f));
    };
    family("thaw_pool_min_warm", "Policy: fewest warm clones", [](const pool::PoolPolicy& p) { return p.min_warm; });
    family("thaw_pool_max_warm", "Policy: most warm clones", [](const pool::PoolPolicy& p) { return p.max_warm; });
    family("thaw_pool_memory_budget_bytes", "Policy: private memory of warm and leased clones together",
           [](const pool::PoolPolicy& p) { return p.memory_budget_mib * 1048576.0; });
  }

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
    one("thaw_rpc_over_budget_messages_total",
        "Connections closed for a message that would put messages in flight over max_inflight_mib",
        MetricType::Counter, c.over_budget_messages.load());
  }

  const TemplateAdmin& backend_;
  const rpc::ConnectionCounters* connections_;
};

Metrics::Metrics(const std::string& bind_address, const TemplateAdmin& backend,
                 const rpc::ConnectionCounters* connections)
    : registry_(std::make_shared<prometheus::Registry>()),
      acquire_latency_(&prometheus::BuildHistogram()
                            .Name("thaw_acquire_latency_seconds")
                            .Help("Acquire latency, request until the clone runs (as the pool measures it)")
                            .Register(*registry_)),
      invoke_latency_(&prometheus::BuildHistogram()
                           .Name("thaw_invoke_latency_seconds")
                           .Help("Invokes, request until the response (as the RPC server sees them), failed ones too")
                           .Register(*registry_)),
      invoke_errors_(&prometheus::BuildCounter()
                          .Name("thaw_invoke_errors_total")
                          .Help("Invokes that failed, by kind: failed (bad argument or lease), overloaded (another "
                                "invoke was running in the clone), disconnected (the guest crashed or timed out)")
                          .Register(*registry_)),
      collector_(std::make_shared<PoolCollector>(backend, connections)) {
  prometheus::BuildGauge()
      .Name("thaw_build_info")
      .Help("The thawd build serving these metrics (value 1)")
      .Register(*registry_)
      .Add({{"version", THAW_VERSION}})
      .Set(1);
  exposer_ = std::make_unique<prometheus::Exposer>(bind_address);
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(collector_);
  spdlog::info("metrics on http://{}/metrics", bind_address);
}

Metrics::~Metrics() = default;

void Metrics::observe_acquire(const pool::LeaseInfo& lease) {
  acquire_latency_->Add({{"template", lease.template_name}}, latency_buckets()).Observe(lease.timings.acquire_ms / 1e3);
}

void Metrics::observe_acquire(const std::string& template_name, double seconds) {
  acquire_latency_->Add({{"template", template_name}}, latency_buckets()).Observe(seconds);
}

void Metrics::observe_invoke(const std::string& template_name, double seconds, const char* error_kind) {
  invoke_latency_->Add({{"template", template_name}}, latency_buckets()).Observe(seconds);
  if (error_kind != nullptr) invoke_errors_->Add({{"template", template_name}, {"kind", error_kind}}).Increment();
}

}  // namespace thaw::daemon
