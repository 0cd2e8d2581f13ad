// What one unauthenticated peer can make thawd hold: the framing guard on
// its own (MessageGuardStream), then the real listener and PoolServer on a
// real unix socket, fed raw bytes by a client that misbehaves. No KVM.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "rpc/message_guard_stream.h"
#include "rpc/pool_client.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/unit/fake_pool_backend.h"
#include "tests/rpc/unit/in_process_server.h"
#include "tests/temp_dir.h"
#include "tests/unix_socket_support.h"

namespace thaw::rpc {
namespace {

// A Cap'n Proto stream frame header: segment count - 1, then each size in words.
std::vector<kj::byte> frame_header(const std::vector<uint32_t>& segment_words) {
  std::vector<uint32_t> table = {static_cast<uint32_t>(segment_words.size() - 1)};
  table.insert(table.end(), segment_words.begin(), segment_words.end());
  if (table.size() % 2 != 0) table.push_back(0);
  std::vector<kj::byte> out(table.size() * 4);
  std::memcpy(out.data(), table.data(), out.size());
  return out;
}

struct GuardFixture {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::TwoWayPipe pipe = kj::newTwoWayPipe();
  std::vector<MessageGuardStream::Violation> violations;
  MessageGuardStream guard{kj::mv(pipe.ends[0]), io.provider->getTimer(),
                           MessageGuardStream::Limits{4096, 100 * kj::MILLISECONDS},
                           [this](MessageGuardStream::Violation v, const std::string&) { violations.push_back(v); }};
};

TEST(MessageGuardStream, FollowsMessagesFedInAnyChunksAcrossSegmentsAndPadding) {
  GuardFixture f;
  std::vector<kj::byte> stream;
  std::set<size_t> ends;  // where each message ends
  for (const auto& sizes : std::vector<std::vector<uint32_t>>{{2}, {1, 3}, {0}, {1, 1, 1}}) {
    auto header = frame_header(sizes);
    stream.insert(stream.end(), header.begin(), header.end());
    uint32_t words = 0;
    for (auto w : sizes) words += w;
    stream.insert(stream.end(), words * 8, 0xab);
    ends.insert(stream.size());
  }
  EXPECT_EQ(ends, (std::set<size_t>{24, 72, 80, 120}));  // the padding of a 3-entry table included
  // One byte at a time: the guard is between messages exactly at their ends.
  for (size_t i = 0; i < stream.size(); ++i) {
    f.guard.feed(&stream[i], 1);
    EXPECT_EQ(f.guard.in_message(), ends.count(i + 1) == 0) << "after byte " << i;
  }
  EXPECT_FALSE(f.guard.in_message());
  // All at once.
  f.guard.feed(stream.data(), stream.size());
  EXPECT_FALSE(f.guard.in_message());
  EXPECT_TRUE(f.violations.empty());
}

// Many peers together cannot pin what one may not: streams sharing a budget
// refuse a message whose declared size would put the sum over it, and a
// finished (or closed) message gives its share back.
TEST(MessageGuardStream, StreamsSharingABudgetRefuseAMessageThatWouldOverrunIt) {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  MessageGuardStream::InFlightBudget budget;
  budget.limit_bytes = 6000;
  std::vector<MessageGuardStream::Violation> violations;
  auto guard = [&] {
    auto pipe = kj::newTwoWayPipe();
    return kj::heap<MessageGuardStream>(
        kj::mv(pipe.ends[0]), io.provider->getTimer(),
        MessageGuardStream::Limits{4096, 100 * kj::MILLISECONDS, &budget},
        [&](MessageGuardStream::Violation v, const std::string&) { violations.push_back(v); });
  };
  auto header = frame_header({500});  // 4000 bytes declared
  auto a = guard();
  a->feed(header.data(), header.size());
  EXPECT_EQ(budget.used_bytes.load(), 4000u);
  auto b = guard();
  EXPECT_THROW(b->feed(header.data(), header.size()), kj::Exception);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0], MessageGuardStream::Violation::kOverBudget);
  EXPECT_EQ(budget.used_bytes.load(), 4000u) << "the refused message holds nothing";
  // a's message arrives: its share comes back, and b's next message fits.
  std::vector<kj::byte> body(4000, 0x5a);
  a->feed(body.data(), body.size());
  EXPECT_EQ(budget.used_bytes.load(), 0u);
  auto c = guard();
  c->feed(header.data(), header.size());
  EXPECT_EQ(budget.used_bytes.load(), 4000u);
  c = nullptr;  // a connection that closes mid-message gives its share back too
  EXPECT_EQ(budget.used_bytes.load(), 0u);
}

TEST(MessageGuardStream, AMessageDeclaredOverTheLimitIsRefusedAtItsHeader) {
  GuardFixture f;
  auto header = frame_header({1, 8u << 20});  // 64 MiB + 8 bytes
  try {
    f.guard.feed(header.data(), header.size());
    ADD_FAILURE() << "a 64 MiB message was accepted";
  } catch (const kj::Exception& e) {
    EXPECT_EQ(e.getType(), kj::Exception::Type::DISCONNECTED);
    EXPECT_NE(std::string(e.getDescription().cStr()).find("over the limit of 4096"), std::string::npos)
        << e.getDescription().cStr();
  }
  ASSERT_EQ(f.violations.size(), 1u);
  EXPECT_EQ(f.violations[0], MessageGuardStream::Violation::kOversized);
}

// Whether the server closed `fd` (EOF or reset) within `within`. What it
// sent first (Cap'n Proto's Abort message with the reason) is skipped.
bool closed_by_peer(int fd, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
}

class ConnectionLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_.path() + "/thaw.sock";
    pool::TemplateSpec spec;
    spec.name = "mini";
    spec.kernel = "/fake/kernel";
    backend_.create_template(spec, pool::PoolPolicy{1, 2, 1024});
    ConnectionLimits limits;
    limits.max_connections = 3;
    limits.message.max_message_bytes = 64 * 1024;
    limits.message.message_timeout = 300 * kj::MILLISECONDS;
    limits.max_inflight_bytes = 100 * 1024;  // one 64 KiB message, not two
    server_ = std::make_unique<InProcessServer>(backend_, socket_, limits);
  }
  // A real client still gets served.
  void expect_served() {
    PoolConnection c(socket_);
    auto vm = thaw::testing::acquire(c);
    vm.releaseRequest().send().wait(c.wait_scope());
  }

  testing::FakePoolBackend backend_;
  thaw::testing::TempDir dir_{"thaw-rpc-limits"};
  std::string socket_;
  std::unique_ptr<InProcessServer> server_;
};

TEST_F(ConnectionLimitsTest, AHugeDeclaredMessageIsClosedAtOnce) {
  auto fd = thaw::testing::connect_unix_blocking(socket_);
  ASSERT_TRUE(fd.valid());
  auto header = frame_header({8u << 20});  // declares 64 MiB, sends none of it
  ASSERT_EQ(::send(fd.get(), header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  EXPECT_TRUE(closed_by_peer(fd.get(), std::chrono::seconds(5)));
  EXPECT_EQ(server_->counters().oversized_messages.load(), 1u);
  expect_served();
}

// Two peers that each begin a message under the per-message limit but
// together over max_inflight_bytes: whichever header the server reads
// second is closed at once, the other stalls out later.
TEST_F(ConnectionLimitsTest, MessagesInFlightAcrossConnectionsAreBounded) {
  auto header = frame_header({7000});  // 56,000 bytes announced, none sent
  auto first = thaw::testing::connect_unix_blocking(socket_);
  auto second = thaw::testing::connect_unix_blocking(socket_);
  ASSERT_EQ(::send(first.get(), header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  ASSERT_EQ(::send(second.get(), header.data(), header.size(), 0), static_cast<ssize_t>(header.size()));
  EXPECT_TRUE(closed_by_peer(first.get(), std::chrono::seconds(5)));
  EXPECT_TRUE(closed_by_peer(second.get(), std::chrono::seconds(5)));
  EXPECT_EQ(server_->counters().over_budget_messages.load(), 1u);
  EXPECT_EQ(server_->counters().stalled_messages.load(), 1u);
  expect_served();  // the shares came back
}

TEST_F(ConnectionLimitsTest, AMessageThatStallsIsClosedAfterTheTimeout) {
  auto fd = thaw::testing::connect_unix_blocking(socket_);
  ASSERT_TRUE(fd.valid());
  auto header = frame_header({128});  // 1 KiB announced, 16 bytes sent
  std::vector<kj::byte> partial(header.begin(), header.end());
  partial.insert(partial.end(), 16, 0);
  ASSERT_EQ(::send(fd.get(), partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  EXPECT_FALSE(closed_by_peer(fd.get(), std::chrono::milliseconds(50))) << "closed before its deadline";
  EXPECT_TRUE(closed_by_peer(fd.get(), std::chrono::seconds(5)));
  EXPECT_EQ(server_->counters().stalled_messages.load(), 1u);
  expect_served();
}

TEST_F(ConnectionLimitsTest, ConnectionsOverTheCapAreClosedAndServedAgainOnceOneCloses) {
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(thaw::testing::connect_unix_blocking(socket_));
    ASSERT_TRUE(idle.back().valid());
  }
  // Idle connections are legitimate (a client between requests) and stay.
  EXPECT_FALSE(closed_by_peer(idle[0].get(), std::chrono::milliseconds(400)));
  auto extra = thaw::testing::connect_unix_blocking(socket_);
  ASSERT_TRUE(extra.valid());
  EXPECT_TRUE(closed_by_peer(extra.get(), std::chrono::seconds(5)));
  EXPECT_EQ(server_->counters().refused_over_limit.load(), 1u);
  idle.pop_back();
  for (int i = 0; i < 100 && server_->counters().open.load() >= 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  expect_served();
}

}  // namespace
}  // namespace thaw::rpc
