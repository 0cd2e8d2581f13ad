// Guest RAM: one memfd, mapped once, split into guest-physical regions that
// leave the 32-bit MMIO gap [3 GiB, 4 GiB) free. A later snapshot issue
// saves and shares the same fd.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/memory/mapping.h"

namespace thaw::vmm {

// A guest-physical address. A strong type so it is never mixed up with a
// host pointer or a length.
struct GuestAddress {
  uint64_t value = 0;
  constexpr GuestAddress() = default;
  constexpr explicit GuestAddress(uint64_t v) : value(v) {}
  constexpr GuestAddress operator+(uint64_t offset) const { return GuestAddress(value + offset); }
  constexpr auto operator<=>(const GuestAddress&) const = default;
};

// One contiguous guest-physical range backed by part of the memory file.
struct MemoryRegion {
  GuestAddress guest_start;
  uint64_t size = 0;
  uint64_t file_offset = 0;  // offset in the memfd and in the host mapping
  uint8_t* host = nullptr;   // host address of guest_start

  GuestAddress guest_end() const { return guest_start + size; }
  bool contains(GuestAddress a) const { return a >= guest_start && a < guest_end(); }
};

// Where the 32-bit MMIO hole starts and ends; RAM never overlaps it.
inline constexpr uint64_t kMmioGapStart = 0xC000'0000ULL;  // 3 GiB
inline constexpr uint64_t kMmioGapEnd = 0x1'0000'0000ULL;  // 4 GiB

// Splits `ram_bytes` of RAM around the MMIO gap. Pure: no allocation of memory.
std::vector<MemoryRegion> plan_ram_regions(uint64_t ram_bytes);

class GuestMemory {
 public:
  // Creates a memfd of `ram_bytes` (a multiple of 4 KiB, not 0), maps it
  // shared and splits it around the MMIO gap. Throws InputError for a bad
  // size and SysError when the host refuses.
  static GuestMemory create(uint64_t ram_bytes);

  // How restored RAM is backed (see snapshot/restore.h).
  enum class Backing { kMemfd, kPrivateFile, kAnonymous };
  // Maps `path` (a snapshot memory file of exactly `ram_bytes`) MAP_PRIVATE:
  // the guest reads file pages lazily from the shared page cache, and its
  // writes become private copy-on-write pages.
  static GuestMemory map_private_file(const std::string& path, uint64_t ram_bytes);
  // The same from an open file (`name` for errors): a pool opens its
  // template's memory file once, not once a clone. The fd is not kept (the
  // mapping holds the file); advise it POSIX_FADV_RANDOM once when opening.
  static GuestMemory map_private_file(int fd, const std::string& name, uint64_t ram_bytes);
  // Private anonymous RAM (zero until written), e.g. for an eager read of a
  // snapshot or for userfaultfd.
  static GuestMemory anonymous(uint64_t ram_bytes);

  Backing backing() const { return backing_; }
  // Throws away everything the guest wrote since the mapping was made: file
  // pages read the file again, anonymous pages read zero. The cost grows
  // with the pages the guest dirtied only.
  void discard_private_pages();

  GuestMemory(GuestMemory&&) noexcept = default;
  GuestMemory& operator=(GuestMemory&&) noexcept = default;

  uint64_t size() const { return size_; }
  int fd() const { return fd_.get(); }
  const std::vector<MemoryRegion>& regions() const { return regions_; }
  uint8_t* host_base() const { return mapping_.data(); }

  // True when [addr, addr+len) lies entirely inside one RAM region.
  bool contains(GuestAddress addr, uint64_t len) const;

  // Host view of [addr, addr+len); throws InputError naming `what` when the
  // range is not entirely guest RAM (e.g. "kernel segment 2").
  std::span<uint8_t> slice(GuestAddress addr, uint64_t len, const char* what = "guest range");

  void write(GuestAddress addr, std::span<const uint8_t> bytes, const char* what = "guest write");

  template <class T>
  void write_obj(GuestAddress addr, const T& obj, const char* what = "guest object") {
    static_assert(std::is_trivially_copyable_v<T>);
    auto dst = slice(addr, sizeof(T), what);
    std::memcpy(dst.data(), &obj, sizeof(T));
  }

  template <class T>
  T read_obj(GuestAddress addr, const char* what = "guest object") {
    static_assert(std::is_trivially_copyable_v<T>);
    T obj;
    auto src = slice(addr, sizeof(T), what);
    std::memcpy(&obj, src.data(), sizeof(T));
    return obj;
  }

 private:
  GuestMemory() = default;

  static GuestMemory from_mapping(UniqueFd fd, Mapping mapping, uint64_t ram_bytes, Backing backing);

  UniqueFd fd_;
  Mapping mapping_;
  Backing backing_ = Backing::kMemfd;
  uint64_t size_ = 0;
  std::vector<MemoryRegion> regions_;
};

}  // namespace thaw::vmm
