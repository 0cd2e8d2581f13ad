// WorkerFleet as thawd's start-up, readiness and metrics see it
// (TemplateAdmin): listTemplates and stats asked of every worker of every
// template at once, a template's shards merged back into one
// (pool/pool_shard.h), and each call waited for from any thread.
#include <stdexcept>

#include "pool/pool_shard.h"
#include "pool/template_store.h"
#include "rpc/convert.h"
#include "rpc/daemon/worker_fleet.h"
#include "rpc/error_mapping.h"

namespace thaw::daemon {

// In both fan-outs below a worker that does not answer (it is ending, and
// the fleet is about to restart it) must not hide the other templates: list
// shows its template as last seen (or as its other workers see it), stats
// leave it out.
kj::Promise<std::vector<pool::TemplateInfo>> WorkerFleet::list_async() {
  kj::Vector<kj::Promise<std::vector<pool::TemplateInfo>>> answers;
  for (auto& [name, entry] : entries_) {
    if (!entry.serving) continue;
    // A template whose workers are restarting is still listed, as last seen
    // with no clones: a client listing templates must not think it deleted.
    std::vector<pool::TemplateInfo> as_last_seen;
    if (entry.last_seen) {
      as_last_seen.push_back(*entry.last_seen);
      as_last_seen.back().warm = as_last_seen.back().leased = as_last_seen.back().worker_pid = 0;
    }
    kj::Vector<kj::Promise<std::optional<pool::TemplateInfo>>> parts;
    for (auto& shard : entry.shards) {
      if (!shard.worker) continue;
      parts.add(shard.worker->pool().listTemplatesRequest(capnp::MessageSize{4, 0}).send().then(
          [pid = shard.worker->pid()](capnp::Response<schema::Pool::ListTemplatesResults> response) {
            std::optional<pool::TemplateInfo> info;
            if (response.getTemplates().size() > 0) {
              info = rpc::from_schema(response.getTemplates()[0]);
              info->worker_pid = static_cast<uint32_t>(pid);
            }
            return info;
          },
          [](kj::Exception&&) { return std::optional<pool::TemplateInfo>(); }));
    }
    answers.add(kj::joinPromises(parts.releaseAsArray())
                    .then([this, name, as_last_seen](kj::Array<std::optional<pool::TemplateInfo>> got) {
                      std::vector<pool::TemplateInfo> infos;
                      for (auto& info : got) {
                        if (info) infos.push_back(std::move(*info));
                      }
                      auto it = entries_.find(name);
                      if (infos.empty() || it == entries_.end()) return as_last_seen;
                      pool::TemplateInfo merged = pool::merge_template_infos(infos);
                      if (it->second.policy) merged.policy = *it->second.policy;
                      add_sockets(merged, it->second);
                      it->second.last_seen = merged;
                      return std::vector<pool::TemplateInfo>{merged};
                    }));
  }
  return kj::joinPromises(answers.releaseAsArray()).then([](kj::Array<std::vector<pool::TemplateInfo>> parts) {
    std::vector<pool::TemplateInfo> all;
    for (auto& part : parts) all.insert(all.end(), part.begin(), part.end());
    return all;
  });
}

kj::Promise<pool::PoolStats> WorkerFleet::stats_async() {
  kj::Vector<kj::Promise<std::vector<pool::PoolStats::PerTemplate>>> answers;
  for (auto& [name, entry] : entries_) {
    if (!entry.serving) continue;
    kj::Vector<kj::Promise<pool::PoolStats>> parts;
    for (auto& shard : entry.shards) {
      if (!shard.worker) continue;
      parts.add(shard.worker->pool().statsRequest(capnp::MessageSize{4, 0}).send().then(
          [](capnp::Response<schema::Pool::StatsResults> response) { return rpc::from_schema(response.getStats()); },
          [](kj::Exception&&) { return pool::PoolStats{}; }));
    }
    answers.add(kj::joinPromises(parts.releaseAsArray()).then([](kj::Array<pool::PoolStats> got) {
      std::vector<pool::PoolStats::PerTemplate> shards;
      for (auto& stats : got) shards.insert(shards.end(), stats.templates.begin(), stats.templates.end());
      if (shards.empty()) return std::vector<pool::PoolStats::PerTemplate>{};
      return std::vector<pool::PoolStats::PerTemplate>{pool::merge_template_stats(shards)};
    }));
  }
  return kj::joinPromises(answers.releaseAsArray()).then([](kj::Array<std::vector<pool::PoolStats::PerTemplate>> parts) {
    pool::PoolStats all;
    for (auto& part : parts) all.templates.insert(all.templates.end(), part.begin(), part.end());
    return all;
  });
}

template <typename T>
T WorkerFleet::wait_for(kj::Function<kj::Promise<T>()> make) const {
  if (std::this_thread::get_id() == loop_thread_) return make().wait(io_.waitScope);
  return executor_.executeSync(kj::mv(make));
}

std::vector<std::string> WorkerFleet::load_existing_templates() {
  std::vector<std::string> started;
  for (const auto& name : pool::TemplateStore(template_dir_).list()) {
    if (entries_.contains(name)) continue;
    Entry& entry = plan(name, /*load=*/true, std::nullopt);
    for (uint32_t i = 0; i < entry.shards.size(); ++i) start(name, i, /*load=*/true);
    entry.serving = true;
    started.push_back(name);
  }
  return started;
}

pool::TemplateInfo WorkerFleet::create_template(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy) {
  try {
    return wait_for<pool::TemplateInfo>([&] { return create_async(spec, policy); });
  } catch (const kj::Exception& e) {
    throw std::runtime_error(rpc::error_message(e));
  }
}

void WorkerFleet::set_policy(const std::string& name, const pool::PoolPolicy& policy) {
  wait_for<bool>([&] { return set_policy_async(name, policy).then([] { return true; }); });
}

std::vector<pool::TemplateInfo> WorkerFleet::list_templates() const {
  auto* self = const_cast<WorkerFleet*>(this);  // the calls only read the fleet; kj promises are not const
  return wait_for<std::vector<pool::TemplateInfo>>([self] { return self->list_async(); });
}

pool::PoolStats WorkerFleet::stats() const {
  auto* self = const_cast<WorkerFleet*>(this);
  return wait_for<pool::PoolStats>([self] { return self->stats_async(); });
}

}  // namespace thaw::daemon
