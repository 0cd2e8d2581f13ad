// The pool service's vocabulary, shared by pool/ and rpc/: templates,
// policies, leases, the identity each clone gets, and the errors a caller
// must tell apart. Plain structs; no Cap'n Proto here.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace thaw::pool {

// Whether a pool prepares VM shells (vmm/vm_shells.h): kAuto on PVM only
// (hardware KVM under emulation stalled with them; WarmPool::prepared_shells),
// kOn on any KVM, kOff never.
enum class VmShells { kAuto, kOn, kOff };

// How big a template's warm pool may be.
struct PoolPolicy {
  uint32_t min_warm = 2;              // never fewer warm clones than this (budget permitting)
  uint32_t max_warm = 16;             // never more
  uint64_t memory_budget_mib = 4096;  // private memory of warm + leased clones together

  bool operator==(const PoolPolicy&) const = default;
};

// What a template is cold-booted from.
// What a template may ask for. The RPC, thawd's config and template.json
// all check these bounds.
inline constexpr uint64_t kMinTemplateMemMib = 2;      // the smallest guest thaw boots
inline constexpr uint64_t kMaxTemplateMemMib = 65536;  // 64 GiB
inline constexpr uint32_t kMaxTemplateVcpus = 64;

// The guest kernel a template runs. The mini guest (thaw's own, the
// default) boots anywhere, PVM included; Linux needs hardware KVM (on PVM
// its ring 0 is emulated too slowly to reach init) and runs the template's
// program under guest/linux's init agent with the same contract.
enum class GuestKind : uint8_t { kMini = 0, kLinux = 1 };
inline const char* guest_kind_name(GuestKind kind) { return kind == GuestKind::kLinux ? "linux" : "mini"; }
// "mini" or "linux"; nullopt for anything else.
inline std::optional<GuestKind> parse_guest_kind(const std::string& text) {
  if (text == "mini") return GuestKind::kMini;
  if (text == "linux") return GuestKind::kLinux;
  return std::nullopt;
}

struct TemplateSpec {
  std::string name;     // [a-z0-9][a-z0-9_-]{0,62}
  std::string kernel;   // path to the kernel image
  std::string initrd;   // optional
  std::string cmdline;  // guest command line
  uint64_t mem_mib = 128;
  uint32_t vcpus = 1;
  // A program template (the mini guest's function runtime,
  // guest/mini/README.md): the user's static executable, run in every clone
  // with the payload as stdin. Empty for a kernel template, whose clones
  // serve the built-in agent over vsock. The `{}` keeps positional
  // initializers of the fields above free of missing-initializer warnings.
  std::string program{};            // absolute host path
  std::vector<std::string> args{};  // argv[1..]
  std::vector<std::string> env{};   // K=V
  std::string files_dir{};          // optional; seen read-only at / in the guest
  // kLinux: `kernel` is a Linux bzImage, `program` is required and may be
  // dynamically linked, `files_dir` is its root file system (packed with
  // the init agent into the initramfs; `initrd` stays empty).
  GuestKind guest{};

  // A program template, in either guest: invoke("run") feeds stdin.
  bool is_program() const { return !program.empty(); }
  bool is_linux() const { return guest == GuestKind::kLinux; }
  // The mini guest's function runtime: requests go through its mailbox.
  bool uses_mailbox() const { return is_program() && !is_linux(); }
  bool operator==(const TemplateSpec&) const = default;
};

struct TemplateInfo {
  std::string name;
  TemplateSpec spec;
  PoolPolicy policy;
  std::string snapshot_dir;
  uint32_t warm = 0;
  uint32_t leased = 0;
  uint32_t target_warm = 0;  // what the autoscaler aims for now
  double cold_boot_ms = 0;   // the template's cold boot to boot-complete
  uint32_t worker_pid = 0;   // thawd's worker process that holds its clones; 0: thawd itself
  std::string direct_socket;  // that worker's own socket for this template ("" : none)
  uint32_t workers = 0;       // worker processes holding its clones (> 1: spread, pool_shard.h); 0: thawd itself
  std::string shard;          // "K/N": this covers shard K of N only (pool_shard.h); "": the whole template
  // A spread template's socket for each shard alone, in shard order ("K/N"
  // is element K-1); empty when it is not spread or has no direct socket.
  std::vector<std::string> shard_sockets{};
};

// Delivered to a clone at acquire without a guest round trip: written into
// the guest's control page (guest/mini/README.md) before it resumes.
struct CloneIdentity {
  uint64_t generation = 0;  // bumped for every hand-out; the guest notices the change
  uint64_t clone_id = 0;    // unique per hand-out within this daemon
  uint64_t seed = 0;        // fresh random seed
  uint64_t wall_ns = 0;     // wall-clock time, ns since the epoch
};

struct LeaseTimings {
  double acquire_ms = 0;  // request until the clone runs
  bool pool_hit = true;   // false when the caller waited for a refill
};

struct LeaseInfo {
  uint64_t lease_id = 0;
  std::string template_name;
  CloneIdentity identity;
  std::string vsock_path;  // the clone's vsock unix socket ("" if it has no vsock device)
  std::chrono::steady_clock::time_point expires_at;
  LeaseTimings timings;
};

// A program template's one function: stdin in, stdout and status out.
inline constexpr char kProgramFunction[] = "run";
// What an invoke result carries of a program's stderr.
inline constexpr size_t kMaxInvokeStderrBytes = 64 * 1024;

struct InvokeResult {
  // 0 ok; otherwise the guest agent's error code, or for a program template
  // its exit status (128 + the signal when it faulted, as a shell reports it).
  uint32_t status = 0;
  std::vector<uint8_t> payload;  // the agent's reply, or the program's stdout
  double total_ms = 0;
  double guest_ms = 0;  // the guest's own share, as the agent reports it
  // A program's stderr, at most kMaxInvokeStderrBytes. Last, with `{}`, so
  // positional initializers of the fields above stay valid.
  std::vector<uint8_t> stderr_bytes{};
  // System calls the program made that the runtime answered -ENOSYS.
  std::vector<uint16_t> unknown_syscalls{};
};

// Durations of recent background work (pool/latency_window.h).
struct LatencySummary {
  uint64_t count = 0;  // samples ever taken; the figures cover the most recent ones
  double min_ms = 0;
  double median_ms = 0;
  double p99_ms = 0;
};

// Every duration of one kind since start, in fixed buckets of seconds:
// what a Prometheus histogram exports (rpc/daemon/metrics.cpp).
struct LatencyHistogram {
  // 50 us .. 10 s: a reset is well under a millisecond, a cold refill is not.
  static constexpr std::array<double, 17> kBoundsSeconds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                            0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                                            0.5,     1,      2.5,     5,      10};
  std::array<uint64_t, kBoundsSeconds.size()> at_most{};  // samples <= each bound (cumulative)
  uint64_t count = 0;
  double sum_seconds = 0;

  // Negative or NaN samples are ignored.
  void add(double seconds) {
    if (!(seconds >= 0)) return;
    for (size_t i = 0; i < kBoundsSeconds.size(); ++i) at_most[i] += seconds <= kBoundsSeconds[i] ? 1 : 0;
    ++count;
    sum_seconds += seconds;
  }
  bool operator==(const LatencyHistogram&) const = default;
};

struct PoolStats {
  struct PerTemplate {
    std::string name;
    uint32_t warm = 0, leased = 0, target_warm = 0;
    uint64_t acquires = 0, hits = 0, misses = 0, overloaded = 0;
    uint64_t restores = 0, resets = 0, reset_failures = 0, destroyed = 0, expired_leases = 0;
    uint64_t restore_failures = 0;
    uint64_t scale_ups = 0, scale_downs = 0;  // autoscaler decisions that moved target_warm
    LatencySummary restore_ms;  // restore of a new clone, off the acquire path
    LatencySummary reset_ms;    // reset in place of a released clone
    LatencyHistogram restore_seconds;  // every restore since start
    LatencyHistogram reset_seconds;    // every reset since start
    double private_memory_mib = 0;  // guest pages the clones own (smaps), sampled every few ticks
    // A program template's calls the runtime does not implement: how many
    // requests made each (-ENOSYS to the program), by number.
    struct UnknownSyscall {
      uint16_t number = 0;
      uint64_t requests = 0;
      bool operator==(const UnknownSyscall&) const = default;
    };
    std::vector<UnknownSyscall> unknown_syscalls;
    std::string shard;  // as TemplateInfo::shard
  };
  std::vector<PerTemplate> templates;
};

// Errors the RPC layer maps to kj exception types.
struct BadArgument : std::invalid_argument {  // -> FAILED
  using std::invalid_argument::invalid_argument;
};
struct NotFound : std::invalid_argument {  // -> FAILED ("no such template/lease")
  using std::invalid_argument::invalid_argument;
};
struct Overloaded : std::runtime_error {  // -> OVERLOADED: no warm clone within the timeout
  using std::runtime_error::runtime_error;
};
struct GuestGone : std::runtime_error {  // -> DISCONNECTED: the guest crashed or stopped answering
  using std::runtime_error::runtime_error;
};

}  // namespace thaw::pool
