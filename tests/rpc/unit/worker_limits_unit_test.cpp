// A template worker's limits as pure functions of its template, their
// command-line form, and the parsing behind worker cgroups. No KVM, no
// cgroup needed (the end-to-end checks are in template_workers_test.cpp).
#include "rpc/daemon/worker_limits.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "rpc/daemon/worker_cgroups.h"
#include "tests/child_report.h"

namespace thaw::daemon {
namespace {

pool::TemplateSpec spec(uint64_t mem_mib, uint32_t vcpus) {
  pool::TemplateSpec s;
  s.name = "t";
  s.mem_mib = mem_mib;
  s.vcpus = vcpus;
  return s;
}

pool::PoolPolicy policy(uint32_t max_warm, uint64_t budget_mib) { return pool::PoolPolicy{1, max_warm, budget_mib}; }

TEST(WorkerLimits, ClonesFollowTheBudgetNeverBelowMaxWarmNorAboveTheCeiling) {
  EXPECT_EQ(worker_limits(spec(64, 1), policy(16, 1024), 64).clones, 2048u);  // 1024 MiB at 0.5 MiB a clone
  EXPECT_EQ(worker_limits(spec(64, 1), policy(16, 1), 64).clones, 16u);       // max_warm is kept
  EXPECT_EQ(worker_limits(spec(64, 1), policy(16, uint64_t{1} << 30), 64).clones, kMaxClonesPerWorker);
}

TEST(WorkerLimits, GrowWithClonesVcpusAndGuestMemory) {
  const WorkerLimits small = worker_limits(spec(64, 1), policy(16, 1024), 64);
  const WorkerLimits more_vcpus = worker_limits(spec(64, 4), policy(16, 1024), 64);
  const WorkerLimits more_memory = worker_limits(spec(512, 1), policy(16, 1024), 64);
  const WorkerLimits more_budget = worker_limits(spec(64, 1), policy(16, 4096), 64);
  EXPECT_EQ(small.threads - worker_limits(spec(64, 1), policy(16, 1024), 0).threads, 64u) << "RPC threads count";
  EXPECT_EQ(more_vcpus.threads - small.threads, 3u * small.clones) << "three more vCPU threads a clone";
  EXPECT_EQ(more_vcpus.open_files, small.open_files);
  EXPECT_GT(more_vcpus.address_space, small.address_space) << "a stack per vCPU thread";
  // Each clone maps its guest memory.
  EXPECT_GE(more_memory.address_space - small.address_space, small.clones * (512 - 64) * (uint64_t{1} << 20));
  EXPECT_GT(more_budget.memory, small.memory);
  EXPECT_GT(more_budget.open_files, small.open_files);
  // The memory limit holds the budget, the kernel memory of every clone it
  // allows, and the template's memory file.
  EXPECT_GE(small.memory, (uint64_t{1024} + 64 + small.clones / 2) << 20);
  // And every clone's fds, as measured (8 each), twice over.
  EXPECT_GE(small.open_files, small.clones * 16);
}

TEST(WorkerLimits, HugeTemplatesSaturateInsteadOfWrapping) {
  const WorkerLimits l = worker_limits(spec(pool::kMaxTemplateMemMib, pool::kMaxTemplateVcpus),
                                       policy(1024, uint64_t{1} << 30), 4096);
  EXPECT_EQ(l.clones, kMaxClonesPerWorker);
  EXPECT_GT(l.address_space, uint64_t{1} << 52) << "65536 clones of 64 GiB must not wrap";
  EXPECT_GT(l.memory, uint64_t{1} << 50);
}

TEST(WorkerLimits, ArgumentRoundTripsAndJunkIsRefused) {
  const WorkerLimits l = worker_limits(spec(128, 2), policy(8, 512), 64);
  auto back = parse_limits_argument(limits_argument(l));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, l);
  for (const char* bad : {"", "1:2:3:4", "1:2:3:4:5:6", "1:2:3:4:", ":1:2:3:4", "1:2:x:4:5", "1:2:3:4:0",
                          "1;2;3;4;5", "-1:2:3:4:5", "1:2:3:4:99999999999999999999"}) {
    EXPECT_FALSE(parse_limits_argument(bad).has_value()) << bad;
  }
}

TEST(WorkerLimits, DescribedInUnitsPeopleRead) {
  WorkerLimits l{2048, 33024, 8512, uint64_t{140} << 30, uint64_t{1600} << 20};
  EXPECT_EQ(describe(l), "2048 clones: 33024 files, 8512 threads, 140.0 GiB address space, 1.6 GiB memory");
}

// Applied in a child (rlimits cannot be raised again): every limit in a
// user namespace of its own; outside one, RLIMIT_NPROC stays as it was,
// since there it would count the threads of every process of the user.
TEST(WorkerRlimits, ThreadsAreLimitedOnlyInTheWorkersOwnUserNamespace) {
  const WorkerLimits l{10, 300, 400, uint64_t{64} << 30, uint64_t{1} << 30};
  auto soft = [](int resource) {
    rlimit r{};
    ::getrlimit(resource, &r);
    return r.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(r.rlim_cur);
  };
  auto expected = [](int resource, uint64_t wanted) {
    rlimit r{};
    ::getrlimit(resource, &r);
    return std::to_string(std::min<uint64_t>(wanted, r.rlim_max));
  };
  const std::string nproc_before = soft(RLIMIT_NPROC);
  for (bool own : {false, true}) {
    Report report = in_child([&](Report& r) {
      r["summary"] = apply_worker_rlimits(l, own);
      r["files"] = soft(RLIMIT_NOFILE);
      r["threads"] = soft(RLIMIT_NPROC);
      r["as"] = soft(RLIMIT_AS);
    });
    ASSERT_EQ(report.count("child") + report.count("threw"), 0u) << report["child"] << report["threw"];
    EXPECT_EQ(report["files"], expected(RLIMIT_NOFILE, 300));
    EXPECT_EQ(report["as"], expected(RLIMIT_AS, uint64_t{64} << 30));
    if (own) {
      EXPECT_EQ(report["threads"], expected(RLIMIT_NPROC, 400));
      EXPECT_NE(report["summary"].find("threads "), std::string::npos) << report["summary"];
    } else {
      EXPECT_EQ(report["threads"], nproc_before);
      EXPECT_NE(report["summary"].find("threads not limited (no user namespace of its own"), std::string::npos)
          << report["summary"];
    }
  }
}

TEST(WorkerCgroupsParsing, FindsTheUnifiedCgroupAndTheCgroup2Mount) {
  EXPECT_EQ(unified_cgroup_of("12:pids:/x\n0::/system.slice/thawd.service\n"), "/system.slice/thawd.service");
  EXPECT_EQ(unified_cgroup_of("0::/\n"), "/");
  EXPECT_FALSE(unified_cgroup_of("4:memory:/a\n1:cpu:/\n").has_value()) << "cgroup v1 only";
  EXPECT_FALSE(unified_cgroup_of("").has_value());
  const std::string mountinfo =
      "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
      "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
      "31 25 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(cgroup2_mount_point(mountinfo), "/sys/fs/cgroup/unified");
  EXPECT_EQ(cgroup2_mount_point("22 1 0:21 / /proc rw - proc proc rw\n"), "");
}

TEST(WorkerCgroupsSetUp, OffIsNoneAndADirectoryThatIsNoCgroupIsRefusedByName) {
  WorkerCgroups off = WorkerCgroups::set_up("off");
  EXPECT_FALSE(off.enabled());
  EXPECT_NE(off.summary().find("none"), std::string::npos) << off.summary();
  try {
    WorkerCgroups::set_up("/nonexistent/thaw-cgroup");
    ADD_FAILURE() << "a missing directory was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/thaw-cgroup is not a directory of a cgroup hierarchy"),
              std::string::npos)
        << e.what();
  }
  // Root owns every cgroup: auto never takes one for a root thawd.
  if (::geteuid() == 0) {
    WorkerCgroups automatic = WorkerCgroups::set_up("auto");
    EXPECT_FALSE(automatic.enabled());
    EXPECT_NE(automatic.summary().find("runs as root"), std::string::npos) << automatic.summary();
  }
}

}  // namespace
}  // namespace thaw::daemon
