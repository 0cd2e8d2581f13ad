#include "base/unix_socket.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace thaw {

namespace {

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

UniqueFd make_unix_socket() { return UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)); }

// Where listen_unix binds before it publishes: beside `path` (the same file
// system, so the rename is atomic), or `path` itself where that would not fit.
std::string staging_name(const std::string& path) {
  const auto slash = path.rfind('/');
  const size_t name_at = slash == std::string::npos ? 0 : slash + 1;
  std::string name = path.substr(0, name_at) + "." + path.substr(name_at) + "." + std::to_string(::getpid());
  return name.size() <= kMaxUnixPathBytes ? name : path;
}

}  // namespace

bool fill_unix_address(const std::string& path, sockaddr_un& addr, socklen_t& length) {
  addr = {};
  addr.sun_family = AF_UNIX;
  length = 0;
  if (path.empty() || path.size() > kMaxUnixPathBytes) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

bool fill_abstract_unix_address(const std::string& name, sockaddr_un& addr, socklen_t& length) {
  addr = {};
  addr.sun_family = AF_UNIX;
  length = 0;
  if (name.empty() || name.size() > sizeof addr.sun_path - 1) return false;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] stays NUL
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return true;
}

UniqueFd connect_unix(const std::string& path, int* error) {
  sockaddr_un addr;
  socklen_t length;
  if (!fill_unix_address(path, addr, length)) {
    *error = path.empty() ? ENOENT : ENAMETOOLONG;
    return {};
  }
  UniqueFd fd = make_unix_socket();
  if (!fd) {
    *error = errno;
    return {};
  }
  // A unix connect completes at once or fails (EAGAIN: backlog full); it
  // never leaves a half-open socket to poll.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
    *error = errno;
    return {};
  }
  return fd;
}

UnixSocketProbe probe_unix_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {UnixSocketState::kAbsent};
    return {UnixSocketState::kUnknown, errno};
  }
  if (!S_ISSOCK(st.st_mode)) return {UnixSocketState::kNotASocket};
  int error = 0;
  if (connect_unix(path, &error)) return {UnixSocketState::kListening};
  switch (error) {
    case EAGAIN:  // a listener whose backlog is full
      return {UnixSocketState::kListening};
    case ECONNREFUSED:
      return {UnixSocketState::kStale};
    case ENOENT:  // removed since the lstat
      return {UnixSocketState::kAbsent};
    default:
      return {UnixSocketState::kUnknown, error};
  }
}

void remove_stale_unix_socket(const std::string& path) {
  auto probe = probe_unix_socket(path);
  switch (probe.state) {
    case UnixSocketState::kAbsent:
      return;
    case UnixSocketState::kStale:
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(errno, "unlink stale unix socket " + path);
      return;
    case UnixSocketState::kListening:
      throw_errno(EADDRINUSE, "unix socket " + path + " is in use: something accepts connections on it");
    case UnixSocketState::kNotASocket:
      throw_errno(EEXIST, path + " exists and is not a socket; only a stale socket is replaced");
    case UnixSocketState::kUnknown:
      break;
  }
  throw_errno(probe.error, "cannot tell whether unix socket " + path + " is in use");
}

SocketDirLock::SocketDirLock(const std::string& socket_path) {
  const auto slash = socket_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : socket_path.substr(0, slash);
  dir_ = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_) return;
  while (::flock(dir_.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      dir_ = UniqueFd();  // a file system without flock: go on unlocked
      return;
    }
  }
}

UniqueFd listen_unix(const std::string& path, std::optional<mode_t> mode) {
  sockaddr_un addr;
  socklen_t length;
  if (!fill_unix_address(path, addr, length)) {
    throw_errno(path.empty() ? EINVAL : ENAMETOOLONG, "unix socket path '" + path + "' is empty or longer than " +
                                                          std::to_string(kMaxUnixPathBytes) + " bytes");
  }
  SocketDirLock lock(path);
  remove_stale_unix_socket(path);
  const std::string bound_at = staging_name(path);
  // Left by a process of the same pid that died between bind and rename.
  if (bound_at != path) remove_stale_unix_socket(bound_at);
  if (!fill_unix_address(bound_at, addr, length)) throw_errno(ENAMETOOLONG, "staging name " + bound_at);
  UniqueFd fd = make_unix_socket();
  if (!fd) throw_errno(errno, "socket(AF_UNIX) for " + path);
  // EADDRINUSE here: a process that does not take the lock bound the path.
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), length) != 0) throw_errno(errno, "bind " + bound_at);
  auto fail = [&](const std::string& what) {
    int error = errno;
    ::unlink(bound_at.c_str());
    throw_errno(error, what);
  };
  if (mode && ::chmod(bound_at.c_str(), *mode) != 0) fail("chmod " + bound_at);
  if (::listen(fd.get(), 128) != 0) fail("listen on " + bound_at);
  if (bound_at != path && ::rename(bound_at.c_str(), path.c_str()) != 0) fail("rename " + bound_at + " to " + path);
  return fd;
}

}  // namespace thaw
