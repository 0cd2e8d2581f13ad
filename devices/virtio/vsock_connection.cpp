// The host side of the vsock muxer: accepting clients and their CONNECT
// line, writing guest data to the host sockets, credit updates, closing.
#include "devices/virtio/vsock_connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <string_view>

namespace thaw::devices {

namespace {

constexpr size_t kMaxConnectLine = 64;  // "CONNECT 4294967295\r\n" and then some

// "CONNECT <port>" (the newline already removed); nullopt when malformed.
std::optional<uint32_t> parse_connect(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  constexpr std::string_view kVerb = "CONNECT ";
  if (line.substr(0, kVerb.size()) != kVerb) return std::nullopt;
  line.remove_prefix(kVerb.size());
  uint32_t port = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), port);
  if (ec != std::errc() || end != line.data() + line.size() || line.empty()) return std::nullopt;
  return port;
}

}  // namespace

VsockDevice::Connection* VsockDevice::find(const Key& key) {
  auto it = connections_.find(key);
  return it == connections_.end() ? nullptr : it->second.get();
}

VsockDevice::Connection* VsockDevice::add_connection(UniqueFd fd, Key key, bool established) {
  auto c = std::make_unique<Connection>();
  const int raw = fd.get();
  c->fd = std::move(fd);
  c->key = key;
  c->established = established;
  c->host_readable = true;  // whatever arrived before the fd was polled
  if (!established) c->deadline = Clock::now() + kVsockConnectTimeout;
  if (!awaiting_line_.count(raw)) {
    // Edge-triggered: the muxer reads until EAGAIN and remembers readiness.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = raw;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev) != 0) return nullptr;  // the fd closes here
  }
  by_fd_[raw] = key;
  Connection* ref = c.get();
  connections_[key] = std::move(c);
  return ref;
}

void VsockDevice::remove_connection(Key key) {
  auto it = connections_.find(key);
  if (it == connections_.end()) return;
  by_fd_.erase(it->second->fd.get());
  if (rr_cursor_ && *rr_cursor_ == key) rr_cursor_.reset();
  connections_.erase(it);  // closing the fd takes it out of the epoll set
}

void VsockDevice::reset_connection(Key key) {
  remove_connection(key);
  queue_control(key, kVsockOpRst);
}

void VsockDevice::queue_control(const Key& key, uint16_t op, uint32_t flags) {
  control_.push_back(Control{key, op, flags});
}

void VsockDevice::drop_all_connections() {
  held_requests_.clear();
  connections_.clear();
  by_fd_.clear();
  control_.clear();
  rr_cursor_.reset();
}

uint32_t VsockDevice::allocate_host_port() {
  // Host-initiated streams get ports no other stream uses as its host end.
  while (true) {
    const uint32_t port = next_host_port_;
    next_host_port_ = next_host_port_ == kVsockLastHostPort ? kVsockFirstHostPort : next_host_port_ + 1;
    bool taken = false;
    for (const auto& [key, c] : connections_) taken |= key.local_port == port;
    if (!taken) return port;
  }
}

void VsockDevice::accept_clients() {
  while (true) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;  // EAGAIN, or a client that gave up already
    if (connections_.size() + awaiting_line_.size() >= kVsockMaxConnections) continue;  // closed at once
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) continue;
    const int raw = fd.get();
    awaiting_line_[raw] = std::move(fd);
    read_connect_line(raw);  // it may have arrived with the connection
  }
}

void VsockDevice::read_connect_line(int fd) {
  char buf[kMaxConnectLine];
  // Peek, so bytes the client sends after its line stay in the socket for
  // the guest.
  const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  std::string_view seen(buf, n > 0 ? static_cast<size_t>(n) : 0);
  const size_t newline = seen.find('\n');
  if (newline == std::string_view::npos) {
    if (n <= 0 || seen.size() == sizeof buf) awaiting_line_.erase(fd);  // gone, or no line in 64 bytes
    return;
  }
  auto port = parse_connect(seen.substr(0, newline));
  if (!port) {
    awaiting_line_.erase(fd);
    return;
  }
  ::recv(fd, buf, newline + 1, MSG_DONTWAIT);  // consume the line only
  UniqueFd owned = std::move(awaiting_line_[fd]);
  const Key key{allocate_host_port(), *port};
  Connection* c = add_connection(std::move(owned), key, /*established=*/false);
  awaiting_line_.erase(fd);  // after add_connection: it skips epoll for fds listed here
  if (c) request_or_hold(key);
}

void VsockDevice::flush_to_host(Connection& c) {
  while (c.pending_to_host() > 0) {
    const ssize_t n = ::send(c.fd.get(), c.to_host.data() + c.to_host_offset, c.pending_to_host(),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.to_host_offset += static_cast<size_t>(n);
      c.fwd_cnt += static_cast<uint32_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // EPOLLOUT brings us back
    reset_connection(c.key);  // the client is gone (EPIPE, ECONNRESET)
    return;
  }
  if (c.pending_to_host() == 0) {
    c.to_host.clear();
    c.to_host_offset = 0;
  }
  if (c.pending_to_host() == 0 && c.guest_shut_send) {
    if (c.guest_shut_rcv) {
      // Both directions closed by the guest and everything written: done.
      reset_connection(c.key);
      return;
    }
    if (!c.host_write_shut) {
      ::shutdown(c.fd.get(), SHUT_WR);
      c.host_write_shut = true;
    }
  }
  maybe_credit_update(c);
}

void VsockDevice::maybe_credit_update(Connection& c) {
  if (c.credit_update_queued || c.fwd_cnt == c.fwd_cnt_told) return;
  // What the guest believes is still buffered here; once that is over half
  // the buffer, tell it what was forwarded, or it may stop sending.
  const uint32_t believed_buffered = c.rx_cnt - c.fwd_cnt_told;
  if (believed_buffered >= kVsockConnBufferBytes / 2) {
    c.credit_update_queued = true;
    queue_control(c.key, kVsockOpCreditUpdate);
  }
}

void VsockDevice::on_host_eof(Connection& c) {
  c.host_eof = true;
  c.host_readable = false;
  if (c.host_hup) {
    // The client closed both ways: tell the guest, and give it a while to
    // answer with RST before resetting the stream ourselves.
    c.full_shutdown_sent = true;
    c.deadline = Clock::now() + kVsockCloseTimeout;
    queue_control(c.key, kVsockOpShutdown, kVsockShutdownRcv | kVsockShutdownSend);
  } else {
    queue_control(c.key, kVsockOpShutdown, kVsockShutdownSend);  // half close
  }
}

void VsockDevice::expire_deadlines() {
  const auto now = Clock::now();
  std::vector<Key> expired;
  for (auto& [key, c] : connections_) {
    if (c->deadline && *c->deadline <= now) expired.push_back(key);
    // A half-closed client that has since closed completely.
    if (c->host_eof && c->host_hup && !c->full_shutdown_sent) on_host_eof(*c);
  }
  for (const auto& key : expired) reset_connection(key);
}

}  // namespace thaw::devices
