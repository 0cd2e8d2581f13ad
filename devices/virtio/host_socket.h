// Host-side file descriptors for devices that talk to the host: an owner
// for one fd, unix stream sockets and eventfds. Failures keep the
// operation, errno and path (std::system_error).
#pragma once

#include <string>
#include <utility>

namespace thaw::devices {

// Move-only owner of a file descriptor. (vmm/ has its own UniqueFd; devices
// sit below vmm and do not include it.)
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~OwnedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Binds and listens on a non-blocking unix stream socket at `path`. A stale
// socket file there is removed first; any other kind of file is left alone
// and the bind fails. Throws std::system_error.
OwnedFd listen_unix(const std::string& path);

// Non-blocking connect to the unix stream socket at `path`. Returns an
// invalid fd and sets `*error` (errno) when nothing accepts there, the
// listener's backlog is full, or the path is too long for sun_path.
OwnedFd connect_unix(const std::string& path, int* error);

// A non-blocking eventfd; throws std::system_error.
OwnedFd make_eventfd();
// Adds 1 to the counter (wakes a poller); safe from any thread.
void signal_eventfd(int fd);
// Resets the counter; returns false when it was already 0.
bool drain_eventfd(int fd);

}  // namespace thaw::devices
