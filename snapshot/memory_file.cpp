#include "snapshot/memory_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>

#include "base/hex_text.h"
#include "base/unique_fd.h"
#include "snapshot/io_ring.h"
#include "base/errors.h"

namespace thaw::snapshot {

namespace {

constexpr size_t kZeroBlockBytes = 64 * 1024;
alignas(64) const uint8_t kZeroBlock[kZeroBlockBytes] = {};

bool is_zero(std::span<const uint8_t> bytes) {
  // memcmp against a static zero block: glibc's vectorised compare beats a
  // hand-written word loop, and it stops at the first non-zero byte.
  for (size_t off = 0; off < bytes.size(); off += kZeroBlockBytes) {
    size_t n = std::min(kZeroBlockBytes, bytes.size() - off);
    if (std::memcmp(bytes.data() + off, kZeroBlock, n) != 0) return false;
  }
  return true;
}

void check_chunk_bytes(uint64_t chunk_bytes) {
  if (!std::has_single_bit(chunk_bytes) || chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes) {
    throw InputError("memory chunk size " + std::to_string(chunk_bytes) + " is not a power of two from " +
                     std::to_string(kMinChunkBytes) + " to " + std::to_string(kMaxChunkBytes));
  }
}

// Opens the memory file for reading and checks it against the layout
// before a byte is read: a file of the wrong size belongs to another state.
UniqueFd open_for_reading(const std::string& path, const MemoryLayout& layout) {
  check_chunk_bytes(layout.chunk_bytes);
  if (layout.chunk_hashes.size() != layout.chunk_count()) {
    throw InputError("memory layout has " + std::to_string(layout.chunk_hashes.size()) + " chunk hashes for " +
                     std::to_string(layout.chunk_count()) + " chunks");
  }
  // Opened O_NONBLOCK so that a FIFO is refused instead of waited on; the
  // flag is cleared once it is known to be a regular file, because io_uring
  // answers -EAGAIN instead of reading for an O_NONBLOCK file.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw_errno("open", "memory file " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("fstat", "memory file " + path);
  if (!S_ISREG(st.st_mode)) throw InputError("memory file " + path + " is not a regular file");
  if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK) != 0) {
    throw_errno("fcntl", "memory file " + path);
  }
  if (static_cast<uint64_t>(st.st_size) != layout.size_bytes) {
    throw InputError("memory file " + path + " is " + std::to_string(st.st_size) + " bytes, the state says " +
                     std::to_string(layout.size_bytes));
  }
  return fd;
}

std::string bad_chunk_message(const std::string& path, const MemoryLayout& layout, uint64_t chunk, uint64_t actual) {
  uint64_t start = chunk * layout.chunk_bytes;
  return "memory file " + path + " chunk " + std::to_string(chunk) + " (bytes " + std::to_string(start) + ".." +
         std::to_string(start + layout.chunk_length(chunk)) + ") has XXH3 " + hex16(actual) + ", the state says " +
         hex16(layout.chunk_hashes[chunk]) + " (the file is damaged or from another snapshot)";
}

// Remembers the lowest-numbered bad chunk: completions arrive out of
// order, but the error should name the first one in the file.
struct FirstBadChunk {
  uint64_t chunk = std::numeric_limits<uint64_t>::max();
  uint64_t actual = 0;
  void note(uint64_t c, uint64_t hash) {
    if (c < chunk) {
      chunk = c;
      actual = hash;
    }
  }
  void throw_if_any(const std::string& path, const MemoryLayout& layout) const {
    if (chunk != std::numeric_limits<uint64_t>::max()) throw InputError(bad_chunk_message(path, layout, chunk, actual));
  }
};

}  // namespace

uint64_t zero_chunk_hash(uint64_t length) {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), &XXH3_freeState);
  if (!state) throw std::bad_alloc();
  XXH3_64bits_reset(state.get());
  for (uint64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroBlockBytes, length - done));
    XXH3_64bits_update(state.get(), kZeroBlock, n);
    done += n;
  }
  return XXH3_64bits_digest(state.get());
}

void drop_cached_pages(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw_errno("open", "memory file " + path);
  // Advice: on failure the pages simply stay cached.
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
}

MemoryWriteResult write_memory_file(const std::string& path, std::span<const uint8_t> memory, uint64_t chunk_bytes,
                                    unsigned queue_depth) {
  auto started = std::chrono::steady_clock::now();
  check_chunk_bytes(chunk_bytes);
  if (memory.empty()) throw InputError("memory to write to " + path + " is empty");

  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) throw_errno("open", "memory file " + path);
  // Full size first: chunks never written read back as zeros (holes).
  if (::ftruncate(fd.get(), static_cast<off_t>(memory.size())) != 0) {
    throw_errno("ftruncate", "memory file " + path + " to " + std::to_string(memory.size()) + " bytes");
  }

  MemoryWriteResult result;
  const uint64_t chunks = (memory.size() + chunk_bytes - 1) / chunk_bytes;
  result.chunk_hashes.resize(chunks);
  const uint64_t full_zero_hash = zero_chunk_hash(chunk_bytes);

  IoRing ring = IoRing::create(queue_depth);
  TransferQueue queue(ring, fd.get(), path, [](unsigned, uint64_t) {});
  for (uint64_t i = 0; i < chunks; ++i) {
    uint64_t offset = i * chunk_bytes;
    auto chunk = memory.subspan(offset, std::min<uint64_t>(chunk_bytes, memory.size() - offset));
    if (is_zero(chunk)) {
      result.chunk_hashes[i] = chunk.size() == chunk_bytes ? full_zero_hash : zero_chunk_hash(chunk.size());
      ++result.zero_chunks;
      continue;
    }
    // Submit first, then hash: the kernel copies this chunk while we hash it.
    queue.start_write(queue.free_slot(), chunk, offset, i);
    result.chunk_hashes[i] = XXH3_64bits(chunk.data(), chunk.size());
    result.bytes_written += chunk.size();
  }
  queue.drain();
  if (::fsync(fd.get()) != 0) throw_errno("fsync", "memory file " + path);
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);  // see drop_cached_pages
  result.elapsed = std::chrono::steady_clock::now() - started;
  return result;
}

void verify_memory_file(const std::string& path, const MemoryLayout& layout, unsigned queue_depth) {
  UniqueFd fd = open_for_reading(path, layout);
  IoRing ring = IoRing::create(queue_depth);
  // One bounce buffer per slot, left uninitialised: every byte is read into.
  std::unique_ptr<uint8_t[]> buffers(new uint8_t[queue_depth * layout.chunk_bytes]);
  FirstBadChunk bad;
  TransferQueue queue(ring, fd.get(), path, [&](unsigned slot, uint64_t chunk) {
    uint64_t hash = XXH3_64bits(buffers.get() + slot * layout.chunk_bytes, layout.chunk_length(chunk));
    if (hash != layout.chunk_hashes[chunk]) bad.note(chunk, hash);
  });
  for (uint64_t i = 0; i < layout.chunk_count(); ++i) {
    unsigned slot = queue.free_slot();
    std::span<uint8_t> buf(buffers.get() + slot * layout.chunk_bytes, layout.chunk_length(i));
    queue.start_read(slot, buf, i * layout.chunk_bytes, i);
  }
  queue.drain();
  bad.throw_if_any(path, layout);
}

void read_memory_file_into(const std::string& path, std::span<uint8_t> dest, const MemoryLayout& layout,
                           const ReadOptions& options) {
  if (dest.size() != layout.size_bytes) {
    throw InputError("destination for memory file " + path + " is " + std::to_string(dest.size()) +
                     " bytes, the state says " + std::to_string(layout.size_bytes));
  }
  UniqueFd fd = open_for_reading(path, layout);
  IoRing ring = IoRing::create(options.queue_depth);
  FirstBadChunk bad;
  TransferQueue queue(ring, fd.get(), path, [&](unsigned, uint64_t chunk) {
    if (!options.verify_hashes) return;
    uint64_t hash = XXH3_64bits(dest.data() + chunk * layout.chunk_bytes, layout.chunk_length(chunk));
    if (hash != layout.chunk_hashes[chunk]) bad.note(chunk, hash);
  });
  const uint64_t full_zero_hash = zero_chunk_hash(layout.chunk_bytes);
  for (uint64_t i = 0; i < layout.chunk_count(); ++i) {
    uint64_t length = layout.chunk_length(i);
    if (options.dest_is_zeroed) {
      uint64_t zero_hash = length == layout.chunk_bytes ? full_zero_hash : zero_chunk_hash(length);
      if (layout.chunk_hashes[i] == zero_hash) continue;  // already what the state says
    }
    queue.start_read(queue.free_slot(), dest.subspan(i * layout.chunk_bytes, length), i * layout.chunk_bytes, i);
  }
  queue.drain();
  bad.throw_if_any(path, layout);
}

}  // namespace thaw::snapshot
