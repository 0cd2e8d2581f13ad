// A sandboxed process's own namespaces and capabilities. A template worker
// (rpc/daemon/template_worker_main.cpp) calls these before it touches guest
// data, so that code which escapes a guest into it finds:
//   - its own user namespace, mapping only its own uid and gid (files keep
//     their owners; no other id exists in there, and the capabilities a
//     process holds inside count for nothing outside it);
//   - its own network namespace: only a loopback device that is down, so no
//     TCP or UDP to anywhere (unix sockets by path still connect: they are
//     files, which Landlock governs);
//   - its own IPC (System V, POSIX message queues) and UTS (host name)
//     namespaces;
//   - no capabilities at all, in any namespace, and none to regain.
// Where the host refuses unprivileged user namespaces (a sysctl, a
// container, systemd's RestrictNamespaces=), the rest is tried without one
// (it needs CAP_SYS_ADMIN then) and the result says what was entered.
#pragma once

#include <string>
#include <vector>

namespace thaw {

struct NamespaceResult {
  std::vector<std::string> entered;  // "user", "net", "ipc", "uts": what this process now has of its own
  std::string summary;               // one line for the log, with why any was not entered
};

// Unshares the namespaces above. The process must have one thread (the
// kernel refuses a user namespace to a multithreaded process): throws
// std::logic_error otherwise. Errors entering a namespace are reported in
// the result, not thrown; a failure to write the id maps of a user
// namespace already entered throws SysError (the process could then create
// no files).
NamespaceResult enter_private_namespaces();

// Clears the bounding set (where this process may), the ambient set, and the
// effective, permitted and inheritable sets. Irreversible. SysError when the
// kernel refuses capset.
void drop_all_capabilities();

// Whether this host lets a process make a user namespace, probed in a
// forked child (which only calls unshare): "" when it does, else why not,
// in the words enter_private_namespaces logs.
std::string user_namespace_refusal();

}  // namespace thaw
