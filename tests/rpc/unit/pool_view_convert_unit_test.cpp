// What listTemplates and stats carry on the wire, without KVM or a daemon:
// every field of a TemplateInfo and of a template's stats survives
// to_schema/from_schema, the shard label among them (a spread template's
// direct socket answers for one shard, and a client must be able to tell).
#include <gtest/gtest.h>

#include <capnp/message.h>

#include "rpc/convert.h"

namespace thaw::rpc {
namespace {

pool::TemplateInfo round_trip(const pool::TemplateInfo& in) {
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<schema::TemplateInfo>();
  to_schema(in, builder);
  return from_schema(builder.asReader());
}

pool::PoolStats round_trip(const pool::PoolStats& in) {
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<schema::PoolStats>();
  to_schema(in, builder);
  return from_schema(builder.asReader());
}

pool::TemplateInfo sample_info() {
  pool::TemplateInfo t;
  t.name = "fn";
  t.spec.name = "fn";
  t.spec.kernel = "/k/thaw-mini.elf";
  t.spec.mem_mib = 64;
  t.policy = {3, 10, 512};
  t.snapshot_dir = "/var/lib/thaw/templates/fn";
  t.warm = 4;
  t.leased = 2;
  t.target_warm = 5;
  t.cold_boot_ms = 12.5;
  t.worker_pid = 4242;
  t.direct_socket = "/run/thaw/fn.sock";
  t.workers = 4;
  t.shard = "3/4";
  t.shard_sockets = {"/run/thaw/fn.1.sock", "/run/thaw/fn.2.sock", "/run/thaw/fn.3.sock", "/run/thaw/fn.4.sock"};
  return t;
}

TEST(PoolViewConvert, TemplateInfoKeepsEveryField) {
  pool::TemplateInfo in = sample_info();
  pool::TemplateInfo out = round_trip(in);
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.spec, in.spec);
  EXPECT_EQ(out.policy, in.policy);
  EXPECT_EQ(out.snapshot_dir, in.snapshot_dir);
  EXPECT_EQ(out.warm, 4u);
  EXPECT_EQ(out.leased, 2u);
  EXPECT_EQ(out.target_warm, 5u);
  EXPECT_DOUBLE_EQ(out.cold_boot_ms, 12.5);
  EXPECT_EQ(out.worker_pid, 4242u);
  EXPECT_EQ(out.direct_socket, in.direct_socket);
  EXPECT_EQ(out.workers, 4u);
  EXPECT_EQ(out.shard, "3/4");
  EXPECT_EQ(out.shard_sockets, in.shard_sockets) << "in shard order";
}

TEST(PoolViewConvert, AWholeTemplateHasNoShardLabel) {
  pool::TemplateInfo in = sample_info();
  in.shard.clear();
  in.shard_sockets.clear();
  EXPECT_EQ(round_trip(in).shard, "");
  EXPECT_TRUE(round_trip(in).shard_sockets.empty());
}

TEST(PoolViewConvert, StatsKeepEveryCounterAndTheShardLabel) {
  pool::PoolStats in;
  auto& t = in.templates.emplace_back();
  t.name = "fn";
  t.warm = 1;
  t.leased = 2;
  t.target_warm = 3;
  t.acquires = 100;
  t.hits = 90;
  t.misses = 10;
  t.overloaded = 4;
  t.restores = 20;
  t.resets = 80;
  t.reset_failures = 1;
  t.destroyed = 5;
  t.expired_leases = 6;
  t.restore_failures = 7;
  t.scale_ups = 8;
  t.scale_downs = 9;
  t.restore_ms = {20, 1.5, 2.5, 9.0};
  t.reset_ms = {80, 0.1, 0.2, 0.9};
  t.restore_seconds.add(0.002);
  t.reset_seconds.add(0.0002);
  t.private_memory_mib = 1.25;
  t.unknown_syscalls = {{13, 2}};
  t.shard = "1/2";
  in.templates.emplace_back().name = "other";  // an unsharded template: no label

  pool::PoolStats out = round_trip(in);
  ASSERT_EQ(out.templates.size(), 2u);
  const auto& o = out.templates[0];
  EXPECT_EQ(o.name, "fn");
  EXPECT_EQ(o.warm, 1u);
  EXPECT_EQ(o.leased, 2u);
  EXPECT_EQ(o.target_warm, 3u);
  EXPECT_EQ(o.acquires, 100u);
  EXPECT_EQ(o.hits, 90u);
  EXPECT_EQ(o.misses, 10u);
  EXPECT_EQ(o.overloaded, 4u);
  EXPECT_EQ(o.restores, 20u);
  EXPECT_EQ(o.resets, 80u);
  EXPECT_EQ(o.reset_failures, 1u);
  EXPECT_EQ(o.destroyed, 5u);
  EXPECT_EQ(o.expired_leases, 6u);
  EXPECT_EQ(o.restore_failures, 7u);
  EXPECT_EQ(o.scale_ups, 8u);
  EXPECT_EQ(o.scale_downs, 9u);
  EXPECT_EQ(o.restore_ms.count, 20u);
  EXPECT_DOUBLE_EQ(o.restore_ms.p99_ms, 9.0);
  EXPECT_DOUBLE_EQ(o.reset_ms.median_ms, 0.2);
  EXPECT_EQ(o.restore_seconds, t.restore_seconds);
  EXPECT_EQ(o.reset_seconds, t.reset_seconds);
  EXPECT_DOUBLE_EQ(o.private_memory_mib, 1.25);
  ASSERT_EQ(o.unknown_syscalls.size(), 1u);
  EXPECT_EQ(o.unknown_syscalls[0], (pool::PoolStats::PerTemplate::UnknownSyscall{13, 2}));
  EXPECT_EQ(o.shard, "1/2");
  EXPECT_EQ(out.templates[1].shard, "");
}

}  // namespace
}  // namespace thaw::rpc
