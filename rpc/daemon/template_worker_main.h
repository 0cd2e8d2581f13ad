// The other side of TemplateWorker: `thawd --template-worker NAME`, started
// by thawd with its end of a socketpair at fd 3. It sandboxes itself, runs a
// PoolManager holding that one template, and serves the in-process
// PoolServer on the socket until thawd closes it (or dies); then it releases
// its leases, destroys its clones and exits.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pool/pool_shard.h"
#include "rpc/daemon/config.h"
#include "rpc/daemon/worker_limits.h"

namespace thaw::daemon {

struct TemplateWorkerOptions {
  std::string template_name;
  bool load = false;  // pick the template up from template_dir before serving
  bool direct_socket = false;  // fd kWorkerListenFd listens: serve the template there too
  bool shard_socket = false;   // fd kWorkerShardListenFd listens too: this shard's own socket
  DaemonConfig config;
  std::vector<std::string> allowed_image_dirs;  // as thawd resolved them
  std::string linux_init_agent;                 // thaw-init, "" when not shipped
  std::optional<WorkerLimits> limits;           // rlimits to set on itself; none: the host's
  std::string cgroup;                           // the cgroup to join first; "": none
  pool::PoolShard shard;                        // its part of the template (pool/pool_shard.h)
};

// Returns the process's exit status: 0 after thawd closed the connection,
// kExitTemplateUnloadable (worker_fleet.h) when --load failed, 1 when the
// worker could not start.
int run_template_worker(const TemplateWorkerOptions& options);

}  // namespace thaw::daemon
