#include "base/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "base/unique_fd.h"

namespace thaw {

ServiceNotifier ServiceNotifier::from_environment() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  return ServiceNotifier(path ? path : "");
}

ServiceNotifier::ServiceNotifier(std::string socket_path) : path_(std::move(socket_path)) {}

void ServiceNotifier::notify(const std::string& state) const {
  if (!active()) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // An abstract name has no NUL terminator: its length is all there is.
  const bool abstract = path_[0] == '@';
  if (path_.size() > sizeof addr.sun_path - (abstract ? 0 : 1)) {
    throw std::system_error(ENAMETOOLONG, std::generic_category(), "NOTIFY_SOCKET " + path_);
  }
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  if (abstract) addr.sun_path[0] = '\0';
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size() + (abstract ? 0 : 1));
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::system_error(errno, std::generic_category(), "socket for NOTIFY_SOCKET");
  const ssize_t sent =
      ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), length);
  if (sent < 0) throw std::system_error(errno, std::generic_category(), "sendto NOTIFY_SOCKET " + path_);
  if (static_cast<size_t>(sent) != state.size()) {
    throw std::system_error(EMSGSIZE, std::generic_category(), "sendto NOTIFY_SOCKET " + path_ + " (short)");
  }
}

}  // namespace thaw
