// The program's files as a cpio "newc" archive, the format Linux's
// initramfs reads and the mini guest unpacks (guest/mini). Packing is
// reproducible: names sorted, uid/gid 0, mtime 0, inode numbers counted
// from 1, so the same directory gives the same bytes and the same snapshot.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace thaw::vmm::loader {

// Bounds what a wrong --files (say, $HOME) makes us read into guest RAM.
inline constexpr uint64_t kMaxFilesArchiveBytes = 256ull << 20;

// Packs everything under `dir` (not `dir` itself) into a newc archive:
// names relative to `dir` without a leading "/" or "./" ("lib/x.lua"), each
// directory before its contents and siblings in byte order; regular files
// and directories keep their permission bits, symlinks are stored as
// symlinks (mode 0120777, data = target). FIFOs, sockets and devices are
// refused (or, with SpecialFiles::kSkip, left out), and never opened.
// Throws InputError naming the path for a missing or unreadable directory,
// an unsupported file, or an archive over `max_bytes`.
enum class SpecialFiles {
  kRefuse,  // the mini guest's files: it has no use for them
  kSkip,    // a Linux root file system: devtmpfs provides /dev, FIFOs and sockets are made at run time
};
std::vector<uint8_t> pack_cpio_directory(const std::string& dir, uint64_t max_bytes = kMaxFilesArchiveBytes,
                                         SpecialFiles special = SpecialFiles::kRefuse);

struct CpioEntry {
  std::string name;
  uint32_t mode = 0;  // file type and permission bits, as st_mode
  std::vector<uint8_t> data;  // file contents, or a symlink's target
  uint32_t rdev_major = 0;    // a device node's number (Linux's initramfs makes
  uint32_t rdev_minor = 0;    // it; the mini guest refuses devices)
};

// Appends one entry (header, name and data, each padded to 4 bytes).
void append_cpio_entry(std::vector<uint8_t>& out, const CpioEntry& entry, uint32_t ino);
// Appends the "TRAILER!!!" entry that ends an archive.
void append_cpio_trailer(std::vector<uint8_t>& out);

// Reads an archive back (the tests' round trips). Stops at the trailer;
// throws InputError for a bad magic, a non-hex field or a length past the end.
std::vector<CpioEntry> read_cpio(std::span<const uint8_t> archive);

}  // namespace thaw::vmm::loader
