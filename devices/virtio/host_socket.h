// Host-side eventfds for devices that wake a worker thread, each returned as
// a UniqueFd (base/unique_fd.h). The device's unix sockets come from
// base/unix_socket.h. Failures keep the operation and errno
// (std::system_error).
#pragma once

#include "base/unique_fd.h"

namespace thaw::devices {

// A non-blocking eventfd; throws std::system_error.
UniqueFd make_eventfd();
// Adds 1 to the counter (wakes a poller); safe from any thread.
void signal_eventfd(int fd);
// Resets the counter; returns false when it was already 0.
bool drain_eventfd(int fd);

}  // namespace thaw::devices
