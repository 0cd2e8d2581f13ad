#include "rpc/daemon/worker_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "base/errors.h"

namespace thaw::daemon {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
// A thread's stack: glibc reserves RLIMIT_STACK's 8 MiB for each (a clone's
// own threads take 1 MiB, base/stack_thread.h; 8 stays the bound).
constexpr uint64_t kThreadStackMib = 8;
// Measured per idle clone: 8 fds; its vCPU threads, a vsock muxer and KVM's
// per-VM recovery task.
constexpr uint64_t kFilesPerClone = 16;
constexpr uint64_t kThreadsPerCloneBeyondVcpus = 3;
// The worker itself: its RPC and reset threads, io_uring's workers, malloc
// arenas (64 MiB of address space each), the cold boot and snapshot of
// createTemplate, the page cache its memory file is read into.
constexpr uint64_t kBaseFiles = 256;
constexpr uint64_t kBaseThreads = 256;
constexpr uint64_t kBaseAddressSpace = 8 * kGiB;
constexpr uint64_t kBaseMemory = 512 * kMiB;

uint64_t saturating_mul(uint64_t a, uint64_t b) {
  uint64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? UINT64_MAX : out;
}
uint64_t saturating_add(uint64_t a, uint64_t b) {
  uint64_t out = 0;
  return __builtin_add_overflow(a, b, &out) ? UINT64_MAX : out;
}

std::string bytes(uint64_t n) {
  if (n >= kGiB) return fmt::format("{:.1f} GiB", static_cast<double>(n) / static_cast<double>(kGiB));
  return fmt::format("{} MiB", n / kMiB);
}

}  // namespace

WorkerLimits worker_limits(const pool::TemplateSpec& spec, const pool::PoolPolicy& policy, uint32_t rpc_threads) {
  WorkerLimits l;
  const double by_budget = std::floor(static_cast<double>(policy.memory_budget_mib) / kHostMibPerClone);
  l.clones = std::clamp<uint64_t>(static_cast<uint64_t>(std::min(by_budget, 1e12)), std::max(policy.max_warm, 1u),
                                  kMaxClonesPerWorker);
  const uint64_t vcpus = std::max<uint64_t>(spec.vcpus, 1);
  l.open_files = kBaseFiles + l.clones * kFilesPerClone;
  l.threads = kBaseThreads + rpc_threads + l.clones * (vcpus + kThreadsPerCloneBeyondVcpus);
  // Each clone maps its guest memory and has a stack per thread; the cold
  // boot maps the memory twice more (the VM's and the snapshot's).
  const uint64_t per_clone_mib = spec.mem_mib + (vcpus + kThreadsPerCloneBeyondVcpus) * kThreadStackMib + 2;
  l.address_space = saturating_add(saturating_add(kBaseAddressSpace, saturating_mul(2 * spec.mem_mib, kMiB)),
                                   saturating_mul(saturating_mul(l.clones, per_clone_mib), kMiB));
  // The budget (the clones' private memory), their kernel memory, and the
  // template's memory file in the page cache.
  l.memory = saturating_add(
      saturating_add(kBaseMemory, saturating_mul(policy.memory_budget_mib + spec.mem_mib, kMiB)),
      static_cast<uint64_t>(static_cast<double>(l.clones) * kHostMibPerClone * static_cast<double>(kMiB)));
  return l;
}

std::string limits_argument(const WorkerLimits& l) {
  return fmt::format("{}:{}:{}:{}:{}", l.clones, l.open_files, l.threads, l.address_space, l.memory);
}

std::optional<WorkerLimits> parse_limits_argument(const std::string& text) {
  std::vector<uint64_t> values;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end && values.size() < 5) {
    uint64_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc() || next == p) return std::nullopt;
    values.push_back(v);
    p = next;
    if (p < end && *p == ':' && values.size() < 5) ++p;
  }
  if (values.size() != 5 || p != end || text.back() == ':') return std::nullopt;
  WorkerLimits l{values[0], values[1], values[2], values[3], values[4]};
  if (l.clones == 0 || l.open_files == 0 || l.threads == 0 || l.address_space == 0 || l.memory == 0) {
    return std::nullopt;
  }
  return l;
}

std::string describe(const WorkerLimits& l) {
  return fmt::format("{} clones: {} files, {} threads, {} address space, {} memory", l.clones, l.open_files, l.threads,
                     bytes(l.address_space), bytes(l.memory));
}

std::string apply_worker_rlimits(const WorkerLimits& l, bool own_user_namespace) {
  std::string summary;
  const struct {
    int resource;
    const char* name;
    uint64_t value;
  } limits[] = {{RLIMIT_NOFILE, "files", l.open_files},
                {RLIMIT_NPROC, "threads", l.threads},
                {RLIMIT_AS, "address space", l.address_space}};
  for (const auto& limit : limits) {
    if (limit.resource == RLIMIT_NPROC && !own_user_namespace) {
      summary += fmt::format("{}threads not limited (no user namespace of its own, where the limit would count every "
                             "thread of the user)",
                             summary.empty() ? "" : ", ");
      continue;
    }
    rlimit now{};
    if (::getrlimit(limit.resource, &now) != 0) throw_errno("getrlimit", limit.name);
    rlim_t value = std::min<rlim_t>(limit.value, now.rlim_max);
    rlimit set{value, value};
    if (::setrlimit(limit.resource, &set) != 0) throw_errno("setrlimit", std::string(limit.name) + " " + std::to_string(value));
    summary += fmt::format("{}{} {}{}", summary.empty() ? "" : ", ", limit.name,
                           limit.resource == RLIMIT_AS ? bytes(value) : std::to_string(value),
                           value < limit.value ? " (its hard limit)" : "");
  }
  return summary;
}

}  // namespace thaw::daemon
