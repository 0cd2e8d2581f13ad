// fuzz_working_set: snapshot/working_set.h's decode_working_set, the file a
// restore reads from a snapshot directory to prefetch pages, then the runs
// the prefetcher walks. The first byte picks the guest memory size the file
// is checked against (a file recorded for another size must be refused).
#include <cstdint>
#include <span>

#include "snapshot/working_set.h"
#include "base/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr uint64_t kSizes[] = {64ull << 20, 128ull << 20, 3ull << 30, 5ull << 30, 4096, 0};
  const uint64_t memory_size = kSizes[data[0] % (sizeof kSizes / sizeof kSizes[0])];
  try {
    auto ws = thaw::snapshot::decode_working_set(std::span<const uint8_t>(data + 1, size - 1), memory_size);
    uint64_t covered = 0;
    for (const auto& run : thaw::snapshot::runs(ws)) {
      // Every run the prefetcher would read lies inside guest memory.
      if (run.length == 0 || run.offset > memory_size || run.length > memory_size - run.offset) __builtin_trap();
      covered += run.length;
    }
    if (covered != ws.bytes()) __builtin_trap();
  } catch (const thaw::InputError&) {
  }
  return 0;
}
