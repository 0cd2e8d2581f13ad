#include "rpc/daemon/template_worker_main.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <spdlog/spdlog.h>

#include "base/landlock.h"
#include "base/mountinfo.h"
#include "base/process_namespaces.h"
#include "devices/virtio/vsock_seccomp.h"
#include "pool/pool_manager.h"
#include "rpc/daemon/startup.h"
#include "rpc/daemon/template_worker.h"
#include "rpc/daemon/worker_cgroups.h"
#include "rpc/daemon/worker_fleet.h"
#include "rpc/daemon/daemon_seccomp.h"
#include "rpc/pool_manager_backend.h"
#include "rpc/error_mapping.h"
#include "rpc/pool_server.h"
#include "rpc/rpc_listener.h"
#include "rpc/worker_pool.h"
#include "vmm/vcpu_seccomp.h"

namespace thaw::daemon {

namespace {

// The paths a worker reads or writes its template's files under.
std::vector<std::string> template_paths(const TemplateWorkerOptions& o) {
  std::vector<std::string> paths = o.allowed_image_dirs;
  // [[pool]]s are the operator's own and may name images anywhere.
  for (const auto& pool : o.config.pools) {
    if (pool.spec.name != o.template_name) continue;
    for (const auto& path : {pool.spec.kernel, pool.spec.initrd, pool.spec.program, pool.spec.files_dir}) {
      if (!path.empty()) paths.push_back(path);
    }
  }
  if (!o.linux_init_agent.empty()) paths.push_back(o.linux_init_agent);
  return paths;
}

// A path on a 9p file system, where Landlock cannot be trusted to match its
// rules: 9p may give each lookup a new inode, so a file under an allowed
// directory is refused (seen with thaw-init under the emulated machine,
// whose root file system is 9p). "" when none is. The mounts come from
// /proc/self/mountinfo: statfs would not do, 9p reports the far side's type.
std::string path_on_9p(const std::vector<std::string>& paths) {
  const std::vector<MountEntry> mounts = own_mounts();
  for (const auto& path : paths) {
    std::error_code ec;
    std::string canonical = std::filesystem::weakly_canonical(path, ec).string();
    if (ec) continue;
    // The mount a path lies on: the longest mount point above it.
    const MountEntry* on = nullptr;
    for (const auto& m : mounts) {
      bool under = m.point == "/" || canonical == m.point ||
                   (canonical.compare(0, m.point.size(), m.point) == 0 && canonical[m.point.size()] == '/');
      if (under && (on == nullptr || m.point.size() >= on->point.size())) on = &m;
    }
    if (on != nullptr && on->type == "9p") return path;
  }
  return {};
}

// What a worker may touch of the file system once it has started: its
// snapshots and clone sockets, /dev/kvm, the images createTemplate may read,
// and the read-only system files a process needs (time zone, CPU list,
// /proc for its own memory figures). Landlock also keeps it from ptrace'ing
// (and so from reading the memory of) thawd and the other workers.
LandlockPolicy worker_file_policy(const TemplateWorkerOptions& o) {
  LandlockPolicy policy;
  policy.allow_read_write(o.config.template_dir).allow_read_write(o.config.vsock_dir);
  policy.allow_device(o.config.kvm_device);
  for (const auto& path : template_paths(o)) policy.allow_read(path);
  for (const char* path : {"/usr", "/lib", "/lib64", "/etc", "/proc", "/sys/devices/system/cpu", "/dev/null",
                           "/dev/urandom"}) {
    policy.allow_read(path);
  }
  return policy;
}

// Before any thread exists: Landlock restricts only the thread that applies
// it and those it starts later.
void sandbox(const TemplateWorkerOptions& o) {
  // A worker outlives nothing: if thawd dies, so do its workers.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // No core files: they would hold tenants' guest memory.
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  raise_fd_limit();
  // First, so that all it does is charged and limited there.
  if (!o.cgroup.empty()) {
    try {
      join_cgroup(o.cgroup);
      spdlog::info("sandbox: in cgroup {}", o.cgroup);
    } catch (const std::exception& e) {
      spdlog::error("sandbox: not in its cgroup, so its memory and task limits do not hold: {}", e.what());
    }
  }
  // Before Landlock and seccomp: a user namespace needs a single thread, and
  // the filter forbids unshare.
  const NamespaceResult namespaces = enter_private_namespaces();
  spdlog::info("sandbox: {}", namespaces.summary);
  // After the user namespace: its threads are counted in there.
  const bool own_user_namespace =
      std::find(namespaces.entered.begin(), namespaces.entered.end(), "user") != namespaces.entered.end();
  if (o.limits) spdlog::info("sandbox: rlimits {}", apply_worker_rlimits(*o.limits, own_user_namespace));
  auto paths = template_paths(o);
  paths.insert(paths.end(), {o.config.template_dir, o.config.vsock_dir});
  if (std::string on_9p = path_on_9p(paths); !on_9p.empty()) {
    spdlog::warn("sandbox: Landlock not applied: {} is on a 9p file system, where Landlock cannot match its rules "
                 "(it would refuse files the worker may read); the worker can read and write what its user can",
                 on_9p);
  } else if (LandlockResult result = worker_file_policy(o).apply(); result.applied) {
    spdlog::info("sandbox: {}", result.summary);
  } else {
    spdlog::warn("sandbox: this kernel has no Landlock; the worker can read and write what its user can");
  }
  // For good: the worker execs nothing, and the filter below sets
  // no_new_privs if Landlock did not.
  drop_all_capabilities();
  // Compiled before the worker filter forbids what compiling needs.
  vmm::vcpu_thread_filter();
  devices::vsock_muxer_filter();
  vmm::prepare_thread_for_vcpu_filter();
  const SeccompFilter& filter = template_worker_filter();
  filter.apply_to_this_thread();
  spdlog::info("sandbox: seccomp filter '{}' ({} rules, {} BPF instructions) on every thread; vCPU threads add "
               "'{}', vsock muxers '{}'",
               filter.name(), filter.rule_count(), filter.instruction_count(), vmm::vcpu_thread_filter().name(),
               devices::vsock_muxer_filter().name());
}

// Cap'n Proto's generated Server classes have a non-virtual destructor
// (capnp destroys them through Capability::Server, which has a virtual one).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
// What a client gets on the template's direct socket: the worker's Pool, for
// this one template, without what changes templates (that stays with
// thawd, which checks and records it).
class DirectPoolServer final : public rpc::schema::Pool::Server {
 public:
  DirectPoolServer(rpc::schema::Pool::Client pool, std::string name) : pool_(kj::mv(pool)), name_(std::move(name)) {}

 protected:
  kj::Promise<void> acquire(AcquireContext context) override {
    auto params = context.getParams();
    if (params.getTemplate() != name_.c_str()) {
      rpc::throw_bad_argument("template: this socket serves template '" + name_ + "' only");
    }
    auto request = pool_.acquireRequest();
    request.setTemplate(params.getTemplate());
    request.setLeaseMs(params.getLeaseMs());
    request.setTimeoutMs(params.getTimeoutMs());
    return request.send().then([context](auto response) mutable { context.setResults(response); });
  }
  kj::Promise<void> listTemplates(ListTemplatesContext context) override {
    return pool_.listTemplatesRequest().send().then([context](auto response) mutable { context.setResults(response); });
  }
  kj::Promise<void> stats(StatsContext context) override {
    return pool_.statsRequest().send().then([context](auto response) mutable { context.setResults(response); });
  }
  kj::Promise<void> createTemplate(CreateTemplateContext) override { refuse("createTemplate"); }
  kj::Promise<void> deleteTemplate(DeleteTemplateContext) override { refuse("deleteTemplate"); }
  kj::Promise<void> setPolicy(SetPolicyContext) override { refuse("setPolicy"); }

 private:
  [[noreturn]] void refuse(const char* call) const {
    rpc::throw_bad_argument(std::string(call) + ": not on template '" + name_ +
                            "''s own socket; use thawd's socket for it");
  }

  rpc::schema::Pool::Client pool_;
  std::string name_;
};
#pragma GCC diagnostic pop

}  // namespace

int run_template_worker(const TemplateWorkerOptions& o) {
  // thawd drives the drain: a Ctrl-C or systemd's SIGTERM to the whole group
  // must not end a worker under its leases first.
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);
  ::umask(0077);
  if (::getppid() == 1) return 1;  // thawd is already gone
  if (::geteuid() == 0 && !o.config.allow_root) {
    spdlog::critical("template worker: refusing to run as root (thawd should have dropped its privileges)");
    return 1;
  }
  try {
    sandbox(o);
    pool::PoolManagerConfig manager_config = pool_manager_config(o.config, o.linux_init_agent);
    manager_config.shard = o.shard;
    pool::PoolManager manager(std::move(manager_config));
    if (o.load) {
      try {
        manager.load_template(o.template_name);
      } catch (const std::exception& e) {
        spdlog::critical("template '{}': cannot load its snapshot: {}", o.template_name, e.what());
        return kExitTemplateUnloadable;
      }
    }
    rpc::PoolManagerBackend backend(manager);
    rpc::WorkerPool workers(o.config.workers);
    rpc::ServerOptions options;
    options.limits.max_lease_ms = o.config.max_lease_ms;
    // No allowed_image_dirs here: thawd checked createTemplate's paths, and
    // the operator's [[pool]]s may name images anywhere (Landlock lets the
    // worker read only those and the allowed directories).
    {
      auto io = kj::setupAsyncIo();
      auto stream = io.lowLevelProvider->wrapSocketFd(kWorkerSocketFd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
      capnp::TwoPartyVatNetwork network(*stream, capnp::rpc::twoparty::Side::SERVER);
      rpc::schema::Pool::Client pool = kj::heap<rpc::PoolServer>(backend, workers, options);
      auto rpc_system = capnp::makeRpcServer(network, pool);
      rpc::ConnectionCounters counters;
      std::optional<rpc::RpcListener> direct;
      if (o.direct_socket) {
        direct.emplace(*io.lowLevelProvider, kj::heap<DirectPoolServer>(pool, o.template_name), counters,
                       connection_limits(o.config));
        direct->adopt(kj::AutoCloseFd(kWorkerListenFd));
        // A spread template's shard also serves its own socket, which only it accepts on.
        if (o.shard_socket) direct->adopt(kj::AutoCloseFd(kWorkerShardListenFd));
      }
      network.onDisconnect().wait(io.waitScope);
      if (direct) {
        direct->stop_accepting();
        direct->disconnect_all();
      }
    }  // every Vm capability is gone here: their leases are being released
    workers.shutdown();
    spdlog::debug("template '{}': thawd closed the connection; destroying clones", o.template_name);
    return 0;
  } catch (const kj::Exception& e) {
    spdlog::critical("template worker '{}': {}", o.template_name, e.getDescription().cStr());
  } catch (const std::exception& e) {
    spdlog::critical("template worker '{}': {}", o.template_name, e.what());
  }
  return 1;
}

}  // namespace thaw::daemon
