// A template spread over several worker processes: how many, each one's
// share of the policy, disjoint numbers, and the merge of their answers.
// Pure; no KVM.
#include "pool/pool_shard.h"

#include <gtest/gtest.h>

#include <set>

#include "pool/clone_identity.h"
#include "pool/lease_table.h"

namespace thaw::pool {
namespace {

TEST(PoolShard, ShardCountFollowsMaxWarmPerWorker) {
  PoolPolicy p{2, 1000, 4096};
  EXPECT_EQ(shards_for(p, 0), 1u) << "0 turns sharding off";
  EXPECT_EQ(shards_for(p, 250), 4u);
  EXPECT_EQ(shards_for(p, 300), 4u) << "rounds up";
  EXPECT_EQ(shards_for(p, 1000), 1u);
  EXPECT_EQ(shards_for(p, 5000), 1u);
  EXPECT_EQ(shards_for(p, 1), kMaxShards) << "bounded";
}

TEST(PoolShard, TextReadsBack) {
  EXPECT_EQ(shard_text({1, 4}), "2/4");
  for (uint32_t count = 1; count <= kMaxShards; ++count) {
    for (uint32_t i = 0; i < count; ++i) EXPECT_EQ(parse_shard_text(shard_text({i, count})), (PoolShard{i, count}));
  }
  for (const char* bad : {"", "/", "1/", "/4", "0/4", "5/4", "1/0", "1/17", "a/4", "1/4x", "-1/4", "1//4", "001/4"}) {
    EXPECT_FALSE(parse_shard_text(bad).has_value()) << bad;
  }
}

TEST(PoolShard, SharesAddUpToThePolicy) {
  PoolPolicy p{7, 1001, 4099};
  for (uint32_t count : {1u, 2u, 3u, 4u, 7u}) {
    PoolPolicy sum{0, 0, 0};
    for (uint32_t i = 0; i < count; ++i) {
      PoolPolicy s = policy_share(p, {i, count});
      EXPECT_LE(s.min_warm, s.max_warm);
      EXPECT_GE(s.max_warm, 1u);
      EXPECT_LE(s.max_warm, p.max_warm / count + 1);
      sum.min_warm += s.min_warm;
      sum.max_warm += s.max_warm;
      sum.memory_budget_mib += s.memory_budget_mib;
    }
    EXPECT_EQ(sum, p) << count << " shards";
  }
}

TEST(PoolShard, EveryShardMayHoldAClone) {
  PoolPolicy p{0, 2, 64};
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(policy_share(p, {i, 4}).max_warm, 1u) << i;
  EXPECT_EQ(policy_share(p, {0, 1}), p);
}

TEST(PoolShard, NumbersAreDisjointBetweenShards) {
  std::set<uint64_t> seen;
  for (uint32_t i = 0; i < 3; ++i) {
    NumberSequence n = numbers_for({i, 3});
    for (uint64_t k = 0; k < 100; ++k) EXPECT_TRUE(seen.insert(n.first + k * n.step).second);
  }
  EXPECT_EQ(numbers_for({}).first, 1u);
  EXPECT_EQ(numbers_for({}).step, 1u);
}

TEST(PoolShard, IssuersAndLeaseTablesFollowTheirSequence) {
  NumberSequence n = numbers_for({1, 3});
  IdentityIssuer ids(n.first, n.step);
  EXPECT_EQ(ids.next().clone_id, 2u);
  EXPECT_EQ(ids.next().clone_id, 5u);
  LeaseTable leases([](LeaseTable::Entry) {}, n.first, n.step);
  LeaseInfo info;
  info.expires_at = LeaseTable::Clock::now() + std::chrono::hours(1);
  EXPECT_EQ(leases.add(info, nullptr).lease_id, 2u);
  EXPECT_EQ(leases.add(info, nullptr).lease_id, 5u);
  leases.take_all();
}

TEST(PoolShard, InfosMergeIntoTheTemplates) {
  TemplateInfo a;
  a.name = "t";
  a.policy = policy_share({3, 10, 100}, {0, 2});
  a.warm = 4;
  a.leased = 1;
  a.target_warm = 5;
  a.worker_pid = 11;
  a.shard = "1/2";
  TemplateInfo b = a;
  b.policy = policy_share({3, 10, 100}, {1, 2});
  b.warm = 2;
  b.leased = 3;
  b.target_warm = 4;
  b.worker_pid = 12;
  b.shard = "2/2";
  TemplateInfo m = merge_template_infos({a, b});
  EXPECT_EQ(m.name, "t");
  EXPECT_EQ(m.warm, 6u);
  EXPECT_EQ(m.leased, 4u);
  EXPECT_EQ(m.target_warm, 9u);
  EXPECT_EQ(m.policy, (PoolPolicy{3, 10, 100}));
  EXPECT_EQ(m.worker_pid, 11u) << "the first shard's";
  EXPECT_EQ(m.shard, "") << "the merge covers the whole template";
  EXPECT_EQ(merge_template_infos({}).name, "");
}

TEST(PoolShard, StatsMergeCountersAndLatencies) {
  PoolStats::PerTemplate a, b;
  a.name = b.name = "t";
  a.acquires = 10;
  b.acquires = 5;
  a.misses = 1;
  b.overloaded = 2;
  a.restore_ms = {100, 1.0, 2.0, 9.0};
  b.restore_ms = {50, 0.5, 3.0, 4.0};
  a.restore_seconds.add(0.002);
  b.restore_seconds.add(0.2);
  a.private_memory_mib = 1.5;
  b.private_memory_mib = 2.5;
  a.unknown_syscalls = {{13, 2}, {99, 1}};
  b.unknown_syscalls = {{13, 3}};
  a.shard = "1/2";
  b.shard = "2/2";
  PoolStats::PerTemplate m = merge_template_stats({a, b});
  EXPECT_EQ(m.name, "t");
  EXPECT_EQ(m.shard, "") << "the merge covers the whole template";
  EXPECT_EQ(m.acquires, 15u);
  EXPECT_EQ(m.misses, 1u);
  EXPECT_EQ(m.overloaded, 2u);
  EXPECT_EQ(m.restore_ms.count, 150u);
  EXPECT_DOUBLE_EQ(m.restore_ms.min_ms, 0.5);
  EXPECT_DOUBLE_EQ(m.restore_ms.median_ms, 3.0);
  EXPECT_DOUBLE_EQ(m.restore_ms.p99_ms, 9.0);
  EXPECT_EQ(m.restore_seconds.count, 2u);
  EXPECT_EQ(m.restore_seconds.at_most.back(), 2u);
  EXPECT_DOUBLE_EQ(m.private_memory_mib, 4.0);
  ASSERT_EQ(m.unknown_syscalls.size(), 2u);
  EXPECT_EQ(m.unknown_syscalls[0].number, 13u);
  EXPECT_EQ(m.unknown_syscalls[0].requests, 5u);
  EXPECT_EQ(m.unknown_syscalls[1].requests, 1u);
}

TEST(PoolShard, AnEmptyShardLeavesLatenciesAlone) {
  PoolStats::PerTemplate a, idle;
  a.reset_ms = {10, 0.2, 0.3, 0.9};
  PoolStats::PerTemplate m = merge_template_stats({idle, a});
  EXPECT_DOUBLE_EQ(m.reset_ms.min_ms, 0.2) << "a shard with no samples adds no zero minimum";
  EXPECT_EQ(m.reset_ms.count, 10u);
}

}  // namespace
}  // namespace thaw::pool
