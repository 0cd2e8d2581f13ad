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
    if (entry.worker) entry.worker->disconnect();
  }
  for (auto& [name, entry] : entries_) {
    if (!entry.direct_path.empty()) ::unlink(entry.direct_path.c_str());
    if (!entry.worker) continue;
    std::string how = entry.worker->reap(TemplateWorker::kReapPatience);
    spdlog::info("template '{}': worker {} {}", name, entry.worker->pid(), how);
    if (confinement_.cgroups.enabled()) confinement_.cgroups.remove(name);
  }
}

void WorkerFleet::bind_direct_socket(const std::string& name, Entry& entry) {
  if (entry.direct_fd.get() >= 0 || direct_.main_socket.empty()) return;
  std::string path = direct_socket_path(direct_.main_socket, name);
  if (path.empty()) {
    spdlog::warn("template '{}': no direct socket (its path beside {} would be too long)", name, direct_.main_socket);
    return;
  }
  try {
    entry.direct_fd = rpc::listen_on(path);
    if (direct_.set_access) direct_.set_access(path);
    entry.direct_path = path;
  } catch (const std::exception& e) {
    entry.direct_fd = nullptr;
    ::unlink(path.c_str());
    spdlog::warn("template '{}': no direct socket: {}", name, e.what());
  }
}

void WorkerFleet::erase(std::map<std::string, Entry>::iterator it) {
  if (!it->second.direct_path.empty()) ::unlink(it->second.direct_path.c_str());
  // A worker still ending keeps its cgroup until on_ended.
  if (confinement_.cgroups.enabled() && !it->second.worker) confinement_.cgroups.remove(it->first);
  entries_.erase(it);
}

std::shared_ptr<TemplateWorker> WorkerFleet::start(const std::string& name, bool load,
                                                   std::optional<pool::TemplateRecord> known) {
  Entry& entry = entries_[name];
  bind_direct_socket(name, entry);
  if (!known && load) {
    try {
      known = pool::TemplateStore(template_dir_).read_record(name);
    } catch (const std::exception& e) {
      spdlog::warn("template '{}': its worker starts without resource limits: {}", name, e.what());
    }
  }
  WorkerStart how{name, load, entry.direct_fd.get(), {}, {}};
  entry.limits.reset();
  if (known) {
    entry.spec = known->spec;
    entry.limits = worker_limits(known->spec, known->policy, confinement_.rpc_threads);
    how.limits = limits_argument(*entry.limits);
    spdlog::info("template '{}': worker limits for {}", name, describe(*entry.limits));
    if (confinement_.cgroups.enabled()) {
      try {
        how.cgroup = confinement_.cgroups.prepare(name, *entry.limits);
      } catch (const std::exception& e) {
        spdlog::error("template '{}': its worker gets no cgroup: {}", name, e.what());
      }
    }
  }
  auto worker = std::make_shared<TemplateWorker>(io_, spawner_, launch_, std::move(how));
  entry.worker = worker;
  entry.started = std::chrono::steady_clock::now();
  watch(worker);
  return worker;
}

void WorkerFleet::watch(const std::shared_ptr<TemplateWorker>& worker) {
  // The task holds the worker until its process ends, so the pidfd it
  // watches outlives the wait.
  tasks_.add(worker->ended().then([this, worker](std::string how) { on_ended(worker, how); }));
}

void WorkerFleet::on_ended(const std::shared_ptr<TemplateWorker>& worker, const std::string& how) {
  auto it = entries_.find(worker->name());
  if (it == entries_.end() && confinement_.cgroups.enabled()) confinement_.cgroups.remove(worker->name());
  if (it == entries_.end() || it->second.worker != worker) {
    spdlog::debug("template '{}': worker {} {}", worker->name(), worker->pid(), how);
    return;  // deleted or replaced: expected
  }
  Entry& entry = it->second;
  entry.worker.reset();
  entry.last_end = how;
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
  bool quick = std::chrono::steady_clock::now() - entry.started < kQuickEnd;
  entry.quick_ends = quick ? entry.quick_ends + 1 : 0;
  auto delay = std::chrono::milliseconds(0);
  if (entry.quick_ends > 1) {
    delay = std::min<std::chrono::milliseconds>(kMaxBackoff, kFirstBackoff * (1u << std::min(entry.quick_ends - 2, 9u)));
  }
  spdlog::error("template '{}': worker {} {}; its leases are lost; starting a new worker{}", worker->name(),
                worker->pid(), how, delay.count() == 0 ? "" : " in " + std::to_string(delay.count()) + " ms");
  std::string name = worker->name();
  if (delay.count() == 0) return restart(name);
  tasks_.add(io_.provider->getTimer().afterDelay(delay.count() * kj::MILLISECONDS).then([this, name] {
    restart(name);
  }));
}

void WorkerFleet::restart(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.worker) return;  // deleted meanwhile
  try {
    start(name, /*load=*/true);
  } catch (const std::exception& e) {
    spdlog::error("template '{}': cannot start its worker: {}; trying again in {} ms", name, e.what(),
                  kMaxBackoff.count());
    tasks_.add(io_.provider->getTimer().afterDelay(kMaxBackoff.count() * kj::MILLISECONDS).then([this, name] {
      restart(name);
    }));
  }
}

std::shared_ptr<TemplateWorker> WorkerFleet::serving(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.serving) throw failed("no template '" + name + "'");
  if (!it->second.worker) {
    throw kj::Exception(kj::Exception::Type::OVERLOADED, __FILE__, __LINE__,
                        kj::str("template '", name.c_str(), "': its worker process ", it->second.last_end.c_str(),
                                " and is being restarted; try again"));
  }
  return it->second.worker;
}

kj::Promise<pool::TemplateInfo> WorkerFleet::create_async(const pool::TemplateSpec& spec,
                                                          const pool::PoolPolicy& policy) {
  if (entries_.contains(spec.name)) return failed("template '" + spec.name + "' already exists");
  std::shared_ptr<TemplateWorker> worker;
  try {
    pool::TemplateRecord known;
    known.spec = spec;
    known.policy = policy;
    worker = start(spec.name, /*load=*/false, known);
  } catch (const std::exception& e) {
    if (auto it = entries_.find(spec.name); it != entries_.end()) erase(it);
    return failed(std::string(rpc::kHostErrorPrefix) + e.what());
  }
  auto request = worker->pool().createTemplateRequest();
  rpc::to_schema(spec, request.initSpec());
  rpc::to_schema(policy, request.initPolicy());
  return request.send().then(
      [this, worker](capnp::Response<schema::Pool::CreateTemplateResults> response) {
        auto info = rpc::from_schema(response.getInfo());
        info.worker_pid = static_cast<uint32_t>(worker->pid());
        auto it = entries_.find(worker->name());
        if (it != entries_.end() && it->second.worker == worker) {
          it->second.serving = true;
          info.direct_socket = it->second.direct_path;
          it->second.last_seen = info;
        }
        return info;
      },
      [this, worker](kj::Exception&& e) -> pool::TemplateInfo {
        auto it = entries_.find(worker->name());
        if (it != entries_.end() && it->second.worker == worker) erase(it);
        worker->disconnect();  // the worker exits; its ended() task lets go of it
        kj::throwFatalException(relay_error(kj::mv(e), worker->name()));
      });
}

kj::Promise<void> WorkerFleet::remove_async(const std::string& name) {
  auto worker = serving(name);
  auto request = worker->pool().deleteTemplateRequest();
  request.setName(name);
  auto deleted = request.send().then([this, worker](auto&&) {
    auto it = entries_.find(worker->name());
    if (it != entries_.end() && it->second.worker == worker) erase(it);
    worker->disconnect();
  });
  return relayed(kj::mv(deleted), name);
}

kj::Promise<void> WorkerFleet::set_policy_async(const std::string& name, const pool::PoolPolicy& policy) {
  auto worker = serving(name);
  auto request = worker->pool().setPolicyRequest();
  request.setName(name);
  rpc::to_schema(policy, request.initPolicy());
  auto applied = request.send().then([this, name, policy](auto&&) { confine_to_policy(name, policy); });
  return relayed(kj::mv(applied), name);
}

void WorkerFleet::confine_to_policy(const std::string& name, const pool::PoolPolicy& policy) {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.limits || !it->second.spec) return;
  Entry& entry = it->second;
  WorkerLimits wanted = worker_limits(*entry.spec, policy, confinement_.rpc_threads);
  if (confinement_.cgroups.enabled()) {
    try {
      confinement_.cgroups.update(name, wanted);
    } catch (const std::exception& e) {
      spdlog::warn("template '{}': its worker's cgroup keeps its limits: {}", name, e.what());
    }
  }
  // A worker cannot raise its own rlimits: larger ones wait for its next
  // start (the cgroup's took effect above).
  if (wanted.clones > entry.limits->clones) {
    spdlog::warn("template '{}': the new policy allows {} clones, its worker's rlimits {} until it restarts", name,
                 wanted.clones, entry.limits->clones);
  }
}

// In both fan-outs below a worker that does not answer (it is ending, and
// the fleet is about to restart it) must not hide the other templates: list
// shows its template as last seen, stats leave it out.
kj::Promise<std::vector<pool::TemplateInfo>> WorkerFleet::list_async() {
  kj::Vector<kj::Promise<std::vector<pool::TemplateInfo>>> answers;
  for (auto& [name, entry] : entries_) {
    if (!entry.serving) continue;
    // A template whose worker is restarting is still listed, as last seen
    // with no clones: a client listing templates must not think it deleted.
    std::vector<pool::TemplateInfo> as_last_seen;
    if (entry.last_seen) {
      as_last_seen.push_back(*entry.last_seen);
      as_last_seen.back().warm = as_last_seen.back().leased = as_last_seen.back().worker_pid = 0;
    }
    if (!entry.worker) {
      answers.add(kj::Promise<std::vector<pool::TemplateInfo>>(kj::mv(as_last_seen)));
      continue;
    }
    auto worker = entry.worker;
    answers.add(worker->pool().listTemplatesRequest(capnp::MessageSize{4, 0}).send().then(
        [this, worker, direct = entry.direct_path](capnp::Response<schema::Pool::ListTemplatesResults> response) {
          std::vector<pool::TemplateInfo> out;
          for (auto t : response.getTemplates()) {
            out.push_back(rpc::from_schema(t));
            out.back().worker_pid = static_cast<uint32_t>(worker->pid());
            out.back().direct_socket = direct;
          }
          auto it = entries_.find(worker->name());
          if (it != entries_.end() && it->second.worker == worker && !out.empty()) it->second.last_seen = out.front();
          return out;
        },
        [as_last_seen](kj::Exception&&) { return as_last_seen; }));
  }
  return kj::joinPromises(answers.releaseAsArray()).then([](kj::Array<std::vector<pool::TemplateInfo>> parts) {
    std::vector<pool::TemplateInfo> all;
    for (auto& part : parts) all.insert(all.end(), part.begin(), part.end());
    return all;
  });
}

kj::Promise<pool::PoolStats> WorkerFleet::stats_async() {
  kj::Vector<kj::Promise<pool::PoolStats>> answers;
  for (auto& [name, entry] : entries_) {
    if (!entry.serving || !entry.worker) continue;
    answers.add(entry.worker->pool().statsRequest(capnp::MessageSize{4, 0}).send().then(
        [](capnp::Response<schema::Pool::StatsResults> response) { return rpc::from_schema(response.getStats()); },
        [](kj::Exception&&) { return pool::PoolStats{}; }));
  }
  return kj::joinPromises(answers.releaseAsArray()).then([](kj::Array<pool::PoolStats> parts) {
    pool::PoolStats all;
    for (auto& part : parts) all.templates.insert(all.templates.end(), part.templates.begin(), part.templates.end());
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
    start(name, /*load=*/true);
    entries_[name].serving = true;
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
