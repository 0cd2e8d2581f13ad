// The virtio-vsock wire format (virtio 1.2, 5.10): packet header, ops,
// flags and the event the device posts on its event queue.
#pragma once

#include <cstddef>
#include <cstdint>

namespace thaw::devices {

inline constexpr uint32_t kVirtioIdVsock = 19;
inline constexpr uint64_t kVsockHostCid = 2;
// The lowest CID a guest can have (0, 1 and 2 are reserved) and the highest
// (Linux keeps CIDs in 32 bits; U32_MAX means "any").
inline constexpr uint64_t kVsockMinGuestCid = 3;
inline constexpr uint64_t kVsockMaxGuestCid = 0xffff'fffe;

inline constexpr size_t kVsockRxQueue = 0;
inline constexpr size_t kVsockTxQueue = 1;
inline constexpr size_t kVsockEventQueue = 2;
inline constexpr size_t kVsockQueueCount = 3;

inline constexpr uint16_t kVsockTypeStream = 1;

enum VsockOp : uint16_t {
  kVsockOpInvalid = 0,
  kVsockOpRequest = 1,
  kVsockOpResponse = 2,
  kVsockOpRst = 3,
  kVsockOpShutdown = 4,
  kVsockOpRw = 5,
  kVsockOpCreditUpdate = 6,
  kVsockOpCreditRequest = 7,
};

// SHUTDOWN flags: the sender will receive / send no more.
inline constexpr uint32_t kVsockShutdownRcv = 1;
inline constexpr uint32_t kVsockShutdownSend = 2;

// struct virtio_vsock_event's id: the device's transport was reset (after
// a restore, say); the driver drops its connections and re-reads the CID.
inline constexpr uint32_t kVsockEventTransportReset = 0;

#pragma pack(push, 1)
struct VsockHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;  // payload bytes after the header
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;  // the sender's receive buffer for this connection
  uint32_t fwd_cnt;    // bytes the sender has consumed from it so far
};
#pragma pack(pop)
static_assert(sizeof(VsockHeader) == 44);

}  // namespace thaw::devices
