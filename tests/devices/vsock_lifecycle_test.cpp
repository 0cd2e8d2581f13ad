// The vsock device's life cycle (vsock_test_fixture.h): closing streams from
// either side, malformed and hostile guest input, restore, pausing for a
// snapshot, and the socket file.
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "base/errors.h"
#include "vsock_test_fixture.h"

namespace thaw::devices {
namespace {

using namespace test;
using namespace std::chrono_literals;

TEST_F(VsockTest, GuestShutdownClosesTheHostSideAndResets) {
  bring_up();
  auto [fd, port] = establish(5000);
  send(guest_header(5000, port, kVsockOpRw), "bye");
  send(guest_header(5000, port, kVsockOpShutdown), "");
  // SHUTDOWN with no flags changes nothing; with both the stream ends.
  VsockHeader both = guest_header(5000, port, kVsockOpShutdown);
  both.flags = kVsockShutdownRcv | kVsockShutdownSend;
  send(both);
  EXPECT_EQ(read_some(fd, 3), "bye");
  EXPECT_TRUE(sees_eof(fd));
  receive_one(kVsockOpRst);
  EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, GuestHalfCloseShutsTheHostWriteSide) {
  bring_up();
  auto [fd, port] = establish(5000);
  VsockHeader h = guest_header(5000, port, kVsockOpShutdown);
  h.flags = kVsockShutdownSend;
  send(h);
  EXPECT_TRUE(sees_eof(fd));
  // The other direction still works.
  ASSERT_EQ(::send(fd, "more", 4, 0), 4);
  EXPECT_EQ(receive_one(kVsockOpRw).data, "more");
}

TEST_F(VsockTest, HostCloseSendsShutdownThenGuestRstEndsIt) {
  bring_up();
  auto [fd, port] = establish(5000);
  ::close(fd);
  fds.clear();
  // The device reports the close as SHUTDOWN with both flags: in one packet
  // when it sees EOF and the hang-up together, in two when a slow host
  // (emulated CPUs) sees them apart. Either is the spec's "will neither
  // send nor receive"; nothing else may come in between.
  uint32_t flags = 0;
  for (int packets = 0; packets < 2 && flags != (kVsockShutdownRcv | kVsockShutdownSend); ++packets) {
    auto got = receive();
    ASSERT_FALSE(got.empty()) << "no SHUTDOWN after the host closed";
    for (const auto& p : got) {
      EXPECT_EQ(p.hdr.op, kVsockOpShutdown);
      flags |= p.hdr.flags;
    }
  }
  EXPECT_EQ(flags, kVsockShutdownRcv | kVsockShutdownSend);
  send(guest_header(5000, port, kVsockOpRst));
  EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, PacketsForUnknownStreamsAreAnsweredWithRst) {
  bring_up();
  send(guest_header(77, 88, kVsockOpRw), "stray");
  Packet rst = receive_one(kVsockOpRst);
  EXPECT_EQ(rst.hdr.src_port, 88u);
  EXPECT_EQ(rst.hdr.dst_port, 77u);
  // From another CID, or to another CID: dropped, no answer.
  VsockHeader other = guest_header(1, 2, kVsockOpRw);
  other.src_cid = 9;
  send(other);
  EXPECT_TRUE(receive(50ms).empty());
}

TEST_F(VsockTest, MalformedTxPacketsAreReturnedNotFollowed) {
  bring_up();
  uint64_t buf = alloc(64);
  driver->add_chain(1, {{buf, 20, false}});  // shorter than a header
  driver->notify(1);
  EXPECT_EQ(driver->wait_used(1).size(), 1u);
  VsockHeader lying = guest_header(1, 5000, kVsockOpRw);
  lying.len = 4000;  // more than the buffer holds
  buf = alloc(64);
  mem->put(buf, lying);
  driver->add_chain(1, {{buf, 64, false}});
  driver->notify(1);
  EXPECT_EQ(driver->wait_used(1).size(), 1u);
  EXPECT_EQ(driver->read32(virtio_mmio::kStatus) & kVirtioStatusNeedsReset, 0u);
}

TEST_F(VsockTest, BrokenTxRingSetsNeedsReset) {
  bring_up();
  driver->add_chain(1, {{0xdead'0000, 44, false}});
  driver->notify(1);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!(transport->status() & kVirtioStatusNeedsReset) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(transport->status() & kVirtioStatusNeedsReset);
}

TEST_F(VsockTest, RestoreDropsConnectionsAndPostsTransportReset) {
  bring_up();
  auto [fd, port] = establish(5000);
  VsockState saved = device->save();
  EXPECT_EQ(saved.guest_cid, kGuestCid);
  mem->put<uint32_t>(event_buffer, 0xffff'ffff);
  device->restore(saved);
  EXPECT_TRUE(sees_eof(fd));
  auto used = driver->wait_used(2);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used[0].second, 4u);  // struct virtio_vsock_event
  EXPECT_EQ(mem->get<uint32_t>(event_buffer), kVsockEventTransportReset);
}

// A clone's guest may still think the snapshot's stream is open when the
// clone's first connection request arrives, so that request must not reuse
// the stream's host port.
TEST_F(VsockTest, RestoreGoesOnWithTheSavedHostPorts) {
  bring_up();
  auto [fd, port] = establish(5000);
  VsockState saved = device->save();
  EXPECT_EQ(saved.next_host_port, port + 1);
  VsockState later = saved;
  later.next_host_port = port + 100;
  device->restore(later);
  driver->wait_used(2);
  post_event();  // the driver took the reset, as Linux's event work does
  driver->notify(2);
  auto [fd2, port2] = establish(5000);
  EXPECT_EQ(port2, port + 100);
  EXPECT_EQ(device->save().next_host_port, port + 101);
}

// After a restore a host CONNECT's REQUEST waits until the driver has taken
// the transport reset (it re-posts its event buffer): Linux handles the
// event in a work item, and one that ran after a new REQUEST reset that
// new stream as well. A driver that never answers delays it by at most
// kVsockResetAckTimeout.
TEST_F(VsockTest, AfterARestoreARequestWaitsForTheGuestToTakeTheReset) {
  bring_up();
  device->restore(device->save());
  ASSERT_EQ(driver->wait_used(2).size(), 1u);  // the reset event
  int fd = connect_to(path);
  fds.push_back(fd);
  const std::string line = "CONNECT 5000\n";
  ASSERT_EQ(::send(fd, line.data(), line.size(), 0), static_cast<ssize_t>(line.size()));
  EXPECT_TRUE(receive(200ms).empty()) << "a REQUEST went out before the guest took the reset";
  post_event();
  driver->notify(2);
  auto packets = receive();
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_EQ(packets[0].hdr.op, kVsockOpRequest);

  // Restored again, and this time the driver never re-posts: the REQUEST
  // still goes out, after the timeout.
  device->restore(device->save());
  ASSERT_EQ(driver->wait_used(2).size(), 1u);
  auto start = std::chrono::steady_clock::now();
  int late = connect_to(path);
  fds.push_back(late);
  ASSERT_EQ(::send(late, line.data(), line.size(), 0), static_cast<ssize_t>(line.size()));
  auto waited = receive(5s);
  ASSERT_EQ(waited.size(), 1u);
  EXPECT_EQ(waited[0].hdr.op, kVsockOpRequest);
  EXPECT_GE(std::chrono::steady_clock::now() - start, kVsockResetAckTimeout - 50ms);
}

TEST_F(VsockTest, RestoreRejectsReservedCidsAndHostPorts) {
  EXPECT_THROW(device->restore(VsockState{2}), thaw::StateError);
  EXPECT_THROW(device->restore(VsockState{0x1'0000'0000}), thaw::StateError);
  EXPECT_THROW(device->restore(VsockState{kGuestCid, kVsockFirstHostPort - 1}), thaw::StateError);
  EXPECT_THROW(device->restore(VsockState{kGuestCid, 0xffff'ffff}), thaw::StateError);
  EXPECT_EQ(device->save().guest_cid, kGuestCid);
  EXPECT_THROW(VsockDevice(dir + "/x.sock", 1), thaw::InputError);
}

TEST_F(VsockTest, PausedDeviceLeavesGuestMemoryAlone) {
  bring_up();
  device->pause_processing();
  const uint16_t before = driver->used_idx(1);
  uint64_t buf = alloc(44);
  mem->put(buf, guest_header(1, 2, kVsockOpRw));
  driver->add_chain(1, {{buf, 44, false}});
  driver->notify(1);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(driver->used_idx(1), before);
  device->resume_processing();
  EXPECT_EQ(driver->wait_used(1).size(), 1u);
}

TEST(VsockSocketFile, StaleSocketIsReplacedAndRemovedAtTheEnd) {
  ::thaw::testing::TempDir dir("thaw-vsock");
  std::string path = dir / "v.sock";
  { VsockDevice first(path); }
  EXPECT_FALSE(std::filesystem::exists(path));
  // A socket file left behind (a crashed VMM) is replaced.
  ASSERT_TRUE(::thaw::testing::make_stale_unix_socket(path)) << std::strerror(errno);
  {
    VsockDevice second(path);
    struct stat st;
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
  }
  // Any other file is not ours to delete.
  std::ofstream(path) << "precious";
  EXPECT_THROW(VsockDevice third(path), std::system_error);
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace thaw::devices
