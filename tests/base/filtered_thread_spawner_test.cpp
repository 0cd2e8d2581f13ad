// FilteredThreadSpawner with real filters and threads: a spawned thread runs
// under the filter from its start (and its SIGSYS report names it), what
// `prepare` set is inherited, the creating thread stays unfiltered, spawns
// from many threads at once all run, and a spawner that cannot start says
// so. The filters apply to the spawner's threads only, so these run in the
// test process; the forbidden call runs in a death test's child.
#include "base/filtered_thread_spawner.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/errors.h"

namespace thaw {
namespace {

// A thread's basics and thread creation, plus what the checks read.
SeccompFilter test_filter() {
  auto rules = with_thread_basics({seccomp_arg_equals(__NR_prctl, 0, PR_GET_SECCOMP),
                                   seccomp_any_arguments(__NR_sched_getscheduler)});
  for (auto& rule : seccomp_thread_creation_rules()) rules.push_back(rule);
  return SeccompFilter::compile("spawn-test", rules);
}

TEST(FilteredThreadSpawner, SpawnedThreadsRunUnderTheFilterWithWhatPrepareSet) {
  static const SeccompFilter filter = test_filter();
  FilteredThreadSpawner spawner(filter, [] {
    sched_param param{};
    if (::sched_setscheduler(0, SCHED_BATCH, &param) != 0) throw std::runtime_error("SCHED_BATCH refused");
  });
  std::atomic<int> mode{-1}, policy{-1};
  auto thread = spawner.spawn([&] {
    mode = seccomp_mode_of_this_thread();
    policy = ::sched_getscheduler(0);
  }, "checker", 128 * 1024);
  thread.join();
  EXPECT_EQ(mode.load(), 2) << "SECCOMP_MODE_FILTER";
  EXPECT_EQ(policy.load(), SCHED_BATCH) << "inherited from the spawner";
  EXPECT_EQ(seccomp_mode_of_this_thread(), 0) << "the caller stays unfiltered";
  EXPECT_EQ(&spawner.filter(), &filter);
}

TEST(FilteredThreadSpawner, ManyThreadsSpawnAtOnce) {
  static const SeccompFilter filter = test_filter();
  FilteredThreadSpawner spawner(filter);
  std::atomic<int> filtered{0};
  std::vector<std::thread> callers;
  std::mutex mutex;
  std::vector<StackThread> spawned;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 16; ++i) {
        auto t = spawner.spawn([&] { filtered += seccomp_mode_of_this_thread() == 2 ? 1 : 0; }, "many");
        std::lock_guard lock(mutex);
        spawned.push_back(std::move(t));
      }
    });
  }
  for (auto& c : callers) c.join();
  for (auto& t : spawned) t.join();
  EXPECT_EQ(spawned.size(), 64u);
  EXPECT_EQ(filtered.load(), 64);
}

TEST(FilteredThreadSpawner, APrepareThatFailsIsAnErrorNamingTheFilter) {
  static const SeccompFilter filter = test_filter();
  try {
    FilteredThreadSpawner spawner(filter, [] { throw std::runtime_error("no"); });
    FAIL() << "the spawner started";
  } catch (const SysError& e) {
    EXPECT_NE(std::string(e.what()).find("'spawn-test' thread spawner"), std::string::npos) << e.what();
  }
}

TEST(FilteredThreadSpawnerDeathTest, AForbiddenCallOnASpawnedThreadIsReportedWithItsFilter) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static const SeccompFilter filter = test_filter();
        FilteredThreadSpawner spawner(filter);
        auto thread = spawner.spawn([] { ::syscall(SYS_getppid); }, "offender");
        thread.join();
        ::syscall(SYS_exit_group, 0);  // not reached
      },
      ::testing::ExitedWithCode(kSeccompExitStatus),
      "thaw: seccomp: thread [0-9]+ \\(filter 'spawn-test'\\) made a forbidden system call 110 \\(getppid\\)");
}

}  // namespace
}  // namespace thaw
