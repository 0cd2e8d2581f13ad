// A template's one cold boot: the guest booted from its kernel (and
// initramfs or program) until it writes boot-complete, then snapshotted
// into the template's directory. The pool restores every clone from that.
#pragma once

#include <string>

#include "pool/clone.h"
#include "pool/pool_manager.h"
#include "pool/pool_types.h"

namespace thaw::pool {

// <vsock_dir>/<what>.sock, creating vsock_dir if it is missing. SysError
// when it cannot be created.
std::string vsock_socket_path(const std::string& vsock_dir, const std::string& what);

// Cold-boots `spec` into `cold` (which keeps the VM, for the caller to
// destroy), saves it at boot-complete to `dir` and returns the cold boot in
// ms. BadArgument when the guest cannot get there: a bad kernel image, or a
// guest that never completes its boot (the console's end or the program's
// reason in the message).
double cold_boot_and_snapshot(const TemplateSpec& spec, Clone& cold, const std::string& dir,
                              const PoolManagerConfig& config);

}  // namespace thaw::pool
