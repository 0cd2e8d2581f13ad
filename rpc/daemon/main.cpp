// thawd: the pool service. Reads a TOML config, picks up the templates
// already in template_dir, creates the [[pool]]s that are missing, then
// serves the Pool capability (rpc/thaw.capnp) on a unix socket (and TCP if
// asked) until SIGTERM or SIGINT: then it stops accepting, drops every
// connection (which releases every leased clone), destroys the clones and
// exits 0. Snapshots stay on disk for the next start.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "pool/pool_manager.h"
#include "rpc/daemon/config.h"
#include "rpc/daemon/daemon_seccomp.h"
#include "rpc/daemon/metrics.h"
#include "rpc/daemon/privileges.h"
#include "rpc/daemon/routing_pool_server.h"
#include "rpc/daemon/startup.h"
#include "rpc/daemon/template_admin.h"
#include "rpc/daemon/template_worker_main.h"
#include "rpc/daemon/worker_fleet.h"
#include "rpc/pool_manager_backend.h"
#include "base/errors.h"
#include "base/shipped_file.h"
#include "rpc/pool_server.h"
#include "rpc/rpc_listener.h"
#include "rpc/worker_pool.h"
#include "devices/virtio/vsock_seccomp.h"
#include "vmm/vcpu_seccomp.h"

#ifndef THAW_BUILT_MINI_GUEST
#define THAW_BUILT_MINI_GUEST ""
#endif
#ifndef THAW_BUILT_LINUX_INIT
#define THAW_BUILT_LINUX_INIT ""
#endif

// The mini guest that came with this thawd: the build tree's, or the
// install's lib/thaw/thaw-mini.elf; empty when there is none.
static std::string mini_guest_beside_thawd() { return thaw::shipped_file(THAW_BUILT_MINI_GUEST, "thaw-mini.elf"); }

// allowed_image_dirs, or where thawd's own mini guest lives and the
// template directory.
static std::vector<std::string> allowed_image_dirs(const thaw::daemon::DaemonConfig& config) {
  if (!config.allowed_image_dirs.empty()) return config.allowed_image_dirs;
  std::vector<std::string> dirs = {config.template_dir};
  std::string built = THAW_BUILT_MINI_GUEST;
  if (!built.empty()) dirs.push_back(std::filesystem::path(built).parent_path().string());
  std::string installed = thaw::installed_lib_dir();
  if (!installed.empty()) dirs.push_back(installed);
  return dirs;
}

namespace thaw::daemon {

constexpr int kExitStartup = 1;
constexpr int kExitConfig = 2;

namespace {

// Runs `fn` on a thread of its own while this thread keeps serving the
// event loop: what it destroys (the metrics endpoint, the readiness thread)
// may be waiting on the loop for the template workers' answers.
template <typename Fn>
void off_the_loop(kj::WaitScope& wait_scope, Fn&& fn) {
  auto done = kj::newPromiseAndCrossThreadFulfiller<void>();
  std::thread thread([&] {
    fn();
    done.fulfiller->fulfill();
  });
  done.promise.wait(wait_scope);
  thread.join();
}

// `privileges`: plan_privileges() of this config, made before anything runs.
int serve(const DaemonConfig& config, const PrivilegePlan& privileges, const WorkerLaunch& launch) {
  // Before any thread exists, so every thread inherits the blocked mask and
  // the event loop alone receives these signals.
  kj::UnixEventPort::captureSignal(SIGTERM);
  kj::UnixEventPort::captureSignal(SIGINT);
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  // Clone sockets, snapshots and logs are thawd's alone; the RPC socket is
  // opened to its group explicitly (set_socket_access).
  ::umask(0077);
  auto io = kj::setupAsyncIo();

  std::string linux_init = thaw::shipped_file(THAW_BUILT_LINUX_INIT, "thaw-init");
  if (linux_init.empty()) spdlog::warn("no thaw-init beside thawd: Linux templates will be refused");
  make_directories(config);
  std::string socket_dir = config.socket.empty() ? "" : std::filesystem::path(config.socket).parent_path().string();
  prepare_directories(privileges, {config.template_dir, config.vsock_dir}, socket_dir);
  drop_privileges(privileges, config.kvm_device);
  if (::geteuid() == 0) spdlog::warn("running as root (allow_root): a guest that escaped the VMM would own this host");
  spdlog::info("running as {}", describe_identity());
  const SeccompFilter& vcpu_filter = vmm::vcpu_thread_filter();  // fails here, not at the first clone
  const SeccompFilter& vsock_filter = devices::vsock_muxer_filter();
  spdlog::info("seccomp: every vCPU thread runs under filter '{}' ({} rules, {} BPF instructions), every vsock "
               "muxer thread under '{}' ({} rules, {} BPF instructions); a forbidden call ends {}",
               vcpu_filter.name(), vcpu_filter.rule_count(), vcpu_filter.instruction_count(), vsock_filter.name(),
               vsock_filter.rule_count(), vsock_filter.instruction_count(),
               config.template_workers ? "that template's worker" : "thawd");

  // Either every template in this process, or each in a worker of its own.
  std::optional<pool::PoolManager> manager;
  std::optional<rpc::PoolManagerBackend> backend;
  std::optional<WorkerSpawner> spawner;
  std::optional<WorkerFleet> fleet;
  std::optional<ManagerAdmin> manager_admin;
  TemplateAdmin* admin = nullptr;
  std::optional<WorkerCgroups> cgroups;
  if (config.template_workers) {
    spdlog::info("templates: each in a sandboxed worker process ({})", launch.executable);
    // As thawd's user (a delegated cgroup is that user's), before the filter.
    try {
      cgroups = WorkerCgroups::set_up(config.worker_cgroups);
    } catch (const std::runtime_error& e) {
      throw ConfigError(e.what());
    }
    spdlog::info("{}", cgroups->summary());
    // The spawner thread first: it alone stays outside thawd's filter.
    spawner.emplace();
    const SeccompFilter& filter = thawd_filter();
    filter.apply_to_this_thread();
    spdlog::info("seccomp: thawd's threads run under filter '{}' ({} rules, {} BPF instructions): no KVM, no "
                 "execve or fork but on its worker spawner thread",
                 filter.name(), filter.rule_count(), filter.instruction_count());
    DirectSockets direct{config.socket, [&privileges](const std::string& path) { set_socket_access(privileges, path); }};
    WorkerConfinement confinement{std::move(*cgroups), config.workers, config.clones_per_worker};
    admin = &fleet.emplace(io, *spawner, launch, config.template_dir, direct, std::move(confinement));
  } else {
    spdlog::warn("templates: every clone in thawd's own process (template_workers = false): a guest that escaped "
                 "would reach every template's clones");
    if (config.clones_per_worker != 0) {
      spdlog::warn("templates: clones_per_worker = {} has no effect without template workers", config.clones_per_worker);
    }
    manager.emplace(pool_manager_config(config, linux_init));
    backend.emplace(*manager);
    admin = &manager_admin.emplace(*manager);
  }
  set_up_pools(*admin, config);

  rpc::WorkerPool workers(config.workers);
  rpc::ConnectionCounters connection_counters;  // outlives the listener and the metrics
  std::unique_ptr<Metrics> metrics;
  if (!config.metrics.empty()) metrics = std::make_unique<Metrics>(config.metrics, *admin, &connection_counters);

  rpc::ServerOptions options;
  options.limits.max_lease_ms = config.max_lease_ms;
  options.limits.allowed_image_dirs = rpc::resolve_allowed_dirs(allowed_image_dirs(config));
  {
    std::string list;
    for (const auto& dir : options.limits.allowed_image_dirs) list += (list.empty() ? "" : ", ") + dir;
    spdlog::info("createTemplate may read images from: {}", list);
  }
  if (metrics) {
    options.on_acquired = [m = metrics.get()](const pool::LeaseInfo& lease) { m->observe_acquire(lease); };
    options.on_acquired_in = [m = metrics.get()](const std::string& name, double seconds) {
      m->observe_acquire(name, seconds);
    };
    options.on_invoked = [m = metrics.get()](const std::string& name, double seconds, const char* error_kind) {
      m->observe_invoke(name, seconds, error_kind);
    };
  }
  options.on_overloaded = [](const std::string& name) { spdlog::debug("acquire {}: overloaded", name); };

  int signal_number = 0;
  {
    capnp::Capability::Client bootstrap =
        fleet ? capnp::Capability::Client(kj::heap<RoutingPoolServer>(*fleet, options))
              : capnp::Capability::Client(kj::heap<rpc::PoolServer>(*backend, workers, options));
    rpc::RpcListener listener(*io.lowLevelProvider, bootstrap, connection_counters, connection_limits(config));
    if (!config.socket.empty()) {
      listener.listen(config.socket);
      set_socket_access(privileges, config.socket);
    }
    if (!config.tcp.empty()) listener.listen(config.tcp);
    spdlog::info("thawd ready: {} template(s)", admin->list_templates().size());
    std::optional<ReadinessReporter> readiness;
    readiness.emplace(*admin, config, ServiceNotifier::from_environment());

    auto stop = io.unixEventPort.onSignal(SIGTERM).exclusiveJoin(io.unixEventPort.onSignal(SIGINT));
    signal_number = static_cast<int>(stop.wait(io.waitScope).si_signo);
    spdlog::info("{}: shutting down", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
    readiness->stopping();
    listener.stop_accepting();
    listener.disconnect_all();  // Vm servers die here and post their releases
    off_the_loop(io.waitScope, [&] {
      readiness.reset();
      metrics.reset();
    });
  }
  spdlog::info("rpc: {} connections served; refused {} over max_connections; closed {} for an oversized, {} "
               "for a stalled message and {} over max_inflight_mib",
               connection_counters.accepted.load(), connection_counters.refused_over_limit.load(),
               connection_counters.oversized_messages.load(), connection_counters.stalled_messages.load(),
               connection_counters.over_budget_messages.load());
  workers.shutdown();  // runs those releases and waits for calls in flight
  spdlog::info("released every lease; destroying clones (snapshots stay in {})", config.template_dir);
  return 0;  // ~WorkerFleet drains every worker; ~PoolManager destroys the clones
}

struct DaemonArgs {
  std::string config_path;
  std::string log_level;  // overrides the config's
  bool check_only = false;
  bool allow_root = false;
  std::string worker_template;  // --template-worker: serve this one template on fd 3
  bool load = false;
  bool direct_socket = false;
  bool shard_socket = false;
  std::string limits;  // --limits (worker_limits.h)
  std::string cgroup;  // --cgroup: the worker's cgroup to join
  std::string shard;   // --shard K/N: the worker's part of its template
};

// thawd's own binary, for its template workers: resolved now, so a package
// upgrade that replaces the file later does not mix versions.
std::string own_executable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw SysError("readlink", ec.value(), "/proc/self/exe");
  return path.string();
}

int run(const DaemonArgs& args) {
  DaemonConfig config;
  PrivilegePlan privileges;
  try {
    config = load_config(args.config_path, mini_guest_beside_thawd());
    config.allow_root |= args.allow_root;
    // Who thawd may run as, before any thread or guest: root without a
    // user, or a user that is not there, is a config error.
    if (args.worker_template.empty()) privileges = plan_privileges(config, ::geteuid() == 0);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "thawd: config error: %s\n", e.what());
    return kExitConfig;
  }
  spdlog::set_level(spdlog::level::from_str(args.log_level.empty() ? config.log_level : args.log_level));
  if (args.check_only) {
    std::printf("thawd: %s is good: %zu pool(s)\n", args.config_path.c_str(), config.pools.size());
    return 0;
  }
  if (!args.worker_template.empty()) {
    std::optional<pool::PoolShard> shard = pool::PoolShard{};
    const std::string shard_suffix = args.shard.empty() ? "" : " " + args.shard;
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] [worker " + args.worker_template + shard_suffix + "] %v");
    std::optional<WorkerLimits> limits;
    if (!args.limits.empty() && !(limits = parse_limits_argument(args.limits))) {
      spdlog::critical("template worker: --limits {} is not clones:files:threads:address-space:memory", args.limits);
      return kExitConfig;
    }
    if (!args.shard.empty() && !(shard = pool::parse_shard_text(args.shard))) {
      spdlog::critical("template worker: --shard {} is not K/N with 1 <= K <= N <= {}", args.shard, pool::kMaxShards);
      return kExitConfig;
    }
    return run_template_worker({args.worker_template, args.load, args.direct_socket, args.shard_socket, config,
                                allowed_image_dirs(config), thaw::shipped_file(THAW_BUILT_LINUX_INIT, "thaw-init"),
                                limits, args.cgroup, *shard});
  }
  try {
    WorkerLaunch launch{own_executable(), std::filesystem::absolute(args.config_path).string(), args.log_level,
                        config.allow_root};
    return serve(config, privileges, launch);
  } catch (const ConfigError& e) {
    spdlog::critical("thawd: config error: {}", e.what());
    return kExitConfig;
  } catch (const kj::Exception& e) {
    spdlog::critical("thawd: {}", e.getDescription().cStr());
  } catch (const std::exception& e) {
    spdlog::critical("thawd: {}", e.what());
  }
  return kExitStartup;
}

}  // namespace

}  // namespace thaw::daemon


int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("thawd"));
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");

  CLI::App app{"thawd: keeps warm pools of microVM clones and hands them out over Cap'n Proto RPC.\n"
               "Clients: `thaw templates|acquire|invoke|stats --socket PATH`."};
  thaw::daemon::DaemonArgs args;
  app.add_option("--config", args.config_path, "TOML configuration (see deploy/thawd.example.toml)")->required();
  app.add_option("--log-level", args.log_level, "Overrides the config's log_level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--check-config", args.check_only, "Read and check the configuration, then exit");
  app.add_flag("--allow-root", args.allow_root,
               "Keep running as root when the config names no `user` (development only: a guest that escaped "
               "the VMM would own the host)");
  // thawd starts itself with these for each template (template_workers);
  // not for people, so not in --help.
  app.add_option("--template-worker", args.worker_template)->group("");
  app.add_flag("--load", args.load)->group("");
  app.add_flag("--direct-socket", args.direct_socket)->group("");
  app.add_flag("--shard-socket", args.shard_socket)->group("");
  app.add_option("--limits", args.limits)->group("");
  app.add_option("--cgroup", args.cgroup)->group("");
  app.add_option("--shard", args.shard)->group("");
  app.footer("Each template's clones run in a worker process of their own (thawd --template-worker, started by "
             "thawd; template_workers = false keeps them in thawd).\n"
             "Exit status: 0 after SIGTERM/SIGINT (or a good --check-config), 1 start-up failure, 2 bad config.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : thaw::daemon::kExitConfig;
  }
  return thaw::daemon::run(args);
}
