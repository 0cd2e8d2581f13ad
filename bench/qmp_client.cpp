#include "bench/qmp_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "base/unix_socket.h"

extern char** environ;

namespace thaw::bench {

namespace {

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

// Time left until `deadline` as a timespec for ppoll (zero when passed).
timespec remaining(SteadyClock::time_point deadline) {
  auto now = SteadyClock::now();
  if (deadline <= now) return {0, 0};
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count();
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

// Polls one fd for `events` until the deadline; false on timeout.
bool poll_one(int fd, short events, SteadyClock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    timespec ts = remaining(deadline);
    int r = ::ppoll(&p, 1, &ts, nullptr);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) throw std::runtime_error(errno_text("ppoll", errno));
  }
}

}  // namespace

// ---------------------------------------------------------------- ChildProcess

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv, Stdio stdio) {
  if (argv.empty()) throw std::runtime_error("spawn: empty argv");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const int targets[3] = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
  const int sources[3] = {stdio.in, stdio.out, stdio.err};
  for (int i = 0; i < 3; ++i) {
    if (sources[i] >= 0) {
      posix_spawn_file_actions_adddup2(&actions, sources[i], targets[i]);
    } else {
      posix_spawn_file_actions_addopen(&actions, targets[i], "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
  }
  // KVM, snapshot and socket fds of this process stay out of the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);

  ChildProcess child;
  int err = ::posix_spawn(&child.pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    child.pid_ = -1;
    throw std::runtime_error(errno_text("cannot start " + argv[0], err));
  }
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, child.pid_, 0));
  if (fd < 0) {
    int e = errno;
    child.kill_and_reap();
    throw std::runtime_error(errno_text("pidfd_open", e));
  }
  child.pidfd_.reset(fd);
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)), status_(other.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    status_ = other.status_;
  }
  return *this;
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

std::optional<int> ChildProcess::wait_until(SteadyClock::time_point deadline) {
  if (status_ || pid_ < 0) return status_;
  if (!poll_one(pidfd_.get(), POLLIN, deadline)) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) throw std::runtime_error(errno_text("waitpid", errno));
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  pidfd_.reset();
  return status_;
}

void ChildProcess::kill_and_reap() {
  if (pid_ < 0 || status_) return;
  if (pidfd_) {
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  } else {
    ::kill(pid_, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = -SIGKILL;
  pidfd_.reset();
}

std::string describe_status(int status) {
  return status >= 0 ? "exit " + std::to_string(status) : "signal " + std::to_string(-status);
}

// ------------------------------------------------------------------ QmpClient

QmpClient QmpClient::connect(const std::string& path, SteadyClock::time_point deadline,
                             const std::function<bool()>& alive) {
  sockaddr_un addr;
  socklen_t length;
  if (!fill_unix_address(path, addr, length)) throw QmpError("QMP socket path empty or too long: " + path);
  int last_errno = 0;
  while (true) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw QmpError(errno_text("socket", errno));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), length) == 0) {
      QmpClient client(std::move(fd));
      client.greeting_ = client.read_message(deadline);
      if (!client.greeting_.contains("QMP")) throw QmpError("unexpected QMP greeting: " + client.greeting_.dump());
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      client.execute("qmp_capabilities", nullptr, std::max(left, std::chrono::milliseconds(1)));
      return client;
    }
    last_errno = errno;
    if (last_errno != ENOENT && last_errno != ECONNREFUSED && last_errno != EAGAIN) {
      throw QmpError(errno_text("connect " + path, last_errno));
    }
    if (alive && !alive()) throw QmpError("QEMU exited before its QMP socket " + path + " accepted a connection");
    if (SteadyClock::now() >= deadline) {
      throw QmpError(errno_text("timed out connecting to QMP socket " + path, last_errno));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void QmpClient::write_line(const nlohmann::json& message) {
  std::string line = message.dump() + "\n";
  size_t done = 0;
  while (done < line.size()) {
    // MSG_NOSIGNAL: a QEMU that died must give an error here, not SIGPIPE.
    ssize_t n = ::send(fd_.get(), line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw QmpError(errno_text("QMP write", errno));
    }
    done += static_cast<size_t>(n);
  }
}

nlohmann::json QmpClient::read_message(SteadyClock::time_point deadline) {
  while (true) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      try {
        return nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw QmpError("malformed QMP message: " + line + " (" + e.what() + ")");
      }
    }
    if (!poll_one(fd_.get(), POLLIN, deadline)) throw QmpError("timed out waiting for a QMP message");
    char chunk[4096];
    ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw QmpError(errno_text("QMP read", errno));
    }
    if (n == 0) throw QmpError("QMP socket closed by QEMU");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void QmpClient::send(const std::string& command, const nlohmann::json& arguments) {
  nlohmann::json message = {{"execute", command}, {"id", next_id_++}};
  if (!arguments.is_null()) message["arguments"] = arguments;
  write_line(message);
}

nlohmann::json QmpClient::execute(const std::string& command, const nlohmann::json& arguments,
                                  std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  uint64_t id = next_id_;
  send(command, arguments);
  while (true) {
    nlohmann::json message;
    try {
      message = read_message(deadline);
    } catch (const QmpError& e) {
      throw QmpError("QMP " + command + ": " + e.what());
    }
    if (message.contains("event")) {
      events_.push_back(std::move(message));
      continue;
    }
    if (!message.contains("id") || message["id"] != id) continue;  // a reply to an earlier send()
    if (message.contains("error")) {
      const auto& err = message["error"];
      throw QmpError("QMP " + command + " failed: " + err.value("class", std::string("?")) + ": " +
                     err.value("desc", std::string("?")));
    }
    if (!message.contains("return")) throw QmpError("QMP " + command + ": unexpected reply " + message.dump());
    return message["return"];
  }
}

nlohmann::json QmpClient::wait_event(const std::string& name, std::chrono::milliseconds timeout,
                                     const std::function<bool(const nlohmann::json&)>& match) {
  auto matches = [&](const nlohmann::json& e) {
    return e.value("event", std::string()) == name && (!match || match(e.value("data", nlohmann::json::object())));
  };
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (matches(*it)) {
      auto e = std::move(*it);
      events_.erase(it);
      return e;
    }
  }
  auto deadline = SteadyClock::now() + timeout;
  while (true) {
    nlohmann::json message;
    try {
      message = read_message(deadline);
    } catch (const QmpError& e) {
      throw QmpError("waiting for QMP event " + name + ": " + e.what());
    }
    if (!message.contains("event")) continue;  // a reply to a send() nobody waits for
    if (matches(message)) return message;
    events_.push_back(std::move(message));
  }
}

}  // namespace thaw::bench
