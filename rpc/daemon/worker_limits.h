// What one template's worker process may use of the host, derived from its
// template (vCPUs, guest memory) and policy (max_warm, memory_budget_mib),
// so that a worker a guest has taken over cannot starve the host or the
// other templates: rlimits the worker sets on itself as it starts (open
// files, threads, address space) and, where thawd has a cgroup v2 subtree
// (worker_cgroups.h), the worker's memory.max and pids.max.
//
// The clones a template can hold are bounded by its budget, read here as
// host memory at kHostMibPerClone a clone (measured: 0.46 MiB of kernel and
// private memory per idle mini-guest clone), and never fewer than max_warm.
// Each limit leaves about twice what that many clones were measured to use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "pool/pool_types.h"

namespace thaw::daemon {

struct WorkerLimits {
  uint64_t clones = 0;         // the most clones the limits below are sized for
  uint64_t open_files = 0;     // RLIMIT_NOFILE
  uint64_t threads = 0;        // RLIMIT_NPROC (counted in the worker's own user namespace) and pids.max
  uint64_t address_space = 0;  // RLIMIT_AS, bytes
  uint64_t memory = 0;         // cgroup memory.max, bytes

  bool operator==(const WorkerLimits&) const = default;
};

inline constexpr double kHostMibPerClone = 0.5;
inline constexpr uint64_t kMaxClonesPerWorker = 65536;

// `rpc_threads`: the worker's threads for blocking pool calls (thawd's
// `workers` setting).
WorkerLimits worker_limits(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy, uint32_t rpc_threads);

// The command-line form thawd hands a worker ("clones:files:threads:as:mem")
// and back; nullopt for anything else.
std::string limits_argument(const WorkerLimits& limits);
std::optional<WorkerLimits> parse_limits_argument(const std::string& text);

// "8192 clones: 131328 files, 33088 threads, 548 GiB address space, 4.5 GiB memory"
std::string describe(const WorkerLimits& limits);

// In the worker: sets RLIMIT_NOFILE, RLIMIT_NPROC and RLIMIT_AS, soft and
// hard, each no higher than its hard limit now (raising one needs a
// privilege the worker does not have). Returns what it set, for the log.
// SysError when the kernel refuses.
//
// RLIMIT_NPROC counts every thread of the user in the user namespace, not
// the process's: only a worker in a user namespace of its own
// (`own_user_namespace`) gets it. Elsewhere thawd's and the other workers'
// threads would count against each worker's limit and fail its restores
// once the user's threads outnumbered one template's share.
std::string apply_worker_rlimits(const WorkerLimits& limits, bool own_user_namespace);

}  // namespace thaw::daemon
