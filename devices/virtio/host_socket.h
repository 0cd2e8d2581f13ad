// Host-side file descriptors for devices that talk to the host: unix
// stream sockets and eventfds, each returned as a UniqueFd
// (base/unique_fd.h). Failures keep the operation, errno and path
// (std::system_error).
#pragma once

#include <string>

#include "base/unique_fd.h"

namespace thaw::devices {

// Binds and listens on a non-blocking unix stream socket at `path`. A stale
// socket file there is removed first; any other kind of file is left alone
// and the bind fails. Throws std::system_error.
UniqueFd listen_unix(const std::string& path);

// Non-blocking connect to the unix stream socket at `path`. Returns an
// invalid fd and sets `*error` (errno) when nothing accepts there, the
// listener's backlog is full, or the path is too long for sun_path.
UniqueFd connect_unix(const std::string& path, int* error);

// A non-blocking eventfd; throws std::system_error.
UniqueFd make_eventfd();
// Adds 1 to the counter (wakes a poller); safe from any thread.
void signal_eventfd(int fd);
// Resets the counter; returns false when it was already 0.
bool drain_eventfd(int fd);

}  // namespace thaw::devices
