// The kernel command line: checked against what the kernel accepts, then
// written NUL-terminated at kCmdlineAddr.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::loader {

// Longest command line (without its NUL) an ELF kernel gets.
uint64_t elf_cmdline_limit();

// Longest command line a bzImage accepts: its header's cmdline_size
// (protocol >= 2.06), 255 before that, never more than the reserved area.
uint64_t bzimage_cmdline_limit(uint16_t protocol_version, uint32_t header_cmdline_size);

// Throws InputError for an embedded NUL byte or more than `max_len` bytes.
// `limit_source` says where the limit comes from, for the message.
void validate_cmdline(std::string_view cmdline, uint64_t max_len, const std::string& limit_source);

// Validates, then writes cmdline + NUL at kCmdlineAddr. Returns that address.
uint64_t write_cmdline(GuestMemory& mem, std::string_view cmdline, uint64_t max_len,
                       const std::string& limit_source);

}  // namespace thaw::vmm::loader
