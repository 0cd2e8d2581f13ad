// The memory file: a raw image of guest RAM, written and read with io_uring.
// Chunks that are all zero are never written, so they stay holes in a
// sparse file and cost neither disk nor page cache; every chunk's XXH3-64
// goes into the state file (MemoryLayout::chunk_hashes) so a reader can
// tell this file from a stale or damaged one.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "snapshot/snapshot_state.h"
#include "base/errors.h"  // the errors this API throws

namespace thaw::snapshot {

inline constexpr unsigned kDefaultQueueDepth = 8;

struct MemoryWriteResult {
  uint64_t bytes_written = 0;  // bytes of non-zero chunks; the rest are holes
  uint64_t zero_chunks = 0;
  std::vector<uint64_t> chunk_hashes;
  std::chrono::nanoseconds elapsed{0};
};

// XXH3-64 of `length` zero bytes, computed without a zero buffer of that size.
uint64_t zero_chunk_hash(uint64_t length);

// Writes `memory` to `path` (created or truncated, mode 0600), fsyncs it and
// returns the hashes. The file is sized first, so skipped zero chunks read
// back as zeros. `memory` must not change until this returns (pause the VM).
// Throws InputError for a bad chunk size or empty memory, SysError when a
// syscall fails.
MemoryWriteResult write_memory_file(const std::string& path, std::span<const uint8_t> memory,
                                    uint64_t chunk_bytes = kDefaultChunkBytes,
                                    unsigned queue_depth = kDefaultQueueDepth);

// Drops the file's clean pages from the page cache (posix_fadvise
// DONTNEED), so that clones mapping it fault in small folios of their own
// choosing rather than the large ones writing or reading it left behind
// (GuestMemory::map_private_file says why). Pages mapped somewhere stay.
// Throws SysError when the file cannot be opened.
void drop_cached_pages(const std::string& path);

// Reads the whole file back and compares every chunk with its hash. Throws
// InputError naming the first bad chunk, or the size mismatch when the file
// is not exactly `layout.size_bytes` long (checked before reading).
void verify_memory_file(const std::string& path, const MemoryLayout& layout,
                        unsigned queue_depth = kDefaultQueueDepth);

struct ReadOptions {
  unsigned queue_depth = kDefaultQueueDepth;
  bool verify_hashes = true;
  // `dest` is known to be zero (fresh anonymous memory): chunks whose hash
  // says zero are not read at all.
  bool dest_is_zeroed = false;
};

// The eager restore path: reads the file straight into `dest` (exactly
// `layout.size_bytes` long), several chunks in flight, checking each chunk's
// hash as it lands when asked to. Same errors as verify_memory_file.
void read_memory_file_into(const std::string& path, std::span<uint8_t> dest, const MemoryLayout& layout,
                           const ReadOptions& options = {});

}  // namespace thaw::snapshot
