// The mini guest's invoke agent (thaw.after=agent) over thaw's virtio-vsock
// device, booted on /dev/kvm through the real VMM: the host connects to the
// VM's unix socket (Firecracker's "CONNECT <port>\n" convention) and speaks
// pool/invoke_protocol.h to the guest's port 5000.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pool/invoke_protocol.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/vm_snapshot.h"
#include "tests/integration/kvm_test_support.h"
#include "tests/integration/stream_io.h"
#include "tests/integration/snapshot_test_support.h"
#include "tests/unix_socket_support.h"
#include "vmm/control_page.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using testing::CapturedConsole;

// guest/mini/control_page_abi.h, through vmm/control_page.h
using vmm::ControlPage;
constexpr uint64_t kControlPageAddr = vmm::kControlPageAddress;
constexpr uint64_t kControlMagic = vmm::kControlPageMagic;

struct Response {
  uint32_t status = 0xffffffff;
  uint32_t guest_us = 0;
  std::vector<uint8_t> payload;
};

// A connected client of the VM's vsock socket, blocking with a deadline.
class AgentClient {
 public:
  explicit AgentClient(int fd) : fd_(fd) {}
  ~AgentClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  bool send_all(const void* data, size_t size) { return testing::send_all(fd_, data, size); }
  bool recv_all(void* data, size_t size, std::chrono::milliseconds timeout = 20s) {
    return testing::recv_all(fd_, data, size, timeout);
  }

  std::string read_line(std::chrono::milliseconds timeout = 20s) {
    std::string line;
    char c;
    while (recv_all(&c, 1, timeout)) {
      line += c;
      if (c == '\n') break;
    }
    return line;
  }

  // True when the peer closed the stream (EOF) within the timeout.
  bool closed_within(std::chrono::milliseconds timeout) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, MSG_DONTWAIT) == 0;
  }

  static std::vector<uint8_t> request(const std::string& name, const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> out;
    auto put = [&out](const void* p, size_t n) {
      auto* b = static_cast<const uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    };
    uint32_t length = static_cast<uint32_t>(2 + name.size() + payload.size());
    uint16_t name_len = static_cast<uint16_t>(name.size());
    put(&length, 4);
    put(&name_len, 2);
    put(name.data(), name.size());
    put(payload.data(), payload.size());
    return out;
  }

  std::optional<Response> read_response(std::chrono::milliseconds timeout = 20s) {
    uint32_t head[3];
    if (!recv_all(head, sizeof head, timeout)) return std::nullopt;
    if (head[0] < 8 || head[0] > pool::kMaxInvokeBytes) return std::nullopt;
    Response r;
    r.status = head[1];
    r.guest_us = head[2];
    r.payload.resize(head[0] - 8);
    if (!recv_all(r.payload.data(), r.payload.size(), timeout)) return std::nullopt;
    return r;
  }

  std::optional<Response> invoke(const std::string& name, const std::vector<uint8_t>& payload) {
    auto bytes = request(name, payload);
    if (!send_all(bytes.data(), bytes.size())) return std::nullopt;
    return read_response();
  }

  int fd() const { return fd_; }

 private:
  int fd_;
};

std::vector<uint8_t> u64_payload(uint64_t v) {
  std::vector<uint8_t> out(8);
  std::memcpy(out.data(), &v, 8);
  return out;
}

uint64_t u64_at(const std::vector<uint8_t>& bytes, size_t offset) {
  uint64_t v = 0;
  if (offset + 8 <= bytes.size()) std::memcpy(&v, bytes.data() + offset, 8);
  return v;
}

std::string unique_socket_path() {
  static int counter = 0;
  return (std::filesystem::temp_directory_path() /
          ("thaw-agent-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".sock"))
      .string();
}

// Connects to the device's socket and asks for the agent's port; nullptr
// when the guest did not accept ("OK <port>\n") in time.
std::unique_ptr<AgentClient> connect_agent(const std::string& path, std::string* reply = nullptr) {
  UniqueFd fd = testing::connect_unix_blocking(path);
  if (!fd) return nullptr;
  auto client = std::make_unique<AgentClient>(fd.release());
  const std::string line = "CONNECT " + std::to_string(pool::kAgentPort) + "\n";
  if (!client->send_all(line.data(), line.size())) return nullptr;
  std::string ok = client->read_line();
  if (reply) *reply = ok;
  if (ok.rfind("OK ", 0) != 0 || ok.back() != '\n') return nullptr;
  return client;
}

class GuestAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto why = ::thaw::testing::kvm_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << "needs KVM: " << why;
    socket_path_ = unique_socket_path();
    auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=agent", console_);
    config.boot_complete_action = vmm::BootCompleteAction::kContinue;
    config.vsock_path = socket_path_;
    vm_ = vmm::Vm::create(config);
    vm_->start();
    // "ready" is printed just before the boot-complete write.
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!vm_->boot_complete_after() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(vm_->boot_complete_after().has_value()) << console_.text();
  }

  void TearDown() override {
    if (vm_) vm_->stop();
    vm_.reset();
  }

  CapturedConsole console_;
  std::string socket_path_;
  std::unique_ptr<vmm::Vm> vm_;
};

TEST_F(GuestAgentTest, AnnouncesItsDeviceBeforeReady) {
  EXPECT_TRUE(console_.contains("thaw-mini: agent: vsock cid 3 at 0xd0001000 irq 5 port 5000 tsc "))
      << console_.text();
}

TEST_F(GuestAgentTest, EchoHashAndIdentity) {
  const ControlPage page{kControlMagic, 4, 17, 0x0123456789abcdefULL, 1'700'000'000'123'456'789ULL, 0};
  vm_->memory().write_obj(vmm::GuestAddress(kControlPageAddr), page, "control page");

  std::string reply;
  auto agent = connect_agent(socket_path_, &reply);
  ASSERT_TRUE(agent) << "reply '" << reply << "'\n" << console_.text();

  const std::vector<uint8_t> hello = {'h', 'e', 'l', 'l', 'o'};
  auto echo = agent->invoke("echo", hello);
  ASSERT_TRUE(echo) << console_.text();
  EXPECT_EQ(echo->status, pool::kInvokeOk);
  EXPECT_EQ(echo->payload, hello);

  for (uint64_t n : {0ULL, 4096ULL, 1ULL << 20}) {
    auto hash = agent->invoke("hash", u64_payload(n));
    ASSERT_TRUE(hash) << "hash " << n << "\n" << console_.text();
    EXPECT_EQ(hash->status, pool::kInvokeOk);
    ASSERT_EQ(hash->payload.size(), 8u);
    EXPECT_EQ(testing::hex16(u64_at(hash->payload, 0)), testing::hex16(testing::mini_guest_fnv1a(n))) << n;
  }

  auto id = agent->invoke("identity", {});
  ASSERT_TRUE(id) << console_.text();
  EXPECT_EQ(id->status, pool::kInvokeOk);
  ASSERT_EQ(id->payload.size(), 32u);
  EXPECT_EQ(u64_at(id->payload, 0), page.generation);
  EXPECT_EQ(u64_at(id->payload, 8), page.clone_id);
  EXPECT_EQ(u64_at(id->payload, 16), page.seed);
  EXPECT_EQ(u64_at(id->payload, 24), page.wall_ns);
}

TEST_F(GuestAgentTest, ErrorsTouchSleepAndLargePayloads) {
  auto agent = connect_agent(socket_path_);
  ASSERT_TRUE(agent) << console_.text();

  auto unknown = agent->invoke("nope", {1, 2, 3});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, pool::kInvokeUnknownFunction);
  EXPECT_TRUE(unknown->payload.empty());

  auto short_hash = agent->invoke("hash", {1, 2, 3});
  ASSERT_TRUE(short_hash);
  EXPECT_EQ(short_hash->status, pool::kInvokeBadRequest);

  // A name longer than the request: bad request, and the stream stays in step.
  const uint8_t bad[] = {3, 0, 0, 0, 9, 0, 'x'};
  ASSERT_TRUE(agent->send_all(bad, sizeof bad));
  auto bad_reply = agent->read_response();
  ASSERT_TRUE(bad_reply);
  EXPECT_EQ(bad_reply->status, pool::kInvokeBadRequest);

  auto touch = agent->invoke("touch", u64_payload(2));
  ASSERT_TRUE(touch) << console_.text();
  EXPECT_EQ(touch->status, pool::kInvokeOk);
  EXPECT_EQ(u64_at(touch->payload, 0), 512u);  // 2 MiB of 4 KiB pages

  auto start = std::chrono::steady_clock::now();
  auto sleep = agent->invoke("sleep", u64_payload(50));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(sleep);
  EXPECT_EQ(sleep->status, pool::kInvokeOk);
  EXPECT_GE(took, 45ms);
  EXPECT_LT(took, 5s);
  // The guest's own figure, if it knows its TSC rate: about 50 ms. A sanity
  // range only: the rate is calibrated over a few ms of boot, and a host
  // stall inside that window makes it read high, so guest_us reads low.
  if (sleep->guest_us != 0) {
    EXPECT_GE(sleep->guest_us, 20'000u);
    EXPECT_LT(sleep->guest_us, 1'000'000u);
  }

  // Larger than the device's 256 KiB credit and the guest's 4 KiB rx
  // buffers: many packets and credit updates both ways.
  std::vector<uint8_t> big(700 * 1024);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7 + (i >> 12));
  auto echo = agent->invoke("echo", big);
  ASSERT_TRUE(echo) << console_.text();
  EXPECT_EQ(echo->status, pool::kInvokeOk);
  EXPECT_TRUE(echo->payload == big);

  // Pipelined: three requests in one write, three responses in order.
  std::vector<uint8_t> batch;
  for (uint64_t n : {1ULL, 2ULL, 3ULL}) {
    auto r = AgentClient::request("hash", u64_payload(n));
    batch.insert(batch.end(), r.begin(), r.end());
  }
  ASSERT_TRUE(agent->send_all(batch.data(), batch.size()));
  for (uint64_t n : {1ULL, 2ULL, 3ULL}) {
    auto r = agent->read_response();
    ASSERT_TRUE(r) << n;
    EXPECT_EQ(u64_at(r->payload, 0), testing::mini_guest_fnv1a(n));
  }
}

TEST_F(GuestAgentTest, OneConnectionAfterAnother) {
  for (int round = 0; round < 3; ++round) {
    auto agent = connect_agent(socket_path_);
    ASSERT_TRUE(agent) << "round " << round << "\n" << console_.text();
    auto hash = agent->invoke("hash", u64_payload(100 + round));
    ASSERT_TRUE(hash) << round;
    EXPECT_EQ(u64_at(hash->payload, 0), testing::mini_guest_fnv1a(100 + round));
    // Half close: the agent serves what it has, then closes its side.
    if (round == 1) {
      auto r = AgentClient::request("echo", {42});
      ASSERT_TRUE(agent->send_all(r.data(), r.size()));
      ::shutdown(agent->fd(), SHUT_WR);
      auto echo = agent->read_response();
      ASSERT_TRUE(echo);
      EXPECT_EQ(echo->payload, std::vector<uint8_t>{42});
      EXPECT_TRUE(agent->closed_within(5s));
    }
  }
}

TEST_F(GuestAgentTest, OversizedRequestIsRefusedAndClosed) {
  auto agent = connect_agent(socket_path_);
  ASSERT_TRUE(agent);
  const uint32_t too_long = pool::kMaxInvokeBytes + 1;
  ASSERT_TRUE(agent->send_all(&too_long, sizeof too_long));
  auto r = agent->read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, pool::kInvokeBadRequest);
  EXPECT_TRUE(agent->closed_within(5s));
  // The agent listens again.
  auto next = connect_agent(socket_path_);
  ASSERT_TRUE(next) << console_.text();
  auto echo = next->invoke("echo", {1});
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->status, pool::kInvokeOk);
}

TEST_F(GuestAgentTest, CrashEndsTheVmAsGuestFailure) {
  auto agent = connect_agent(socket_path_);
  ASSERT_TRUE(agent);
  auto bytes = AgentClient::request("crash", {});
  ASSERT_TRUE(agent->send_all(bytes.data(), bytes.size()));
  ASSERT_TRUE(vm_->wait(30s)) << console_.text();
  EXPECT_EQ(vm_->stop_reason(), vmm::StopReason::kGuestFailure) << vm_->stop_detail();
  EXPECT_TRUE(console_.contains("thaw-mini: EXCEPTION #UD (vector 6)")) << console_.text();
}

// "touch" stops at the end of RAM: with 24 MiB the area from 16 MiB holds 8.
TEST(GuestAgentSmallRam, TouchIsCappedAtTheEndOfRam) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=agent", console);
  config.mem_mib = 24;
  config.boot_complete_action = vmm::BootCompleteAction::kContinue;
  config.vsock_path = unique_socket_path();
  auto vm = vmm::Vm::create(config);
  vm->start();
  auto agent = connect_agent(config.vsock_path);
  ASSERT_TRUE(agent) << console.text();
  auto touch = agent->invoke("touch", u64_payload(1000));
  ASSERT_TRUE(touch) << console.text();
  EXPECT_EQ(touch->status, pool::kInvokeOk);
  EXPECT_EQ(u64_at(touch->payload, 0), 8u * 256);
  vm->stop();
}

// The pool's path: snapshot the agent at its boot-complete write, restore
// clones (each with its own socket and control page), invoke them. The
// restored device starts with no connections and posts TRANSPORT_RESET.
TEST(GuestAgentClones, RestoredClonesServeWithTheirOwnIdentity) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  {
    CapturedConsole console;
    auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=agent", console);
    config.boot_complete_action = vmm::BootCompleteAction::kPause;
    config.vsock_path = unique_socket_path();
    auto vm = vmm::Vm::create(config);
    ASSERT_NO_THROW(snapshot::boot_and_snapshot(*vm, dir.path(), 60s)) << console.text();
  }
  auto loaded = snapshot::read_snapshot_dir(dir.path());
  for (uint64_t id = 1; id <= 3; ++id) {
    CapturedConsole console;
    snapshot::RestoreOptions options;
    options.console = console.sink();
    options.vsock_path = unique_socket_path();
    auto clone = snapshot::restore_vm(loaded, options);
    const testing::ControlPage page{testing::kControlMagic, 10 + id, id, 0x1111 * id, 1'700'000'000'000'000'000ULL + id, 0};
    clone.vm->memory().write_obj(vmm::GuestAddress(testing::kControlPage), page, "control page");
    clone.vm->start();

    auto agent = connect_agent(options.vsock_path);
    ASSERT_TRUE(agent) << "clone " << id << "\n" << console.text();
    auto identity = agent->invoke("identity", {});
    ASSERT_TRUE(identity) << console.text();
    ASSERT_EQ(identity->payload.size(), 32u);
    EXPECT_EQ(u64_at(identity->payload, 0), page.generation);
    EXPECT_EQ(u64_at(identity->payload, 8), page.clone_id);
    EXPECT_EQ(u64_at(identity->payload, 16), page.seed);
    EXPECT_EQ(u64_at(identity->payload, 24), page.wall_ns);
    auto hash = agent->invoke("hash", u64_payload(4096 + id));
    ASSERT_TRUE(hash);
    EXPECT_EQ(u64_at(hash->payload, 0), testing::mini_guest_fnv1a(4096 + id));
    EXPECT_FALSE(console.contains("thaw-mini: booting")) << "a clone continues, it does not boot again";
    clone.vm->stop();
  }
}

}  // namespace
}  // namespace thaw
