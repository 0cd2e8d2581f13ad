#include "vmm/memory/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>
#include <vector>

#include "vmm/memory/private_pages.h"
#include "base/errors.h"

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

namespace {
void check_ram_size(uint64_t ram_bytes) {
  if (ram_bytes == 0) throw InputError("guest memory size is 0; give at least 1 MiB");
  if (ram_bytes % kPageSize != 0) {
    throw InputError("guest memory size " + std::to_string(ram_bytes) + " is not a multiple of 4 KiB");
  }
}
}  // namespace

GuestMemory GuestMemory::from_mapping(UniqueFd fd, Mapping mapping, uint64_t ram_bytes, Backing backing) {
  GuestMemory mem;
  mem.fd_ = std::move(fd);
  mem.mapping_ = std::move(mapping);
  mem.backing_ = backing;
  mem.size_ = ram_bytes;
  mem.regions_ = plan_ram_regions(ram_bytes);
  for (auto& r : mem.regions_) r.host = mem.mapping_.data() + r.file_offset;
  return mem;
}

GuestMemory GuestMemory::create(uint64_t ram_bytes) {
  check_ram_size(ram_bytes);
  UniqueFd fd(::memfd_create("thaw-guest-ram", MFD_CLOEXEC));
  if (!fd) throw_errno("memfd_create", "guest RAM");
  if (::ftruncate(fd.get(), static_cast<off_t>(ram_bytes)) != 0) {
    throw_errno("ftruncate", "guest RAM memfd to " + std::to_string(ram_bytes >> 20) + " MiB");
  }
  // MAP_NORESERVE: RAM is sparse until the guest touches it.
  auto mapping = Mapping::map(ram_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0, "guest RAM");
  return from_mapping(std::move(fd), std::move(mapping), ram_bytes, Backing::kMemfd);
}

GuestMemory GuestMemory::map_private_file(const std::string& path, uint64_t ram_bytes) {
  check_ram_size(ram_bytes);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open", "snapshot memory file " + path);
  // No readahead on faults: readahead fills the page cache with large folios
  // (up to 2 MiB on ext4 since Linux 6.16), and every clone of a template maps
  // the same file, so a fault on any page of such a folio waits for its one
  // lock. With 1,000 clones that serialised acquires for seconds
  // (bench/density_bench.cpp). Advice only: a kernel that ignores it is slower
  // at scale, not wrong.
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM);
  return map_private_file(fd.get(), path, ram_bytes);
}

GuestMemory GuestMemory::map_private_file(int fd, const std::string& name, uint64_t ram_bytes) {
  check_ram_size(ram_bytes);
  // Checked again at each mapping: a file cut short since it was opened
  // would fail the guest's reads past its end far from here.
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("fstat", name);
  if (static_cast<uint64_t>(st.st_size) != ram_bytes) {
    throw InputError("memory file " + name + " is " + std::to_string(st.st_size) + " bytes, the state says " +
                     std::to_string(ram_bytes));
  }
  // Writable private mapping of a read-only fd: writes never reach the file.
  auto mapping = Mapping::map(ram_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0,
                              "snapshot memory (private)");
  // Per mapping, as the file's advice (above) is per open file: no readahead.
  (void)::madvise(mapping.data(), ram_bytes, MADV_RANDOM);
  return from_mapping(UniqueFd(), std::move(mapping), ram_bytes, Backing::kPrivateFile);
}

GuestMemory GuestMemory::anonymous(uint64_t ram_bytes) {
  check_ram_size(ram_bytes);
  auto mapping = Mapping::map(ram_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0,
                              "guest RAM (anonymous)");
  return from_mapping(UniqueFd(), std::move(mapping), ram_bytes, Backing::kAnonymous);
}

void GuestMemory::discard_private_pages() {
  if (backing_ == Backing::kMemfd) throw std::logic_error("discard_private_pages needs a private mapping, not a memfd");
  // MADV_DONTNEED on a private mapping drops the private copies; KVM's MMU
  // notifier unmaps them from the guest too, so its next access faults in
  // the file page (or zero) again. Over the whole mapping it would also
  // unmap every clean file page, and each page the next request only reads
  // would fault in again (on PVM ~20 us each, mostly in KVM's shadow MMU):
  // so for a file mapping only the runs the kernel shows as private copies go.
  std::vector<PageRun> runs;
  const bool found = backing_ == Backing::kPrivateFile &&
                     (scan_private_pages(mapping_.data(), mapping_.size(), runs) ||
                      read_private_pages(mapping_.data(), mapping_.size(), runs));
  if (!found) runs.assign(1, PageRun{0, mapping_.size()});
  for (const auto& [offset, length] : runs) {
    if (::madvise(mapping_.data() + offset, length, MADV_DONTNEED) != 0) {
      throw_errno("madvise(MADV_DONTNEED)", "guest RAM");
    }
  }
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
