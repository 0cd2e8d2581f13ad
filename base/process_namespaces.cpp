#include "base/process_namespaces.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/errors.h"
#include "base/proc_self_status.h"
#include "base/unique_fd.h"

namespace thaw {

namespace {

// Writes `text` to a /proc/self file in one write(), as the id-map files
// require.
void write_proc_file(const char* path, const std::string& text) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno("open", path);
  ssize_t written = ::write(fd.get(), text.data(), text.size());
  if (written != static_cast<ssize_t>(text.size())) throw_errno("write", std::string(path) + " <- " + text);
}

// Why unshare refused, in words an operator can act on.
std::string refusal(int error) {
  switch (error) {
    case EPERM:
      return "not permitted (unprivileged user namespaces are off, or a seccomp filter such as systemd's "
             "RestrictNamespaces= forbids them)";
    case ENOSPC:
      return "the user namespace limit is reached (user.max_user_namespaces)";
    case EINVAL:
      return "not offered by this kernel";
    default:
      return std::strerror(error);
  }
}

}  // namespace

NamespaceResult enter_private_namespaces() {
  if (int threads = current_thread_count(); threads > 1) {
    throw std::logic_error("namespaces: entered with " + std::to_string(threads) +
                           " threads running; the kernel gives a new user namespace only to a single thread");
  }
  NamespaceResult result;
  std::string refused;
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWUSER) == 0) {
    // Only our own ids, mapped to themselves: files keep their owners, and
    // nothing else can be set up in here. setgroups must be denied before
    // an unprivileged process may write gid_map (the supplementary groups,
    // kvm among them, stay as they are).
    write_proc_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n");
    write_proc_file("/proc/self/setgroups", "deny");
    write_proc_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n");
    result.entered.emplace_back("user");
  } else {
    refused = "user: " + refusal(errno);
  }
  const struct {
    int flag;
    const char* name;
  } others[] = {{CLONE_NEWNET, "net"}, {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"}};
  for (const auto& ns : others) {
    if (::unshare(ns.flag) == 0) {
      result.entered.emplace_back(ns.name);
    } else {
      refused += std::string(refused.empty() ? "" : "; ") + ns.name + ": " + refusal(errno);
    }
  }
  result.summary = "namespaces:";
  if (result.entered.empty()) result.summary += " none of its own";
  for (const auto& name : result.entered) result.summary += " " + name;
  if (!refused.empty()) result.summary += " (refused: " + refused + ")";
  return result;
}

void drop_all_capabilities() {
  // The bounding set needs CAP_SETPCAP to shrink; without it there is
  // nothing in the effective set to lose either, and capset below still
  // empties the permitted set, from which nothing can come back under
  // no_new_privs.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) throw_errno("capset", "clearing every capability");
}

std::string user_namespace_refusal() {
  pid_t pid = ::fork();
  if (pid < 0) return std::string("cannot probe: fork: ") + std::strerror(errno);
  if (pid == 0) ::_exit(::unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0xff));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) return "cannot probe: the probe died";
  return WEXITSTATUS(status) == 0 ? "" : refusal(WEXITSTATUS(status));
}

}  // namespace thaw
