#include "vmm/memory/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include "vmm/sys_error.h"

namespace thaw {

Mapping Mapping::map(size_t length, int prot, int flags, int fd, off_t offset, const char* what) {
  void* addr = ::mmap(nullptr, length, prot, flags, fd, offset);
  if (addr == MAP_FAILED) throw_errno("mmap", std::string(what) + ", " + std::to_string(length) + " bytes");
  return Mapping(addr, length);
}

}  // namespace thaw

namespace thaw::vmm {

namespace {
constexpr uint64_t kPageSize = 4096;
}

std::vector<MemoryRegion> plan_ram_regions(uint64_t ram_bytes) {
  std::vector<MemoryRegion> regions;
  uint64_t low = std::min(ram_bytes, kMmioGapStart);
  regions.push_back(MemoryRegion{GuestAddress(0), low, 0, nullptr});
  if (ram_bytes > low) {
    regions.push_back(MemoryRegion{GuestAddress(kMmioGapEnd), ram_bytes - low, low, nullptr});
  }
  return regions;
}

GuestMemory GuestMemory::create(uint64_t ram_bytes) {
  if (ram_bytes == 0) throw InputError("guest memory size is 0; give at least 1 MiB");
  if (ram_bytes % kPageSize != 0) {
    throw InputError("guest memory size " + std::to_string(ram_bytes) + " is not a multiple of 4 KiB");
  }
  GuestMemory mem;
  mem.fd_ = UniqueFd(::memfd_create("thaw-guest-ram", MFD_CLOEXEC));
  if (!mem.fd_) throw_errno("memfd_create", "guest RAM");
  if (::ftruncate(mem.fd_.get(), static_cast<off_t>(ram_bytes)) != 0) {
    throw_errno("ftruncate", "guest RAM memfd to " + std::to_string(ram_bytes >> 20) + " MiB");
  }
  // MAP_NORESERVE: RAM is sparse until the guest touches it.
  mem.mapping_ = Mapping::map(ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                              mem.fd_.get(), 0, "guest RAM");
  mem.size_ = ram_bytes;
  mem.regions_ = plan_ram_regions(ram_bytes);
  for (auto& r : mem.regions_) r.host = mem.mapping_.data() + r.file_offset;
  return mem;
}

bool GuestMemory::contains(GuestAddress addr, uint64_t len) const {
  for (const auto& r : regions_) {
    if (r.contains(addr) && len <= r.guest_end().value - addr.value) return true;
  }
  return false;
}

std::span<uint8_t> GuestMemory::slice(GuestAddress addr, uint64_t len, const char* what) {
  for (const auto& r : regions_) {
    if (r.contains(addr) && len <= r.guest_end().value - addr.value) {
      return {r.host + (addr.value - r.guest_start.value), static_cast<size_t>(len)};
    }
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s [0x%llx, 0x%llx) is outside guest RAM (%llu MiB)", what,
                static_cast<unsigned long long>(addr.value),
                static_cast<unsigned long long>(addr.value + len),
                static_cast<unsigned long long>(size_ >> 20));
  throw InputError(buf);
}

void GuestMemory::write(GuestAddress addr, std::span<const uint8_t> bytes, const char* what) {
  auto dst = slice(addr, bytes.size(), what);
  std::memcpy(dst.data(), bytes.data(), bytes.size());
}

}  // namespace thaw::vmm
