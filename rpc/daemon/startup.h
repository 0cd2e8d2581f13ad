// thawd's start: directories, then the templates already on disk, then the
// configured pools that are missing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/service_notify.h"
#include "pool/pool_manager.h"
#include "rpc/daemon/config.h"
#include "rpc/daemon/template_admin.h"
#include "rpc/rpc_listener.h"

namespace thaw::daemon {

// The pool manager's settings from thawd's config (thawd's own, or a
// template worker's). `linux_init_agent`: thaw-init, "" when not shipped.
pool::PoolManagerConfig pool_manager_config(const DaemonConfig& config, const std::string& linux_init_agent);

// What one peer may make thawd (or a template worker, on its direct socket)
// hold: the config's max_connections, max_message_kib, message_timeout_ms
// and max_inflight_mib.
rpc::ConnectionLimits connection_limits(const DaemonConfig& config);

// Takes the whole hard open-file limit the host allows (each clone holds
// several fds and each client one) and logs it, so that a shortage shows in
// the log first.
void raise_fd_limit();

// template_dir and vsock_dir (and the unix socket's parent). SysError.
void make_directories(const DaemonConfig& config);

// Loads the templates in template_dir; creates each [[pool]] not among them
// (a cold boot) and applies the configured policy to those that are. A pool
// whose spec on disk differs from the config keeps its snapshot, with a
// warning. Throws on the first pool that cannot be created.
void set_up_pools(TemplateAdmin& pools, const DaemonConfig& config);

// Once thawd listens: waits on its own thread (the event loop serves
// meanwhile) until every [[pool]] has its min_warm warm clones, then logs it
// and tells the service manager READY=1 (systemd's Type=notify), so that
// what starts after thawd finds warm clones. After `patience` it says
// READY=1 anyway, with a STATUS naming the pools still filling: thawd serves
// them, slower. stopping() says STOPPING=1 when the drain begins.
class ReadinessReporter {
 public:
  ReadinessReporter(const TemplateAdmin& pools, const DaemonConfig& config, ServiceNotifier notifier,
                    std::chrono::milliseconds patience = std::chrono::seconds(120));
  ~ReadinessReporter();
  ReadinessReporter(const ReadinessReporter&) = delete;
  ReadinessReporter& operator=(const ReadinessReporter&) = delete;

  void stopping();

 private:
  void wait_for_pools();
  // "" when every configured pool is warm, else "name 3/8, ...".
  std::string pools_still_filling() const;
  void notify(const std::string& state) const;

  const TemplateAdmin& manager_;
  std::vector<PoolConfig> pools_;
  ServiceNotifier notifier_;
  std::chrono::milliseconds patience_;
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace thaw::daemon
