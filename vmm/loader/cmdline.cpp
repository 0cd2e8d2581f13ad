#include "vmm/loader/cmdline.h"

#include <algorithm>
#include <vector>

#include "base/errors.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::loader {

namespace {
// Boot protocols before 2.06 have no cmdline_size field; boot.rst says 255.
constexpr uint64_t kLegacyCmdlineLimit = 255;
constexpr uint16_t kProtocolWithCmdlineSize = 0x0206;
constexpr uint64_t kAreaLimit = x86::kCmdlineAreaSize - 1;  // leave room for the NUL
}  // namespace

uint64_t elf_cmdline_limit() { return x86::kElfCmdlineMaxLen; }

uint64_t bzimage_cmdline_limit(uint16_t protocol_version, uint32_t header_cmdline_size) {
  if (protocol_version < kProtocolWithCmdlineSize || header_cmdline_size == 0) return kLegacyCmdlineLimit;
  return std::min<uint64_t>(header_cmdline_size, kAreaLimit);
}

void validate_cmdline(std::string_view cmdline, uint64_t max_len, const std::string& limit_source) {
  if (auto pos = cmdline.find('\0'); pos != std::string_view::npos) {
    throw InputError("command line has a NUL byte at offset " + std::to_string(pos) +
                     "; the kernel would stop reading there");
  }
  if (cmdline.size() > max_len) {
    throw InputError("command line is " + std::to_string(cmdline.size()) + " bytes; " + limit_source +
                     " accepts at most " + std::to_string(max_len));
  }
}

uint64_t write_cmdline(GuestMemory& mem, std::string_view cmdline, uint64_t max_len,
                       const std::string& limit_source) {
  validate_cmdline(cmdline, std::min(max_len, kAreaLimit), limit_source);
  std::vector<uint8_t> bytes(cmdline.begin(), cmdline.end());
  bytes.push_back(0);
  mem.write(GuestAddress(x86::kCmdlineAddr), bytes, "kernel command line");
  return x86::kCmdlineAddr;
}

}  // namespace thaw::vmm::loader
