// thaw_fuzz_make_seeds DIR: writes the seeds that come from thaw's own
// encoders into DIR/<target>/: the payload of a real snapshot state (the
// snapshot tests' full state, with and without vsock) for fuzz_snapshot_state
// and working-set files for fuzz_working_set. tests/fuzz/corpus was made
// with it; run it again when a format changes.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "snapshot/working_set.h"
#include "tests/snapshot/snapshot_test_support.h"

namespace {

void write(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  using namespace thaw::snapshot;
  using thaw::snapshot::test::make_full_state;
  auto payload_of = [](const SnapshotState& s) {
    auto file = encode_state(s);
    return std::vector<uint8_t>(file.begin() + kStateHeaderBytes, file.end());
  };
  write(dir / "snapshot_state" / "full-2vcpu", payload_of(make_full_state()));
  write(dir / "snapshot_state" / "small-1vcpu", payload_of(make_full_state(4ull << 20, 1)));
  SnapshotState vsock = make_full_state(8ull << 20, 1);
  vsock.machine.devices.vsock.emplace();
  write(dir / "snapshot_state" / "vsock", payload_of(vsock));
  write(dir / "snapshot_state" / "whole-file", encode_state(make_full_state(2ull << 20, 1)));

  // The first byte picks the memory size (fuzz_working_set.cpp): 0 = 64 MiB.
  auto ws_seed = [](const std::vector<uint64_t>& offsets) {
    std::vector<uint8_t> out{0};
    auto file = encode_working_set(working_set_from_offsets(offsets), 64ull << 20);
    out.insert(out.end(), file.begin(), file.end());
    return out;
  };
  write(dir / "working_set" / "three-runs", ws_seed({0, 4096, 8192, 1 << 20, (64ull << 20) - 4096}));
  write(dir / "working_set" / "empty", ws_seed({}));
  return 0;
}
