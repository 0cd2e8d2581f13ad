#include "rpc/daemon/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/errors.h"
#include "base/unique_fd.h"

namespace thaw::daemon {

namespace {

std::string group_list(const std::vector<gid_t>& groups) {
  std::string out;
  for (gid_t g : groups) out += (out.empty() ? "" : " ") + std::to_string(g);
  return out;
}

// lchown on `path` and, for a directory, everything under it (no symlink is followed).
void chown_tree(const std::string& path, uid_t uid, gid_t gid) {
  if (::lchown(path.c_str(), uid, gid) != 0) throw_errno("lchown", path);
  std::error_code ec;
  if (!std::filesystem::is_directory(std::filesystem::symlink_status(path, ec))) return;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != decltype(it)(); it.increment(ec)) {
    if (::lchown(it->path().c_str(), uid, gid) != 0) throw_errno("lchown", it->path().string());
  }
  if (ec) throw SysError("listing", ec.value(), path);
}

// The "Key:\tvalue" line of /proc/self/status (every thread shares these).
std::string status_line(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      auto value = line.substr(key.size() + 1);
      auto start = value.find_first_not_of(" \t");
      return start == std::string::npos ? std::string() : value.substr(start);
    }
  }
  return "?";
}

}  // namespace

PrivilegePlan plan_privileges(const DaemonConfig& config, bool running_as_root) {
  PrivilegePlan plan;
  if (!config.socket_group.empty()) {
    struct group* group = ::getgrnam(config.socket_group.c_str());
    if (group == nullptr) throw ConfigError("socket_group: no group '" + config.socket_group + "' on this host");
    plan.has_socket_group = true;
    plan.socket_gid = group->gr_gid;
  }
  if (!running_as_root) return plan;  // already unprivileged: nothing to drop
  if (config.user.empty()) {
    if (config.allow_root) return plan;
    throw ConfigError(
        "thawd is running as root with no `user` in its config: a guest that escaped the VMM would own the host. "
        "Set user = \"thaw\" (deploy/setup.sh --service-user creates it), start thawd as that user, or pass "
        "--allow-root (allow_root = true) on a development machine");
  }
  struct passwd* pw = ::getpwnam(config.user.c_str());
  if (pw == nullptr) throw ConfigError("user: no user '" + config.user + "' on this host");
  if (pw->pw_uid == 0) throw ConfigError("user: '" + config.user + "' is root; name an unprivileged user");
  plan.drop = true;
  plan.user_name = config.user;
  plan.uid = pw->pw_uid;
  plan.gid = pw->pw_gid;
  int count = 64;
  plan.groups.resize(static_cast<size_t>(count));
  if (::getgrouplist(config.user.c_str(), pw->pw_gid, plan.groups.data(), &count) < 0) {
    plan.groups.resize(static_cast<size_t>(count));
    ::getgrouplist(config.user.c_str(), pw->pw_gid, plan.groups.data(), &count);
  }
  plan.groups.resize(static_cast<size_t>(count));
  if (plan.has_socket_group) plan.groups.push_back(plan.socket_gid);
  return plan;
}

void prepare_directories(const PrivilegePlan& plan, const std::vector<std::string>& dirs, const std::string& socket_dir) {
  if (plan.drop) {
    for (const auto& dir : dirs) chown_tree(dir, plan.uid, plan.gid);
  }
  if (socket_dir.empty() || (!plan.drop && !plan.has_socket_group)) return;
  struct stat st {};
  if (::stat(socket_dir.c_str(), &st) != 0) throw_errno("stat", "socket directory " + socket_dir);
  // A shared directory such as /tmp keeps its owner and mode.
  if (st.st_mode & S_ISVTX) return;
  uid_t owner = plan.drop ? plan.uid : static_cast<uid_t>(-1);
  gid_t group = plan.has_socket_group ? plan.socket_gid : static_cast<gid_t>(-1);
  if (::chown(socket_dir.c_str(), owner, group) != 0) throw_errno("chown", "socket directory " + socket_dir);
  if (::chmod(socket_dir.c_str(), 0750) != 0) throw_errno("chmod 0750", "socket directory " + socket_dir);
}

void drop_privileges(const PrivilegePlan& plan, const std::string& kvm_device) {
  if (!plan.drop) return;
  // glibc applies these to every thread of the process.
  if (::setgroups(plan.groups.size(), plan.groups.data()) != 0) throw_errno("setgroups", group_list(plan.groups));
  if (::setresgid(plan.gid, plan.gid, plan.gid) != 0) throw_errno("setresgid", std::to_string(plan.gid));
  if (::setresuid(plan.uid, plan.uid, plan.uid) != 0) throw_errno("setresuid", plan.user_name);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("prctl(PR_SET_NO_NEW_PRIVS)");
  if (::setuid(0) == 0) throw SysError("setuid(0)", EPERM, "root came back after dropping to " + plan.user_name);
  if (status_line("CapEff") != "0000000000000000") {
    throw SysError("dropping capabilities", EPERM, "CapEff is " + status_line("CapEff") + " as " + plan.user_name);
  }
  UniqueFd kvm(::open(kvm_device.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm) {
    int error = errno;
    throw ConfigError("user: '" + plan.user_name + "' cannot open " + kvm_device + " (" + std::strerror(error) +
                      "): put it in the group that owns the device (ls -l " + kvm_device + "), usually kvm");
  }
}

void set_socket_access(const PrivilegePlan& plan, const std::string& socket_path) {
  if (plan.has_socket_group && ::chown(socket_path.c_str(), static_cast<uid_t>(-1), plan.socket_gid) != 0) {
    throw_errno("chown", "socket " + socket_path + " to group " + std::to_string(plan.socket_gid));
  }
  if (::chmod(socket_path.c_str(), 0660) != 0) throw_errno("chmod 0660", "socket " + socket_path);
}

std::string describe_identity() {
  std::string caps = status_line("CapEff");
  return "uid " + std::to_string(::geteuid()) + ", gid " + std::to_string(::getegid()) + ", groups " +
         status_line("Groups") + ", capabilities " + (caps == "0000000000000000" ? "none" : caps) +
         ", no_new_privs " + status_line("NoNewPrivs");
}

}  // namespace thaw::daemon
