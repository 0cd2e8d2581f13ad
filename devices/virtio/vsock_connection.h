// One vsock stream as the device's muxer tracks it: the host socket, the
// bytes on their way to the host, and both directions' credit. Private to
// vsock_device.cpp and vsock_connection.cpp; guarded by the device mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "devices/virtio/vsock_device.h"

namespace thaw::devices {

struct VsockDevice::Connection {
  UniqueFd fd;
  Key key{};
  // Host-initiated streams wait for the guest's RESPONSE; the rest are
  // established when created.
  bool established = false;
  std::optional<Clock::time_point> deadline;  // reset the stream when it passes

  // Guest -> host.
  std::vector<uint8_t> to_host;  // received from the guest, not yet written to the socket
  size_t to_host_offset = 0;
  uint32_t rx_cnt = 0;             // payload bytes received from the guest
  uint32_t fwd_cnt = 0;            // of those, written to the host socket
  uint32_t fwd_cnt_told = 0;       // the fwd_cnt the guest last heard
  bool credit_update_queued = false;
  bool guest_shut_send = false;    // the guest will send no more
  bool guest_shut_rcv = false;     // the guest will receive no more
  bool host_write_shut = false;    // shutdown(SHUT_WR) done after guest_shut_send

  // Host -> guest.
  uint32_t tx_cnt = 0;             // payload bytes sent to the guest
  uint32_t peer_buf_alloc = 0;     // the guest's buffer for this stream
  uint32_t peer_fwd_cnt = 0;       // what the guest has consumed of it
  bool credit_requested = false;
  bool host_readable = false;      // the socket may have data (edge-triggered epoll)
  bool host_eof = false;           // the client will send no more
  bool host_hup = false;           // the client closed both directions
  bool full_shutdown_sent = false;

  // How many more bytes the guest can take now.
  uint32_t peer_free() const {
    const uint32_t in_flight = tx_cnt - peer_fwd_cnt;
    return in_flight >= peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
  }
  size_t pending_to_host() const { return to_host.size() - to_host_offset; }
};

}  // namespace thaw::devices
