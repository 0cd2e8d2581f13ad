// One template spread over several worker processes ("shards"), each
// holding a share of its pool. Every VM registers an MMU notifier on its
// process, and each change to the process's page tables calls all of them
// (bench/thaw_bench_fault_fanout: ~90x the cost of a copy-on-write at 1,000
// VMs), so a template with many clones is cheaper as a few processes of a
// few hundred clones each.
//
// Pure functions: how many shards, each shard's share of the policy, the
// numbers each shard hands out (so that vsock paths, clone ids and lease
// ids never collide between shards), and how thawd merges the shards'
// answers back into one template's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pool/pool_types.h"

namespace thaw::pool {

struct PoolShard {
  uint32_t index = 0;  // 0 creates the template and writes its template.json
  uint32_t count = 1;

  bool valid() const { return count >= 1 && index < count; }
  bool operator==(const PoolShard&) const = default;
};

inline constexpr uint32_t kMaxShards = 16;

// "2/4" for index 1 of 4 (counted from 1, as a person reads it), and back;
// nullopt for anything else (a zero, an index past the count, more than
// kMaxShards).
std::string shard_text(PoolShard shard);
std::optional<PoolShard> parse_shard_text(const std::string& text);

// Shards for a template with `policy`: enough that none holds more than
// `clones_per_worker` warm clones, at most kMaxShards; 1 when
// clones_per_worker is 0 (sharding off).
uint32_t shards_for(const PoolPolicy& policy, uint32_t clones_per_worker);

// Shard `shard`'s part of `policy`: min_warm, max_warm and the memory
// budget split as evenly as whole numbers allow, so the shares add up to
// the policy. A share of max_warm is never below 1 (a shard that may hold
// no clone would make every acquire routed to it wait), so when max_warm is
// below the shard count the shards together may keep a few more.
PoolPolicy policy_share(const PoolPolicy& policy, PoolShard shard);

// A shard's numbers: first, first + step, ... Disjoint between the shards
// of one template.
struct NumberSequence {
  uint64_t first = 1;
  uint64_t step = 1;
};
inline NumberSequence numbers_for(PoolShard shard) { return {uint64_t{shard.index} + 1, shard.count}; }

// One template's answers from its shards, merged: counts, counters,
// histograms and memory added; a latency summary's min is the least, its
// median and p99 the worst shard's (an upper bound; the histograms are
// exact). Empty input gives an empty result.
TemplateInfo merge_template_infos(const std::vector<TemplateInfo>& shards);
PoolStats::PerTemplate merge_template_stats(const std::vector<PoolStats::PerTemplate>& shards);

}  // namespace thaw::pool
