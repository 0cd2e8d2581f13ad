#include "bench/thawd_child.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/unix_socket.h"
#include "rpc/convert.h"
#include "rpc/pool_client.h"
#include "vmm/kvm_host_check.h"

namespace thaw::bench {

namespace {
using Clock = std::chrono::steady_clock;
}

namespace {

// The children of every thread of `pid` (/proc/PID/task/TID/children).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream in(it->path() / "children");
    pid_t child = 0;
    while (in >> child) out.push_back(child);
  }
  return out;
}

ProcessUse one_process_use(pid_t pid) {
  ProcessUse use;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(proc + "/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++use.fds;
  }
  std::ifstream status(proc + "/status");
  std::string line;
  while (std::getline(status, line)) {
    double kib = 0;
    size_t threads = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lf", &kib) == 1) use.rss_mib = kib / 1024;
    if (std::sscanf(line.c_str(), "Threads: %zu", &threads) == 1) use.threads = threads;
  }
  std::ifstream maps(proc + "/maps");
  while (std::getline(maps, line)) ++use.vmas;
  return use;
}

}  // namespace

ProcessUse process_use(pid_t pid) {
  // thawd and its template workers, which hold the clones.
  ProcessUse use = one_process_use(pid);
  for (pid_t child : children_of(pid)) {
    ProcessUse more = process_use(child);
    use.fds += more.fds;
    use.rss_mib += more.rss_mib;
    use.threads += more.threads;
    use.vmas += more.vmas;
  }
  return use;
}

daemon::PoolConfig mini_agent_pool(const std::string& name, const std::string& kernel, uint32_t min_warm,
                                   uint32_t max_warm) {
  daemon::PoolConfig pool;
  pool.spec.name = name;
  pool.spec.kernel = kernel;
  pool.spec.cmdline = "console=ttyS0 thaw.quiet=1 thaw.after=agent";
  pool.spec.mem_mib = 128;
  pool.policy = pool::PoolPolicy{min_warm, max_warm, 4096};
  return pool;
}

daemon::PoolConfig linux_busybox_pool(const std::string& name, const std::string& kernel, uint32_t min_warm,
                                      uint32_t max_warm) {
  daemon::PoolConfig pool;
  pool.spec.name = name;
  pool.spec.guest = pool::GuestKind::kLinux;
  pool.spec.kernel = kernel;
  pool.spec.mem_mib = 128;
  pool.spec.program = "/bin/busybox";
  pool.spec.args = {"sha256sum"};
  pool.policy = pool::PoolPolicy{min_warm, max_warm, 4096};
  return pool;
}

std::string linux_guest_unavailable(const std::string& kernel) {
  auto host = vmm::check_kvm_host();
  if (!host.device_usable) return "this host cannot run VMs (see `thaw doctor`)";
  std::error_code ec;
  if (vmm::host_kvm_is_pvm()) {
    return "this host's KVM is PVM, where Linux's emulated ring 0 does not reach init; it needs kvm_intel or "
           "kvm_amd (or ../shared/nested-kvm/run)";
  }
  if (!std::filesystem::is_regular_file(kernel, ec)) {
    return "no kernel at --linux-kernel " + kernel + " (deploy/linux/build-kernel.sh builds one)";
  }
  if (!std::filesystem::is_regular_file("/bin/busybox", ec)) return "/bin/busybox is missing (busybox-static)";
  return {};
}

ThawdChild::ThawdChild(ThawdOptions options) : options_(std::move(options)) {
  // Numbered: a benchmark may run two daemons side by side.
  static std::atomic<unsigned> serial{0};
  dir_ = std::filesystem::temp_directory_path() /
         ("thaw-bench-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  socket_ = (dir_ / "thaw.sock").string();
  daemon::DaemonConfig config;
  config.socket = socket_;
  config.template_dir = (dir_ / "templates").string();
  config.vsock_dir = (dir_ / "vsock").string();
  config.log_level = options_.log_level;
  config.autoscale_period_ms = options_.autoscale_period_ms;
  config.autoscale_headroom = options_.autoscale_headroom;
  config.refill_threads = options_.refill_threads;
  config.clones_per_worker = options_.clones_per_worker;
  config.pools = options_.pools;
  config.template_workers = options_.template_workers;
  config.allow_root = ::geteuid() == 0;  // benchmarks run on development machines
  std::ofstream file(dir_ / "thawd.toml");
  file << daemon::render_config(config);
  if (!file) throw std::runtime_error("cannot write " + (dir_ / "thawd.toml").string());
}

ThawdChild::~ThawdChild() {
  stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void ThawdChild::start(std::chrono::seconds timeout) {
  const std::string config = (dir_ / "thawd.toml").string();
  const std::string log = (dir_ / "thawd.log").string();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    FILE* out = std::fopen(log.c_str(), "w");
    if (out != nullptr) {
      ::dup2(::fileno(out), STDOUT_FILENO);
      ::dup2(::fileno(out), STDERR_FILENO);
    }
    ::execl(options_.thawd.c_str(), options_.thawd.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Until something accepts on the socket, not until its file exists: a
  // client that connects in between is refused.
  auto deadline = Clock::now() + timeout;
  while (probe_unix_socket(socket_).state != UnixSocketState::kListening) {
    if (!alive()) throw std::runtime_error("thawd exited before it listened; its log:\n" + log_text());
    if (Clock::now() > deadline) {
      throw std::runtime_error("thawd did not listen on " + socket_ + " within " + std::to_string(timeout.count()) +
                               " s; its log:\n" + log_text());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void ThawdChild::wait_warm(std::chrono::seconds timeout) const {
  rpc::PoolConnection conn(socket_);
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto stats = conn.pool().statsRequest().send().wait(conn.wait_scope()).getStats();
    size_t ready = 0;
    for (auto t : stats.getTemplates()) {
      for (const auto& p : options_.pools) {
        if (p.spec.name == t.getName().cStr() && t.getWarm() >= p.policy.min_warm) ++ready;
      }
    }
    if (ready == options_.pools.size()) return;
    if (Clock::now() > deadline) throw std::runtime_error("thawd's pools did not fill in time; its log:\n" + log_text());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int ThawdChild::stop() {
  if (pid_ <= 0) return 0;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool ThawdChild::alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

std::string ThawdChild::log_text() const {
  std::ifstream log(dir_ / "thawd.log");
  return std::string(std::istreambuf_iterator<char>(log), {});
}

std::optional<pool::TemplateInfo> ThawdChild::listed(const std::string& template_name) const {
  rpc::PoolConnection conn(socket_);
  auto list = conn.pool().listTemplatesRequest().send().wait(conn.wait_scope());
  for (auto t : list.getTemplates()) {
    if (t.getName() == template_name.c_str()) return rpc::from_schema(t);
  }
  return std::nullopt;
}

std::string ThawdChild::lease_socket(const std::string& template_name, bool via_thawd) const {
  if (via_thawd) return socket_;
  auto info = listed(template_name);
  return info && !info->direct_socket.empty() ? info->direct_socket : socket_;
}

std::vector<std::string> ThawdChild::shard_sockets(const std::string& template_name, bool via_thawd) const {
  if (via_thawd) return {};
  auto info = listed(template_name);
  return info ? info->shard_sockets : std::vector<std::string>{};
}

}  // namespace thaw::bench
