#include "rpc/daemon/startup.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "base/errors.h"

namespace thaw::daemon {

namespace {

void make_directory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw SysError("mkdir", ec.value(), path);
}

bool same_spec(const pool::TemplateSpec& a, const pool::TemplateSpec& b) {
  return a.kernel == b.kernel && a.initrd == b.initrd && a.cmdline == b.cmdline && a.mem_mib == b.mem_mib &&
         a.vcpus == b.vcpus && a.program == b.program && a.args == b.args && a.env == b.env &&
         a.files_dir == b.files_dir;
}

}  // namespace

pool::PoolManagerConfig pool_manager_config(const DaemonConfig& config, const std::string& linux_init_agent) {
  pool::PoolManagerConfig pm;
  pm.template_dir = config.template_dir;
  pm.vsock_dir = config.vsock_dir;
  pm.default_lease_ms = config.default_lease_ms;
  pm.max_lease_ms = config.max_lease_ms;
  pm.autoscale_period = std::chrono::milliseconds(config.autoscale_period_ms);
  pm.autoscale_headroom = config.autoscale_headroom;
  pm.autoscale_stall = std::chrono::milliseconds(config.autoscale_stall_ms);
  pm.refill_threads = config.refill_threads;
  pm.reset_threads = config.reset_threads;
  pm.vm_shells = config.vm_shells == "on"    ? pool::VmShells::kOn
                 : config.vm_shells == "off" ? pool::VmShells::kOff
                                             : pool::VmShells::kAuto;
  pm.kvm_device = config.kvm_device;
  pm.linux_init_agent = linux_init_agent;
  return pm;
}

rpc::ConnectionLimits connection_limits(const DaemonConfig& config) {
  rpc::ConnectionLimits limits;
  limits.max_connections = config.max_connections;
  limits.message.max_message_bytes = config.max_message_kib * 1024;
  limits.message.message_timeout = config.message_timeout_ms * kj::MILLISECONDS;
  limits.max_inflight_bytes = config.max_inflight_mib << 20;
  return limits;
}

void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (limit.rlim_cur != before && ::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::warn("cannot raise the open-file limit from {} to {}: {}", before, limit.rlim_max, std::strerror(errno));
    return;
  }
  spdlog::info("open-file limit: {}{}", limit.rlim_cur, limit.rlim_cur < 4096 ? " (low: a large pool may run short)" : "");
}

void make_directories(const DaemonConfig& config) {
  make_directory(config.template_dir);
  make_directory(config.vsock_dir);
  if (!config.socket.empty()) {
    auto parent = std::filesystem::path(config.socket).parent_path();
    if (!parent.empty()) make_directory(parent.string());
  }
}

void set_up_pools(TemplateAdmin& manager, const DaemonConfig& config) {
  auto loaded = manager.load_existing_templates();
  if (!loaded.empty()) spdlog::info("picked up {} template(s) from {}", loaded.size(), config.template_dir);
  auto existing = manager.list_templates();
  for (const auto& pc : config.pools) {
    auto it = std::find_if(existing.begin(), existing.end(), [&](const auto& t) { return t.name == pc.spec.name; });
    if (it != existing.end()) {
      if (!same_spec(it->spec, pc.spec)) {
        spdlog::warn("pool {}: the config's spec differs from the snapshot in {}; keeping the snapshot "
                     "(delete the template to rebuild it)",
                     pc.spec.name, it->snapshot_dir);
      }
      manager.set_policy(pc.spec.name, pc.policy);
      spdlog::info("pool {}: existing template, policy {}..{} warm, {} MiB budget", pc.spec.name, pc.policy.min_warm,
                   pc.policy.max_warm, pc.policy.memory_budget_mib);
      continue;
    }
    spdlog::info("pool {}: creating template from {} ({} MiB)", pc.spec.name, pc.spec.kernel, pc.spec.mem_mib);
    try {
      auto info = manager.create_template(pc.spec, pc.policy);
      spdlog::debug("pool {}: cold boot {:.3f} ms, snapshot in {}", info.name, info.cold_boot_ms, info.snapshot_dir);
    } catch (const std::exception& e) {
      throw std::runtime_error("pool " + pc.spec.name + ": cannot create the template: " + e.what());
    }
  }
}

ReadinessReporter::ReadinessReporter(const TemplateAdmin& manager, const DaemonConfig& config,
                                     ServiceNotifier notifier, std::chrono::milliseconds patience)
    : manager_(manager), pools_(config.pools), notifier_(std::move(notifier)), patience_(patience) {
  if (notifier_.active()) spdlog::info("service manager: READY=1 goes to {} once the pools are warm", notifier_.socket_path());
  thread_ = std::thread([this] { wait_for_pools(); });
}

ReadinessReporter::~ReadinessReporter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  thread_.join();
}

void ReadinessReporter::stopping() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  notify("STOPPING=1\nSTATUS=draining: releasing leases, destroying clones");
}

std::string ReadinessReporter::pools_still_filling() const {
  auto stats = manager_.stats();
  std::string short_ones;
  for (const auto& pool : pools_) {
    auto it = std::find_if(stats.templates.begin(), stats.templates.end(),
                           [&](const auto& t) { return t.name == pool.spec.name; });
    uint32_t warm = it == stats.templates.end() ? 0 : it->warm;
    if (warm < pool.policy.min_warm) {
      short_ones += (short_ones.empty() ? "" : ", ") + pool.spec.name + " " + std::to_string(warm) + "/" +
                    std::to_string(pool.policy.min_warm);
    }
  }
  return short_ones;
}

void ReadinessReporter::wait_for_pools() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  for (;;) {
    lock.unlock();
    std::string filling = pools_still_filling();
    lock.lock();
    if (stopping_) return;
    const auto waited = std::chrono::steady_clock::now() - start;
    if (filling.empty()) {
      const double ms = std::chrono::duration<double, std::milli>(waited).count();
      spdlog::info("every configured pool is warm ({:.0f} ms after listening)", ms);
      notify("READY=1\nSTATUS=serving; every configured pool is warm");
      return;
    }
    if (waited >= patience_) {
      spdlog::warn("pools still filling after {} ms: {}; serving anyway", patience_.count(), filling);
      notify("READY=1\nSTATUS=serving; still filling: " + filling);
      return;
    }
    stop_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

void ReadinessReporter::notify(const std::string& state) const {
  try {
    notifier_.notify(state);
  } catch (const std::exception& e) {
    spdlog::warn("service manager notification failed: {}", e.what());
  }
}

}  // namespace thaw::daemon
