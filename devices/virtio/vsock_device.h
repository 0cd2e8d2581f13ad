// virtio-vsock, host side, Firecracker's convention: one unix socket per VM.
//
//   host -> guest: a client connects to `uds_path`, writes "CONNECT <port>\n"
//     and reads "OK <host port>\n" once the guest accepted (RESPONSE); then
//     bytes flow both ways to the guest's listening port. A refusal (RST)
//     closes the client.
//   guest -> host: a guest connection to host CID 2, port P, is connected to
//     the unix socket `<uds_path>_<P>`; nothing listening there is a RST.
//
// Each device has an epoll set of the listener, the clients, a timerfd for
// its deadlines and an eventfd the driver's QueueNotify writes signal (the
// VMM registers it as an ioeventfd, so a notify costs the vCPU no exit to
// user space). A muxer thread (vsock_muxer.h), the device's own or one a
// pool shares between its clones, runs the device's work when that set is
// ready, under the device mutex. Flow control is the spec's
// credit scheme: the device never sends the guest more than it has room
// for, and tells the guest how much of its data reached the host.
//
// Snapshots save no connections: a restored device starts with none and
// posts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue, so the guest
// driver drops the ones it remembers.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/eventfd.h"
#include "base/seccomp_filter.h"
#include "base/unique_fd.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/vsock_muxer.h"
#include "devices/virtio/vsock_packet.h"

namespace thaw::devices {

inline constexpr uint64_t kVsockDefaultGuestCid = 3;
// What each connection may have in flight from the guest (buf_alloc).
inline constexpr uint32_t kVsockConnBufferBytes = 256 * 1024;
inline constexpr uint32_t kVsockMaxPayload = 64 * 1024;
inline constexpr size_t kVsockMaxConnections = 1024;
// A connection the guest neither accepts nor refuses, or does not close
// after the host closed, is reset after this long.
inline constexpr std::chrono::milliseconds kVsockConnectTimeout{5000};
inline constexpr std::chrono::milliseconds kVsockCloseTimeout{2000};
// How long a host CONNECT waits for the guest to take a transport reset
// before its REQUEST goes out anyway (a driver that posts no event buffers).
inline constexpr std::chrono::milliseconds kVsockResetAckTimeout{1000};
// Host ports handed to host-initiated connections: [first, last], wrapping.
inline constexpr uint32_t kVsockFirstHostPort = 1u << 30;
inline constexpr uint32_t kVsockLastHostPort = 0xffff'fffe;
inline constexpr bool is_vsock_host_port(uint32_t port) {
  return port >= kVsockFirstHostPort && port <= kVsockLastHostPort;
}

struct VsockState {
  uint64_t guest_cid = kVsockDefaultGuestCid;
  // The next host port to hand out. Saved so that a clone of a VM snapshotted
  // with a stream open never reuses that stream's port: its guest may read
  // the clone's first connection request before the transport-reset event,
  // and would take a request on a port it still thinks live as a protocol
  // error.
  uint32_t next_host_port = kVsockFirstHostPort;

  bool operator==(const VsockState&) const = default;
};

class VsockDevice final : public VirtioDevice {
 public:
  // Listens on `uds_path` at once (a stale socket file there is removed
  // first) and joins `muxer`, a muxer shared with other devices. Without
  // one the device starts its own (VsockMuxer::start under `muxer_filter`:
  // see there). Throws std::system_error when the host refuses, InputError
  // for a reserved CID.
  VsockDevice(std::string uds_path, uint64_t guest_cid = kVsockDefaultGuestCid,
              const SeccompFilter* muxer_filter = nullptr, std::shared_ptr<VsockMuxer> muxer = nullptr);
  // Leaves the muxer (waiting out a call in progress), closes every
  // connection and removes the socket file.
  ~VsockDevice() override;
  VsockDevice(const VsockDevice&) = delete;
  VsockDevice& operator=(const VsockDevice&) = delete;

  uint32_t device_id() const override { return kVirtioIdVsock; }
  uint64_t device_features() const override { return kVirtioFVersion1; }
  size_t queue_count() const override { return kVsockQueueCount; }
  size_t config_size() const override { return sizeof(uint64_t); }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(VirtioQueueContext& context) override;
  void reset() override;
  void queue_notify(uint32_t index) override;

  // The eventfd QueueNotify signals: the VMM's ioeventfd target.
  int notify_fd() const { return notify_.get(); }
  const std::string& uds_path() const { return uds_path_; }

  // Stops all queue work (and so all writes to guest memory and all
  // interrupts) until the matching resume; pauses nest. A snapshot holds it
  // while it copies guest RAM, a restore until the interrupt controller
  // state is in place.
  void pause_processing();
  void resume_processing();

  VsockState save() const;
  // Throws StateError for a reserved CID or a host port outside
  // [kVsockFirstHostPort, kVsockLastHostPort]. Drops every connection and
  // queues a transport-reset event for the guest.
  void restore(const VsockState& state);

  size_t connection_count() const;

 private:
  struct Key {
    uint32_t local_port;  // the host's end
    uint32_t peer_port;   // the guest's end
    auto operator<=>(const Key&) const = default;
  };
  struct Connection;
  struct Control {  // a header-only packet waiting for an rx buffer
    Key key;
    uint16_t op;
    uint32_t flags;
  };
  using Clock = std::chrono::steady_clock;

  // The muxer's call: handles what is ready and does the queue work;
  // false while paused (resume_processing() has the muxer watch again).
  bool on_ready();
  // Sets the timerfd to the first deadline (a connection's, or the held
  // requests'), so the muxer calls on_ready when it passes.
  void arm_deadline_timer();
  void handle_event(int fd, uint32_t events);
  void accept_clients();
  void read_connect_line(int fd);
  void process_locked();

  // Guest side (vsock_device.cpp).
  bool process_tx();
  void handle_guest_packet(const VsockHeader& hdr, const DescriptorChain& chain);
  void handle_guest_request(const VsockHeader& hdr);
  bool process_rx();
  bool deliver(Virtqueue& rx, const VsockHeader& hdr, std::span<const uint8_t> payload);
  bool deliver_control(Virtqueue& rx);
  bool deliver_host_data(Virtqueue& rx, Connection& c);
  Connection* next_sender();
  bool process_event_queue();
  // A host CONNECT's REQUEST, now or once the guest has taken the reset.
  void request_or_hold(const Key& key);
  void release_held_requests();
  VsockHeader header_for(const Key& key, uint16_t op, uint32_t flags) const;

  // Host side (vsock_connection.cpp).
  // nullptr (and the fd closed) when it cannot be polled.
  Connection* add_connection(UniqueFd fd, Key key, bool established);
  void remove_connection(Key key);  // by value: callers pass the key of the stream it frees
  void reset_connection(Key key);  // RST to the guest, then remove
  void queue_control(const Key& key, uint16_t op, uint32_t flags = 0);
  void flush_to_host(Connection& c);
  void maybe_credit_update(Connection& c);
  void on_host_eof(Connection& c);
  void expire_deadlines();
  void drop_all_connections();
  uint32_t allocate_host_port();
  Connection* find(const Key& key);

  const std::string uds_path_;
  UniqueFd listener_;
  UniqueFd epoll_;
  UniqueFd notify_;
  UniqueFd deadline_timer_;
  std::shared_ptr<VsockMuxer> muxer_;
  uint64_t muxer_id_ = 0;

  // Guarded by mutex().
  uint64_t guest_cid_;
  VirtioQueueContext* ctx_ = nullptr;
  unsigned pause_depth_ = 0;
  bool stopping_ = false;
  bool pending_reset_event_ = false;
  // After a restore the guest must drop its old streams before it sees a
  // new one: Linux handles the reset event in a work item that may run
  // after a REQUEST that came in the same instant, and then resets that
  // new stream too. REQUESTs wait until the driver re-posts an event
  // buffer (it does once it has handled the event), or the timeout.
  std::optional<uint16_t> reset_ack_baseline_;  // event buffers left when the reset went out
  std::vector<Key> held_requests_;
  Clock::time_point held_since_{};
  std::deque<Control> control_;
  std::map<Key, std::unique_ptr<Connection>> connections_;
  std::unordered_map<int, Key> by_fd_;
  std::map<int, UniqueFd> awaiting_line_;  // accepted clients before their CONNECT line
  std::optional<Key> rr_cursor_;          // the last connection that sent data
  uint32_t next_host_port_ = kVsockFirstHostPort;
  std::optional<Clock::time_point> armed_deadline_;  // what deadline_timer_ is set to
};

}  // namespace thaw::devices
