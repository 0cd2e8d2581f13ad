#include "pool/pool_shard.h"

#include <algorithm>
#include <charconv>
#include <map>

namespace thaw::pool {

namespace {

// `total` split over `count` parts; part `index` of them. The first
// total % count parts get one more.
uint64_t part_of(uint64_t total, PoolShard shard) {
  return total / shard.count + (shard.index < total % shard.count ? 1 : 0);
}

void add_summary(LatencySummary& into, const LatencySummary& part) {
  if (part.count == 0) return;
  into.min_ms = into.count == 0 ? part.min_ms : std::min(into.min_ms, part.min_ms);
  into.median_ms = std::max(into.median_ms, part.median_ms);
  into.p99_ms = std::max(into.p99_ms, part.p99_ms);
  into.count += part.count;
}

void add_histogram(LatencyHistogram& into, const LatencyHistogram& part) {
  for (size_t i = 0; i < into.at_most.size(); ++i) into.at_most[i] += part.at_most[i];
  into.count += part.count;
  into.sum_seconds += part.sum_seconds;
}

}  // namespace

std::string shard_text(PoolShard shard) {
  return std::to_string(shard.index + 1) + "/" + std::to_string(shard.count);
}

std::optional<PoolShard> parse_shard_text(const std::string& text) {
  // Each side one or two digits, as kMaxShards has.
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash < 1 || slash > 2 || text.size() - slash - 1 < 1 || text.size() - slash - 1 > 2) {
    return std::nullopt;
  }
  auto read = [](const char* from, const char* to, uint32_t& value) {
    auto [end, ec] = std::from_chars(from, to, value);
    return ec == std::errc() && end == to;
  };
  uint32_t number = 0, count = 0;
  const char* begin = text.data();
  if (!read(begin, begin + slash, number) || !read(begin + slash + 1, begin + text.size(), count)) return std::nullopt;
  if (number < 1 || count < 1 || number > count || count > kMaxShards) return std::nullopt;
  return PoolShard{number - 1, count};
}

uint32_t shards_for(const PoolPolicy& policy, uint32_t clones_per_worker) {
  if (clones_per_worker == 0) return 1;
  uint64_t needed = (uint64_t{policy.max_warm} + clones_per_worker - 1) / clones_per_worker;
  return static_cast<uint32_t>(std::clamp<uint64_t>(needed, 1, kMaxShards));
}

PoolPolicy policy_share(const PoolPolicy& policy, PoolShard shard) {
  if (!shard.valid() || shard.count == 1) return policy;
  PoolPolicy share;
  share.max_warm = std::max<uint32_t>(1, static_cast<uint32_t>(part_of(policy.max_warm, shard)));
  share.min_warm = std::min(share.max_warm, static_cast<uint32_t>(part_of(policy.min_warm, shard)));
  share.memory_budget_mib = part_of(policy.memory_budget_mib, shard);
  return share;
}

TemplateInfo merge_template_infos(const std::vector<TemplateInfo>& shards) {
  if (shards.empty()) return {};
  TemplateInfo merged = shards.front();
  merged.shard.clear();  // the whole template now
  merged.policy = {0, 0, 0};
  merged.warm = merged.leased = merged.target_warm = 0;
  for (const auto& part : shards) {
    merged.warm += part.warm;
    merged.leased += part.leased;
    merged.target_warm += part.target_warm;
    merged.policy.min_warm += part.policy.min_warm;
    merged.policy.max_warm += part.policy.max_warm;
    merged.policy.memory_budget_mib += part.policy.memory_budget_mib;
  }
  return merged;
}

PoolStats::PerTemplate merge_template_stats(const std::vector<PoolStats::PerTemplate>& shards) {
  PoolStats::PerTemplate m;
  if (shards.empty()) return m;
  m.name = shards.front().name;
  std::map<uint16_t, uint64_t> unknown;
  for (const auto& s : shards) {
    m.warm += s.warm;
    m.leased += s.leased;
    m.target_warm += s.target_warm;
    m.acquires += s.acquires;
    m.hits += s.hits;
    m.misses += s.misses;
    m.overloaded += s.overloaded;
    m.restores += s.restores;
    m.resets += s.resets;
    m.reset_failures += s.reset_failures;
    m.destroyed += s.destroyed;
    m.expired_leases += s.expired_leases;
    m.restore_failures += s.restore_failures;
    m.scale_ups += s.scale_ups;
    m.scale_downs += s.scale_downs;
    add_summary(m.restore_ms, s.restore_ms);
    add_summary(m.reset_ms, s.reset_ms);
    add_histogram(m.restore_seconds, s.restore_seconds);
    add_histogram(m.reset_seconds, s.reset_seconds);
    m.private_memory_mib += s.private_memory_mib;
    for (const auto& u : s.unknown_syscalls) unknown[u.number] += u.requests;
  }
  for (const auto& [number, requests] : unknown) m.unknown_syscalls.push_back({number, requests});
  return m;
}

}  // namespace thaw::pool
