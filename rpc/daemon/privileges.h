// Who thawd runs as. thawd runs guests from many tenants, and a guest that
// escapes the VMM gets what thawd has: so thawd does not stay root. Started
// as root with `user` set, it creates its directories, hands them to that
// user and becomes it (its own groups, plus the socket group) before it
// runs any guest; with no user it refuses root unless allow_root says this
// is a development machine. The socket is 0660 in a 0750 directory, group
// `socket_group`: that group decides who may lease VMs.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "rpc/daemon/config.h"

namespace thaw::daemon {

struct PrivilegePlan {
  bool drop = false;  // become `user_name` (started as root with a user)
  std::string user_name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // the user's groups, and the socket group
  bool has_socket_group = false;
  gid_t socket_gid = 0;
};

// Checks the config against the identity thawd started with. ConfigError
// naming the key: root with neither `user` nor `allow_root`, a user or
// socket_group that does not exist.
PrivilegePlan plan_privileges(const DaemonConfig& config, bool running_as_root);

// Gives `dirs` (just created, maybe by root) to the user thawd becomes, and
// the socket's directory to that user and the socket group, mode 0750
// (not a sticky directory such as /tmp: that stays as it is). Nothing
// changes without a user to become or a socket group. Throws SysError.
void prepare_directories(const PrivilegePlan& plan, const std::vector<std::string>& dirs, const std::string& socket_dir);

// Becomes plan.user for good (groups, gid, uid: every thread), with
// no_new_privs set, then checks that root cannot come back, that no
// capability is left and that `kvm_device` opens. Throws SysError, or
// ConfigError when the user cannot use `kvm_device`.
void drop_privileges(const PrivilegePlan& plan, const std::string& kvm_device);

// After listen(): the socket's group and mode 0660.
void set_socket_access(const PrivilegePlan& plan, const std::string& socket_path);

// "uid 65534 (nobody), gid 65534, groups 65534 993, capabilities none,
// no_new_privs 1": for the start-up log.
std::string describe_identity();

}  // namespace thaw::daemon
