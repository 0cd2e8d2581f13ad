// Reading kernel and initrd files into memory, and telling kernel formats
// apart by their magic numbers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace thaw::vmm::loader {

enum class KernelFormat { kElf64, kBzImage };

const char* to_string(KernelFormat f);

// Largest file read_image_file accepts by default: no kernel or microVM
// initrd comes close, and it bounds what a wrong path can make us allocate.
inline constexpr uint64_t kMaxImageFileBytes = 512ull << 20;

// Reads the whole file. `what` names it in errors ("kernel", "initrd").
// Throws InputError for a missing, unreadable, empty or too large file, or
// one that is not a regular file.
std::vector<uint8_t> read_image_file(const std::string& path, const char* what,
                                     uint64_t max_bytes = kMaxImageFileBytes);

// ELF if it starts with "\x7fELF", bzImage if "HdrS" is at 0x202. Throws
// InputError naming `name` and the first bytes otherwise.
KernelFormat detect_kernel_format(std::span<const uint8_t> image, const std::string& name);

}  // namespace thaw::vmm::loader
