#include "base/fd_io.h"

#include <unistd.h>

#include <cerrno>

namespace thaw {

IoOutcome read_until_full(int fd, std::span<uint8_t> out) {
  IoOutcome outcome;
  while (outcome.bytes < out.size()) {
    ssize_t n = ::read(fd, out.data() + outcome.bytes, out.size() - outcome.bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      outcome.error = errno;
      break;
    }
    if (n == 0) break;
    outcome.bytes += static_cast<size_t>(n);
  }
  return outcome;
}

IoOutcome write_all(int fd, std::span<const uint8_t> bytes) {
  IoOutcome outcome;
  while (outcome.bytes < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + outcome.bytes, bytes.size() - outcome.bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      outcome.error = errno;
      break;
    }
    if (n == 0) {
      outcome.error = EIO;
      break;
    }
    outcome.bytes += static_cast<size_t>(n);
  }
  return outcome;
}

}  // namespace thaw
