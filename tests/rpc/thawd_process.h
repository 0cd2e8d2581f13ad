// Runs the real thawd as a child process for end-to-end tests: a temp dir
// with its config, template_dir, vsock_dir and unix socket; waits until the
// socket answers; SIGTERM (then SIGKILL) on teardown. Also runs the `thaw`
// CLI and collects its output, and gives the fixture base for suites whose
// tests share one daemon.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/unix_socket.h"
#include "rpc/daemon/config.h"
#include "tests/kvm_available.h"
#include "tests/shell_command.h"
#include "tests/temp_dir.h"

namespace thaw::testing {

// A [[pool]] of the mini guest with its agent, small: 32 MiB, 1..2 warm.
inline daemon::PoolConfig mini_pool(const std::string& name = "mini") {
  daemon::PoolConfig pool;
  pool.spec.name = name;
  pool.spec.kernel = THAW_MINI_GUEST;
  pool.spec.cmdline = "console=ttyS0 thaw.quiet=1 thaw.after=agent";
  pool.spec.mem_mib = 32;
  pool.policy = pool::PoolPolicy{1, 2, 1024};
  return pool;
}

class ThawdProcess {
 public:
  explicit ThawdProcess(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ~ThawdProcess() { stop(); }

  std::string socket() const { return (dir_ / "thaw.sock").string(); }
  std::string config_path() const { return (dir_ / "thawd.toml").string(); }
  std::string log_path() const { return (dir_ / "thawd.log").string(); }

  // This daemon's paths, log level debug, then `extra` (from line 5 on:
  // tests of bad keys name that line), then the pools.
  std::string config_text(const std::vector<daemon::PoolConfig>& pools, const std::string& extra = {}) const {
    daemon::DaemonConfig config;
    config.socket = socket();
    config.template_dir = (dir_ / "templates").string();
    config.vsock_dir = (dir_ / "vsock").string();
    config.log_level = "debug";
    std::string text = daemon::render_config_header(config) + extra;
    // After `extra`, so its line numbers stay put. createTemplate over RPC
    // may read the built mini guest, Debian's static programs (/bin is
    // /usr/bin on Debian 12) and the test's own files.
    text += "allowed_image_dirs = [" +
            daemon::toml_string(std::filesystem::path(THAW_MINI_GUEST).parent_path().string()) +
            ", \"/usr/bin\", \"/bin\", " + daemon::toml_string(dir_.string()) + "]\n";

    for (const auto& p : pools) text += daemon::render_pool(p);
    return text;
  }

  void write_config(const std::string& text) const { std::ofstream(config_path()) << text; }

  // Starts thawd with the config file as it is; true once the socket answers.
  // `max_open_files` > 0 caps its RLIMIT_NOFILE (soft and hard). The default
  // wait is long because the socket answers only after the config's
  // templates are cold-booted and snapshotted: under nested emulation, with
  // a Linux guest booting beside it, one 32 MiB snapshot once took 19 s.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(120), rlim_t max_open_files = 0) {
    pid_ = ::fork();
    if (pid_ == 0) {
      if (max_open_files > 0) {
        rlimit limit{max_open_files, max_open_files};
        ::setrlimit(RLIMIT_NOFILE, &limit);
      }
      if (!cgroup_.empty()) {  // as systemd puts a service into its cgroup before it runs
        int procs = ::open((cgroup_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        if (procs < 0 || ::write(procs, "0", 1) != 1) ::_exit(126);
        ::close(procs);
      }
      int log = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      // The tests run as root on a development machine (privileges_test.cpp
      // covers thawd's refusal and its `user`).
      const char* allow_root = ::geteuid() == 0 && allow_root_ ? "--allow-root" : nullptr;
      ::execl(THAWD, THAWD, "--config", config_path().c_str(), allow_root, static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (auto deadline = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < deadline;) {
      if (answers()) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // SIGTERM, then waits; the exit status (as waitpid gives it), or -1.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(15)) {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, SIGTERM);
    for (auto deadline = std::chrono::steady_clock::now() + grace; std::chrono::steady_clock::now() < deadline;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    exit_status_ = -1;
    return -1;
  }

  // Runs thawd to completion with extra arguments (bad configs, --help);
  // --allow-root too where the tests run as root.
  std::pair<int, std::string> run_to_exit(const std::string& args) const {
    auto r = testing::run_shell(std::string(THAWD) + " " + args + (::geteuid() == 0 ? " --allow-root" : "") + " 2>&1");
    return {r.exit_code, r.output};
  }

  // Start without --allow-root (privileges_test.cpp).
  void forbid_root() { allow_root_ = false; }
  // Start thawd in this cgroup v2 directory (worker_cgroups = "auto").
  void start_in_cgroup(std::string dir) { cgroup_ = std::move(dir); }

  std::string log() const {
    std::ifstream in(log_path());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // /proc/<pid>/status of the running daemon ("" when it is not running).
  std::string proc_status() const {
    if (pid_ <= 0) return {};
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  pid_t pid() const { return pid_; }

  // Something accepts on the socket (a full backlog counts: it is up).
  bool answers() const { return probe_unix_socket(socket()).state == UnixSocketState::kListening; }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
  bool allow_root_ = true;
  std::string cgroup_;
};

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline CliResult run_thaw(const std::string& args, const std::filesystem::path& scratch) {
  auto err_path = scratch / "cli.err";
  auto run = testing::run_shell(std::string(THAW_CLI) + " " + args + " 2>" + err_path.string());
  CliResult r{run.exit_code, std::move(run.output), {}};
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

// Base for a suite whose tests share one thawd: the first test's SetUp starts
// it in a temp dir tagged `Suite::kDirTag`, with the config text
// `Suite::daemon_config(daemon)`; every test's SetUp skips without KVM and
// asserts that the daemon answers; TearDownTestSuite checks that it exits 0
// on SIGTERM and removes the dir. CRTP, so each suite has its own daemon.
template <typename Suite>
class SharedThawdTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    if (daemon_) {
      int status = daemon_->stop();
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "thawd exit status " << status << "\n"
                                                                 << daemon_->log();
    }
    daemon_.reset();
    scratch_.reset();
    dir_.clear();
  }

  void SetUp() override {
    THAW_REQUIRE_KVM();
    if (!daemon_) {
      dir_ = scratch_.emplace("thaw-" + std::string(Suite::kDirTag)).path();
      daemon_ = std::make_unique<ThawdProcess>(dir_);
      daemon_->write_config(Suite::daemon_config(*daemon_));
      ASSERT_TRUE(daemon_->start()) << daemon_->log();
    }
    ASSERT_TRUE(daemon_->answers()) << daemon_->log();
  }

  static inline std::optional<TempDir> scratch_;  // owns dir_
  static inline std::filesystem::path dir_;
  static inline std::unique_ptr<ThawdProcess> daemon_;
};

}  // namespace thaw::testing
