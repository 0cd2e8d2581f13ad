#include "devices/virtio/host_socket.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>

namespace thaw::devices {

namespace {

[[noreturn]] void throw_errno(const std::string& what, int error = errno) {
  throw std::system_error(error, std::generic_category(), what);
}

bool fill_address(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

UniqueFd listen_unix(const std::string& path) {
  sockaddr_un addr;
  if (!fill_address(path, addr)) {
    throw_errno("vsock socket path '" + path + "' is empty or longer than " + std::to_string(sizeof(addr.sun_path) - 1) +
                    " bytes",
                ENAMETOOLONG);
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw_errno("vsock socket path '" + path + "' exists and is not a socket", EEXIST);
    if (::unlink(path.c_str()) != 0) throw_errno("unlink stale vsock socket '" + path + "'");
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw_errno("socket(AF_UNIX) for '" + path + "'");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("bind '" + path + "'");
  if (::listen(fd.get(), 128) != 0) {
    int error = errno;
    ::unlink(path.c_str());
    throw_errno("listen on '" + path + "'", error);
  }
  return fd;
}

UniqueFd connect_unix(const std::string& path, int* error) {
  sockaddr_un addr;
  if (!fill_address(path, addr)) {
    *error = ENAMETOOLONG;
    return {};
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    *error = errno;
    return {};
  }
  // A unix connect completes at once or fails (EAGAIN: backlog full); it
  // never leaves a half-open socket to poll.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = errno;
    return {};
  }
  return fd;
}

UniqueFd make_eventfd() {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd.valid()) throw_errno("eventfd");
  return fd;
}

void signal_eventfd(int fd) {
  const uint64_t one = 1;
  // EAGAIN only when the counter is about to overflow: it is signalled anyway.
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
}

bool drain_eventfd(int fd) {
  uint64_t value = 0;
  return ::read(fd, &value, sizeof value) == sizeof value && value != 0;
}

}  // namespace thaw::devices
