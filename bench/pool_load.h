// Load on one of thawd's templates: acquire -> invoke -> release, taken by a
// set of clients, each with its own connection. Open loop by default:
// requests start on a fixed schedule (one phase per rate), so a slow reply
// does not delay the next request's start (the "coordinated omission" a
// closed loop would hide). Closed loop (the main job): a fixed number of
// requests back to back. Optionally samples the pool's stats over time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pool/pool_types.h"
#include "rpc/pool_client.h"

namespace thaw::bench {

struct LoadPhase {
  double rate_per_s = 0;
  double seconds = 0;
};

struct LoadSpec {
  std::string socket;
  // Non-empty: client c connects to client_sockets[c % size] instead (a
  // spread template's shard sockets, so the load reaches every shard).
  std::vector<std::string> client_sockets;
  std::string template_name;
  std::string function = "echo";  // "echo" (64 bytes), "hash" (64 KiB), "" for no invoke
  uint64_t hold_ms = 0;           // after the invoke, before the release
  unsigned clients = 8;
  std::vector<LoadPhase> phases;      // open loop: the schedule
  size_t closed_loop_requests = 0;    // > 0: this many back to back instead (phases unused)
  std::function<void(size_t done, size_t total)> on_progress;  // after each request, from client threads
  uint64_t acquire_timeout_ms = 5000;
  std::chrono::milliseconds timeline_period{0};  // 0: no timeline
  // > 0: every crash_every-th request invokes the agent's "crash" instead
  // (the guest faults; the pool must destroy that clone and refill), and
  // must fail as DISCONNECTED; any other outcome is a failure.
  size_t crash_every = 0;
};

struct TimelinePoint {
  double t_seconds = 0;     // since the load began
  double offered_rate = 0;  // the schedule's rate at that time
  uint64_t acquires = 0;    // in this interval
  uint64_t misses = 0;      // in this interval
  uint32_t warm = 0, leased = 0, target = 0;
};

struct LoadResult {
  size_t sent = 0;
  double achieved_rate = 0;  // completed requests per second
  std::vector<double> acquire_ms, invoke_ms, guest_ms, release_ms;
  std::vector<double> acquire_in_thawd_ms;  // the pool's own share of each acquire (Vm.info)
  uint64_t hits = 0, misses = 0;  // the template's counters over the run
  size_t late = 0;                // started more than 1 ms after the schedule said
  size_t failures = 0;
  std::string first_failure;
  size_t crashes = 0;  // guest crashes injected (crash_every) that failed as they must
  std::vector<TimelinePoint> timeline;
};

LoadResult run_load(const LoadSpec& spec);

// Template `name`'s counters from thawd's stats; throws when it has none.
pool::PoolStats::PerTemplate template_stats(rpc::PoolConnection& conn, const std::string& name);

// The floor under every acquire: a Cap'n Proto round trip that thawd answers
// on its event loop without touching a VM (Vm.info of one held lease), after
// `gap` of idleness each time, as a paced acquire sees it. Milliseconds.
std::vector<double> null_rpc_round_trips(const std::string& socket, const std::string& template_name, size_t count,
                                         std::chrono::milliseconds gap);

}  // namespace thaw::bench
