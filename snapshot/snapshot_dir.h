// A snapshot on disk: a directory holding `state` (state_codec.h) and
// `memory` (memory_file.h). Writes are atomic at the directory level:
//
//   1. stale `state.tmp` / `memory.tmp` from a crashed writer are removed;
//   2. `memory.tmp` is written and fsynced, its hashes go into the state;
//   3. `state.tmp` is written and fsynced;
//   4. an existing `state` is unlinked and the directory fsynced, so the
//      old state can never be paired with the new memory;
//   5. `memory.tmp` -> `memory`, then `state.tmp` -> `state`, directory fsynced.
//
// `state` is the commit point. A crash before step 4 leaves the old
// snapshot whole (plus .tmp files the next write removes); a crash after it
// leaves a directory without `state`, which read_snapshot_dir rejects. A
// reader checks the memory file's size against the state, and
// verify_memory_file() checks its content against the state's chunk hashes.
// Renaming over `memory` never disturbs a clone that already maps the old
// file: the old inode lives until its last mapping goes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/unique_fd.h"
#include "snapshot/memory_file.h"
#include "snapshot/snapshot_state.h"
#include "snapshot/state_codec.h"

namespace thaw::snapshot {

inline constexpr char kStateFileName[] = "state";
inline constexpr char kMemoryFileName[] = "memory";

struct SnapshotWriteResult {
  MemoryWriteResult memory;
  uint64_t state_bytes = 0;
};

// Writes a snapshot of `memory` and `state` into `dir` (created, mode 0700,
// if missing; its parent must exist). The state's chunk hashes are filled
// in here; its memory size must equal memory.size() and its chunk size
// picks the memory file's chunks. The encoded state is decoded again before
// anything is renamed, so thaw never commits a snapshot it would reject.
SnapshotWriteResult write_snapshot_dir(const std::string& dir, const SnapshotState& state_without_hashes,
                                       std::span<const uint8_t> memory, unsigned queue_depth = kDefaultQueueDepth);

struct LoadedSnapshot {
  SnapshotState state;
  std::string memory_path;  // checked: exactly state.memory.size_bytes long
  std::string dir;          // where it was read from (its working-set file lives there too)
  // memory_path opened read-only (advised POSIX_FADV_RANDOM), shared by
  // copies: restores map it without opening it again. Null: open memory_path.
  std::shared_ptr<const UniqueFd> memory_file = nullptr;
};

// Reads and validates `dir/state` (size cap before reading), and checks that
// `dir/memory` exists with the size the state gives. Content hashes are not
// read here (that costs a full read); see verify_memory_file(). Throws
// InputError for a missing directory or file and for invalid content.
LoadedSnapshot read_snapshot_dir(const std::string& dir, const DecodeLimits& limits = {});

}  // namespace thaw::snapshot
