// Whole-buffer send and deadline-bounded receive on a connected stream
// socket, shared by the tests that talk to a guest over vsock.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace thaw::testing {

// Sends all of `data`; false when the peer is gone.
inline bool send_all(int fd, const void* data, size_t size) {
  auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly `size` bytes; false at the deadline or on EOF.
inline bool recv_all(int fd, void* data, size_t size, std::chrono::milliseconds timeout) {
  auto* p = static_cast<uint8_t*>(data);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (size > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::recv(fd, p, size, 0);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace thaw::testing
