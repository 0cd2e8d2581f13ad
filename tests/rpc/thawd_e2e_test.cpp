// End to end: the real thawd (real PoolManager, mini guest on /dev/kvm) on a
// unix socket in a temp dir, driven through rpc::PoolConnection and the
// `thaw` CLI. One daemon serves the whole suite (two pools: "mini" 1..2 warm
// and "one", whose memory budget fits one clone) to keep the run short on
// two cores.
#include <thread>

#include <nlohmann/json.hpp>

#include "rpc/error_mapping.h"
#include "rpc/pool_client.h"
#include "tests/rpc/concurrent_clients.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

using Clock = std::chrono::steady_clock;

class ThawdE2E : public SharedThawdTest<ThawdE2E> {
 public:
  static constexpr const char* kDirTag = "rpc-e2e";
  static std::string daemon_config(const ThawdProcess& daemon) {
    auto mini = mini_pool();
    auto one = mini_pool("one");
    one.policy.min_warm = one.policy.max_warm = 1;
    // max_warm bounds the warm clones only; the budget bounds warm + leased.
    // The pool counts at least 5 MiB a clone (4 until measured, + 1 for
    // KVM), and the mini guest stays under 9: room for exactly one clone.
    one.policy.memory_budget_mib = 9;
    return daemon.config_text({mini, one});
  }
};

TEST_F(ThawdE2E, AcquireInfoRelease) {
  rpc::PoolConnection c(daemon_->socket());
  auto vm = acquire(c);
  auto info = vm.infoRequest().send().wait(c.wait_scope());
  EXPECT_EQ(info.getTemplateName(), "mini");
  EXPECT_GT(info.getLeaseId(), 0u);
  EXPECT_GT(info.getExpiresInMs(), 8000u);
  EXPECT_LE(info.getExpiresInMs(), 10000u);
  EXPECT_GT(info.getAcquireMs(), 0.0);
  EXPECT_EQ(leased(c), 1u);
  auto renewed = vm.renewRequest();
  renewed.setLeaseMs(20000);
  EXPECT_GT(renewed.send().wait(c.wait_scope()).getExpiresInMs(), 15000u);
  vm.releaseRequest().send().wait(c.wait_scope());
  EXPECT_EQ(leased(c), 0u);
  KJ_IF_MAYBE (e, error_of([&] { vm.infoRequest().send().wait(c.wait_scope()); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::FAILED) << rpc::error_message(*e);
  } else {
    ADD_FAILURE() << "info after release must fail";
  }
  // Each hand-out is a new identity.
  auto a = acquire(c).infoRequest().send().wait(c.wait_scope());
  auto b = acquire(c).infoRequest().send().wait(c.wait_scope());
  EXPECT_NE(a.getCloneId(), b.getCloneId());
  EXPECT_NE(a.getSeed(), b.getSeed());
}

// leaseMs 0 is thawd's default_lease_ms (30 s unless configured), as in the config.
TEST_F(ThawdE2E, LeaseZeroGetsTheDaemonsDefault) {
  rpc::PoolConnection c(daemon_->socket());
  auto vm = acquire(c, "mini", 0);
  auto info = vm.infoRequest().send().wait(c.wait_scope());
  EXPECT_GT(info.getExpiresInMs(), 25000u);
  EXPECT_LE(info.getExpiresInMs(), 30000u);
  vm.releaseRequest().send().wait(c.wait_scope());
}

TEST_F(ThawdE2E, InvokeEcho) {
  rpc::PoolConnection c(daemon_->socket());
  auto vm = acquire(c);
  auto info = vm.infoRequest().send().wait(c.wait_scope());
  if (info.getVsockPath().size() == 0) {
    GTEST_SKIP() << "the pool's clones have no vsock device (PoolManager gives an empty vsockPath), so there is "
                    "no guest agent to invoke";
  }
  auto inv = vm.invokeRequest();
  inv.setFunction("echo");
  const char text[] = "hello, clone";
  inv.setPayload(kj::arrayPtr(reinterpret_cast<const uint8_t*>(text), sizeof text - 1));
  inv.setTimeoutMs(5000);
  kj::Maybe<kj::Exception> failure = error_of([&] {
    auto out = inv.send().wait(c.wait_scope());
    EXPECT_EQ(out.getStatus(), 0u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.getPayload().begin()), out.getPayload().size()),
              "hello, clone");
    EXPECT_GT(out.getTotalMs(), 0.0);
  });
  KJ_IF_MAYBE (e, failure) {
    FAIL() << "invoke failed: " << rpc::error_message(*e) << "\n" << daemon_->log();
  }
  auto unknown = vm.invokeRequest();
  unknown.setFunction("no-such-function");
  EXPECT_EQ(unknown.send().wait(c.wait_scope()).getStatus(), 1u);  // kInvokeUnknownFunction
}

TEST_F(ThawdE2E, ManyConcurrentClients) {
  auto r = run_concurrent_clients(daemon_->socket(), 8, 20, [](rpc::PoolConnection& c) {
    auto vm = acquire(c, "mini", 10000, 10000);
    vm.releaseRequest().send().wait(c.wait_scope());
  });
  EXPECT_EQ(r.ok, 160);
  for (const auto& e : r.last_error) EXPECT_EQ(e, "");
  rpc::PoolConnection c(daemon_->socket());
  EXPECT_TRUE(wait_leased(c, 0));
}

TEST_F(ThawdE2E, ExpiredLeaseReturnsTheClone) {
  rpc::PoolConnection c(daemon_->socket());
  // 1.5 s: long enough that the stats call below still sees the lease after
  // a host stall, short enough to wait out.
  auto vm = acquire(c, "mini", 1500);
  EXPECT_EQ(leased(c), 1u);
  EXPECT_TRUE(wait_leased(c, 0, "mini", std::chrono::seconds(10))) << "the lease did not expire";
  KJ_IF_MAYBE (e, error_of([&] { vm.infoRequest().send().wait(c.wait_scope()); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::FAILED);
    EXPECT_NE(rpc::error_message(*e).find("lease"), std::string::npos) << rpc::error_message(*e);
  } else {
    ADD_FAILURE() << "info on an expired lease must fail";
  }
  auto s = c.pool().statsRequest().send().wait(c.wait_scope());
  for (auto t : s.getStats().getTemplates()) {
    if (t.getName() == "mini") {
      EXPECT_GE(t.getExpiredLeases(), 1u);
    }
  }
}

TEST_F(ThawdE2E, DroppedCapabilityAndDisconnectReleaseTheClone) {
  rpc::PoolConnection c(daemon_->socket());
  {
    auto vm = acquire(c);
    vm.infoRequest().send().wait(c.wait_scope());
    EXPECT_EQ(leased(c), 1u);
  }
  EXPECT_TRUE(wait_leased(c, 0)) << "dropping the Vm capability must release its clone";
  std::thread([&] {
    rpc::PoolConnection other(daemon_->socket());
    auto vm = acquire(other);
    vm.infoRequest().send().wait(other.wait_scope());
  }).join();  // the connection closes while the capability is held
  EXPECT_TRUE(wait_leased(c, 0)) << "a client that disconnects must lose its clones";
}

TEST_F(ThawdE2E, ExhaustedPoolIsOverloadedWithinTheTimeout) {
  rpc::PoolConnection c(daemon_->socket());
  auto held = acquire(c, "one");
  held.infoRequest().send().wait(c.wait_scope());
  auto start = Clock::now();
  KJ_IF_MAYBE (e, error_of([&] { acquire(c, "one", 10000, 300).infoRequest().send().wait(c.wait_scope()); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::OVERLOADED) << rpc::error_message(*e);
  } else {
    ADD_FAILURE() << "a second acquire of a pool of one must be OVERLOADED";
  }
  auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(280));
  EXPECT_LT(elapsed, std::chrono::milliseconds(1500));
  held.releaseRequest().send().wait(c.wait_scope());
  // Released and reset: the pool of one serves again.
  acquire(c, "one", 10000, 5000).releaseRequest().send().wait(c.wait_scope());
}

TEST_F(ThawdE2E, BadArgumentsAreFailedWithTheArgumentNamed) {
  rpc::PoolConnection c(daemon_->socket());
  auto& ws = c.wait_scope();
  expect_bad_acquires_failed(c, "../etc", "nope");
  expect_failed("min > max", "policy.minWarm", [&] {
    auto r = c.pool().setPolicyRequest();
    r.setName("mini");
    r.initPolicy().setMinWarm(3);
    r.getPolicy().setMaxWarm(2);
    r.getPolicy().setMemoryBudgetMib(512);
    r.send().wait(ws);
  });
  expect_failed("mem 0", "spec.memMib", [&] {
    auto r = c.pool().createTemplateRequest();
    r.initSpec().setName("zero");
    r.getSpec().setKernel(THAW_MINI_GUEST);
    r.getSpec().setVcpus(1);
    r.initPolicy().setMaxWarm(1);
    r.getPolicy().setMemoryBudgetMib(512);
    r.send().wait(ws);
  });
  auto vm = acquire(c);
  expect_failed("payload too big", "payload", [&] {
    auto r = vm.invokeRequest();
    r.setFunction("echo");
    r.initPayload(1u << 20);
    r.send().wait(ws);
  });
  expect_failed("empty function", "function", [&] {
    auto r = vm.invokeRequest();
    r.send().wait(ws);
  });
  vm.releaseRequest().send().wait(ws);
  EXPECT_TRUE(daemon_->answers()) << "bad arguments must not hurt the daemon";
}

TEST_F(ThawdE2E, CliTemplatesAcquireStats) {
  std::string sock = " --socket " + daemon_->socket();
  auto t = run_thaw("templates --json" + sock, dir_);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  auto templates = nlohmann::json::parse(t.out);
  ASSERT_EQ(templates.size(), 2u) << t.out;
  auto a = run_thaw("acquire mini --lease-ms 5000 --hold-ms 20 --json" + sock, dir_);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto lease = nlohmann::json::parse(a.out);
  EXPECT_EQ(lease["template"], "mini");
  EXPECT_GT(lease["lease_id"].get<uint64_t>(), 0u);
  auto inv = run_thaw("invoke mini echo --payload hi --json" + sock, dir_);
  ASSERT_EQ(inv.exit_code, 0) << inv.err;
  auto result = nlohmann::json::parse(inv.out);
  EXPECT_EQ(result["status"], 0);
  EXPECT_EQ(result["payload_text"], "hi");
  auto s = run_thaw("stats" + sock, dir_);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("acquires"), std::string::npos) << s.out;
  auto bad = run_thaw("acquire nope" + sock, dir_);
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("nope"), std::string::npos) << bad.err;
  auto gone = run_thaw("stats --socket " + (dir_ / "no.sock").string(), dir_);
  EXPECT_EQ(gone.exit_code, 3) << gone.err;
  EXPECT_NE(gone.err.find("is thawd running?"), std::string::npos) << gone.err;
}

}  // namespace
}  // namespace thaw::testing
