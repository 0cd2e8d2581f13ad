// thawd's start: directories, then the templates already on disk, then the
// configured pools that are missing.
#pragma once

#include "pool/pool_manager.h"
#include "rpc/daemon/config.h"

namespace thaw::daemon {

// template_dir and vsock_dir (and the unix socket's parent). SysError.
void make_directories(const DaemonConfig& config);

// Loads the templates in template_dir; creates each [[pool]] not among them
// (a cold boot) and applies the configured policy to those that are. A pool
// whose spec on disk differs from the config keeps its snapshot, with a
// warning. Throws on the first pool that cannot be created.
void set_up_pools(pool::PoolManager& manager, const DaemonConfig& config);

}  // namespace thaw::daemon
