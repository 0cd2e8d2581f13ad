// How a device reaches guest RAM by guest-physical address, without seeing
// the VMM's memory types: the VMM adapts its GuestMemory to this interface,
// tests hand in a plain buffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

namespace thaw::devices {

class GuestMemoryAccess {
 public:
  virtual ~GuestMemoryAccess() = default;

  // The host view of [gpa, gpa + len), or an empty span when that range is
  // not entirely inside one RAM region (or len is 0). Never throws: every
  // address here comes from the guest and may be anything.
  virtual std::span<uint8_t> slice(uint64_t gpa, uint64_t len) = 0;

  bool contains(uint64_t gpa, uint64_t len) { return len != 0 && !slice(gpa, len).empty(); }

  // Copies guest memory out as a T; nullopt when the range is not RAM. The
  // guest may change the bytes at any time: callers validate the copy.
  template <class T>
  std::optional<T> read_obj(uint64_t gpa) {
    static_assert(std::is_trivially_copyable_v<T>);
    auto src = slice(gpa, sizeof(T));
    if (src.empty()) return std::nullopt;
    T obj;
    std::memcpy(&obj, src.data(), sizeof(T));
    return obj;
  }

  template <class T>
  bool write_obj(uint64_t gpa, const T& obj) {
    static_assert(std::is_trivially_copyable_v<T>);
    auto dst = slice(gpa, sizeof(T));
    if (dst.empty()) return false;
    std::memcpy(dst.data(), &obj, sizeof(T));
    return true;
  }
};

}  // namespace thaw::devices
