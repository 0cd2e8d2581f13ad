// Reading fields out of an untrusted image file (kernel, program): a range
// check that cannot overflow, and unaligned reads by copy.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace thaw::vmm::loader {

// True when [offset, offset + len) lies inside `size` bytes, without overflow.
inline bool in_bounds(uint64_t offset, uint64_t len, uint64_t size) { return offset <= size && len <= size - offset; }

// The T at `offset`, which the caller has checked with in_bounds; copied,
// so no alignment is assumed.
template <class T>
T read_at(std::span<const uint8_t> image, uint64_t offset) {
  T v;
  std::memcpy(&v, image.data() + offset, sizeof(T));
  return v;
}

}  // namespace thaw::vmm::loader
