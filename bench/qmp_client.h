// For driving QEMU from the benchmarks: an owner of one child process
// (killed and reaped on every path) and a minimal QMP client (unix socket,
// one JSON object per line). Every wait has a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"

namespace thaw::bench {

using SteadyClock = std::chrono::steady_clock;

// Descriptors for a child's stdin/stdout/stderr; -1 means /dev/null.
struct ChildStdio {
  int in = -1, out = -1, err = -1;
};

// A child started with posix_spawn. The destructor sends SIGKILL to a child
// that is still running and reaps it, so no path leaves one behind.
class ChildProcess {
 public:
  using Stdio = ChildStdio;
  // Every descriptor of this process other than `stdio` is closed in the
  // child. Throws std::runtime_error when the program cannot be started.
  static ChildProcess spawn(const std::vector<std::string>& argv, Stdio stdio = {});

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Readable (POLLIN) once the child has exited; for poll() next to other fds.
  int pidfd() const { return pidfd_.get(); }
  // Waits for the child to exit, until `deadline`. Returns its exit status,
  // or -N when signal N ended it; nullopt when it is still running then.
  std::optional<int> wait_until(SteadyClock::time_point deadline);
  // Non-blocking: true while the child has not exited.
  bool running() { return !wait_until(SteadyClock::time_point::min()).has_value(); }
  // SIGKILL (when still running) and reap. Idempotent.
  void kill_and_reap();

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<int> status_;
};

// Human-readable exit status: "exit 1", "signal 9".
std::string describe_status(int status);

class QmpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class QmpClient {
 public:
  // Connects to the QMP unix socket at `path`, retrying while it does not
  // exist or refuses (QEMU is still starting) until `deadline`, reads the
  // greeting and negotiates capabilities (qmp_capabilities). `alive` is
  // asked between tries: connecting stops early when it returns false.
  static QmpClient connect(const std::string& path, SteadyClock::time_point deadline,
                           const std::function<bool()>& alive = {});

  // Runs one command and returns its "return" member. Throws QmpError for
  // an error reply (with its class and description), a closed socket or
  // the timeout. Events that arrive meanwhile are kept for wait_event.
  nlohmann::json execute(const std::string& command, const nlohmann::json& arguments = nullptr,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends a command without waiting for its reply (e.g. `quit`, after which
  // QEMU may close the socket before answering).
  void send(const std::string& command, const nlohmann::json& arguments = nullptr);

  // Waits for an event named `name` whose "data" satisfies `match` (any,
  // when empty); returns the whole event. Throws QmpError on timeout.
  nlohmann::json wait_event(const std::string& name, std::chrono::milliseconds timeout,
                            const std::function<bool(const nlohmann::json& data)>& match = {});

  const nlohmann::json& greeting() const { return greeting_; }

 private:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
  void write_line(const nlohmann::json& message);
  // Next message from the socket; throws QmpError on timeout or EOF.
  nlohmann::json read_message(SteadyClock::time_point deadline);

  UniqueFd fd_;
  std::string buffer_;
  std::deque<nlohmann::json> events_;
  nlohmann::json greeting_;
  uint64_t next_id_ = 1;
};

}  // namespace thaw::bench
