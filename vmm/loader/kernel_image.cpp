#include "vmm/loader/kernel_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/fd_io.h"
#include "base/unique_fd.h"
#include "base/errors.h"

namespace thaw::vmm::loader {

namespace {
constexpr uint8_t kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr size_t kHdrSOffset = 0x202;
constexpr uint8_t kHdrS[4] = {'H', 'd', 'r', 'S'};

std::string describe(const char* what, const std::string& path) { return std::string(what) + " '" + path + "'"; }
}  // namespace

const char* to_string(KernelFormat f) {
  switch (f) {
    case KernelFormat::kElf64:
      return "ELF64";
    case KernelFormat::kBzImage:
      return "bzImage";
  }
  return "unknown";
}

std::vector<uint8_t> read_image_file(const std::string& path, const char* what, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  // forever; fstat then refuses it like any other non-regular file.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    int err = errno;
    throw InputError(describe(what, path) + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    int err = errno;
    throw InputError(describe(what, path) + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) throw InputError(describe(what, path) + ": not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size == 0) throw InputError(describe(what, path) + ": file is empty");
  if (size > max_bytes) {
    throw InputError(describe(what, path) + ": file is " + std::to_string(size >> 20) + " MiB; the limit is " +
                     std::to_string(max_bytes >> 20) + " MiB");
  }
  std::vector<uint8_t> data(size);
  auto read = read_until_full(fd.get(), data);
  if (read.error != 0) {
    throw InputError(describe(what, path) + ": read failed at byte " + std::to_string(read.bytes) + ": " +
                     std::strerror(read.error));
  }
  if (read.bytes < size) {
    throw InputError(describe(what, path) + ": file shrank while reading (" + std::to_string(read.bytes) + " of " +
                     std::to_string(size) + " bytes)");
  }
  return data;
}

KernelFormat detect_kernel_format(std::span<const uint8_t> image, const std::string& name) {
  if (image.size() >= sizeof kElfMagic && std::memcmp(image.data(), kElfMagic, sizeof kElfMagic) == 0) {
    return KernelFormat::kElf64;
  }
  if (image.size() >= kHdrSOffset + sizeof kHdrS &&
      std::memcmp(image.data() + kHdrSOffset, kHdrS, sizeof kHdrS) == 0) {
    return KernelFormat::kBzImage;
  }
  // The message names what is missing, never the file's bytes: over RPC the
  // file may be one the client may not read.
  if (image.empty()) throw InputError("kernel '" + name + "': neither ELF64 nor bzImage (the file is empty)");
  throw InputError("kernel '" + name + "': neither ELF64 nor bzImage (" + std::to_string(image.size()) +
                   " bytes; no ELF magic at 0, no \"HdrS\" at 0x202)");
}

}  // namespace thaw::vmm::loader
