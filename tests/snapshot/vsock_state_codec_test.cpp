// The vsock device's state in the state file: round trip, absent when the
// VM has none, and every guest-controlled field checked on the way in.
#include <gtest/gtest.h>

#include "snapshot/state_codec.h"
#include "snapshot_test_support.h"

namespace thaw::snapshot {
namespace {

using test::expect_input_error;
using test::make_full_state;

// What a driven device looks like: three queues in the first MiB of a
// 64 MiB guest, mid-stream indices, a pending used-buffer interrupt.
vmm::VsockDeviceStates make_vsock_state() {
  vmm::VsockDeviceStates v;
  v.device.guest_cid = 3;
  v.device.next_host_port = devices::kVsockFirstHostPort + 7;
  auto& t = v.transport;
  t.status = devices::kVirtioStatusAcknowledge | devices::kVirtioStatusDriver | devices::kVirtioStatusFeaturesOk |
             devices::kVirtioStatusDriverOk;
  t.device_features_sel = 1;
  t.driver_features_sel = 1;
  t.driver_features = devices::kVirtioFVersion1;
  t.queue_sel = 2;
  t.interrupt_status = devices::kVirtioInterruptUsedBuffer;
  t.config_generation = 0;
  for (uint64_t q = 0; q < 3; ++q) {
    devices::VirtqueueState s;
    s.size = q == 2 ? 8 : 256;
    s.ready = true;
    s.desc_addr = 0x10'0000 + q * 0x4000;
    s.avail_addr = s.desc_addr + 0x1000;
    s.used_addr = s.desc_addr + 0x2000;
    s.next_avail = static_cast<uint16_t>(65530 + q);
    s.next_used = static_cast<uint16_t>(65530 + q);
    t.queues.push_back(s);
  }
  return v;
}

SnapshotState with_vsock(const std::function<void(vmm::VsockDeviceStates&)>& edit = {}) {
  SnapshotState s = make_full_state();
  s.machine.devices.vsock = make_vsock_state();
  if (edit) edit(*s.machine.devices.vsock);
  return s;
}

TEST(VsockStateCodec, RoundTripKeepsEveryField) {
  SnapshotState in = with_vsock();
  SnapshotState out = decode_state(encode_state(in));
  ASSERT_TRUE(out.machine.devices.vsock.has_value());
  EXPECT_EQ(*out.machine.devices.vsock, *in.machine.devices.vsock);
  EXPECT_EQ(out.machine.devices, in.machine.devices);
}

TEST(VsockStateCodec, AbsentStaysAbsent) {
  SnapshotState out = decode_state(encode_state(make_full_state()));
  EXPECT_FALSE(out.machine.devices.vsock.has_value());
}

TEST(VsockStateCodec, QueueNotReadyNeedsNoAddresses) {
  SnapshotState in = with_vsock([](auto& v) {
    v.transport.status = 0;
    v.transport.driver_features = 0;
    v.transport.interrupt_status = 0;
    v.transport.queues.assign(3, devices::VirtqueueState{});
    v.transport.queues[1].size = 16;  // written, not yet ready
    v.transport.queues[1].desc_addr = 0xdead'beef'0000;
  });
  EXPECT_EQ(*decode_state(encode_state(in)).machine.devices.vsock, *in.machine.devices.vsock);
}

TEST(VsockStateCodec, RejectsReservedCids) {
  for (uint64_t cid : {0ull, 1ull, 2ull, 0xffff'ffffull, 0x1'0000'0003ull}) {
    SCOPED_TRACE(cid);
    auto file = encode_state(with_vsock([cid](auto& v) { v.device.guest_cid = cid; }));
    expect_input_error([&] { decode_state(file); }, "guest CID");
  }
}

TEST(VsockStateCodec, RejectsHostPortsOutsideTheHostRangeAndReadsZeroAsTheFirst) {
  for (uint32_t port : {1u, devices::kVsockFirstHostPort - 1, 0xffff'ffffu}) {
    SCOPED_TRACE(port);
    auto file = encode_state(with_vsock([port](auto& v) { v.device.next_host_port = port; }));
    expect_input_error([&] { decode_state(file); }, "next host port");
  }
  // Files written before the port was saved hold 0.
  auto file = encode_state(with_vsock([](auto& v) { v.device.next_host_port = 0; }));
  EXPECT_EQ(decode_state(file).machine.devices.vsock->device.next_host_port, devices::kVsockFirstHostPort);
}

TEST(VsockStateCodec, RejectsBadStatusFeaturesAndInterrupts) {
  auto rejects = [](const std::function<void(vmm::VsockDeviceStates&)>& edit, const std::string& needle) {
    auto file = encode_state(with_vsock(edit));
    expect_input_error([&] { decode_state(file); }, needle);
  };
  rejects([](auto& v) { v.transport.status |= 0x10; }, "unknown bits");
  rejects([](auto& v) { v.transport.status &= ~devices::kVirtioStatusFeaturesOk; }, "DRIVER_OK without FEATURES_OK");
  rejects([](auto& v) { v.transport.driver_features |= 1ull << 33; }, "does not offer");
  rejects([](auto& v) { v.transport.driver_features = 0; }, "without VIRTIO_F_VERSION_1");
  rejects([](auto& v) { v.transport.interrupt_status = 0x4; }, "interrupt status");
}

TEST(VsockStateCodec, RejectsBadQueues) {
  auto rejects = [](const std::function<void(vmm::VsockDeviceStates&)>& edit, const std::string& needle) {
    auto file = encode_state(with_vsock(edit));
    expect_input_error([&] { decode_state(file); }, needle);
  };
  rejects([](auto& v) { v.transport.queues.pop_back(); }, "has 2 queues");
  rejects([](auto& v) { v.transport.queues[0].size = 512; }, "not a power of two up to 256");
  rejects([](auto& v) { v.transport.queues[0].size = 100; }, "not a power of two");
  rejects([](auto& v) { v.transport.queues[1].size = 0; }, "ready with size 0");
  rejects([](auto& v) { v.transport.queues[0].desc_addr += 8; }, "not 16-byte aligned");
  rejects([](auto& v) { v.transport.queues[0].used_addr += 2; }, "not 4-byte aligned");
  // 64 MiB of RAM: the ring would end past it.
  rejects([](auto& v) { v.transport.queues[2].used_addr = (64ull << 20) - 16; }, "not inside guest RAM");
  rejects([](auto& v) { v.transport.queues[1].avail_addr = 0xd000'0000; }, "not inside guest RAM");
  rejects([](auto& v) { v.transport.queues[1].desc_addr = UINT64_MAX & ~15ull; }, "not inside guest RAM");
  rejects([](auto& v) { v.transport.queues[2].next_avail = static_cast<uint16_t>(v.transport.queues[2].next_used + 9); },
          "in flight");
}

TEST(VsockStateCodec, MissingTransportIsRejected) {
  auto file = test::edit_message(encode_state(with_vsock()), [](schema::SnapshotState::Builder root) {
    root.getDevices().getVsock().disownTransport();
  });
  expect_input_error([&] { decode_state(file); }, "transport state is missing");
}

}  // namespace
}  // namespace thaw::snapshot
