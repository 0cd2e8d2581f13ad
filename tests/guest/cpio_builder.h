// Writes a cpio "newc" archive in memory, the format the mini guest indexes
// (guest/mini/cpio_reader.c), so that tests and fuzz targets of the function
// runtime need no external tool. Header-only: fuzz targets use it without
// GoogleTest.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace thaw_guest_test {

class CpioBuilder {
 public:
  CpioBuilder &file(const std::string &name, const std::string &data, uint32_t mode = 0100644) {
    entry(name, data, mode);
    return *this;
  }
  CpioBuilder &dir(const std::string &name) { return file(name, "", 040755); }
  CpioBuilder &symlink(const std::string &name, const std::string &target) { return file(name, target, 0120777); }
  // The trailer entry, then the bytes.
  std::vector<uint8_t> finish() {
    entry("TRAILER!!!", "", 0);
    return bytes_;
  }

 private:
  void entry(const std::string &name, const std::string &data, uint32_t mode) {
    char header[111];
    std::snprintf(header, sizeof header, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino_++, mode,
                  0u, 0u, 1u, 1700000000u, static_cast<unsigned>(data.size()), 0u, 0u, 0u, 0u,
                  static_cast<unsigned>(name.size() + 1), 0u);
    bytes_.insert(bytes_.end(), header, header + 110);
    bytes_.insert(bytes_.end(), name.begin(), name.end());
    bytes_.push_back(0);
    pad();
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    pad();
  }
  void pad() {
    while (bytes_.size() % 4) bytes_.push_back(0);
  }

  std::vector<uint8_t> bytes_;
  uint32_t ino_ = 1;
};

}  // namespace thaw_guest_test
