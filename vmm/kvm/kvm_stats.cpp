#include "vmm/kvm/kvm_stats.h"

#include <linux/kvm.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/errors.h"

namespace thaw::vmm::kvm {

namespace {

void pread_exact(int fd, void* buf, size_t size, uint64_t offset, const char* what) {
  ssize_t n = ::pread(fd, buf, size, static_cast<off_t>(offset));
  if (n < 0) throw SysError("pread", errno, std::string("KVM stats ") + what);
  if (static_cast<size_t>(n) != size) {
    throw std::runtime_error(std::string("KVM stats: short read of the ") + what);
  }
}

// struct kvm_stats_desc without its name: C++ sizes the kernel header's
// flexible-array wrapper differently from C, so spell out the 16 bytes.
struct StatsDescriptor {
  uint32_t flags;
  int16_t exponent;
  uint16_t size;
  uint32_t offset;
  uint32_t bucket_size;
};
static_assert(sizeof(StatsDescriptor) == 16);

}  // namespace

StatsReader::StatsReader(UniqueFd fd) : fd_(std::move(fd)) {
  kvm_stats_header header{};
  pread_exact(fd_.get(), &header, sizeof header, 0, "header");
  // The kernel's own file, but checked all the same: a bad size here would
  // make the reads below run wild.
  if (header.num_desc == 0 || header.num_desc > 4096 || header.name_size == 0 || header.name_size > 1024) {
    throw std::runtime_error("KVM stats: implausible header (" + std::to_string(header.num_desc) + " descriptors, " +
                             std::to_string(header.name_size) + "-byte names)");
  }
  const size_t stride = sizeof(StatsDescriptor) + header.name_size;
  std::vector<uint8_t> descriptors(stride * header.num_desc);
  pread_exact(fd_.get(), descriptors.data(), descriptors.size(), header.desc_offset, "descriptors");
  data_offset_ = header.data_offset;
  for (uint32_t i = 0; i < header.num_desc; ++i) {
    StatsDescriptor desc{};
    std::memcpy(&desc, descriptors.data() + i * stride, sizeof desc);
    const char* name = reinterpret_cast<const char*>(descriptors.data() + i * stride + sizeof desc);
    const size_t end = desc.offset + static_cast<size_t>(desc.size) * sizeof(uint64_t);
    if (end > data_size_) data_size_ = end;
    if ((desc.flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE || desc.size != 1) continue;
    fields_.push_back({std::string(name, ::strnlen(name, header.name_size)), desc.offset});
  }
  if (data_size_ > (1u << 20)) throw std::runtime_error("KVM stats: data block over 1 MiB");
}

Counters StatsReader::read() const {
  std::vector<uint64_t> data(data_size_ / sizeof(uint64_t) + 1);
  pread_exact(fd_.get(), data.data(), data_size_, data_offset_, "data");
  Counters out;
  for (const auto& f : fields_) out[f.name] = data[f.offset / sizeof(uint64_t)];
  return out;
}

Counters counter_delta(const Counters& after, const Counters& before) {
  Counters out;
  for (const auto& [name, value] : after) {
    if (auto it = before.find(name); it != before.end()) out[name] = value >= it->second ? value - it->second : 0;
  }
  return out;
}

}  // namespace thaw::vmm::kvm
