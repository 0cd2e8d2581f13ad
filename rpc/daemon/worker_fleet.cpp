#include "rpc/daemon/worker_fleet.h"

#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "pool/template_store.h"
#include "rpc/convert.h"
#include "rpc/error_mapping.h"
#include "rpc/socket_address.h"

namespace thaw::daemon {

namespace {

// A worker that ends within this of its start counts as a quick end: the
// next restart waits longer (100 ms, doubling, at most 30 s).
constexpr auto kQuickEnd = std::chrono::seconds(60);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(30000);

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"  // kj's ErrorHandler; never deleted through it
struct LogTaskErrors final : kj::TaskSet::ErrorHandler {
  void taskFailed(kj::Exception&& e) override {
    spdlog::warn("template workers: {}", e.getDescription().cStr());
  }
};
#pragma GCC diagnostic pop
LogTaskErrors log_task_errors;

kj::Exception failed(const std::string& message) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(message.c_str()));
}

}  // namespace

kj::Exception relay_error(kj::Exception&& e, const std::string& template_name) {
  std::string message = rpc::error_message(e);
  const bool from_worker = message.size() != e.getDescription().size();  // it had the remote prefix
  if (!from_worker && e.getType() == kj::Exception::Type::DISCONNECTED) {
    // Not the worker's answer but the connection to it failing.
    message = "template '" + template_name + "': its worker process went away (its clones are gone; thawd restarts it)";
  }
  return kj::Exception(e.getType(), __FILE__, __LINE__, kj::str(message.c_str()));
}

std::string direct_socket_path(const std::string& main_socket, const std::string& name) {
  std::filesystem::path main(main_socket);
  std::string path = (main.parent_path() / (main.stem().string() + "-" + name + ".sock")).string();
  return path.size() < sizeof(sockaddr_un{}.sun_path) ? path : "";
}

WorkerFleet::WorkerFleet(kj::AsyncIoContext& io, WorkerSpawner& spawner, WorkerLaunch launch,
                         std::string template_dir, DirectSockets direct, WorkerConfinement confinement)
    : io_(io),
      spawner_(spawner),
      launch_(std::move(launch)),
      template_dir_(std::move(template_dir)),
      direct_(std::move(direct)),
      confinement_(std::move(confinement)),
      executor_(kj::getCurrentThreadExecutor()),
      loop_thread_(std::this_thread::get_id()),
      tasks_(log_task_errors) {}

WorkerFleet::~WorkerFleet() noexcept(false) {
  // Every worker drains at once; then each is waited for in turn.
  for (auto& [name, entry] : entries_) {
    for (auto& shard : entry.shards) {
      if (shard.worker) shard.worker->disconnect();
    }
  }
  for (auto& [name, entry] : entries_) {
    remove_socket_files(entry);
    for (uint32_t i = 0; i < entry.shards.size(); ++i) {
      auto& worker = entry.shards[i].worker;
      if (!worker) continue;
      std::string how = worker->reap(TemplateWorker::kReapPatience);
      spdlog::info("template '{}': worker {} {}", name, worker->pid(), how);
      if (confinement_.cgroups.enabled()) confinement_.cgroups.remove(cgroup_key(name, i));
    }
  }
}

std::string WorkerFleet::cgroup_key(const std::string& name, uint32_t index) {
  return index == 0 ? name : name + "." + std::to_string(index + 1);
}

namespace {

// Listens at `path` (what direct_socket_path gave for `what`) with the
// access of thawd's socket into `fd` and `bound`; a failure is logged and
// leaves both empty: the template is served without that socket.
void listen_at(const std::string& what, const std::string& path, const DirectSockets& direct, kj::AutoCloseFd& fd,
               std::string& bound) {
  if (path.empty()) {
    spdlog::warn("{}: no direct socket (its path beside {} would be too long)", what, direct.main_socket);
    return;
  }
  try {
    fd = rpc::listen_on(path);
  } catch (const std::exception& e) {
    // Nothing of ours is there: what is (a live socket, another file) stays.
    spdlog::warn("{}: no direct socket: {}", what, e.what());
    return;
  }
  try {
    if (direct.set_access) direct.set_access(path);
    bound = path;
  } catch (const std::exception& e) {
    fd = nullptr;
    ::unlink(path.c_str());  // ours, with the wrong access: not to be served
    spdlog::warn("{}: no direct socket: {}", what, e.what());
  }
}

}  // namespace

void WorkerFleet::bind_direct_socket(const std::string& name, Entry& entry) {
  if (entry.direct_fd.get() >= 0 || direct_.main_socket.empty()) return;
  listen_at("template '" + name + "'", direct_socket_path(direct_.main_socket, name), direct_, entry.direct_fd,
            entry.direct_path);
}

void WorkerFleet::bind_shard_sockets(const std::string& name, Entry& entry) {
  if (entry.direct_fd.get() < 0 || entry.shards.size() < 2) return;
  for (uint32_t i = 0; i < entry.shards.size(); ++i) {
    Shard& shard = entry.shards[i];
    if (shard.own_fd.get() >= 0) continue;
    // '.' is not in template names, so "<stem>-big.2.sock" is no other template's socket.
    const std::string key = name + "." + std::to_string(i + 1);
    listen_at("template '" + name + "' shard " + std::to_string(i + 1), direct_socket_path(direct_.main_socket, key),
              direct_, shard.own_fd, shard.own_path);
  }
}

void WorkerFleet::add_sockets(pool::TemplateInfo& info, const Entry& entry) {
  info.direct_socket = entry.direct_path;
  info.workers = static_cast<uint32_t>(entry.shards.size());
  info.shard_sockets.clear();
  for (const auto& shard : entry.shards) {
    if (!shard.own_path.empty()) info.shard_sockets.push_back(shard.own_path);
  }
  // All or none: a client indexes them by shard.
  if (info.shard_sockets.size() != entry.shards.size()) info.shard_sockets.clear();
}

void WorkerFleet::remove_socket_files(const Entry& entry) {
  if (!entry.direct_path.empty()) ::unlink(entry.direct_path.c_str());
  for (const auto& shard : entry.shards) {
    if (!shard.own_path.empty()) ::unlink(shard.own_path.c_str());
  }
}

void WorkerFleet::erase(std::map<std::string, Entry>::iterator it) {
  remove_socket_files(it->second);
  for (uint32_t i = 0; i < it->second.shards.size(); ++i) {
    auto& worker = it->second.shards[i].worker;
    // A worker still ending keeps its cgroup until on_ended.
    if (worker) {
      worker->disconnect();  // it exits; its ended() task lets go of it
    } else if (confinement_.cgroups.enabled()) {
      confinement_.cgroups.remove(cgroup_key(it->first, i));
    }
  }
  entries_.erase(it);
}

WorkerFleet::Entry& WorkerFleet::plan(const std::string& name, bool load, std::optional<pool::TemplateRecord> known) {
  Entry& entry = entries_[name];
  bind_direct_socket(name, entry);
  if (!known && load) {
    try {
      known = pool::TemplateStore(template_dir_).read_record(name);
    } catch (const std::exception& e) {
      spdlog::warn("template '{}': its worker starts without resource limits: {}", name, e.what());
    }
  }
  if (known) {
    entry.spec = known->spec;
    entry.policy = known->policy;
  }
  if (entry.shards.empty()) {
    uint32_t count = entry.policy ? pool::shards_for(*entry.policy, confinement_.clones_per_worker) : 1;
    entry.shards.resize(count);
    if (count > 1) {
      spdlog::info("template '{}': spread over {} worker processes (max_warm {}, clones_per_worker {})", name, count,
                   entry.policy->max_warm, confinement_.clones_per_worker);
    }
    bind_shard_sockets(name, entry);
  }
  return entry;
}

std::shared_ptr<TemplateWorker> WorkerFleet::start(const std::string& name, uint32_t index, bool load) {
  Entry& entry = entries_.at(name);
  Shard& shard = entry.shards.at(index);
  const pool::PoolShard part{index, static_cast<uint32_t>(entry.shards.size())};
  WorkerStart how{name, load, entry.direct_fd.get(), shard.own_fd.get(), {}, {}, part};
  shard.limits.reset();
  if (entry.spec && entry.policy) {
    shard.limits = worker_limits(*entry.spec, pool::policy_share(*entry.policy, part), confinement_.rpc_threads);
    how.limits = limits_argument(*shard.limits);
    spdlog::info("template '{}': worker limits for {}", name, describe(*shard.limits));
    if (confinement_.cgroups.enabled()) {
      try {
        how.cgroup = confinement_.cgroups.prepare(cgroup_key(name, index), *shard.limits);
      } catch (const std::exception& e) {
        spdlog::error("template '{}': its worker gets no cgroup: {}", name, e.what());
      }
    }
  }
  auto worker = std::make_shared<TemplateWorker>(io_, spawner_, launch_, std::move(how));
  shard.worker = worker;
  shard.started = std::chrono::steady_clock::now();
  watch(worker);
  return worker;
}

void WorkerFleet::start_other_shards(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  for (uint32_t i = 1; i < it->second.shards.size(); ++i) {
    if (!it->second.shards[i].worker) start_or_retry(name, i);
  }
}

void WorkerFleet::start_or_retry(const std::string& name, uint32_t index) {
  try {
    start(name, index, /*load=*/true);
  } catch (const std::exception& e) {
    const auto count = static_cast<uint32_t>(entries_.at(name).shards.size());
    spdlog::error("template '{}': cannot start its worker{}: {}; trying again in {} ms", name,
                  count > 1 ? " " + pool::shard_text({index, count}) : "", e.what(), kMaxBackoff.count());
    tasks_.add(io_.provider->getTimer().afterDelay(kMaxBackoff.count() * kj::MILLISECONDS).then([this, name, index] {
      restart(name, index);
    }));
  }
}

void WorkerFleet::watch(const std::shared_ptr<TemplateWorker>& worker) {
  // The task holds the worker until its process ends, so the pidfd it
  // watches outlives the wait.
  tasks_.add(worker->ended().then([this, worker](std::string how) { on_ended(worker, how); }));
}

void WorkerFleet::on_ended(const std::shared_ptr<TemplateWorker>& worker, const std::string& how) {
  const uint32_t index = worker->shard().index;
  auto it = entries_.find(worker->name());
  const bool ours = it != entries_.end() && index < it->second.shards.size() &&
                    it->second.shards[index].worker == worker;
  if (!ours) {
    bool slot_free = it == entries_.end() || index >= it->second.shards.size() || !it->second.shards[index].worker;
    if (slot_free && confinement_.cgroups.enabled()) confinement_.cgroups.remove(cgroup_key(worker->name(), index));
    spdlog::debug("template '{}': worker {} {}", worker->name(), worker->pid(), how);
    return;  // deleted or replaced: expected
  }
  Entry& entry = it->second;
  Shard& shard = entry.shards[index];
  shard.worker.reset();
  shard.last_end = how;
  if (!entry.serving) {
    spdlog::error("template '{}': worker {} {} while creating the template", worker->name(), worker->pid(), how);
    return;  // create_async's failure path drops the entry
  }
  if (worker->exit_status() == kExitTemplateUnloadable) {
    spdlog::error("template '{}': worker {} could not load the snapshot in {} (see its log above); the template is "
                  "not served until thawd restarts",
                  worker->name(), worker->pid(), template_dir_);
    erase(it);
    return;
  }
  bool quick = std::chrono::steady_clock::now() - shard.started < kQuickEnd;
  shard.quick_ends = quick ? shard.quick_ends + 1 : 0;
  auto delay = std::chrono::milliseconds(0);
  if (shard.quick_ends > 1) {
    delay = std::min<std::chrono::milliseconds>(kMaxBackoff, kFirstBackoff * (1u << std::min(shard.quick_ends - 2, 9u)));
  }
  spdlog::error("template '{}': worker {} {}; its leases are lost; starting a new worker{}", worker->name(),
                worker->pid(), how, delay.count() == 0 ? "" : " in " + std::to_string(delay.count()) + " ms");
  std::string name = worker->name();
  if (delay.count() == 0) return restart(name, index);
  tasks_.add(io_.provider->getTimer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, name, index] {
    restart(name, index);
  }));
}

void WorkerFleet::restart(const std::string& name, uint32_t index) {
  auto it = entries_.find(name);
  if (it == entries_.end() || index >= it->second.shards.size() || it->second.shards[index].worker) {
    return;  // deleted or restarted meanwhile
  }
  plan(name, /*load=*/true, std::nullopt);  // the policy as last recorded
  start_or_retry(name, index);
}

kj::Exception WorkerFleet::restarting(const std::string& name, const Shard& shard) {
  return kj::Exception(kj::Exception::Type::OVERLOADED, __FILE__, __LINE__,
                       kj::str("template '", name.c_str(), "': its worker process ", shard.last_end.c_str(),
                               " and is being restarted; try again"));
}

std::shared_ptr<TemplateWorker> WorkerFleet::serving(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.serving) throw failed("no template '" + name + "'");
  Entry& entry = it->second;
  for (size_t tried = 0; tried < entry.shards.size(); ++tried) {
    Shard& shard = entry.shards[entry.next_turn++ % entry.shards.size()];
    if (shard.worker) return shard.worker;
  }
  throw restarting(name, entry.shards.front());
}

std::shared_ptr<TemplateWorker> WorkerFleet::first_shard(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.serving) throw failed("no template '" + name + "'");
  const Shard& first = it->second.shards.front();
  if (!first.worker) throw restarting(name, first);
  return first.worker;
}

kj::Promise<pool::TemplateInfo> WorkerFleet::create_async(const pool::TemplateSpec& spec,
                                                          const pool::PoolPolicy& policy) {
  if (entries_.contains(spec.name)) return failed("template '" + spec.name + "' already exists");
  std::shared_ptr<TemplateWorker> worker;
  try {
    pool::TemplateRecord known;
    known.spec = spec;
    known.policy = policy;
    plan(spec.name, /*load=*/false, known);
    worker = start(spec.name, 0, /*load=*/false);
  } catch (const std::exception& e) {
    if (auto it = entries_.find(spec.name); it != entries_.end()) erase(it);
    return failed(std::string(rpc::kHostErrorPrefix) + e.what());
  }
  auto request = worker->pool().createTemplateRequest();
  rpc::to_schema(spec, request.initSpec());
  rpc::to_schema(policy, request.initPolicy());
  return request.send().then(
      [this, worker, policy](capnp::Response<schema::Pool::CreateTemplateResults> response) {
        auto info = rpc::from_schema(response.getInfo());
        info.worker_pid = static_cast<uint32_t>(worker->pid());
        info.policy = policy;
        auto it = entries_.find(worker->name());
        if (it != entries_.end() && it->second.shards.front().worker == worker) {
          it->second.serving = true;
          add_sockets(info, it->second);
          it->second.last_seen = info;
          start_other_shards(worker->name());
        }
        return info;
      },
      [this, worker](kj::Exception&& e) -> pool::TemplateInfo {
        auto it = entries_.find(worker->name());
        if (it != entries_.end() && it->second.shards.front().worker == worker) erase(it);
        worker->disconnect();  // the worker exits; its ended() task lets go of it
        kj::throwFatalException(relay_error(kj::mv(e), worker->name()));
      });
}

kj::Promise<void> WorkerFleet::remove_async(const std::string& name) {
  // Shard 0 deletes the snapshot; the others' clones go as they disconnect.
  auto worker = first_shard(name);
  auto request = worker->pool().deleteTemplateRequest();
  request.setName(name);
  auto deleted = request.send().then([this, worker](auto&&) {
    auto it = entries_.find(worker->name());
    if (it != entries_.end() && it->second.shards.front().worker == worker) erase(it);
    worker->disconnect();
  });
  return relayed(kj::mv(deleted), name);
}

kj::Promise<void> WorkerFleet::set_policy_async(const std::string& name, const pool::PoolPolicy& policy) {
  // Shard 0 records it; each worker applies its share. One restarting now
  // reads the recorded policy as it loads.
  first_shard(name);
  kj::Vector<kj::Promise<void>> applied;
  for (auto& shard : entries_.at(name).shards) {
    if (!shard.worker) continue;
    auto request = shard.worker->pool().setPolicyRequest();
    request.setName(name);
    rpc::to_schema(policy, request.initPolicy());
    applied.add(request.send().ignoreResult());
  }
  auto all = kj::joinPromises(applied.releaseAsArray()).then([this, name, policy] { confine_to_policy(name, policy); });
  return relayed(kj::mv(all), name);
}

void WorkerFleet::confine_to_policy(const std::string& name, const pool::PoolPolicy& policy) {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.spec) return;
  Entry& entry = it->second;
  entry.policy = policy;
  const auto count = static_cast<uint32_t>(entry.shards.size());
  if (uint32_t wanted = pool::shards_for(policy, confinement_.clones_per_worker); wanted != count) {
    spdlog::info("template '{}': the new policy would be spread over {} workers; it keeps {} until thawd restarts",
                 name, wanted, count);
  }
  for (uint32_t i = 0; i < count; ++i) {
    Shard& shard = entry.shards[i];
    if (!shard.limits) continue;
    WorkerLimits wanted = worker_limits(*entry.spec, pool::policy_share(policy, {i, count}), confinement_.rpc_threads);
    if (confinement_.cgroups.enabled()) {
      try {
        confinement_.cgroups.update(cgroup_key(name, i), wanted);
      } catch (const std::exception& e) {
        spdlog::warn("template '{}': its worker's cgroup keeps its limits: {}", name, e.what());
      }
    }
    // A worker cannot raise its own rlimits: larger ones wait for its next
    // start (the cgroup's took effect above).
    if (wanted.clones > shard.limits->clones) {
      spdlog::warn("template '{}': the new policy allows {} clones, its worker's rlimits {} until it restarts", name,
                   wanted.clones, shard.limits->clones);
    }
  }
}

}  // namespace thaw::daemon
