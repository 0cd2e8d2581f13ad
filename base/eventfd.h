// eventfds that wake a thread blocked in poll(): a device's worker, the
// userfault pager's handler, or KVM itself (an irqfd). Each is returned as a
// UniqueFd (base/unique_fd.h); failures keep the operation, errno and what
// the eventfd was for (std::system_error).
#pragma once

#include <string>

#include "base/unique_fd.h"

namespace thaw {

// A non-blocking, close-on-exec eventfd. `purpose` names it in the error.
UniqueFd make_eventfd(const std::string& purpose);
// Adds 1 to the counter (wakes a poller); safe from any thread.
void signal_eventfd(int fd);
// Resets the counter; returns false when it was already 0.
bool drain_eventfd(int fd);

}  // namespace thaw
