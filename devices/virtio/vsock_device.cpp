#include "devices/virtio/vsock_device.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <stdexcept>
#include <system_error>

#include "base/errors.h"
#include "base/eventfd.h"
#include "base/unix_socket.h"
#include "devices/virtio/vsock_connection.h"

namespace thaw::devices {

namespace {

void check_cid(uint64_t cid) {
  if (cid < kVsockMinGuestCid || cid > kVsockMaxGuestCid) {
    throw StateError("vsock guest CID " + std::to_string(cid) + " is reserved; use " +
                                std::to_string(kVsockMinGuestCid) + ".." + std::to_string(kVsockMaxGuestCid));
  }
}

void epoll_add(int epoll_fd, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(ADD) for the vsock muxer");
  }
}

}  // namespace

VsockDevice::VsockDevice(std::string uds_path, uint64_t guest_cid, const SeccompFilter* muxer_filter,
                         std::shared_ptr<VsockMuxer> muxer)
    : uds_path_(std::move(uds_path)), guest_cid_(guest_cid) {
  check_cid(guest_cid);
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) throw std::system_error(errno, std::generic_category(), "epoll_create1 for a vsock device");
  notify_ = make_eventfd("the vsock device's queue notifications");
  deadline_timer_ = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!deadline_timer_.valid()) {
    throw std::system_error(errno, std::generic_category(), "timerfd_create for the vsock device's deadlines");
  }
  epoll_add(epoll_.get(), notify_.get(), EPOLLIN);
  epoll_add(epoll_.get(), deadline_timer_.get(), EPOLLIN);
  listener_ = listen_unix(uds_path_);
  try {
    epoll_add(epoll_.get(), listener_.get(), EPOLLIN);
    muxer_ = muxer ? std::move(muxer) : VsockMuxer::start(muxer_filter);
    muxer_id_ = muxer_->add(epoll_.get(), [this] { return on_ready(); });
  } catch (...) {
    ::unlink(uds_path_.c_str());
    throw;
  }
}

VsockDevice::~VsockDevice() {
  {
    std::lock_guard lock(mutex());
    stopping_ = true;
  }
  muxer_->remove(muxer_id_);  // waits out a call in progress
  drop_all_connections();
  listener_.reset();
  ::unlink(uds_path_.c_str());
}

void VsockDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  // struct virtio_vsock_config { le64 guest_cid; }
  const uint64_t cid = guest_cid_;
  uint8_t bytes[sizeof cid];
  std::memcpy(bytes, &cid, sizeof cid);
  for (size_t i = 0; i < data.size() && offset + i < sizeof bytes; ++i) data[i] = bytes[offset + i];
}

void VsockDevice::activate(VirtioQueueContext& context) {
  ctx_ = &context;
  signal_eventfd(notify_.get());  // the driver may have posted buffers already
}

void VsockDevice::reset() {
  ctx_ = nullptr;
  pending_reset_event_ = false;
  drop_all_connections();
}

void VsockDevice::queue_notify(uint32_t) { signal_eventfd(notify_.get()); }

void VsockDevice::pause_processing() {
  std::lock_guard lock(mutex());
  ++pause_depth_;
}

void VsockDevice::resume_processing() {
  {
    std::lock_guard lock(mutex());
    if (pause_depth_ > 0) --pause_depth_;
  }
  signal_eventfd(notify_.get());
  muxer_->rearm(muxer_id_);
}

VsockState VsockDevice::save() const {
  std::lock_guard lock(mutex());
  return VsockState{guest_cid_, next_host_port_};
}

void VsockDevice::restore(const VsockState& state) {
  check_cid(state.guest_cid);
  if (!is_vsock_host_port(state.next_host_port)) {
    throw StateError("vsock host port " + std::to_string(state.next_host_port) + " is outside " +
                                std::to_string(kVsockFirstHostPort) + ".." + std::to_string(kVsockLastHostPort));
  }
  std::lock_guard lock(mutex());
  drop_all_connections();
  guest_cid_ = state.guest_cid;
  next_host_port_ = state.next_host_port;
  pending_reset_event_ = true;
  reset_ack_baseline_.reset();
  signal_eventfd(notify_.get());
}

size_t VsockDevice::connection_count() const {
  std::lock_guard lock(mutex());
  return connections_.size();
}

// --- The muxer thread -----------------------------------------------------------

bool VsockDevice::on_ready() {
  epoll_event events[32];
  std::lock_guard lock(mutex());
  if (stopping_) return false;
  if (pause_depth_ > 0) return false;  // ready fds wait; resume_processing has them watched again
  const int n = ::epoll_wait(epoll_.get(), events, 32, 0);
  // Nothing the host or the guest does may stop the device: a failure
  // (out of memory, say) costs at most the streams it touched.
  try {
    for (int i = 0; i < n; ++i) handle_event(events[i].data.fd, events[i].events);
    process_locked();
  } catch (const std::exception&) {
    drop_all_connections();
  }
  arm_deadline_timer();
  return true;
}

void VsockDevice::arm_deadline_timer() {
  std::optional<Clock::time_point> first;
  if (!held_requests_.empty()) first = held_since_ + kVsockResetAckTimeout;
  for (const auto& [key, c] : connections_) {
    if (c->deadline && (!first || *c->deadline < *first)) first = c->deadline;
  }
  if (first == armed_deadline_) return;
  itimerspec when{};  // all zero: disarmed
  if (first) {
    // steady_clock is CLOCK_MONOTONIC; 1 ns at least, as 0 would disarm.
    auto ns = std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::nanoseconds>(first->time_since_epoch()).count());
    when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  if (::timerfd_settime(deadline_timer_.get(), TFD_TIMER_ABSTIME, &when, nullptr) == 0) armed_deadline_ = first;
}

void VsockDevice::handle_event(int fd, uint32_t events) {
  if (fd == notify_.get()) {
    drain_eventfd(fd);
  } else if (fd == deadline_timer_.get()) {
    drain_eventfd(fd);  // a timerfd reads as its expiry count, as an eventfd does
  } else if (fd == listener_.get()) {
    accept_clients();
  } else if (awaiting_line_.count(fd)) {
    read_connect_line(fd);
  } else if (auto it = by_fd_.find(fd); it != by_fd_.end()) {
    Connection* c = find(it->second);
    if (!c) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->host_readable = true;
    if (events & EPOLLHUP) c->host_hup = true;
    if (events & (EPOLLOUT | EPOLLERR)) flush_to_host(*c);
  }
}

void VsockDevice::process_locked() {
  expire_deadlines();
  if (!ctx_ || ctx_->broken()) return;
  // The event queue first: a transport reset is in the used ring before any
  // packet of a connection made after it.
  bool used = process_event_queue();
  used |= process_tx();
  used |= process_rx();
  ctx_->finish_batch(used);
}

// --- Guest to host: the tx queue ----------------------------------------------------

bool VsockDevice::process_tx() {
  Virtqueue* tx = ctx_->queue(kVsockTxQueue);
  if (!tx) return false;
  bool used = false;
  // A queue's worth per batch, so a guest that keeps posting cannot hold
  // the device lock forever; the rest waits for the next round.
  for (unsigned budget = tx->size(); budget > 0; --budget) {
    auto chain = tx->pop();
    if (!chain) break;
    VsockHeader hdr{};
    const size_t got = chain->read(ctx_->memory(), 0, {reinterpret_cast<uint8_t*>(&hdr), sizeof hdr});
    // A packet shorter than its header, or one claiming more payload than
    // its buffers hold, is dropped: the guest gets its buffer back.
    if (got == sizeof hdr && hdr.len <= kVsockMaxPayload && hdr.len <= chain->readable_bytes() - sizeof hdr) {
      handle_guest_packet(hdr, *chain);
    }
    tx->push_used(chain->head, 0);
    used = true;
  }
  if (tx->has_available()) signal_eventfd(notify_.get());
  return used;
}

void VsockDevice::handle_guest_packet(const VsockHeader& hdr, const DescriptorChain& chain) {
  // Only this guest's packets to the host are ours to answer.
  if (hdr.src_cid != guest_cid_ || hdr.dst_cid != kVsockHostCid) return;
  const Key key{hdr.dst_port, hdr.src_port};
  if (hdr.type != kVsockTypeStream) {
    if (hdr.op != kVsockOpRst) queue_control(key, kVsockOpRst);
    return;
  }
  if (hdr.op == kVsockOpRequest) {
    handle_guest_request(hdr);
    return;
  }
  Connection* c = find(key);
  if (!c) {
    if (hdr.op != kVsockOpRst) queue_control(key, kVsockOpRst);
    return;
  }
  c->peer_buf_alloc = hdr.buf_alloc;
  c->peer_fwd_cnt = hdr.fwd_cnt;
  if (c->peer_free() > 0) c->credit_requested = false;

  switch (hdr.op) {
    case kVsockOpResponse: {
      if (c->established) {
        reset_connection(key);
        return;
      }
      c->established = true;
      c->deadline.reset();
      const std::string ok = "OK " + std::to_string(key.local_port) + "\n";
      // The first bytes on a fresh socket: they fit, or the client is gone.
      if (::send(c->fd.get(), ok.data(), ok.size(), MSG_NOSIGNAL | MSG_DONTWAIT) != static_cast<ssize_t>(ok.size())) {
        reset_connection(key);
      }
      return;
    }
    case kVsockOpRst:
      remove_connection(key);  // a refused CONNECT closes the client without an OK
      return;
    case kVsockOpShutdown:
      c->guest_shut_rcv |= (hdr.flags & kVsockShutdownRcv) != 0;
      c->guest_shut_send |= (hdr.flags & kVsockShutdownSend) != 0;
      flush_to_host(*c);  // finishes the close once everything is written
      return;
    case kVsockOpRw: {
      const uint32_t buffered = c->rx_cnt - c->fwd_cnt;
      if (!c->established || c->guest_shut_send || buffered + uint64_t{hdr.len} > kVsockConnBufferBytes) {
        reset_connection(key);  // data before RESPONSE, after SHUTDOWN, or beyond the credit we gave
        return;
      }
      const size_t start = c->to_host.size();
      c->to_host.resize(start + hdr.len);
      chain.read(ctx_->memory(), sizeof hdr, {c->to_host.data() + start, hdr.len});
      c->rx_cnt += hdr.len;
      flush_to_host(*c);
      return;
    }
    case kVsockOpCreditUpdate:
      return;  // the credit fields above were the point
    case kVsockOpCreditRequest:
      queue_control(key, kVsockOpCreditUpdate);
      c->credit_update_queued = true;
      return;
    default:
      reset_connection(key);
      return;
  }
}

void VsockDevice::handle_guest_request(const VsockHeader& hdr) {
  const Key key{hdr.dst_port, hdr.src_port};
  if (find(key)) {
    reset_connection(key);  // a second REQUEST on a live stream
    return;
  }
  if (connections_.size() >= kVsockMaxConnections) {
    queue_control(key, kVsockOpRst);
    return;
  }
  int error = 0;
  UniqueFd fd = connect_unix(uds_path_ + "_" + std::to_string(hdr.dst_port), &error);
  if (!fd.valid()) {
    queue_control(key, kVsockOpRst);
    return;
  }
  Connection* c = add_connection(std::move(fd), key, /*established=*/true);
  if (!c) {
    queue_control(key, kVsockOpRst);
    return;
  }
  c->peer_buf_alloc = hdr.buf_alloc;
  c->peer_fwd_cnt = hdr.fwd_cnt;
  queue_control(key, kVsockOpResponse);
}

// --- Host to guest: the rx queue ------------------------------------------------------

VsockHeader VsockDevice::header_for(const Key& key, uint16_t op, uint32_t flags) const {
  VsockHeader h{};
  h.src_cid = kVsockHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = key.local_port;
  h.dst_port = key.peer_port;
  h.type = kVsockTypeStream;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = kVsockConnBufferBytes;
  return h;
}

bool VsockDevice::deliver(Virtqueue& rx, const VsockHeader& hdr, std::span<const uint8_t> payload) {
  auto& memory = ctx_->memory();
  while (auto chain = rx.pop()) {
    // A buffer too small for the packet is a driver bug: hand it back
    // empty (the driver drops it) rather than stall the queue behind it.
    if (chain->writable_bytes() < sizeof hdr + payload.size()) {
      rx.push_used(chain->head, 0);
      continue;
    }
    chain->write(memory, 0, {reinterpret_cast<const uint8_t*>(&hdr), sizeof hdr});
    chain->write(memory, sizeof hdr, payload);
    rx.push_used(chain->head, static_cast<uint32_t>(sizeof hdr + payload.size()));
    return true;
  }
  return false;
}

bool VsockDevice::deliver_control(Virtqueue& rx) {
  const Control ctl = control_.front();
  VsockHeader hdr = header_for(ctl.key, ctl.op, ctl.flags);
  Connection* c = find(ctl.key);
  if (c) hdr.fwd_cnt = c->fwd_cnt;
  if (!deliver(rx, hdr, {})) return false;
  control_.pop_front();
  if (c) {
    c->fwd_cnt_told = c->fwd_cnt;
    if (ctl.op == kVsockOpCreditUpdate) c->credit_update_queued = false;
  }
  return true;
}

VsockDevice::Connection* VsockDevice::next_sender() {
  auto eligible = [](const Connection& c) {
    return c.established && c.host_readable && !c.host_eof && !c.guest_shut_rcv && c.peer_free() > 0;
  };
  // Round robin: start after the connection that sent last.
  auto start = rr_cursor_ ? connections_.upper_bound(*rr_cursor_) : connections_.begin();
  for (auto it = start; it != connections_.end(); ++it) {
    if (eligible(*it->second)) return it->second.get();
  }
  for (auto it = connections_.begin(); it != start; ++it) {
    if (eligible(*it->second)) return it->second.get();
  }
  return nullptr;
}

bool VsockDevice::deliver_host_data(Virtqueue& rx, Connection& c) {
  auto chain = rx.pop();
  if (!chain) return false;
  const uint64_t room = chain->writable_bytes();
  if (room <= sizeof(VsockHeader)) {
    rx.push_used(chain->head, 0);  // too small for any data: see deliver()
    return true;
  }
  const size_t want = std::min<uint64_t>({room - sizeof(VsockHeader), c.peer_free(), kVsockMaxPayload});
  static thread_local std::vector<uint8_t> buffer(kVsockMaxPayload);
  const ssize_t n = ::recv(c.fd.get(), buffer.data(), want, MSG_DONTWAIT);
  if (n <= 0) {
    rx.undo_pop();
    if (n == 0) {
      on_host_eof(c);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c.host_readable = false;
    } else if (errno != EINTR) {
      reset_connection(c.key);
    }
    return true;  // something changed; look again
  }
  VsockHeader hdr = header_for(c.key, kVsockOpRw, 0);
  hdr.len = static_cast<uint32_t>(n);
  hdr.fwd_cnt = c.fwd_cnt;
  auto& memory = ctx_->memory();
  chain->write(memory, 0, {reinterpret_cast<const uint8_t*>(&hdr), sizeof hdr});
  chain->write(memory, sizeof hdr, {buffer.data(), static_cast<size_t>(n)});
  rx.push_used(chain->head, static_cast<uint32_t>(sizeof hdr + n));
  c.tx_cnt += static_cast<uint32_t>(n);
  c.fwd_cnt_told = c.fwd_cnt;
  rr_cursor_ = c.key;
  return true;
}

bool VsockDevice::process_rx() {
  Virtqueue* rx = ctx_->queue(kVsockRxQueue);
  if (!rx) return false;
  // A stream with data but no credit asks the guest for an update, once.
  for (auto& [key, c] : connections_) {
    if (c->established && c->host_readable && !c->host_eof && c->peer_free() == 0 && !c->credit_requested) {
      c->credit_requested = true;
      queue_control(key, kVsockOpCreditRequest);
    }
  }
  const uint16_t used_before = rx->state().next_used;
  for (unsigned budget = rx->size(); budget > 0 && rx->has_available(); --budget) {
    if (!control_.empty()) {
      if (!deliver_control(*rx)) break;
      continue;
    }
    Connection* c = next_sender();
    if (!c || !deliver_host_data(*rx, *c)) break;
  }
  // Out of budget with work left: come back in the next round.
  if (rx->has_available() && (!control_.empty() || next_sender())) signal_eventfd(notify_.get());
  return rx->state().next_used != used_before;
}

// --- The event queue -------------------------------------------------------------------

bool VsockDevice::process_event_queue() {
  Virtqueue* events = ctx_->queue(kVsockEventQueue);
  if (reset_ack_baseline_ && events && events->available_count() > *reset_ack_baseline_) {
    reset_ack_baseline_.reset();  // the driver handled the reset and gave its buffer back
  }
  if (!held_requests_.empty() && (Clock::now() - held_since_ >= kVsockResetAckTimeout ||
                                  (!pending_reset_event_ && !reset_ack_baseline_))) {
    release_held_requests();
  }
  if (!pending_reset_event_ || !events) return false;
  auto chain = events->pop();
  if (!chain) return false;  // posted when the driver gives a buffer
  const uint32_t id = kVsockEventTransportReset;
  const size_t written = chain->write(ctx_->memory(), 0, {reinterpret_cast<const uint8_t*>(&id), sizeof id});
  events->push_used(chain->head, static_cast<uint32_t>(written));
  pending_reset_event_ = false;
  reset_ack_baseline_ = events->available_count();
  return true;
}

void VsockDevice::request_or_hold(const Key& key) {
  if (!pending_reset_event_ && !reset_ack_baseline_) {
    queue_control(key, kVsockOpRequest);
    return;
  }
  if (held_requests_.empty()) held_since_ = Clock::now();
  held_requests_.push_back(key);
}

void VsockDevice::release_held_requests() {
  for (const auto& key : held_requests_) {
    if (find(key)) queue_control(key, kVsockOpRequest);  // the client may have gone meanwhile
  }
  held_requests_.clear();
}

}  // namespace thaw::devices
