// fuzz_guest_options: the mini guest's kernel command-line parser
// (guest/mini/options.c, built for the host). The command line comes from
// whoever made the template; the guest must never read past its NUL.
#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
#include "options.h"  // C, without its own extern "C"
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> cmdline(data, data + size);
  cmdline.push_back('\0');  // exactly as long as the input: ASan sees any overread
  struct options o = parse_options(cmdline.data());
  if (o.virtio_count > MAX_VIRTIO_MMIO_DEVICES) __builtin_trap();
  return 0;
}
