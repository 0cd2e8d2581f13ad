#include "rpc/daemon/worker_cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "base/errors.h"
#include "base/mountinfo.h"
#include "base/proc_self_status.h"
#include "base/unique_fd.h"

namespace thaw::daemon {

namespace {

// One write(), as cgroup files take their values.
void write_cgroup_file(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno("open", path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    throw_errno("write", path + " <- " + value);
  }
}

bool writable(const std::string& path) { return ::access(path.c_str(), W_OK) == 0; }

// Hands memory and pids (those `dir` has) down to its children; returns the
// ones now handed down, with why any is missing added to `notes`.
std::vector<std::string> enable_controllers(const std::string& dir, std::string& notes) {
  std::istringstream available(read_kernel_text(dir + "/cgroup.controllers"));
  std::vector<std::string> have;
  for (std::string c; available >> c;) have.push_back(c);
  std::vector<std::string> enabled;
  for (const char* wanted : {"memory", "pids"}) {
    if (std::find(have.begin(), have.end(), wanted) == have.end()) {
      notes += std::string("; no ") + wanted + " controller here";
      continue;
    }
    try {
      write_cgroup_file(dir + "/cgroup.subtree_control", std::string("+") + wanted);
      enabled.emplace_back(wanted);
    } catch (const SysError& e) {
      notes += std::string("; ") + wanted + " not handed down: " + e.what();
    }
  }
  return enabled;
}

}  // namespace

std::optional<std::string> unified_cgroup_of(const std::string& proc_self_cgroup) {
  std::istringstream lines(proc_self_cgroup);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("0::", 0) == 0 && line.size() > 3 && line[3] == '/') return line.substr(3);
  }
  return std::nullopt;
}

std::string cgroup2_mount_point(const std::string& mountinfo) {
  for (const auto& mount : parse_mountinfo(mountinfo)) {
    if (mount.type == "cgroup2") return mount.point;
  }
  return {};
}

WorkerCgroups WorkerCgroups::set_up(const std::string& setting) {
  auto none = [](const std::string& why) { return WorkerCgroups({}, {}, "worker cgroups: none (" + why + ")"); };
  if (setting == "off") return none("worker_cgroups = \"off\"");
  const std::string mount = cgroup2_mount_point(read_kernel_text("/proc/self/mountinfo"));
  std::string subtree;
  std::string notes;
  if (setting == "auto" || setting.empty()) {
    if (::geteuid() == 0) return none("thawd runs as root; worker_cgroups may name a directory to use");
    if (mount.empty()) return none("no cgroup v2 hierarchy is mounted");
    auto own = unified_cgroup_of(read_kernel_text("/proc/self/cgroup"));
    if (!own || *own == "/") return none("thawd is in the root cgroup");
    const std::string dir = mount + *own;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || st.st_uid != ::geteuid() || !writable(dir + "/cgroup.procs") ||
        !writable(dir + "/cgroup.subtree_control")) {
      return none("thawd's cgroup " + *own + " is not delegated to its user (systemd: Delegate=)");
    }
    // Only leaves may hold processes once controllers are handed down:
    // thawd moves into one of its own, beside its workers'.
    try {
      if (::mkdir((dir + "/thawd").c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir", dir + "/thawd");
      write_cgroup_file(dir + "/thawd/cgroup.procs", "0");
    } catch (const SysError& e) {
      throw std::runtime_error(std::string("worker_cgroups = \"auto\": cannot move thawd into a leaf of its "
                                           "delegated cgroup: ") + e.what());
    }
    subtree = dir;
    notes = ", thawd moved into " + *own + "/thawd";
  } else {
    struct stat st {};
    if (setting.front() != '/' || ::stat((setting + "/cgroup.procs").c_str(), &st) != 0) {
      throw std::runtime_error("worker_cgroups: " + setting + " is not a directory of a cgroup hierarchy");
    }
    if (!writable(setting + "/cgroup.procs") || !writable(setting)) {
      throw std::runtime_error("worker_cgroups: " + setting + " is not writable by thawd's user");
    }
    subtree = setting;
  }
  std::vector<std::string> controllers = enable_controllers(subtree, notes);
  std::string summary = "worker cgroups: in " + subtree + " with";
  for (const auto& c : controllers) summary += " " + c;
  if (controllers.empty()) summary += " no controllers (accounting only)";
  return WorkerCgroups(subtree, std::move(controllers), summary + notes);
}

void WorkerCgroups::write_limits(const std::string& dir, const WorkerLimits& limits) const {
  for (const auto& c : controllers_) {
    if (c == "memory") write_cgroup_file(dir + "/memory.max", std::to_string(limits.memory));
    if (c == "pids") write_cgroup_file(dir + "/pids.max", std::to_string(limits.threads));
  }
}

std::string WorkerCgroups::prepare(const std::string& template_name, const WorkerLimits& limits) const {
  const std::string dir = dir_for(template_name);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir", dir);
  write_limits(dir, limits);
  return dir;
}

void WorkerCgroups::update(const std::string& template_name, const WorkerLimits& limits) const {
  write_limits(dir_for(template_name), limits);
}

void WorkerCgroups::remove(const std::string& template_name) const noexcept {
  const std::string dir = dir_for(template_name);
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("worker cgroups: cannot remove {}: {}", dir, std::strerror(errno));
  }
}

void join_cgroup(const std::string& dir) { write_cgroup_file(dir + "/cgroup.procs", "0"); }

}  // namespace thaw::daemon
