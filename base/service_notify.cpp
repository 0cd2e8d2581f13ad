#include "base/service_notify.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "base/unique_fd.h"
#include "base/unix_socket.h"

namespace thaw {

ServiceNotifier ServiceNotifier::from_environment() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  return ServiceNotifier(path ? path : "");
}

ServiceNotifier::ServiceNotifier(std::string socket_path) : path_(std::move(socket_path)) {}

void ServiceNotifier::notify(const std::string& state) const {
  if (!active()) return;
  sockaddr_un addr;
  socklen_t length;
  const bool fits = path_[0] == '@' ? fill_abstract_unix_address(path_.substr(1), addr, length)
                                    : fill_unix_address(path_, addr, length);
  if (!fits) throw std::system_error(ENAMETOOLONG, std::generic_category(), "NOTIFY_SOCKET " + path_);
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
