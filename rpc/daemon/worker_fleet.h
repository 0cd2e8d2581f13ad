// thawd's template worker processes: one per template (or several, each
// with a share of its pool, when clones_per_worker spreads a large one:
// pool/pool_shard.h), started on createTemplate and at thawd's start for
// each template on disk, stopped on deleteTemplate. A worker that ends
// unexpectedly (a crash, a seccomp kill, SIGKILL) takes only its own clones
// and leases with it: the fleet logs how it ended and starts a new one that
// loads the template from its snapshot and refills, with a growing delay if
// it keeps ending. Acquires take turns between a template's workers.
// Lives on thawd's event loop thread; the TemplateAdmin calls (start-up,
// readiness, metrics) may come from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <kj/async-io.h>

#include "pool/pool_types.h"
#include "pool/template_store.h"
#include "rpc/daemon/template_admin.h"
#include "rpc/daemon/template_worker.h"
#include "rpc/daemon/worker_cgroups.h"
#include "rpc/daemon/worker_limits.h"

namespace thaw::daemon {

// A worker's exit status when it cannot load its template (a damaged or
// missing snapshot): the fleet drops the template instead of restarting.
inline constexpr int kExitTemplateUnloadable = 4;

// Each template's direct socket: beside thawd's unix socket, named
// <stem>-<template>.sock, bound by thawd (so its mode and group are set
// like thawd's own) and handed to the worker, which serves that template
// on it without thawd's hop. Kept across worker restarts.
struct DirectSockets {
  std::string main_socket;  // thawd's unix socket; "": no direct sockets
  std::function<void(const std::string& path)> set_access;  // mode and group, as for thawd's socket
};

// The direct socket's path for `name` beside `main_socket`; "" when the
// path would not fit a unix socket address.
std::string direct_socket_path(const std::string& main_socket, const std::string& name);

// What confines each worker beyond its own sandbox: its resource limits are
// sized from its share of its template with `rpc_threads` (the `workers`
// setting), its cgroup comes from `cgroups`, and a template whose max_warm
// is above `clones_per_worker` (0: never) is spread over several workers.
struct WorkerConfinement {
  WorkerCgroups cgroups;
  uint32_t rpc_threads = 64;
  uint32_t clones_per_worker = 0;
};

class WorkerFleet final : public TemplateAdmin {
 public:
  // `spawner` must outlive the fleet.
  WorkerFleet(kj::AsyncIoContext& io, WorkerSpawner& spawner, WorkerLaunch launch, std::string template_dir,
              DirectSockets direct = {}, WorkerConfinement confinement = {});
  ~WorkerFleet() noexcept(false) override;  // disconnects every worker, then reaps them all
  WorkerFleet(const WorkerFleet&) = delete;
  WorkerFleet& operator=(const WorkerFleet&) = delete;

  // A worker serving `name`, each of its workers in turn. A FAILED
  // exception when there is no such template (or it is still being
  // created); OVERLOADED while every one of its workers restarts.
  std::shared_ptr<TemplateWorker> serving(const std::string& name);

  kj::Promise<pool::TemplateInfo> create_async(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy);
  kj::Promise<void> remove_async(const std::string& name);
  kj::Promise<void> set_policy_async(const std::string& name, const pool::PoolPolicy& policy);
  kj::Promise<std::vector<pool::TemplateInfo>> list_async();
  kj::Promise<pool::PoolStats> stats_async();

  // TemplateAdmin: the calls above, waited for. On the loop thread only
  // before the loop serves (thawd's start); from other threads at any time.
  std::vector<std::string> load_existing_templates() override;
  pool::TemplateInfo create_template(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy) override;
  void set_policy(const std::string& name, const pool::PoolPolicy& policy) override;
  std::vector<pool::TemplateInfo> list_templates() const override;
  pool::PoolStats stats() const override;

 private:
  struct Shard {
    std::shared_ptr<TemplateWorker> worker;  // null while a restart waits
    unsigned quick_ends = 0;                 // ends soon after a start: the backoff grows
    std::chrono::steady_clock::time_point started;
    std::string last_end;
    std::optional<WorkerLimits> limits;  // what its worker was started with
    // A spread template's socket for this shard alone (thawd's listening
    // copy, kept across restarts): a client can reach every shard directly.
    kj::AutoCloseFd own_fd;
    std::string own_path;
  };
  struct Entry {
    std::vector<Shard> shards;  // how many: fixed when the template's first worker starts
    bool serving = false;       // created or loaded (restart a worker that ends)
    size_t next_turn = 0;       // the shard the next acquire goes to
    kj::AutoCloseFd direct_fd;  // listening; thawd's copy, handed to every shard
    std::string direct_path;
    std::optional<pool::TemplateInfo> last_seen;  // from its last answer, listed while it restarts
    std::optional<pool::TemplateSpec> spec;       // its template, once known
    std::optional<pool::PoolPolicy> policy;       // the whole template's, once known
  };

  // Records the template's spec and policy from `known` (the template being
  // created) or, for a load, from its record in template_dir (none when
  // that cannot be read: the load then fails anyway), and how many shards
  // it gets if it has none yet.
  Entry& plan(const std::string& name, bool load, std::optional<pool::TemplateRecord> known);
  // Starts shard `index`'s worker, its limits sized from its share.
  std::shared_ptr<TemplateWorker> start(const std::string& name, uint32_t index, bool load);
  // Shards 1.. of a template whose shard 0 holds it: they load it from disk.
  void start_other_shards(const std::string& name);
  void watch(const std::shared_ptr<TemplateWorker>& worker);
  void on_ended(const std::shared_ptr<TemplateWorker>& worker, const std::string& how);
  // Starts shard `index`'s worker from the snapshot; when that fails, logs
  // it and tries again (restart) after the longest backoff.
  void start_or_retry(const std::string& name, uint32_t index);
  void restart(const std::string& name, uint32_t index);
  // OVERLOADED: `shard`'s worker ended (as it says) and is being restarted.
  static kj::Exception restarting(const std::string& name, const Shard& shard);
  // Shard 0's worker, which records the template's changes; the errors of
  // serving().
  std::shared_ptr<TemplateWorker> first_shard(const std::string& name);
  // After setPolicy: the worker's cgroup limits follow the new policy.
  void confine_to_policy(const std::string& name, const pool::PoolPolicy& policy);
  // Binds `entry`'s direct socket if it has none yet (a failure is logged:
  // the template is then served through thawd only).
  void bind_direct_socket(const std::string& name, Entry& entry);
  // The same for each shard's own socket, once the template is spread
  // over several and has a direct socket.
  void bind_shard_sockets(const std::string& name, Entry& entry);
  // Fills in what thawd knows of `entry` beyond its workers' answers: its
  // direct socket, its shards' sockets and how many workers it has.
  static void add_sockets(pool::TemplateInfo& info, const Entry& entry);
  // Removes the files of `entry`'s direct socket and its shards' sockets.
  static void remove_socket_files(const Entry& entry);
  // Drops the entry, closing and removing its direct socket and
  // disconnecting the workers it still has.
  void erase(std::map<std::string, Entry>::iterator it);
  // What names a shard's cgroup: the template's name, then ".2", ".3", ...
  static std::string cgroup_key(const std::string& name, uint32_t index);
  template <typename T>
  T wait_for(kj::Function<kj::Promise<T>()> make) const;

  kj::AsyncIoContext& io_;
  WorkerSpawner& spawner_;
  WorkerLaunch launch_;
  std::string template_dir_;
  DirectSockets direct_;
  WorkerConfinement confinement_;
  std::map<std::string, Entry> entries_;
  const kj::Executor& executor_;
  std::thread::id loop_thread_;
  kj::TaskSet tasks_;
};

// An exception from a worker, as thawd passes it on to its client: the same
// type, without the "remote exception: " prefix the hop added, and a lost
// connection to the worker named as such.
kj::Exception relay_error(kj::Exception&& e, const std::string& template_name);

// `call`, with a failure passed through relay_error.
inline kj::Promise<void> relayed(kj::Promise<void> call, const std::string& template_name) {
  return call.catch_([template_name](kj::Exception&& e) {
    kj::throwFatalException(relay_error(kj::mv(e), template_name));
  });
}

}  // namespace thaw::daemon
