// A program template's limits through the real thawd: a program that loops
// past its deadline, one that dereferences NULL, one that floods stdout and
// one that calls system calls the runtime does not have. Each gets a clear
// status or error, and the pool goes on serving.
#include <gtest/gtest.h>

#include <string>

#include "rpc/convert.h"
#include "rpc/pool_client.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

daemon::PoolConfig test_program_pool(const std::string& mode) {
  daemon::PoolConfig pool;
  pool.spec.name = "tp-" + mode;
  pool.spec.kernel = THAW_MINI_GUEST;
  pool.spec.cmdline = "console=ttyS0 thaw.quiet=1";
  pool.spec.mem_mib = 64;
  pool.spec.program = THAW_TEST_PROGRAM;
  pool.spec.args = {mode};
  pool.policy = pool::PoolPolicy{1, 2, 1024};
  return pool;
}

struct Reply {
  uint32_t status = 0;
  std::string stdout_text, stderr_text;
};

Reply invoke(rpc::schema::Vm::Client& vm, rpc::PoolConnection& conn, const std::string& payload, uint64_t timeout_ms) {
  auto req = vm.invokeRequest();
  req.setFunction("run");
  req.setPayload(kj::arrayPtr(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  req.setTimeoutMs(timeout_ms);
  auto r = req.send().wait(conn.wait_scope());
  return {r.getStatus(), std::string(r.getPayload().begin(), r.getPayload().end()),
          std::string(r.getStderr().begin(), r.getStderr().end())};
}

pool::PoolStats::PerTemplate template_stats(rpc::PoolConnection& conn, const std::string& name) {
  auto reply = conn.pool().statsRequest().send().wait(conn.wait_scope());
  for (const auto& t : rpc::from_schema(reply.getStats()).templates) {
    if (t.name == name) return t;
  }
  ADD_FAILURE() << "no stats for " << name;
  return {};
}

class ProgramLimits : public SharedThawdTest<ProgramLimits> {
 public:
  static constexpr const char* kDirTag = "prog-limits";
  static std::string daemon_config(const ThawdProcess& daemon) {
    return daemon.config_text({test_program_pool("loop"), test_program_pool("null"), test_program_pool("flood"),
                               test_program_pool("unknown-syscall"), test_program_pool("poweroff")});
  }
};

TEST_F(ProgramLimits, ALoopPastItsDeadlineEndsTheLeaseAndThePoolServesTheNextOne) {
  rpc::PoolConnection conn(daemon_->socket());
  auto vm = acquire(conn, "tp-loop", 60000, 60000);
  auto error = error_of([&] { invoke(vm, conn, "spin", 1000); });
  KJ_IF_MAYBE(e, error) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED) << e->getDescription().cStr();
    EXPECT_NE(std::string(e->getDescription().cStr()).find("timed out"), std::string::npos)
        << e->getDescription().cStr();
  } else {
    ADD_FAILURE() << "a program that never ends answered";
  }
  // The looping clone is gone; a new lease gets a fresh one from the pool.
  auto next = acquire(conn, "tp-loop", 60000, 60000);
  EXPECT_FALSE(error_of([&] { next.infoRequest().send().wait(conn.wait_scope()); }) != nullptr);
  next.releaseRequest().send().wait(conn.wait_scope());
  EXPECT_GE(template_stats(conn, "tp-loop").destroyed, 1u);
}

// reboot(RB_POWER_OFF), as `poweroff -f` calls it: the guest ends cleanly
// (no halted clone left behind), the lease says why, and the pool replaces it.
TEST_F(ProgramLimits, AProgramThatPowersOffEndsItsCloneAndThePoolServesTheNextOne) {
  rpc::PoolConnection conn(daemon_->socket());
  const auto destroyed_before = template_stats(conn, "tp-poweroff").destroyed;
  for (const std::string request : {"poweroff", "halt", "restart"}) {
    auto vm = acquire(conn, "tp-poweroff", 60000, 60000);
    auto error = error_of([&] { invoke(vm, conn, request, 20000); });
    KJ_IF_MAYBE(e, error) {
      const std::string what = e->getDescription().cStr();
      EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED) << what;
      EXPECT_NE(what.find("guest powered off"), std::string::npos) << what;
      EXPECT_EQ(what.find("timed out"), std::string::npos) << what;
    } else {
      ADD_FAILURE() << "a program that powered off its guest answered (" << request << ")";
    }
  }
  auto next = acquire(conn, "tp-poweroff", 60000, 60000);
  EXPECT_FALSE(error_of([&] { next.infoRequest().send().wait(conn.wait_scope()); }) != nullptr);
  next.releaseRequest().send().wait(conn.wait_scope());
  EXPECT_GE(template_stats(conn, "tp-poweroff").destroyed, destroyed_before + 3);
}

TEST_F(ProgramLimits, ANullDereferenceIsSignalStatusAndTheSameLeaseServesAgain) {
  rpc::PoolConnection conn(daemon_->socket());
  auto vm = acquire(conn, "tp-null", 60000, 60000);
  uint64_t seeds[2] = {};
  for (int i = 0; i < 2; ++i) {  // the second from the clone reset in between
    auto r = invoke(vm, conn, "x", 30000);
    EXPECT_EQ(r.status, 128u + 11u) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("SIGSEGV"), std::string::npos) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("address 0x0"), std::string::npos) << r.stderr_text;
    seeds[i] = vm.infoRequest().send().wait(conn.wait_scope()).getSeed();
  }
  EXPECT_NE(seeds[0], seeds[1]) << "each request runs with a fresh seed, and Vm.info says which";
  vm.releaseRequest().send().wait(conn.wait_scope());
}

TEST_F(ProgramLimits, StdoutOverItsCapIsKilledStatusWithTheReason) {
  rpc::PoolConnection conn(daemon_->socket());
  auto vm = acquire(conn, "tp-flood", 60000, 60000);
  auto r = invoke(vm, conn, "", 30000);
  EXPECT_EQ(r.status, 137u) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("stdout over 1 MiB"), std::string::npos) << r.stderr_text;
  vm.releaseRequest().send().wait(conn.wait_scope());
}

TEST_F(ProgramLimits, UnimplementedSystemCallsAreEnosysAndCountedByNameInStats) {
  rpc::PoolConnection conn(daemon_->socket());
  auto vm = acquire(conn, "tp-unknown-syscall", 60000, 60000);
  for (int i = 0; i < 2; ++i) {
    auto r = invoke(vm, conn, "", 30000);
    EXPECT_EQ(r.status, 0u) << r.stderr_text;
    EXPECT_EQ(r.stdout_text, "400: -1 ENOSYS\nio_uring_setup: -1 ENOSYS\n");
  }
  vm.releaseRequest().send().wait(conn.wait_scope());
  auto stats = template_stats(conn, "tp-unknown-syscall");
  ASSERT_EQ(stats.unknown_syscalls.size(), 2u) << daemon_->log();
  EXPECT_EQ(stats.unknown_syscalls[0].number, 400u);
  EXPECT_EQ(stats.unknown_syscalls[0].requests, 2u);
  EXPECT_EQ(stats.unknown_syscalls[1].number, 425u);  // io_uring_setup
  EXPECT_EQ(stats.unknown_syscalls[1].requests, 2u);
  auto text = run_thaw("stats --socket " + daemon_->socket(), dir_);
  EXPECT_NE(text.out.find("io_uring_setup (2)"), std::string::npos) << text.out;
  EXPECT_NE(daemon_->log().find("io_uring_setup"), std::string::npos) << "thawd logs the first use by name";
}

}  // namespace
}  // namespace thaw::testing
