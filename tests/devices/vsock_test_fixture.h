// The vsock device driven as a guest driver would drive it: queues in fake
// RAM, the transport's registers, and real unix sockets on the host side.
// Shared by vsock_device_test.cpp (streams) and vsock_lifecycle_test.cpp.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "devices/virtio/vsock_device.h"
#include "tests/temp_dir.h"
#include "tests/unix_socket_support.h"
#include "virtio_test_support.h"

namespace thaw::devices::test {

using namespace std::chrono_literals;

inline constexpr uint64_t kRamBase = 0x100000;
inline constexpr uint64_t kRamSize = 0x400000;
inline constexpr uint16_t kQueueSize = 32;
inline constexpr uint32_t kRxBufferBytes = 44 + 4096;
inline constexpr uint64_t kGuestCid = 3;

struct Packet {
  VsockHeader hdr{};
  std::string data;
};

// A blocking host client of the device's socket; -1 where nothing accepts.
inline int connect_to(const std::string& path) { return ::thaw::testing::connect_unix_blocking(path).release(); }

// Reads what `fd` has within `timeout`, up to `want` bytes; "" on EOF.
inline std::string read_some(int fd, size_t want, std::chrono::milliseconds timeout = 5s) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < want) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// True when the peer closed `fd` within `timeout`: a read returns 0, or
// ECONNRESET when the peer closed with bytes of ours unread.
inline bool sees_eof(int fd, std::chrono::milliseconds timeout = 5s) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char c;
  const ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

// One device with its transport, fake guest memory and fake driver, and
// the driver's side of the vsock protocol. `muxer`: the muxer the device
// joins (none: it starts its own, as a one-off VM's does).
class VsockRig {
 public:
  explicit VsockRig(std::shared_ptr<VsockMuxer> muxer = nullptr) {
    path = dir + "/v.sock";
    device = std::make_shared<VsockDevice>(path, kGuestCid, nullptr, std::move(muxer));
    transport = std::make_unique<MmioTransport>(device, mem, irq);
    driver = std::make_unique<FakeDriver>(*transport, *mem);
  }
  VsockRig(const VsockRig&) = delete;
  VsockRig& operator=(const VsockRig&) = delete;
  virtual ~VsockRig() {
    for (int fd : fds) ::close(fd);
    driver.reset();
    transport.reset();
    device.reset();
  }

  // Brings the driver up and fills rx and event queues, as Linux's probe does.
  void bring_up(unsigned rx_count = 16) {
    ASSERT_TRUE(driver->negotiate(kVirtioFVersion1));
    uint64_t next = kRamBase;
    for (uint32_t q = 0; q < 3; ++q) next = (driver->setup_queue(q, kQueueSize, next) + 0xfff) & ~0xfffull;
    data_next = next;
    for (unsigned i = 0; i < rx_count; ++i) post_rx();
    post_event();
    driver->driver_ok();
  }
  uint64_t alloc(uint64_t bytes) {
    uint64_t at = data_next;
    data_next += (bytes + 15) & ~15ull;
    return at;
  }
  void post_rx() {
    // Linux's layout: the header and the data in two descriptors.
    uint64_t buf = alloc(kRxBufferBytes);
    uint16_t head = driver->add_chain(0, {{buf, 44, true}, {buf + 44, 4096, true}});
    rx_buffers[head] = buf;
  }
  void post_event() {
    event_buffer = alloc(8);
    driver->add_chain(2, {{event_buffer, 8, true}});
  }

  // Every packet the device has put in the rx queue by now (waiting up to
  // `timeout` for the first), buffers re-posted.
  std::vector<Packet> receive(std::chrono::milliseconds timeout = 5s) {
    std::vector<Packet> out;
    for (auto [head, len] : driver->wait_used(0, timeout)) {
      uint64_t buf = rx_buffers.at(head);
      Packet p;
      p.hdr = mem->get<VsockHeader>(buf);
      EXPECT_EQ(len, 44 + p.hdr.len);
      auto bytes = mem->slice(buf + 44, p.hdr.len);
      p.data.assign(bytes.begin(), bytes.end());
      out.push_back(p);
      rx_buffers.erase(head);
      post_rx();
    }
    driver->notify(0);
    return out;
  }
  Packet receive_one(uint16_t op) {
    auto packets = receive();
    EXPECT_EQ(packets.size(), 1u);
    if (packets.empty()) return {};
    EXPECT_EQ(packets[0].hdr.op, op);
    return packets[0];
  }

  VsockHeader guest_header(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t buf_alloc = 65536,
                           uint32_t fwd_cnt = 0) {
    VsockHeader h{};
    h.src_cid = kGuestCid;
    h.dst_cid = kVsockHostCid;
    h.src_port = src_port;
    h.dst_port = dst_port;
    h.type = kVsockTypeStream;
    h.op = op;
    h.buf_alloc = buf_alloc;
    h.fwd_cnt = fwd_cnt;
    return h;
  }
  // Puts one packet on the tx queue, notifies, and waits for the device to
  // give the buffer back.
  void send(VsockHeader h, const std::string& payload = {}) {
    h.len = static_cast<uint32_t>(payload.size());
    uint64_t buf = alloc(44 + payload.size());
    mem->put(buf, h);
    if (!payload.empty()) std::memcpy(mem->slice(buf + 44, payload.size()).data(), payload.data(), payload.size());
    // Header and payload in separate descriptors, as Linux sends them.
    if (payload.empty()) {
      driver->add_chain(1, {{buf, 44, false}});
    } else {
      driver->add_chain(1, {{buf, 44, false}, {buf + 44, static_cast<uint32_t>(payload.size()), false}});
    }
    driver->notify(1);
    auto used = driver->wait_used(1);
    ASSERT_EQ(used.size(), 1u);
  }

  // A host client that got through CONNECT <port>; returns its fd and the
  // REQUEST the guest saw.
  std::pair<int, Packet> host_connect(uint32_t port) {
    int fd = connect_to(path);
    fds.push_back(fd);
    std::string line = "CONNECT " + std::to_string(port) + "\n";
    EXPECT_EQ(::send(fd, line.data(), line.size(), 0), static_cast<ssize_t>(line.size()));
    return {fd, receive_one(kVsockOpRequest)};
  }
  // The whole handshake: CONNECT, REQUEST, RESPONSE, OK.
  std::pair<int, uint32_t> establish(uint32_t guest_port, uint32_t guest_buf_alloc = 65536) {
    auto [fd, request] = host_connect(guest_port);
    send(guest_header(guest_port, request.hdr.src_port, kVsockOpResponse, guest_buf_alloc));
    std::string ok = "OK " + std::to_string(request.hdr.src_port) + "\n";
    EXPECT_EQ(read_some(fd, ok.size()), ok);
    return {fd, request.hdr.src_port};
  }

  ::thaw::testing::TempDir scratch{"thaw-vsock"};  // declared before the device: removed after it
  std::string dir = scratch.path();
  std::string path;
  std::shared_ptr<FakeGuestMemory> mem = std::make_shared<FakeGuestMemory>(kRamBase, kRamSize);
  std::shared_ptr<CountingInterrupt> irq = std::make_shared<CountingInterrupt>();
  std::shared_ptr<VsockDevice> device;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<FakeDriver> driver;
  std::map<uint16_t, uint64_t> rx_buffers;
  uint64_t event_buffer = 0;
  uint64_t data_next = 0;
  std::vector<int> fds;
};

class VsockTest : public ::testing::Test, public VsockRig {};

}  // namespace thaw::devices::test
