// kill -9 in the middle of `thaw snapshot` must leave the old snapshot or
// none: never a torn one that restore accepts.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "snapshot/memory_file.h"
#include "tests/integration/snapshot_test_support.h"

namespace thaw {
namespace {

pid_t spawn_snapshot(const std::string& dir, const std::string& cmdline) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execl(THAW_CLI, THAW_CLI, "snapshot", "--console", "none", "--cmdline", cmdline.c_str(), "--kernel",
            THAW_MINI_GUEST, "--out", dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

TEST(SnapshotCrash, KillDuringWriteNeverLeavesATornSnapshot) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  // A complete snapshot to start from.
  pid_t first = spawn_snapshot(dir.path(), "console=ttyS0 thaw.fn_bytes=4096");
  int status = 0;
  ::waitpid(first, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the first snapshot must succeed";

  std::mt19937 rng(7);
  int complete = 0, rejected = 0;
  for (int round = 0; round < 10; ++round) {
    // Different content each round, so old and new memory differ.
    pid_t pid = spawn_snapshot(dir.path(), "console=ttyS0 thaw.fn_bytes=" + std::to_string(8192 + round * 4096));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 250000));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    try {
      auto loaded = snapshot::read_snapshot_dir(dir.path());
      // Accepted: then every byte must match what its state promises.
      EXPECT_NO_THROW(snapshot::verify_memory_file(loaded.memory_path, loaded.state.memory))
          << "round " << round << ": restore would accept a torn snapshot";
      ++complete;
    } catch (const InputError& e) {
      // Rejected with a clear reason is the other allowed outcome.
      EXPECT_NE(std::string(e.what()).find(dir.path()), std::string::npos) << e.what();
      ++rejected;
    }
  }
  EXPECT_EQ(complete + rejected, 10);
  EXPECT_GT(complete, 0) << "every round left no snapshot: the kill always came first?";
}

}  // namespace
}  // namespace thaw
