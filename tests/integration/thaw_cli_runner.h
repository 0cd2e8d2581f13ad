// Runs the real `thaw` binary (THAW_CLI) for the CLI tests: to its end,
// collecting its exit code and output, or in the background (ThawProcess)
// for commands that keep VMs running until a signal.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/shell_command.h"

extern char** environ;

namespace thaw::testing {

// `thaw ARGS`, with ARGS as a shell would read them (quotes allowed).
inline CommandResult run_thaw_line(const std::string& args) {
  return run_shell(std::string(THAW_CLI) + " " + args + " 2>&1");
}

// One argument for the shell, single-quoted.
inline std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `thaw ARGS...`, each argument passed as it is.
inline CommandResult run_thaw(const std::vector<std::string>& args) {
  std::string line;
  for (const auto& a : args) line += (line.empty() ? "" : " ") + shell_quote(a);
  return run_thaw_line(line);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `thaw ARGS...` in the background, its output in `log`.
class ThawProcess {
 public:
  ThawProcess(const std::vector<std::string>& args, std::string log) : log_(std::move(log)) {
    std::vector<std::string> argv_strings = {THAW_CLI};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    if (::posix_spawn(&pid_, THAW_CLI, &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    ::posix_spawn_file_actions_destroy(&actions);
  }
  ~ThawProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ThawProcess(const ThawProcess&) = delete;
  ThawProcess& operator=(const ThawProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // Whether it is still running (it has not exited on its own).
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return true;
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return false;
  }
  // Sends `sig` and waits up to `timeout` for the exit; its exit code, or
  // nullopt when it had to be killed (or was killed by a signal).
  std::optional<int> stop(int sig, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    if (pid_ > 0) {
      ::kill(pid_, sig);
      auto deadline = std::chrono::steady_clock::now() + timeout;
      while (running() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return std::nullopt;
      }
    }
    if (exit_code_ < 0) return std::nullopt;
    return exit_code_;
  }
  std::string output() const { return read_text(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace thaw::testing
