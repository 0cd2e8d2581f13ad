#include "rpc/daemon/template_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "base/errors.h"

extern char** environ;

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace thaw::daemon {

namespace {

// The worker's environment: thawd's, less what belongs to thawd alone (the
// service manager's socket: only thawd reports readiness).
std::vector<std::string> worker_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("NOTIFY_SOCKET=") || entry.starts_with("LISTEN_FDS=") || entry.starts_with("LISTEN_PID="))
      continue;
    env.emplace_back(entry);
  }
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn with the child's end of the socketpair at kWorkerSocketFd, an
// empty signal mask (thawd blocks the signals its event loop captures) and
// default dispositions.
pid_t spawn_worker(const WorkerLaunch& launch, const WorkerStart& start, int child_fd) {
  const std::string& name = start.name;
  const int listen_fd = start.listen_fd;
  std::vector<std::string> args = {launch.executable, "--template-worker", name, "--config", launch.config_path};
  if (!launch.log_level.empty()) args.insert(args.end(), {"--log-level", launch.log_level});
  if (start.load) args.emplace_back("--load");
  if (listen_fd >= 0) args.emplace_back("--direct-socket");
  const bool shard_socket = listen_fd >= 0 && start.shard_listen_fd >= 0;
  if (shard_socket) args.emplace_back("--shard-socket");
  if (!start.limits.empty()) args.insert(args.end(), {"--limits", start.limits});
  if (!start.cgroup.empty()) args.insert(args.end(), {"--cgroup", start.cgroup});
  if (start.shard.count > 1) args.insert(args.end(), {"--shard", pool::shard_text(start.shard)});
  if (launch.allow_root) args.emplace_back("--allow-root");
  std::vector<std::string> env = worker_environment();
  auto argv = pointers(args);
  auto envp = pointers(env);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, child_fd, kWorkerSocketFd);
  if (listen_fd >= 0) posix_spawn_file_actions_adddup2(&actions, listen_fd, kWorkerListenFd);
  if (shard_socket) posix_spawn_file_actions_adddup2(&actions, start.shard_listen_fd, kWorkerShardListenFd);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGCHLD, SIGHUP}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, launch.executable.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw SysError("posix_spawn", rc, "template worker for '" + name + "': " + launch.executable);
  return pid;
}

}  // namespace

std::string describe_exit(int code, int status) {
  if (code == CLD_EXITED) return "exited with status " + std::to_string(status);
  const char* abbrev = ::sigabbrev_np(status);
  std::string sig = abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(status);
  return (code == CLD_DUMPED ? "killed by " + sig + " (core dumped)" : "killed by " + sig);
}

WorkerSpawner::WorkerSpawner() : thread_([this] { loop(); }) {}

WorkerSpawner::~WorkerSpawner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void WorkerSpawner::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || (job_ && !done_); });
    if (stopping_) return;
    job_();
    done_ = true;
    wake_.notify_all();
  }
}

pid_t WorkerSpawner::spawn(const WorkerLaunch& launch, const WorkerStart& start, int child_fd) {
  pid_t pid = -1;
  std::exception_ptr error;
  std::unique_lock lock(mutex_);
  job_ = [&] {
    try {
      pid = spawn_worker(launch, start, child_fd);
    } catch (...) {
      error = std::current_exception();
    }
  };
  done_ = false;
  wake_.notify_all();
  wake_.wait(lock, [this] { return done_; });
  job_ = nullptr;
  if (error) std::rethrow_exception(error);
  return pid;
}

TemplateWorker::TemplateWorker(kj::AsyncIoContext& io, WorkerSpawner& spawner, const WorkerLaunch& launch,
                               WorkerStart start)
    : name_(start.name), shard_(start.shard), events_(io.unixEventPort) {
  const std::string& name = start.name;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair", "template worker");
  UniqueFd ours(fds[0]), theirs(fds[1]);
  // The child's dup2s must not land on a source they still need, and dup2
  // onto the same number would keep FD_CLOEXEC: sources go above both.
  if (theirs.get() <= kWorkerShardListenFd) theirs = UniqueFd(::fcntl(theirs.get(), F_DUPFD_CLOEXEC, 10));
  // `fd` (not owned) moved up the same way, through a copy `copy` keeps.
  auto lift = [](int& fd, UniqueFd& copy) {
    if (fd < 0 || fd > kWorkerShardListenFd) return;
    copy = UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 10));
    fd = copy.get();
  };
  UniqueFd listen_copy, shard_listen_copy;
  lift(start.listen_fd, listen_copy);
  lift(start.shard_listen_fd, shard_listen_copy);
  pid_ = spawner.spawn(launch, start, theirs.get());
  pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  if (!pidfd_) {
    int err = errno;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    throw SysError("pidfd_open", err, "template worker for '" + name + "'");
  }
  socket_fd_ = ours.get();
  stream_ = io.lowLevelProvider->wrapSocketFd(ours.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  client_ = kj::heap<capnp::TwoPartyClient>(*stream_);
  pool_ = client_->bootstrap().castAs<schema::Pool>();
  spdlog::info("template '{}': worker process {}{} started{}", name_, pid_,
               shard_.count > 1 ? " (" + pool::shard_text(shard_) + ")" : "", start.load ? " (loading its snapshot)" : "");
}

TemplateWorker::~TemplateWorker() {
  disconnect();
  std::string how = reap(kReapPatience);
  spdlog::debug("template '{}': worker {} {}", name_, pid_, how);
}

void TemplateWorker::disconnect() {
  // A shutdown, not a close: the stream still owns the fd, and both sides
  // see end-of-stream, so capabilities from this worker break cleanly.
  if (socket_fd_ >= 0) ::shutdown(socket_fd_, SHUT_RDWR);
}

std::string TemplateWorker::collect(int wait_flags) {
  if (!how_ended_.empty()) return how_ended_;
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED | wait_flags) != 0) {
    how_ended_ = std::string("ended (waitid: ") + std::strerror(errno) + ")";
  } else if (info.si_pid != 0) {
    how_ended_ = describe_exit(info.si_code, info.si_status);
    if (info.si_code == CLD_EXITED) exit_status_ = info.si_status;
  }
  return how_ended_;
}

kj::Promise<std::string> TemplateWorker::ended() {
  exit_observer_ = kj::heap<kj::UnixEventPort::FdObserver>(events_, pidfd_.get(),
                                                            kj::UnixEventPort::FdObserver::OBSERVE_READ);
  return exit_observer_->whenBecomesReadable().then([this] { return collect(WNOHANG); });
}

std::string TemplateWorker::reap(std::chrono::milliseconds patience) {
  if (!how_ended_.empty() || !pidfd_) return how_ended_;
  pollfd pfd{pidfd_.get(), POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(patience.count())) == 0) {
    spdlog::warn("template '{}': worker {} still running {} ms after its connection closed; killing it", name_,
                 pid_, patience.count());
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  }
  return collect(0);
}

}  // namespace thaw::daemon
