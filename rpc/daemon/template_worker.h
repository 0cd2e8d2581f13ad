// One template's worker process, as thawd sees it. The worker is thawd
// itself, exec'd with --template-worker so it starts clean (no inherited
// threads, locks or heap), sandboxed before it touches the template
// (worker_sandbox.h), and it serves that one template's Pool on its end of a
// socketpair. Its clones, vCPU threads, devices and vsock sockets live
// there, so a guest that escapes into the VMM reaches that template's clones
// and no other's. A pidfd says when the process ended.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>

#include "base/unique_fd.h"
#include "pool/pool_shard.h"
#include "rpc/thaw.capnp.h"

namespace thaw::daemon {

namespace schema = ::thaw::rpc::schema;

// How thawd starts its workers: the same executable, config and log level.
struct WorkerLaunch {
  std::string executable;   // thawd's own binary (/proc/self/exe, resolved at start)
  std::string config_path;  // the worker reads the same config
  std::string log_level;
  bool allow_root = false;
};

// What one worker is started for.
struct WorkerStart {
  std::string name;    // its template
  bool load = false;   // pick the template up from template_dir before serving
  int listen_fd = -1;  // the template's direct socket (-1: none), which thawd keeps across restarts
  int shard_listen_fd = -1;  // a spread template's socket for this shard alone (-1: none); kept the same way
  std::string limits;  // worker_limits.h's limits_argument; "": none known
  std::string cgroup;  // the cgroup it joins as it starts; "": none
  pool::PoolShard shard;  // its part of the template (clones_per_worker)
};

// The fds a worker finds its connection to thawd on, and its direct socket
// (listening, bound by thawd) when it has one.
inline constexpr int kWorkerSocketFd = 3;
inline constexpr int kWorkerListenFd = 4;
inline constexpr int kWorkerShardListenFd = 5;

// The one thread of thawd that may start processes: made before thawd puts
// its own seccomp filter on (thawd_seccomp.h), which forbids execve and
// fork to every other thread, and which a worker would otherwise inherit
// across its exec. It only runs posix_spawn for TemplateWorker.
class WorkerSpawner {
 public:
  WorkerSpawner();
  ~WorkerSpawner();
  WorkerSpawner(const WorkerSpawner&) = delete;
  WorkerSpawner& operator=(const WorkerSpawner&) = delete;

  // Starts `launch` for `start` with `child_fd` at kWorkerSocketFd and
  // start.listen_fd (if >= 0) at kWorkerListenFd and start.shard_listen_fd
  // (if >= 0, with a listen_fd) at kWorkerShardListenFd, on the spawner thread;
  // blocks until it is started. SysError.
  pid_t spawn(const WorkerLaunch& launch, const WorkerStart& start, int child_fd);

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::function<void()> job_;  // at most one at a time: spawn() waits for it
  bool done_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

class TemplateWorker {
 public:
  // Starts the worker for `start`. With start.load, the worker picks the
  // template up from template_dir before it serves (a restart, or thawd's
  // start); without it, it waits for createTemplate. SysError when the
  // process cannot be started.
  TemplateWorker(kj::AsyncIoContext& io, WorkerSpawner& spawner, const WorkerLaunch& launch, WorkerStart start);
  ~TemplateWorker();  // disconnects, then reaps (waiting up to kReapPatience, then SIGKILL)
  TemplateWorker(const TemplateWorker&) = delete;
  TemplateWorker& operator=(const TemplateWorker&) = delete;

  const std::string& name() const { return name_; }
  pool::PoolShard shard() const { return shard_; }
  pid_t pid() const { return pid_; }
  schema::Pool::Client& pool() { return pool_; }

  // Resolves once the process has ended, with how ("exited with status 3",
  // "killed by SIGSYS"). The process is reaped by then. Call once.
  kj::Promise<std::string> ended();
  // Closes the connection: the worker releases its leases, destroys its
  // clones and exits. Idempotent.
  void disconnect();
  // Waits for the process to end, up to `patience`, then kills it; reaps it.
  // Blocks. Returns how it ended. For thawd's shutdown and the destructor.
  std::string reap(std::chrono::milliseconds patience);
  // Its exit status once reaped, when it exited rather than being killed.
  std::optional<int> exit_status() const { return exit_status_; }

  static constexpr std::chrono::milliseconds kReapPatience{10000};

 private:
  // waitid on the pidfd (WNOHANG or not): records how it ended; "" when it
  // still runs.
  std::string collect(int wait_flags);

  std::string name_;
  pool::PoolShard shard_;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::string how_ended_;
  std::optional<int> exit_status_;
  int socket_fd_ = -1;  // owned by stream_
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Own<capnp::TwoPartyClient> client_;
  schema::Pool::Client pool_{nullptr};
  kj::Own<kj::UnixEventPort::FdObserver> exit_observer_;
  kj::UnixEventPort& events_;
};

// "exited with status N", "killed by SIGKILL" from a waitid() result
// (its si_code and si_status).
std::string describe_exit(int code, int status);

}  // namespace thaw::daemon
