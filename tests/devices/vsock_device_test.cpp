// Drives the vsock device as a guest driver would (vsock_test_fixture.h):
// streams opened from either side, data both ways, credit, RST.
#include "vsock_test_fixture.h"

namespace thaw::devices {
namespace {

using namespace test;
using namespace std::chrono_literals;

TEST_F(VsockTest, ConfigHoldsTheGuestCid) {
  EXPECT_EQ(driver->read32(virtio_mmio::kDeviceId), 19u);
  uint64_t cid = 0;
  transport->read(virtio_mmio::kConfig, {reinterpret_cast<uint8_t*>(&cid), 8});
  EXPECT_EQ(cid, kGuestCid);
  EXPECT_EQ(driver->read32(virtio_mmio::kConfig), kGuestCid);
  EXPECT_EQ(driver->read32(virtio_mmio::kConfig + 4), 0u);
}

TEST_F(VsockTest, HostConnectGetsOkAfterResponseThenDataFlowsBothWays) {
  bring_up();
  auto [fd, request] = host_connect(5000);
  EXPECT_EQ(request.hdr.src_cid, kVsockHostCid);
  EXPECT_EQ(request.hdr.dst_cid, kGuestCid);
  EXPECT_EQ(request.hdr.dst_port, 5000u);
  EXPECT_GE(request.hdr.src_port, kVsockFirstHostPort);
  EXPECT_EQ(request.hdr.type, kVsockTypeStream);
  EXPECT_EQ(request.hdr.buf_alloc, kVsockConnBufferBytes);
  EXPECT_GT(irq->count, 0);
  const uint32_t host_port = request.hdr.src_port;

  send(guest_header(5000, host_port, kVsockOpResponse));
  const std::string ok = "OK " + std::to_string(host_port) + "\n";
  EXPECT_EQ(read_some(fd, ok.size()), ok);

  ASSERT_EQ(::send(fd, "hello", 5, 0), 5);
  Packet rw = receive_one(kVsockOpRw);
  EXPECT_EQ(rw.data, "hello");
  EXPECT_EQ(rw.hdr.src_port, host_port);
  EXPECT_EQ(rw.hdr.dst_port, 5000u);

  send(guest_header(5000, host_port, kVsockOpRw), "world");
  EXPECT_EQ(read_some(fd, 5), "world");
  EXPECT_EQ(device->connection_count(), 1u);
}

TEST_F(VsockTest, DataSentWithTheConnectLineIsKept) {
  bring_up();
  int fd = connect_to(path);
  fds.push_back(fd);
  const std::string both = "CONNECT 5000\nearly";
  ASSERT_EQ(::send(fd, both.data(), both.size(), 0), static_cast<ssize_t>(both.size()));
  Packet request = receive_one(kVsockOpRequest);
  send(guest_header(5000, request.hdr.src_port, kVsockOpResponse));
  const std::string ok = "OK " + std::to_string(request.hdr.src_port) + "\n";
  EXPECT_EQ(read_some(fd, ok.size()), ok);
  EXPECT_EQ(receive_one(kVsockOpRw).data, "early");
}

TEST_F(VsockTest, RefusedConnectClosesTheClient) {
  bring_up();
  auto [fd, request] = host_connect(5001);
  send(guest_header(5001, request.hdr.src_port, kVsockOpRst));
  EXPECT_TRUE(sees_eof(fd));
  EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, MalformedConnectLineClosesTheClient) {
  bring_up();
  int fd = connect_to(path);
  fds.push_back(fd);
  ASSERT_EQ(::send(fd, "HELLO 1\n", 8, 0), 8);
  EXPECT_TRUE(sees_eof(fd));
}

TEST_F(VsockTest, HostSendsNoMoreThanTheGuestsCredit) {
  bring_up();
  auto [fd, port] = establish(5000, /*guest_buf_alloc=*/8);
  ASSERT_EQ(::send(fd, "0123456789abcdefghij", 20, 0), 20);
  // 8 bytes fit; then the device asks for credit instead of sending more.
  std::string got;
  bool asked = false;
  for (int i = 0; i < 5 && !(got.size() == 8 && asked); ++i) {
    for (const auto& p : receive()) {
      if (p.hdr.op == kVsockOpRw) got += p.data;
      if (p.hdr.op == kVsockOpCreditRequest) asked = true;
    }
  }
  EXPECT_EQ(got, "01234567");
  EXPECT_TRUE(asked);
  // The guest consumed all 8 and says so: 8 more come.
  send(guest_header(5000, port, kVsockOpCreditUpdate, 8, 8));
  got.clear();
  for (int i = 0; i < 5 && got.size() < 8; ++i) {
    for (const auto& p : receive()) {
      if (p.hdr.op == kVsockOpRw) got += p.data;
    }
  }
  EXPECT_EQ(got, "89abcdef");
}

TEST_F(VsockTest, DeviceTellsTheGuestWhatReachedTheHost) {
  bring_up();
  auto [fd, port] = establish(5000);
  // A CREDIT_REQUEST is answered at once.
  send(guest_header(5000, port, kVsockOpRw), "abc");
  EXPECT_EQ(read_some(fd, 3), "abc");
  send(guest_header(5000, port, kVsockOpCreditRequest));
  Packet update = receive_one(kVsockOpCreditUpdate);
  EXPECT_EQ(update.hdr.fwd_cnt, 3u);
  EXPECT_EQ(update.hdr.buf_alloc, kVsockConnBufferBytes);

  // Sending over half the buffer brings an update without being asked.
  const std::string chunk(16384, 'x');
  size_t sent = 0;
  while (sent < kVsockConnBufferBytes / 2 + chunk.size()) {
    send(guest_header(5000, port, kVsockOpRw), chunk);
    sent += chunk.size();
    EXPECT_EQ(read_some(fd, chunk.size()).size(), chunk.size());
  }
  auto packets = receive();
  ASSERT_FALSE(packets.empty());
  EXPECT_EQ(packets[0].hdr.op, kVsockOpCreditUpdate);
  EXPECT_GE(packets[0].hdr.fwd_cnt, kVsockConnBufferBytes / 2);
}

TEST_F(VsockTest, GuestSendingBeyondItsCreditIsReset) {
  bring_up();
  auto [fd, port] = establish(5000);
  // Nobody reads fd, so the socket buffer fills and the device buffers the
  // rest, up to the credit it gave; one byte more is a protocol violation.
  const std::string chunk(kVsockMaxPayload, 'y');
  bool reset = false;
  for (uint32_t i = 0; i < kVsockConnBufferBytes / chunk.size() + 40 && !reset; ++i) {
    send(guest_header(5000, port, kVsockOpRw), chunk);
    for (const auto& p : receive(10ms)) reset |= p.hdr.op == kVsockOpRst;
  }
  EXPECT_TRUE(reset);
  EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, GuestConnectsToAHostPortSocket) {
  bring_up();
  // Blocking, so the accept below waits for the device's connection.
  UniqueFd listening;
  ASSERT_NO_THROW(listening = ::thaw::testing::blocking(listen_unix(path + "_6000")));
  ASSERT_TRUE(listening);
  const int listener = listening.release();
  fds.push_back(listener);

  send(guest_header(1234, 6000, kVsockOpRequest));
  Packet response = receive_one(kVsockOpResponse);
  EXPECT_EQ(response.hdr.src_port, 6000u);
  EXPECT_EQ(response.hdr.dst_port, 1234u);
  int fd = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  fds.push_back(fd);

  send(guest_header(1234, 6000, kVsockOpRw), "ping");
  EXPECT_EQ(read_some(fd, 4), "ping");
  ASSERT_EQ(::send(fd, "pong", 4, 0), 4);
  EXPECT_EQ(receive_one(kVsockOpRw).data, "pong");

  // No socket for port 6001: refused.
  send(guest_header(1235, 6001, kVsockOpRequest));
  Packet rst = receive_one(kVsockOpRst);
  EXPECT_EQ(rst.hdr.dst_port, 1235u);
}

}  // namespace
}  // namespace thaw::devices
