// KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): the descriptors
// are read once, then the counters by one pread each time. They show the
// work KVM does without leaving the kernel, which thaw's own exit counts
// cannot: exits handled in the kernel, shadow page faults, instructions
// emulated (on PVM, guest ring 0 is emulated), interrupts injected.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace thaw::vmm::kvm {

using Counters = std::map<std::string, uint64_t>;

class StatsReader {
 public:
  // Reads and checks the header and descriptors of a stats fd (e.g.
  // VcpuFd::stats_fd()). Throws SysError when they cannot be read and
  // std::runtime_error when they do not make sense.
  explicit StatsReader(UniqueFd fd);
  StatsReader(StatsReader&&) = default;
  StatsReader& operator=(StatsReader&&) = default;

  // Every single-valued cumulative counter, by KVM's name (pf_fixed,
  // insn_emulation, exits, ...).
  Counters read() const;

 private:
  struct Field {
    std::string name;
    uint32_t offset;  // bytes from the data block
  };
  UniqueFd fd_;
  uint32_t data_offset_ = 0;
  size_t data_size_ = 0;
  std::vector<Field> fields_;
};

// after - before for every name both have (counters only grow).
Counters counter_delta(const Counters& after, const Counters& before);

}  // namespace thaw::vmm::kvm
