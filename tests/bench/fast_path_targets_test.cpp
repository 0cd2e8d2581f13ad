// Issue 12's targets read from benchmark results: which rows count on which
// backend, met and missed on either side of each goal, density goals only
// at 1,000 clones, and results that are not the benchmark's refused.
#include "bench/fast_path_targets.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace thaw::bench {
namespace {

using nlohmann::json;

json row(double median, double p99) { return {{"min_ms", median / 2}, {"median_ms", median}, {"p99_ms", p99}}; }

json restore_result(const std::string& backend, double shell_entry_median, double plain_entry_median) {
  return {{"benchmark", "restore"},
          {"environment", {{"kvm_backend", backend}}},
          {"rows",
           {{"private, prepared shell: request -> first guest instruction", row(shell_entry_median, 2.5)},
            {"private, prepared shell: request -> guest answered", row(1.9, 4)},
            {"private: request -> first guest instruction", row(plain_entry_median, 3.5)},
            {"private: request -> guest answered", row(2.6, 4)},
            {"0 MiB dirty", row(0.08, 0.2)}}},
          {"values", {{"qemu_over_thaw_restore_median_ratio", 8.8}}}};
}

json density_result(double clones) {
  return {{"benchmark", "density"},
          {"values",
           {{"clones", clones},
            {"fill_restores_per_second", 520.0},
            {"refill_threads", 2.0},
            {"host_memory_used_mib", 473.0}}},
          {"rows", {{"acquire (RPC until the clone runs)", row(0.35, 2.0)}}}};
}

const TargetCheck& find(const std::vector<TargetCheck>& checks, const std::string& what) {
  for (const auto& c : checks) {
    if (c.what == what) return c;
  }
  throw std::logic_error("no check " + what);
}

TEST(FastPathTargets, OnPvmThePreparedShellRowsCountElsewhereThePlainOnes) {
  auto pvm = check_fast_path_targets(restore_result("kvm_pvm", 0.9, 1.2), density_result(1000));
  const auto& entry = find(pvm, "restore -> first guest instruction, median");
  EXPECT_EQ(entry.value, 0.9);
  EXPECT_TRUE(entry.met);
  EXPECT_TRUE(find(pvm, "restore -> first guest instruction, p99").met);  // 2.5 <= 3
  EXPECT_TRUE(find(pvm, "restore -> guest answered, median").met);        // 1.9 <= 2

  auto hardware = check_fast_path_targets(restore_result("kvm_intel", 0.9, 1.2), density_result(1000));
  EXPECT_EQ(find(hardware, "restore -> first guest instruction, median").value, 1.2);
  EXPECT_FALSE(find(hardware, "restore -> first guest instruction, median").met);
  EXPECT_FALSE(find(hardware, "restore -> first guest instruction, p99").met);  // 3.5 > 3
  EXPECT_FALSE(find(hardware, "restore -> guest answered, median").met);        // 2.6 > 2
}

TEST(FastPathTargets, EachGoalIsMetOrMissedByItsOwnFigure) {
  auto checks = check_fast_path_targets(restore_result("kvm_pvm", 0.9, 1.2), density_result(1000));
  ASSERT_EQ(checks.size(), 8u);
  EXPECT_FALSE(find(checks, "QEMU -incoming over thaw restore, medians").met);  // 8.8 < 10
  EXPECT_TRUE(find(checks, "reset in place, nothing dirtied, median").met);     // 0.08 <= 0.1
  EXPECT_TRUE(find(checks, "restores into a growing pool").met);                // 520 >= 500
  EXPECT_EQ(find(checks, "restores into a growing pool").source, "fill_restores_per_second (2 refill threads)");
  EXPECT_TRUE(find(checks, "host memory of 1,000 idle warm clones").met);       // 473 <= 1024
  EXPECT_FALSE(find(checks, "acquire p99 at 100/s with 1,000 warm").met);       // 2.0 > 1
  const std::string table = describe(checks);
  EXPECT_NE(table.find("6 of 8 targets met"), std::string::npos) << table;
  auto j = to_json(checks);
  ASSERT_EQ(j.size(), 8u);
  EXPECT_EQ(j[0]["value"], 0.9);
  EXPECT_EQ(j[0]["met"], true);
}

TEST(FastPathTargets, ASpreadPoolIsAlsoJudgedWhileEveryShardRestores) {
  auto spread = density_result(1000);
  spread["values"]["fill_restores_per_second"] = 430.0;  // the later shards' start-up included
  spread["values"]["fill_restores_per_second_every_shard_restoring"] = 610.0;
  auto checks = check_fast_path_targets(restore_result("kvm_pvm", 0.9, 1.2), spread);
  ASSERT_EQ(checks.size(), 9u);
  EXPECT_FALSE(find(checks, "restores into a growing pool").met);
  const auto& every_shard = find(checks, "the same while every shard restores");
  EXPECT_EQ(every_shard.value, 610.0);
  EXPECT_TRUE(every_shard.met);
  spread["values"]["fill_restores_per_second_every_shard_restoring"] = 480.0;
  EXPECT_FALSE(find(check_fast_path_targets(restore_result("kvm_pvm", 0.9, 1.2), spread),
                    "the same while every shard restores")
                   .met);
}

TEST(FastPathTargets, DensityGoalsNeedAThousandClonesAndMissingFiguresAreNotMet) {
  auto small = check_fast_path_targets(restore_result("kvm_pvm", 0.9, 1.2), density_result(250));
  EXPECT_FALSE(find(small, "host memory of 1,000 idle warm clones").value.has_value());
  EXPECT_FALSE(find(small, "host memory of 1,000 idle warm clones").met);
  auto no_qemu = restore_result("kvm_pvm", 0.9, 1.2);
  no_qemu["values"].erase("qemu_over_thaw_restore_median_ratio");
  auto checks = check_fast_path_targets(no_qemu, density_result(1000));
  const auto& ratio = find(checks, "QEMU -incoming over thaw restore, medians");
  EXPECT_FALSE(ratio.value.has_value());
  EXPECT_FALSE(ratio.met);
  EXPECT_NE(describe(checks).find("not measured"), std::string::npos);
}

TEST(FastPathTargets, ResultsOfAnotherBenchmarkAreRefusedByName) {
  try {
    check_fast_path_targets(density_result(1000), density_result(1000));
    FAIL() << "a density result was taken for a restore result";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("not a thaw_bench_restore --json result"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_fast_path_targets(restore_result("kvm_pvm", 1, 1), json::array()), std::invalid_argument);
  EXPECT_THROW(check_fast_path_targets(json("text"), density_result(1000)), std::invalid_argument);
}

}  // namespace
}  // namespace thaw::bench
