// Test-side unix stream sockets on base/unix_socket.h, so no test fills a
// sockaddr_un by hand: a blocking client connect (tests then send and recv
// plainly, whole buffers at a time), the stale socket file a killed
// process leaves behind, and a file's inode.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <string>
#include <utility>

#include "base/unique_fd.h"
#include "base/unix_socket.h"

namespace thaw::testing {

// `fd` with O_NONBLOCK cleared (listen_unix and connect_unix set it); invalid,
// errno set, if fcntl fails.
inline UniqueFd blocking(UniqueFd fd) {
  const int flags = fd ? ::fcntl(fd.get(), F_GETFL) : -1;
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return {};
  return fd;
}

// connect_unix made blocking. Invalid, with errno set, where nothing accepts
// at `path` or the path does not fit.
inline UniqueFd connect_unix_blocking(const std::string& path) {
  int error = 0;
  UniqueFd fd = connect_unix(path, &error);
  if (!fd) {
    errno = error;
    return {};
  }
  return blocking(std::move(fd));
}

// The inode of the file at `path` (not followed), 0 when there is none: a
// socket file replaced or removed behind a test's back changes it.
inline ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Leaves at `path` a socket file nobody accepts on, as a killed VMM leaves
// it: bound, then closed. False, errno set, when that fails.
inline bool make_stale_unix_socket(const std::string& path) {
  sockaddr_un addr;
  socklen_t length;
  if (!fill_unix_address(path, addr, length)) {
    errno = ENAMETOOLONG;
    return false;
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd && ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), length) == 0;
}

}  // namespace thaw::testing
