// "0x1f": the one way thaw writes an address or value in a message.
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

}  // namespace thaw
