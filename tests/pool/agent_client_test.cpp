// The invoke protocol's frames, and the host side against a fake vsock
// device (a unix socket that speaks CONNECT/OK and then the agent's frames).
#include "pool/agent_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>

#include "pool/invoke_protocol.h"
#include "tests/temp_dir.h"
#include "tests/unix_socket_support.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(InvokeFrames, RequestLayout) {
  std::vector<uint8_t> payload{1, 2, 3};
  auto frame = encode_invoke_request("echo", payload);
  std::vector<uint8_t> want{9, 0, 0, 0, 4, 0, 'e', 'c', 'h', 'o', 1, 2, 3};
  EXPECT_EQ(frame, want);
}

TEST(InvokeFrames, RequestLimits) {
  EXPECT_THROW(encode_invoke_request("", {}), BadArgument);
  EXPECT_THROW(encode_invoke_request(std::string(256, 'a'), {}), BadArgument);
  EXPECT_THROW(encode_invoke_request("a b", {}), BadArgument);
  std::vector<uint8_t> big(kMaxInvokeBytes, 0);
  EXPECT_THROW(encode_invoke_request("x", big), BadArgument);
  big.resize(kMaxInvokeBytes - 3);
  EXPECT_NO_THROW(encode_invoke_request("x", big));
}

TEST(InvokeFrames, ResponseHeader) {
  std::array<uint8_t, 12> bytes{11, 0, 0, 0, 3, 0, 0, 0, 0xe8, 0x03, 0, 0};
  auto h = decode_invoke_response_header(bytes);
  EXPECT_EQ(h.length, 11u);
  EXPECT_EQ(h.status, 3u);
  EXPECT_EQ(h.guest_us, 1000u);
  EXPECT_EQ(h.payload_bytes(), 3u);
  bytes[0] = 7;  // shorter than status + guest time
  EXPECT_THROW(decode_invoke_response_header(bytes), GuestGone);
  bytes = {0xff, 0xff, 0xff, 0x7f};
  EXPECT_THROW(decode_invoke_response_header(bytes), GuestGone);
}

// A fake vsock device with an agent behind it; `behaviour` answers one request.
class FakeDevice {
 public:
  using Behaviour = std::function<void(int fd)>;
  explicit FakeDevice(Behaviour behaviour) : behaviour_(std::move(behaviour)) {
    // Blocking, so the thread's accept waits for the client.
    EXPECT_NO_THROW(listen_fd_ = ::thaw::testing::blocking(listen_unix(path_)));
    EXPECT_TRUE(listen_fd_) << std::strerror(errno);
    thread_ = std::thread([this] {
      int fd = ::accept(listen_fd_.get(), nullptr, nullptr);
      if (fd < 0) return;
      behaviour_(fd);
      ::close(fd);
    });
  }
  // The socket file goes with dir_.
  ~FakeDevice() {
    ::shutdown(listen_fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::string path() const { return path_; }

  static std::string read_line(int fd) {
    std::string line;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }
  static std::vector<uint8_t> read_frame(int fd) {
    uint8_t len_bytes[4];
    read_exact(fd, len_bytes, 4);
    uint32_t len = len_bytes[0] | len_bytes[1] << 8 | len_bytes[2] << 16 | static_cast<uint32_t>(len_bytes[3]) << 24;
    std::vector<uint8_t> body(len);
    read_exact(fd, body.data(), len);
    return body;
  }
  static void read_exact(int fd, uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::read(fd, p, n);
      if (r <= 0) return;
      p += r;
      n -= static_cast<size_t>(r);
    }
  }
  static void write_all(int fd, const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

 private:
  Behaviour behaviour_;
  ::thaw::testing::TempDir dir_{"thaw-fake-vsock"};
  std::string path_ = dir_ / "agent.sock";
  UniqueFd listen_fd_;
  std::thread thread_;
};

std::vector<uint8_t> response(uint32_t status, uint32_t guest_us, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  put(static_cast<uint32_t>(8 + payload.size()));
  put(status);
  put(guest_us);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

AgentCall call_to(const std::string& path, const std::vector<uint8_t>& payload, std::chrono::milliseconds timeout) {
  AgentCall call;
  call.socket_path = path;
  call.port = kAgentPort;
  call.function = "echo";
  call.payload = payload;
  call.deadline = Clock::now() + timeout;
  return call;
}

TEST(AgentClient, EchoThroughTheDevice) {
  std::string hello, function;
  std::vector<uint8_t> request_payload;
  FakeDevice device([&](int fd) {
    hello = FakeDevice::read_line(fd);
    FakeDevice::write_all(fd, {'O', 'K', ' ', '1', '0', '7', '3', '\n'});
    auto body = FakeDevice::read_frame(fd);
    uint16_t name_len = static_cast<uint16_t>(body[0] | body[1] << 8);
    function.assign(body.begin() + 2, body.begin() + 2 + name_len);
    request_payload.assign(body.begin() + 2 + name_len, body.end());
    FakeDevice::write_all(fd, response(0, 2500, request_payload));
  });
  std::vector<uint8_t> payload{'h', 'i', 0, 255};
  auto result = call_agent(call_to(device.path(), payload, 5s));
  EXPECT_EQ(hello, "CONNECT 5000");
  EXPECT_EQ(function, "echo");
  EXPECT_EQ(request_payload, payload);
  EXPECT_EQ(result.status, 0u);
  EXPECT_EQ(result.payload, payload);
  EXPECT_DOUBLE_EQ(result.guest_ms, 2.5);
  EXPECT_GT(result.total_ms, 0);
}

TEST(AgentClient, RefusedConnectIsGuestGone) {
  FakeDevice device([](int fd) { FakeDevice::read_line(fd); });  // closes without OK: nobody listens on the port
  EXPECT_THROW(call_agent(call_to(device.path(), {}, 5s)), GuestGone);
}

TEST(AgentClient, NoSocketIsGuestGone) {
  EXPECT_THROW(call_agent(call_to("/nonexistent/thaw.sock", {}, 1s)), GuestGone);
}

TEST(AgentClient, SilentGuestTimesOutAtTheDeadline) {
  std::atomic<bool> done{false};
  FakeDevice device([&](int fd) {
    FakeDevice::read_line(fd);
    FakeDevice::write_all(fd, {'O', 'K', ' ', '1', '\n'});
    while (!done) std::this_thread::sleep_for(10ms);  // never answers
  });
  auto start = Clock::now();
  EXPECT_THROW(call_agent(call_to(device.path(), {}, 300ms)), GuestGone);
  auto took = Clock::now() - start;
  done = true;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 2s);
}

TEST(AgentClient, StoppedGuestEndsTheWaitEarly) {
  std::atomic<bool> done{false};
  FakeDevice device([&](int fd) {
    FakeDevice::read_line(fd);
    FakeDevice::write_all(fd, {'O', 'K', ' ', '1', '\n'});
    while (!done) std::this_thread::sleep_for(10ms);
  });
  auto call = call_to(device.path(), {}, 10s);
  auto start = Clock::now();
  call.why_gone = [start] { return Clock::now() - start > 100ms ? std::string("the guest stopped") : std::string(); };
  try {
    call_agent(call);
    ADD_FAILURE() << "no error";
  } catch (const GuestGone& e) {
    EXPECT_NE(std::string(e.what()).find("the guest stopped"), std::string::npos) << e.what();
  }
  done = true;
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST(AgentClient, TruncatedResponseIsGuestGone) {
  FakeDevice device([](int fd) {
    FakeDevice::read_line(fd);
    FakeDevice::write_all(fd, {'O', 'K', ' ', '1', '\n'});
    FakeDevice::read_frame(fd);
    auto r = response(0, 0, {1, 2, 3, 4});
    r.resize(r.size() - 2);  // the guest dies mid-answer
    FakeDevice::write_all(fd, r);
  });
  EXPECT_THROW(call_agent(call_to(device.path(), {}, 5s)), GuestGone);
}

}  // namespace
}  // namespace thaw::pool
