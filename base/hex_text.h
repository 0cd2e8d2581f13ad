// "0x1f": the one way thaw writes an address or value in a message; hashes
// and checksums, which are compared by eye, in full width.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace thaw {

inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "0x000000000000001f": a 64-bit hash or checksum, all 16 digits.
inline std::string hex16(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace thaw
