// fuzz_snapshot_state: snapshot/state_codec.h's decode_state, then the
// machine-state validation a restore runs on what it decoded
// (vmm/state_validation.h), with the context a one- or two-vCPU VM on a
// host with XSAVE would give.
//
// Input: the Cap'n Proto packed payload. The fuzzer frames it with a valid
// header and checksum so mutations reach the message decoder instead of
// dying at the checksum; an input that starts with "THAWSNAP" is taken as a
// whole file, header included, so the header checks are fuzzed too.
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "snapshot/state_codec.h"
#include "vmm/state_validation.h"
#include "base/errors.h"

namespace {

std::vector<uint8_t> frame(const uint8_t* payload, size_t size) {
  std::vector<uint8_t> file(thaw::snapshot::kStateHeaderBytes + size);
  std::memcpy(file.data(), "THAWSNAP", 8);
  const uint16_t major = thaw::snapshot::kFormatMajor;
  const uint16_t minor = thaw::snapshot::kFormatMinor;
  const uint32_t header_bytes = thaw::snapshot::kStateHeaderBytes;
  const uint64_t length = size;
  const uint64_t hash = XXH3_64bits(payload, size);
  std::memcpy(file.data() + 8, &major, 2);
  std::memcpy(file.data() + 10, &minor, 2);
  std::memcpy(file.data() + 12, &header_bytes, 4);
  std::memcpy(file.data() + 16, &length, 8);
  std::memcpy(file.data() + 24, &hash, 8);
  if (size != 0) std::memcpy(file.data() + thaw::snapshot::kStateHeaderBytes, payload, size);
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file;
  if (size >= 8 && std::memcmp(data, "THAWSNAP", 8) == 0) {
    file.assign(data, data + size);
  } else {
    file = frame(data, size);
  }
  // Smaller limits than a restore's, so that one input cannot ask for
  // gigabytes; the checks are the same code either way.
  thaw::snapshot::DecodeLimits limits;
  limits.max_file_bytes = 1 << 20;
  limits.traversal_limit_words = (8 << 20) / 8;
  thaw::snapshot::SnapshotState state;
  try {
    state = thaw::snapshot::decode_state(file, limits);
  } catch (const thaw::InputError&) {
    return 0;  // refused, as it should be
  }
  thaw::vmm::ValidationContext ctx;
  ctx.msr_indices = {0x10, 0x174, 0x175, 0x176, 0xc0000080, 0xc0000081, 0xc0000082, 0xc0000084, 0xc0000100,
                     0xc0000101, 0xc0000102, 0x4b564d00, 0x4b564d01, 0x4b564d03};
  ctx.vcpu_count = static_cast<uint32_t>(state.machine.vcpus.size() == 2 ? 2 : 1);
  ctx.memory_size = state.memory.size_bytes;
  ctx.xsave_size = 4096;
  try {
    thaw::vmm::validate_machine_state(state.machine, ctx);
  } catch (const thaw::StateError&) {
    // refused with a message: what the restore path does too
  }
  return 0;
}
