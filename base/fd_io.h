// The read(2) and write(2) loops every loader needs: until the buffer is
// full (or the file ends), retrying EINTR. Each caller words its own
// errors (which file, what a short read means for it), so these report and
// do not throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace thaw {

struct IoOutcome {
  size_t bytes = 0;  // transferred before the end of the file, an error or a full buffer
  int error = 0;     // errno of the call that failed; 0 when none did
};

// Reads into `out` until it is full, the file ends (bytes < out.size(),
// error 0) or a read fails (error set).
IoOutcome read_until_full(int fd, std::span<uint8_t> out);

// Writes all of `bytes`, unless a write fails (error set) or writes
// nothing (error EIO: a file that takes no more).
IoOutcome write_all(int fd, std::span<const uint8_t> bytes);

}  // namespace thaw
