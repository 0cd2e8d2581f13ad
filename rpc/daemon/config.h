// thawd's TOML configuration (deploy/thawd.example.toml documents it): read
// and checked, or written.
//
//   socket = "/run/thaw/thaw.sock"     # unix socket (default)
//   tcp = "127.0.0.1:7777"             # optional, numeric HOST:PORT
//   template_dir, vsock_dir, log_level, metrics = "127.0.0.1:9464" (optional)
//   default_lease_ms, max_lease_ms, workers, autoscale_period_ms,
//   autoscale_headroom, autoscale_stall_ms, refill_threads, reset_threads (optional)
//   user, allow_root, socket_group, kvm_device (privileges; optional)
//   template_workers (one sandboxed process per template; default true),
//   clones_per_worker (spread a template with a larger max_warm over
//   several workers; 0, the default: one worker per template),
//   worker_cgroups ("auto", "off" or a cgroup directory)
//   vm_shells ("auto": prepared VM shells on PVM only, "on", "off")
//   [[pool]] name, kernel, initrd, cmdline, mem_mib, vcpus,
//            min_warm, max_warm, memory_budget_mib,
//            program, args = ["..."], env = ["K=V"], files (a program template:
//            kernel is then the mini guest, cmdline without thaw.after=agent)
//
// Unknown keys, wrong types and bad values are errors that name the file,
// the line and the key.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool/pool_types.h"

namespace thaw::daemon {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PoolConfig {
  pool::TemplateSpec spec;
  pool::PoolPolicy policy;

  bool operator==(const PoolConfig&) const = default;
};

struct DaemonConfig {
  std::string socket = "/run/thaw/thaw.sock";
  std::string tcp;  // "" = no TCP listener
  std::string template_dir = "/var/lib/thaw/templates";
  std::string vsock_dir = "/run/thaw/vsock";
  std::string log_level = "info";
  std::string metrics;  // "" = no Prometheus endpoint
  uint64_t default_lease_ms = 30000;
  uint64_t max_lease_ms = 3600000;
  uint32_t workers = 64;  // threads for blocking pool calls
  uint64_t autoscale_period_ms = 500;  // how often pools re-estimate their target
  uint32_t autoscale_headroom = 1;     // warm clones beyond rate x refill time
  uint64_t autoscale_stall_ms = 20;    // host stall planned for: rate x this more warm clones
  uint32_t refill_threads = 0;         // new clones restored in parallel; 0: one per CPU, at most 4
  uint32_t reset_threads = 2;          // released clones reset in place in parallel
  // Prepared VM shells (vmm/vm_shells.h): "auto" (PVM only, where they
  // were measured), "on" (any KVM) or "off".
  std::string vm_shells = "auto";
  // What unauthenticated peers may make thawd hold (rpc/rpc_listener.h).
  uint32_t max_connections = 256;       // more are closed at once
  uint64_t max_message_kib = 2048;      // one RPC message (invoke payloads are at most 1 MiB)
  uint64_t message_timeout_ms = 10000;  // a message that has begun must arrive within this
  uint64_t max_inflight_mib = 256;      // messages begun and not complete, across every connection
  // Where createTemplate over RPC may take kernels, initrds, programs and
  // files from (symlinks resolved). Empty: the mini guest's directory that
  // came with thawd and template_dir. [[pool]]s, the operator's own, are
  // not limited.
  std::vector<std::string> allowed_image_dirs;
  // Privileges (rpc/daemon/privileges.h). Started as root, thawd becomes
  // `user` once its directories exist and before it runs any guest; with
  // no user it refuses to run as root unless allow_root (--allow-root),
  // which is for development: a guest that escapes would own the host.
  std::string user;
  bool allow_root = false;
  std::string socket_group;  // may use the unix socket (0660; its directory 0750); "": thawd's group
  std::string kvm_device = "/dev/kvm";
  // Each template's clones in a worker process of their own, sandboxed
  // (rpc/daemon/worker_fleet.h); false: every clone in thawd's process.
  bool template_workers = true;
  // A template whose max_warm is above this is spread over
  // ceil(max_warm / clones_per_worker) workers (at most pool::kMaxShards),
  // each holding its share (pool/pool_shard.h); 0: one worker a template.
  // Decided when the template's workers start.
  uint32_t clones_per_worker = 0;
  // Where each worker gets a cgroup v2 with its memory and task limits
  // (rpc/daemon/worker_cgroups.h): "auto" (thawd's own cgroup when systemd
  // delegates it), "off", or a cgroup directory.
  std::string worker_cgroups = "auto";
  std::vector<PoolConfig> pools;

  bool operator==(const DaemonConfig&) const = default;
};

// Reads and checks `path`. ConfigError with "FILE:LINE: KEY: problem" and
// toml11's excerpt of the offending line. A [[pool]] with a `program` and
// no `kernel` runs in `program_kernel` (thawd's own mini guest), with the
// mini guest's quiet command line unless it gives one.
DaemonConfig load_config(const std::string& path, const std::string& program_kernel = {});

// Writing a config: what load_config reads back as the same DaemonConfig.
// Programs that start thawd (the benchmarks, the main job, the end-to-end
// tests) render theirs with these instead of formatting TOML by hand.
// Layout: socket, template_dir and vsock_dir always, then each other
// top-level key only where it differs from the default, then one [[pool]]
// table per pool (initrd, vcpus and the program keys only where set): short files with
// predictable line numbers.
//
// The top-level keys, without the pools (each line ends in '\n').
std::string render_config_header(const DaemonConfig& config);
// One [[pool]] table, preceded by an empty line.
std::string render_pool(const PoolConfig& pool);
// Header, then every pool.
std::string render_config(const DaemonConfig& config);
// A TOML basic string: quoted, with '"', '\\' and control characters escaped.
std::string toml_string(const std::string& text);

}  // namespace thaw::daemon
