// The façade: templates on disk (TemplateStore), a WarmPool per template,
// leases (LeaseTable), the background RefillWorker and CloneDestroyer.
// Lock order: templates_mutex_ before a pool's lock; neither is held while
// a VM is restored, reset or destroyed.
#include "pool/pool_manager.h"


#include <map>
#include <set>
#include <sstream>
#include <shared_mutex>

#include <spdlog/spdlog.h>

#include "base/printable_text.h"
#include "base/unix_socket.h"
#include "pool/agent_client.h"
#include "pool/clone.h"
#include "pool/clone_identity.h"
#include "pool/invoke_protocol.h"
#include "pool/lease_table.h"
#include "pool/program_clone.h"
#include "pool/refill_worker.h"
#include "pool/restore_resources.h"
#include "pool/template_cold_boot.h"
#include "pool/template_store.h"
#include "pool/warm_pool.h"
#include "snapshot/vm_snapshot.h"
#include "base/errors.h"

namespace thaw::pool {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMaxReadBytes = 1 << 20;

RefillWorker::Threads background_threads(const PoolManagerConfig& config) {
  RefillWorker::Threads threads;
  threads.refill = refill_threads_for(config.refill_threads);
  threads.reset = config.reset_threads;
  spdlog::debug("pool: {} refill threads, {} reset threads", threads.refill, threads.reset);
  return threads;
}

}  // namespace

struct PoolManager::Impl {
  explicit Impl(PoolManagerConfig c)
      : config(std::move(c)),
        store(config.template_dir),
        ids(numbers_for(config.shard).first, numbers_for(config.shard).step),
        next_serial(numbers_for(config.shard).first),
        leases([this](LeaseTable::Entry e) { end_lease(std::move(e), /*expired=*/true); },
               numbers_for(config.shard).first, numbers_for(config.shard).step),
        worker(worker_hooks(), config.autoscale_period, background_threads(config)) {}

  ~Impl() {
    leases.stop();
    for (auto& clone : worker.stop()) destroy(nullptr, std::move(clone));
    std::map<std::string, std::shared_ptr<WarmPool>> all;
    {
      std::unique_lock lock(templates_mutex);
      all.swap(templates);
    }
    for (auto& [name, pool] : all) {
      for (auto& clone : pool->mark_deleted()) destroy(pool.get(), std::move(clone));
    }
    for (auto& entry : leases.take_all()) destroy(nullptr, std::move(entry.clone));
    destroyer.drain();
  }

  RefillWorker::Hooks worker_hooks() {
    RefillWorker::Hooks hooks;
    hooks.pools = [this] { return pool_list(); };
    hooks.restore = [this](WarmPool& pool) { return make_clone(pool); };
    hooks.destroy = [this](WarmPool* pool, std::shared_ptr<Clone> clone) { destroy(pool, std::move(clone)); };
    return hooks;
  }

  std::vector<std::shared_ptr<WarmPool>> pool_list() const {
    std::shared_lock lock(templates_mutex);
    std::vector<std::shared_ptr<WarmPool>> out;
    for (const auto& [name, pool] : templates) out.push_back(pool);
    return out;
  }

  std::shared_ptr<WarmPool> find(const std::string& name) const {
    std::shared_lock lock(templates_mutex);
    auto it = templates.find(name);
    if (it == templates.end()) throw NotFound("no template '" + name + "'");
    return it->second;
  }

  std::shared_ptr<Clone> make_clone(WarmPool& pool) {
    uint64_t serial = next_serial.fetch_add(numbers_for(config.shard).step);
    std::string socket;
    if (snapshot_has_vsock(pool.snapshot())) socket = vsock_socket_path(config.vsock_dir, pool.name() + "-" + std::to_string(serial));
    auto clone = restore_clone(pool.snapshot(), pool.name(), serial, socket, pool.has_working_set(),
                               restore_resources.kvm_host(), restore_resources.thread_spawners(),
                               pool.prepared_shells(config.kvm_device));
    clone->program = pool.uses_mailbox();
    clone->linux_program = pool.is_linux();
    // The pool object is owned by a shared_ptr in `templates` (or by the worker's copy).
    clone->pool = shared_from(pool);
    return clone;
  }

  std::shared_ptr<WarmPool> shared_from(WarmPool& pool) const {
    std::shared_lock lock(templates_mutex);
    auto it = templates.find(pool.name());
    if (it != templates.end() && it->second.get() == &pool) return it->second;
    return nullptr;  // deleted meanwhile: finish_restore hands the clone back
  }

  void destroy(WarmPool* pool, std::shared_ptr<Clone> clone) {
    if (!clone) return;
    if (!pool) {
      if (auto owner = clone->pool.lock()) owner->forget(*clone);
    } else {
      pool->forget(*clone);
    }
    destroyer.destroy(std::move(clone));
  }

  // A lease ended (released or expired): the clone goes back through the worker.
  void end_lease(LeaseTable::Entry entry, bool expired) {
    entry.clone->retire();
    auto pool = entry.clone->pool.lock();
    if (!pool) {
      destroy(nullptr, std::move(entry.clone));
      return;
    }
    pool->lease_returned(*entry.clone);
    if (expired) pool->count_expired();
    worker.recycle(std::move(pool), std::move(entry.clone));
  }

  uint64_t lease_ms_or_default(uint64_t lease_ms) const {
    if (lease_ms == 0) return config.default_lease_ms;
    if (lease_ms > config.max_lease_ms) {
      throw BadArgument("lease of " + std::to_string(lease_ms) + " ms is above the maximum of " +
                        std::to_string(config.max_lease_ms) + " ms");
    }
    return lease_ms;
  }

  // `verify_memory`: see TemplateStore::load_snapshot. The pool keeps this
  // shard's share of the record's policy.
  std::shared_ptr<WarmPool> open_pool(const std::string& name, TemplateRecord record, bool verify_memory) {
    std::string dir = store.dir_for(name);
    auto snapshot = store.load_snapshot(name, record, verify_memory);
    record.policy = policy_share(record.policy, config.shard);
    WarmPoolTuning tuning;
    tuning.headroom = config.autoscale_headroom;
    tuning.stall_seconds = std::chrono::duration<double>(config.autoscale_stall).count();
    tuning.vm_shells = config.vm_shells;
    return std::make_shared<WarmPool>(std::move(record), dir, std::move(snapshot), tuning, [this] { worker.wake(); });
  }

  TemplateInfo create_template(const TemplateSpec& spec, const PoolPolicy& policy);

  // An invoke found the guest misbehaving or gone: its lease ends and the
  // clone is destroyed (unless a release got there first).
  void end_failed_lease(uint64_t lease_id, Clone& clone, std::unique_lock<std::timed_mutex>& invoke_lock,
                        const GuestGone& e) {
    if (clone.retired()) return;  // released meanwhile: nothing more to do
    if (auto entry = leases.take(lease_id)) {
      auto pool = clone.pool.lock();
      if (pool) pool->lease_ended();
      // The guest's last console lines often say why (a panic, the agent's own account).
      std::string console;
      std::istringstream lines(clone.console.text());
      for (std::string line; std::getline(lines, line);) console += "\n  | " + printable_text(line, 512);
      spdlog::info("lease {}: {}; destroying its clone{}{}", lease_id, e.what(),
                   console.empty() ? "" : "; the end of its console:", console);
      invoke_lock.unlock();
      destroy(pool.get(), std::move(entry->clone));
    }
  }

  // Invoke on a program template's clone: one request through the mini
  // guest's mailbox, or through the Linux init agent over vsock.
  InvokeResult invoke_program(uint64_t lease_id, std::shared_ptr<Clone> clone, const std::string& function,
                              const std::vector<uint8_t>& payload, std::chrono::milliseconds timeout) {
    std::unique_lock invoke_lock(clone->invoke_mutex, std::defer_lock);
    if (!invoke_lock.try_lock_for(timeout)) {
      throw Overloaded("lease " + std::to_string(lease_id) + ": another invoke is still running in this clone");
    }
    // Released while this call waited: the reset thread owns the clone now.
    if (clone->retired()) throw NotFound("lease " + std::to_string(lease_id) + " was released");
    auto pool = clone->pool.lock();
    if (!pool) throw NotFound("template '" + clone->template_name + "' was deleted");
    try {
      if (clone->served) {
        // The previous request left the program's state behind: back to the
        // ready point, as a release would. The reset also brought back the
        // snapshot's control page: write the lease's identity again, with a
        // fresh seed and clock so that two requests never draw the same
        // random bytes.
        try {
          reset_clone_held(*clone, pool->snapshot());
        } catch (const GuestGone& e) {
          throw GuestGone(std::string("resetting the clone between two requests: ") + e.what());
        }
        CloneIdentity identity = ids.renew(leases.get(lease_id).info.identity);
        write_control_page(clone->vm().memory(), control_page_for(identity));
        leases.set_identity(lease_id, identity);  // what Vm.info reports from now on
        // Linux's agent waits for the request in the guest: it must run.
        if (clone->linux_program) clone->vm().resume();
      }
      if (clone->linux_program) return serve_linux_invoke(*clone, function, payload, timeout);
      auto result = serve_program_invoke(*clone, function, payload, timeout);
      pool->note_unknown_syscalls(result.unknown_syscalls);
      return result;
    } catch (const GuestGone& e) {
      end_failed_lease(lease_id, *clone, invoke_lock, e);
      throw;
    }
  }

  // False (and the clone destroyed) when a taken warm clone had stopped.
  bool usable(WarmPool& pool, std::shared_ptr<Clone>& clone) {
    if (clone->vm().state() == vmm::RunState::kPaused) return true;
    spdlog::warn("pool '{}': warm clone {} had stopped ({}); taking another", pool.name(), clone->serial,
                 clone->vm().stop_detail());
    pool.lease_ended();
    destroy(&pool, std::move(clone));
    return false;
  }

  // Gives a taken clone its identity, resumes it and records the lease.
  LeaseInfo hand_out(const std::string& template_name, std::shared_ptr<Clone> clone, bool hit, uint64_t lease_ms,
                     Clock::time_point start) {
    LeaseInfo info;
    info.template_name = template_name;
    info.identity = ids.next();
    info.vsock_path = clone->vsock_path;
    write_control_page(clone->vm().memory(), control_page_for(info.identity));
    clone->unretire();
    // A program clone stays paused at its ready point: resumed now, the
    // program would read an empty stdin. Its invoke runs it.
    if (!clone->program) clone->vm().resume();
    auto now = Clock::now();
    info.expires_at = now + std::chrono::milliseconds(lease_ms);
    info.timings.pool_hit = hit;
    info.timings.acquire_ms = std::chrono::duration<double, std::milli>(now - start).count();
    return leases.add(std::move(info), std::move(clone));
  }

  PoolManagerConfig config;
  TemplateStore store;
  IdentityIssuer ids;
  std::atomic<uint64_t> next_serial;  // clone serials, so vsock paths differ between shards
  mutable std::shared_mutex templates_mutex;
  std::map<std::string, std::shared_ptr<WarmPool>> templates;
  RestoreResources restore_resources{config.kvm_device};
  std::set<std::string> creating;  // names being cold-booted
  // Declared in this order so the destroyer outlives the lease reaper and
  // the worker, which hand it clones.
  CloneDestroyer destroyer;
  LeaseTable leases;
  RefillWorker worker;
};

TemplateInfo PoolManager::Impl::create_template(const TemplateSpec& spec, const PoolPolicy& policy) {
  validate_spec(spec);
  validate_policy(policy);
  const std::string& name = spec.name;
  // The other shards load what shard 0 made (pool_shard.h).
  if (config.shard.index != 0) {
    throw BadArgument("template '" + name + "': only the first of a template's worker processes creates it");
  }
  // Clone sockets are <vsock_dir>/<name>-<serial>.sock: refuse a name whose
  // clones could not listen once the serial grows.
  constexpr size_t kLongestSocketSuffix = sizeof("/-18446744073709551615.sock") - 1;
  if (config.vsock_dir.size() + name.size() + kLongestSocketSuffix > kMaxUnixPathBytes) {
    throw BadArgument("template '" + name + "': its clones' vsock socket paths under " + config.vsock_dir +
                      " would be too long for a unix socket (at most " + std::to_string(kMaxUnixPathBytes) +
                      " bytes); use a shorter name");
  }
  {
    std::unique_lock lock(templates_mutex);
    if (templates.contains(name) || creating.contains(name) || store.exists(name)) {
      throw BadArgument("template '" + name + "' already exists");
    }
    creating.insert(name);
  }
  struct Unreserve {
    Impl& impl;
    const std::string& name;
    ~Unreserve() {
      std::unique_lock lock(impl.templates_mutex);
      impl.creating.erase(name);
    }
  } unreserve{*this, name};

  std::string tmp = store.begin(name);
  TemplateRecord record{spec, policy, 0};
  auto cold = std::make_shared<Clone>();  // only to hand the VM to the destroyer
  try {
    record.cold_boot_ms = cold_boot_and_snapshot(spec, *cold, tmp, config);
    store.commit(name, record);
  } catch (...) {
    store.abort(name);
    destroyer.destroy(std::move(cold));
    throw;
  }
  destroyer.destroy(std::move(cold));
  auto pool = open_pool(name, record, /*verify_memory=*/false);
  {
    std::unique_lock lock(templates_mutex);
    templates.emplace(name, pool);
  }
  spdlog::info("template '{}' created: cold boot {:.1f} ms, snapshot in {}", name, record.cold_boot_ms, pool->dir());
  worker.wake();
  return pool->info();
}

PoolManager::PoolManager(PoolManagerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

PoolManager::~PoolManager() = default;

TemplateInfo PoolManager::create_template(const TemplateSpec& spec, const PoolPolicy& policy) {
  return impl_->create_template(spec, policy);
}

std::vector<std::string> PoolManager::load_existing_templates() {
  const auto creating = [&] { std::shared_lock lock(impl_->templates_mutex); return impl_->creating; }();
  std::vector<std::string> loaded;
  for (const auto& name : impl_->store.list(creating)) {
    try {
      if (load_template(name)) loaded.push_back(name);
    } catch (const std::exception& e) {
      spdlog::warn("template '{}' in {} not loaded: {}", name, impl_->store.root(), e.what());
    }
  }
  return loaded;
}

bool PoolManager::load_template(const std::string& name) {
  std::shared_lock seen(impl_->templates_mutex);
  if (impl_->templates.contains(name) || impl_->creating.contains(name)) return false;
  seen.unlock();
  if (!impl_->store.exists(name)) throw NotFound("no template '" + name + "' in " + impl_->store.root());
  auto pool = impl_->open_pool(name, impl_->store.read_record(name), /*verify_memory=*/true);
  if (std::unique_lock lock(impl_->templates_mutex); !impl_->templates.emplace(name, pool).second) return false;
  impl_->worker.wake();
  return true;
}

std::vector<TemplateInfo> PoolManager::list_templates() const {
  std::vector<TemplateInfo> out;
  for (auto& pool : impl_->pool_list()) {
    out.push_back(pool->info());
    // One shard's view (its direct socket): say so, so its share is not read as the whole.
    if (impl_->config.shard.count > 1) {
      out.back().shard = shard_text(impl_->config.shard);
      out.back().workers = impl_->config.shard.count;
    }
  }
  return out;
}

void PoolManager::delete_template(const std::string& name) {
  std::shared_ptr<WarmPool> pool;
  {
    std::unique_lock lock(impl_->templates_mutex);
    auto it = impl_->templates.find(name);
    if (it == impl_->templates.end()) throw NotFound("no template '" + name + "'");
    pool = std::move(it->second);
    impl_->templates.erase(it);
  }
  for (auto& clone : pool->mark_deleted()) impl_->destroy(pool.get(), std::move(clone));
  for (auto& entry : impl_->leases.take_template(name)) impl_->destroy(pool.get(), std::move(entry.clone));
  impl_->store.remove(name);
  spdlog::info("template '{}' deleted", name);
}

void PoolManager::set_policy(const std::string& name, const PoolPolicy& policy) {
  validate_policy(policy);
  auto pool = impl_->find(name);
  TemplateInfo info = pool->info();
  if (impl_->config.shard.index == 0) {
    impl_->store.write_record(name, TemplateRecord{info.spec, policy, info.cold_boot_ms});
  }
  pool->set_policy(policy_share(policy, impl_->config.shard));
  impl_->worker.wake();
}

LeaseInfo PoolManager::acquire(const std::string& template_name, uint64_t lease_ms,
                               std::chrono::milliseconds timeout) {
  auto start = Clock::now();
  lease_ms = impl_->lease_ms_or_default(lease_ms);
  if (timeout.count() < 0) throw BadArgument("acquire: negative timeout");
  auto pool = impl_->find(template_name);
  auto taken = pool->take(start + timeout);
  // A warm clone's vCPU threads are parked; one that stopped anyway (a host
  // error) is useless: replace it, within the same deadline.
  while (!impl_->usable(*pool, taken.clone)) {
    bool waited = taken.waited;
    taken = pool->take(start + timeout);
    taken.waited = taken.waited || waited;
  }
  return impl_->hand_out(template_name, std::move(taken.clone), !taken.waited, lease_ms, start);
}

std::optional<LeaseInfo> PoolManager::try_acquire(const std::string& template_name, uint64_t lease_ms) {
  auto start = Clock::now();
  lease_ms = impl_->lease_ms_or_default(lease_ms);
  auto pool = impl_->find(template_name);
  for (;;) {
    auto clone = pool->try_take();
    if (!clone) return std::nullopt;
    if (impl_->usable(*pool, clone)) return impl_->hand_out(template_name, std::move(clone), true, lease_ms, start);
  }
}

LeaseInfo PoolManager::renew(uint64_t lease_id, uint64_t lease_ms) {
  lease_ms = impl_->lease_ms_or_default(lease_ms);
  return impl_->leases.renew(lease_id, Clock::now() + std::chrono::milliseconds(lease_ms));
}

void PoolManager::release(uint64_t lease_id) {
  auto entry = impl_->leases.take(lease_id);
  if (!entry) throw NotFound("no lease " + std::to_string(lease_id) + " (released or expired)");
  impl_->end_lease(std::move(*entry), /*expired=*/false);
}

LeaseInfo PoolManager::lease_info(uint64_t lease_id) const { return impl_->leases.get(lease_id).info; }

InvokeResult PoolManager::invoke(uint64_t lease_id, const std::string& function, const std::vector<uint8_t>& payload,
                                 std::chrono::milliseconds timeout) {
  auto start = Clock::now();
  if (timeout.count() <= 0) throw BadArgument("invoke: the timeout must be positive");
  auto clone = impl_->leases.get(lease_id).clone;
  if (clone->program || clone->linux_program) return impl_->invoke_program(lease_id, std::move(clone), function, payload, timeout);
  encode_invoke_request(function, payload);  // BadArgument before anything else
  if (clone->vsock_path.empty()) throw GuestGone("clone has no vsock device");

  std::unique_lock invoke_lock(clone->invoke_mutex, std::defer_lock);
  if (!invoke_lock.try_lock_until(start + timeout)) {
    throw Overloaded("lease " + std::to_string(lease_id) + ": another invoke is still running in this clone");
  }
  auto call = agent_call_for(*clone, function, payload, start + timeout);
  try {
    return call_agent(call);
  } catch (const GuestGone& e) {
    impl_->end_failed_lease(lease_id, *clone, invoke_lock, e);
    throw;
  }
}

PoolStats PoolManager::stats() const {
  PoolStats stats;
  for (auto& pool : impl_->pool_list()) {
    stats.templates.push_back(pool->stats());
    if (impl_->config.shard.count > 1) stats.templates.back().shard = shard_text(impl_->config.shard);
  }
  return stats;
}

std::vector<uint8_t> PoolManager::read_guest_memory(uint64_t lease_id, uint64_t guest_addr, uint64_t len) const {
  if (len > kMaxReadBytes) throw BadArgument("read_guest_memory: at most 1 MiB at a time");
  auto clone = impl_->leases.get(lease_id).clone;
  try {
    auto bytes = clone->vm().memory().slice(vmm::GuestAddress(guest_addr), len, "read_guest_memory");
    return {bytes.begin(), bytes.end()};
  } catch (const InputError& e) {
    throw BadArgument(e.what());
  }
}

}  // namespace thaw::pool
