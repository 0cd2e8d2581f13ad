// A cgroup v2 directory of one test's own, made under the hierarchy's root
// and removed (with the cgroups thawd made inside it) by remove(), which a
// test checks, or else when the test ends, whatever its outcome. Where none can be made, skip_reason() says why:
// no cgroup v2 mounted (the emulated machine of ../shared/nested-kvm/run
// has one only under .ci/as-full-host), or not root.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "rpc/daemon/worker_cgroups.h"
#include "tests/rpc/rpc_test_helpers.h"

namespace thaw::testing {

class ScratchCgroup {
 public:
  explicit ScratchCgroup(const std::string& prefix) {
    if (::geteuid() != 0) {
      skip_reason_ = "making a cgroup for the test needs root";
      return;
    }
    const std::string mount = daemon::cgroup2_mount_point(read_whole_file("/proc/self/mountinfo"));
    if (mount.empty()) {
      skip_reason_ = "no cgroup v2 hierarchy is mounted";
      return;
    }
    relative_ = "/" + prefix + "-" + std::to_string(::getpid());
    path_ = mount + relative_;
    if (::mkdir(path_.c_str(), 0755) != 0) {
      skip_reason_ = "cannot make " + path_ + ": " + std::strerror(errno);
      path_.clear();
    }
  }
  ~ScratchCgroup() { remove(); }
  ScratchCgroup(const ScratchCgroup&) = delete;
  ScratchCgroup& operator=(const ScratchCgroup&) = delete;

  // Empty when the cgroup was made.
  const std::string& skip_reason() const { return skip_reason_; }
  // Its absolute path, and the path /proc/PID/cgroup names it by.
  const std::string& path() const { return path_; }
  const std::string& relative() const { return relative_; }

  // The names of the cgroups inside it, sorted.
  std::vector<std::string> children() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path_, ec)) {
      if (e.is_directory()) out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Removes the cgroups inside it, then it; "" when all went, else what
  // could not (a cgroup still holding a process cannot be removed).
  std::string remove() {
    if (path_.empty()) return {};
    std::string failed;
    for (const auto& child : children()) {
      const std::string dir = path_ + "/" + child;
      if (::rmdir(dir.c_str()) != 0) failed += dir + ": " + std::strerror(errno) + "; ";
    }
    if (::rmdir(path_.c_str()) != 0) return failed + path_ + ": " + std::strerror(errno);
    path_.clear();
    return failed;
  }

  // The unified-hierarchy cgroup of `pid`, as "/relative/path" ("" if gone).
  static std::string of(pid_t pid) {
    const auto own = daemon::unified_cgroup_of(read_whole_file("/proc/" + std::to_string(pid) + "/cgroup"));
    return own ? *own : std::string();
  }

 private:
  std::string skip_reason_;
  std::string relative_;
  std::string path_;
};

}  // namespace thaw::testing
