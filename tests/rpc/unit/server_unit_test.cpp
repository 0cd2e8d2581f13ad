// The RPC server in process, over a fake pool and a real unix socket: every
// argument check, the error mapping, leases released by a dropped capability
// or a lost connection, and an event loop that keeps answering while pool
// calls block. No KVM needed; the end-to-end tests in tests/rpc/ run the real
// thawd over the real pool.

#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "rpc/error_mapping.h"
#include "rpc/pool_client.h"
#include "rpc/pool_server.h"
#include "rpc/rpc_listener.h"
#include "tests/rpc/unit/in_process_server.h"
#include "tests/rpc/concurrent_clients.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/unit/fake_pool_backend.h"
#include "tests/temp_dir.h"

namespace thaw::rpc {
namespace {

using Clock = std::chrono::steady_clock;
using testing::FakePoolBackend;
using thaw::testing::acquire;
using thaw::testing::error_of;
using thaw::testing::expect_failed;
using thaw::testing::leased;
using thaw::testing::wait_leased;

class RpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_ / "thaw.sock";
    pool::TemplateSpec spec;
    spec.name = "mini";
    spec.kernel = "/fake/kernel";
    pool::PoolPolicy policy;
    policy.min_warm = 1;
    policy.max_warm = 2;
    backend_.create_template(spec, policy);
    server_ = std::make_unique<InProcessServer>(backend_, socket_);
  }
  void TearDown() override { server_.reset(); }

  FakePoolBackend backend_;
  thaw::testing::TempDir dir_{"thaw-rpc-unit"};
  std::string socket_;
  std::unique_ptr<InProcessServer> server_;
};

TEST_F(RpcServerTest, AcquireInfoInvokeRelease) {
  PoolConnection c(socket_);
  auto vm = acquire(c);
  auto info = vm.infoRequest().send().wait(c.wait_scope());
  EXPECT_EQ(info.getTemplateName(), "mini");
  EXPECT_GT(info.getExpiresInMs(), 9000u);
  EXPECT_EQ(leased(c), 1u);

  auto inv = vm.invokeRequest();
  inv.setFunction("echo");
  const uint8_t bytes[] = {1, 2, 3};
  inv.setPayload(kj::arrayPtr(bytes, 3));
  auto out = inv.send().wait(c.wait_scope());
  EXPECT_EQ(out.getStatus(), 0u);
  ASSERT_EQ(out.getPayload().size(), 3u);
  EXPECT_EQ(out.getPayload()[2], 3);

  vm.releaseRequest().send().wait(c.wait_scope());
  EXPECT_EQ(leased(c), 0u);
  KJ_IF_MAYBE (e, error_of([&] { vm.infoRequest().send().wait(c.wait_scope()); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::FAILED);
    EXPECT_NE(error_message(*e).find("released"), std::string::npos) << error_message(*e);
  } else {
    ADD_FAILURE() << "info after release must fail";
  }
}

TEST_F(RpcServerTest, AWarmCloneIsHandedOutWithoutAWorkerAndAnEmptyPoolWaitsOnOne) {
  PoolConnection c(socket_);
  auto a = acquire(c);  // fake pool: warm 2
  auto b = acquire(c);
  EXPECT_EQ(backend_.blocking_acquires(), 0u) << "warm clones must take the event loop's fast path";
  // None warm now: the third acquire waits on a worker until a release.
  auto req = c.pool().acquireRequest();
  req.setTemplate("mini");
  req.setLeaseMs(1000);
  req.setTimeoutMs(3000);
  auto pending = req.send();
  for (auto deadline = Clock::now() + std::chrono::seconds(3); Clock::now() < deadline;) {
    c.wait_scope().poll();  // sends the request
    if (backend_.blocking_acquires() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(backend_.blocking_acquires(), 1u);
  a.releaseRequest().send().wait(c.wait_scope());
  auto third = pending.wait(c.wait_scope()).getVm();
  EXPECT_EQ(third.infoRequest().send().wait(c.wait_scope()).getTemplateName(), "mini");
  EXPECT_EQ(leased(c), 2u);
}

TEST_F(RpcServerTest, DroppedCapabilityAndLostConnectionReleaseTheClone) {
  PoolConnection c(socket_);
  {
    auto vm = acquire(c);
    EXPECT_EQ(leased(c), 1u);
  }
  EXPECT_TRUE(wait_leased(c, 0)) << "dropping the Vm capability must release the clone";
  // One event loop per thread: the second client runs on its own.
  std::thread([&] {
    PoolConnection other(socket_);
    auto vm = acquire(other);
    EXPECT_EQ(leased(other), 1u);
  }).join();  // the connection closes with the capability still held
  EXPECT_TRUE(wait_leased(c, 0)) << "a lost connection must release its clones";
}

TEST_F(RpcServerTest, ExhaustedPoolIsOverloadedWithinTheTimeoutAndTheLoopStaysResponsive) {
  PoolConnection c(socket_);
  auto a = acquire(c);
  auto b = acquire(c);
  // A third acquire waits for a release; meanwhile stats must answer well
  // before its 2 s timeout.
  auto start = Clock::now();
  auto req = c.pool().acquireRequest();
  req.setTemplate("mini");
  req.setLeaseMs(1000);
  req.setTimeoutMs(2000);
  auto pending = req.send();
  for (auto deadline = Clock::now() + std::chrono::seconds(1); Clock::now() < deadline;) {
    c.wait_scope().poll();  // sends the request
    if (backend_.blocking_acquires() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(backend_.blocking_acquires(), 1u) << "the third acquire never reached a worker";
  std::thread([&] {
    PoolConnection other(socket_);
    auto t0 = Clock::now();
    EXPECT_EQ(leased(other), 2u);
    EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(1000)) << "the event loop was blocked by a waiting acquire";
  }).join();
  KJ_IF_MAYBE (e, error_of([&] { pending.wait(c.wait_scope()); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::OVERLOADED) << error_message(*e);
  } else {
    ADD_FAILURE() << "an exhausted pool must answer OVERLOADED";
  }
  auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(1980));
  EXPECT_LT(elapsed, std::chrono::milliseconds(4000)) << "OVERLOADED must come at the timeout, not later";
}

TEST_F(RpcServerTest, AnAcquireAbandonedWhileWaitingReleasesItsClone) {
  PoolConnection c(socket_);
  auto a = acquire(c);
  auto b = acquire(c);
  // A client asks for a third clone, then goes away while the acquire waits.
  std::thread([&] {
    PoolConnection other(socket_);
    auto req = other.pool().acquireRequest();
    req.setTemplate("mini");
    req.setLeaseMs(10000);
    req.setTimeoutMs(3000);
    auto pending = req.send();
    for (int i = 0; i < 10; ++i) {
      other.wait_scope().poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }).join();
  // Releasing one hands its clone to the abandoned acquire on the worker;
  // nobody takes the answer, so the server must release that lease too.
  uint64_t before = backend_.releases();
  a.releaseRequest().send().wait(c.wait_scope());
  for (auto deadline = Clock::now() + std::chrono::seconds(5); Clock::now() < deadline;) {
    if (backend_.releases() >= before + 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(backend_.releases(), before + 2);
  EXPECT_EQ(leased(c), 1u);  // b only
}

TEST_F(RpcServerTest, GuestGoneIsDisconnected) {
  PoolConnection c(socket_);
  auto vm = acquire(c);
  auto inv = vm.invokeRequest();
  inv.setFunction("crash");
  KJ_IF_MAYBE (e, error_of([&] { inv.send().wait(c.wait_scope()); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED) << error_message(*e);
    EXPECT_NE(error_message(*e).find("crashed"), std::string::npos) << error_message(*e);
  } else {
    ADD_FAILURE();
  }
}

TEST_F(RpcServerTest, EveryBadArgumentIsFailedAndNamed) {
  PoolConnection c(socket_);
  auto& ws = c.wait_scope();
  thaw::testing::expect_bad_acquires_failed(c, "Bad/Name", "no such template");

  auto create_with = [&](auto&& edit) {
    return [&, edit] {
      auto r = c.pool().createTemplateRequest();
      auto spec = r.initSpec();
      spec.setName("other");
      spec.setKernel("/k");
      spec.setMemMib(64);
      spec.setVcpus(1);
      auto policy = r.initPolicy();
      policy.setMinWarm(1);
      policy.setMaxWarm(2);
      policy.setMemoryBudgetMib(512);
      edit(r);
      r.send().wait(ws);
    };
  };
  using CreateReq = capnp::Request<schema::Pool::CreateTemplateParams, schema::Pool::CreateTemplateResults>;
  expect_failed("mem 0", "spec.memMib", create_with([](CreateReq& r) { r.getSpec().setMemMib(0); }));
  expect_failed("vcpus 0", "spec.vcpus", create_with([](CreateReq& r) { r.getSpec().setVcpus(0); }));
  expect_failed("no kernel", "spec.kernel", create_with([](CreateReq& r) { r.getSpec().setKernel(""); }));
  expect_failed("relative kernel", "spec.kernel", create_with([](CreateReq& r) { r.getSpec().setKernel("k"); }));
  expect_failed("min > max", "policy.minWarm", create_with([](CreateReq& r) { r.getPolicy().setMinWarm(3); }));
  expect_failed("max 0", "policy.maxWarm", create_with([](CreateReq& r) {
                  r.getPolicy().setMinWarm(0);
                  r.getPolicy().setMaxWarm(0);
                }));
  expect_failed("budget 0", "policy.memoryBudgetMib",
                create_with([](CreateReq& r) { r.getPolicy().setMemoryBudgetMib(0); }));
  expect_failed("existing name", "already exists", create_with([](CreateReq& r) { r.getSpec().setName("mini"); }));

  auto vm = acquire(c);
  auto invoke_with = [&](std::string fn, size_t bytes, uint64_t timeout) {
    return [&, fn, bytes, timeout] {
      auto r = vm.invokeRequest();
      r.setFunction(fn);
      r.initPayload(static_cast<unsigned>(bytes));
      r.setTimeoutMs(timeout);
      r.send().wait(ws);
    };
  };
  expect_failed("empty function", "function", invoke_with("", 0, 0));
  expect_failed("long function", "function", invoke_with(std::string(65, 'f'), 0, 0));
  expect_failed("function with a space", "function", invoke_with("a b", 0, 0));
  expect_failed("payload too big", "payload", invoke_with("echo", (1u << 20), 0));
  expect_failed("invoke timeout", "timeoutMs", invoke_with("echo", 0, 60001));
  expect_failed("renew 0", "leaseMs", [&] {
    auto r = vm.renewRequest();
    r.setLeaseMs(0);
    r.send().wait(ws);
  });
  expect_failed("delete unknown", "no such template", [&] {
    auto r = c.pool().deleteTemplateRequest();
    r.setName("nope");
    r.send().wait(ws);
  });
  // A payload just under the limit goes through.
  invoke_with("echo", (1u << 20) - 2 - 4, 0)();
}

TEST_F(RpcServerTest, ConcurrentClientsAllGetServed) {
  auto r = thaw::testing::run_concurrent_clients(socket_, 6, 20, [](PoolConnection& c) {
    auto vm = acquire(c, "mini", 10000, 2000);
    vm.releaseRequest().send().wait(c.wait_scope());
  });
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.ok + r.overloaded, 120);
  EXPECT_GT(r.ok, 100);
  PoolConnection c(socket_);
  EXPECT_EQ(leased(c), 0u);
}

}  // namespace
}  // namespace thaw::rpc
