#include "base/eventfd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace thaw {

UniqueFd make_eventfd(const std::string& purpose) {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd.valid()) throw std::system_error(errno, std::generic_category(), "eventfd for " + purpose);
  return fd;
}

void signal_eventfd(int fd) {
  const uint64_t one = 1;
  // EAGAIN only when the counter is about to overflow: the reader has not
  // consumed the earlier signals yet, so this one is not lost.
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
}

bool drain_eventfd(int fd) {
  uint64_t value = 0;
  return ::read(fd, &value, sizeof value) == sizeof value && value != 0;
}

}  // namespace thaw
