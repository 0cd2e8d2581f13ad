// The real thawd as a child of a benchmark: a scratch directory with its
// config, template_dir, vsock_dir and socket; waits until the socket accepts
// and the pools are warm; SIGTERM (a clean drain) on stop. The main job and
// the pool benchmark both measure through it, so what they time is what a
// user of the daemon gets.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pool/pool_types.h"
#include "rpc/daemon/config.h"

namespace thaw::bench {

// A pool of the mini guest with its agent, 128 MiB, as the benchmarks load it.
daemon::PoolConfig mini_agent_pool(const std::string& name, const std::string& kernel, uint32_t min_warm,
                                   uint32_t max_warm);

// A Linux template (guest/linux's thaw-init) running Debian's static
// busybox sha256sum, 128 MiB: the main job's --guest linux.
daemon::PoolConfig linux_busybox_pool(const std::string& name, const std::string& kernel, uint32_t min_warm,
                                      uint32_t max_warm);
// Why a Linux guest cannot boot here ("" when it can): no usable KVM, a
// PVM host (its emulated ring 0 does not reach init), or no kernel at
// `kernel` (the message then names --linux-kernel).
std::string linux_guest_unavailable(const std::string& kernel);

// A process's open fds, resident memory and threads, from /proc, with those
// of its descendants (thawd's template workers, where the clones live):
// what a soak or a density run watches of thawd.
struct ProcessUse {
  size_t fds = 0;
  double rss_mib = 0;
  size_t threads = 0;
  size_t vmas = 0;  // memory mappings (/proc/PID/maps lines)
};
ProcessUse process_use(pid_t pid);

struct ThawdOptions {
  std::string thawd;  // path to the binary
  std::vector<daemon::PoolConfig> pools;
  uint64_t autoscale_period_ms = 500;
  uint32_t autoscale_headroom = 1;
  uint32_t refill_threads = 0;  // thawd's default (one per CPU, at most 4)
  uint32_t clones_per_worker = 0;  // thawd's default: one worker per template
  std::string log_level = "warn";
  bool template_workers = true;  // each template in a worker process (thawd's default)
};

class ThawdChild {
 public:
  // Creates the scratch directory and writes the config; does not start.
  explicit ThawdChild(ThawdOptions options);
  ~ThawdChild();  // stops the daemon and removes the scratch directory
  ThawdChild(const ThawdChild&) = delete;
  ThawdChild& operator=(const ThawdChild&) = delete;

  // Starts thawd and waits until its socket accepts. Throws with the
  // daemon's log when it exits or does not listen within `timeout`.
  void start(std::chrono::seconds timeout);
  // Waits until every pool has at least min_warm warm clones; throws on timeout.
  void wait_warm(std::chrono::seconds timeout) const;
  // SIGTERM and wait; the daemon's exit code (-1 when killed by a signal).
  int stop();
  bool alive() const;
  pid_t pid() const { return pid_; }

  const std::string& socket() const { return socket_; }
  // Where a client after latency leases `template_name`: its direct socket,
  // which the template's worker serves without thawd's hop, or thawd's own
  // socket with `via_thawd` or when the template lists none.
  std::string lease_socket(const std::string& template_name, bool via_thawd = false) const;
  // A spread template's socket for each shard (empty: not spread, or via_thawd).
  std::vector<std::string> shard_sockets(const std::string& template_name, bool via_thawd = false) const;
  std::string log_text() const;

 private:
  // `template_name` as thawd lists it; none when it is not listed.
  std::optional<pool::TemplateInfo> listed(const std::string& template_name) const;
  ThawdOptions options_;
  std::filesystem::path dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace thaw::bench
