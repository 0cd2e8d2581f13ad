#include "snapshot/working_set.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/fd_io.h"
#include "base/hex_text.h"
#include "base/unique_fd.h"
#include "snapshot/dir_files.h"
#include "snapshot/io_ring.h"
#include "base/errors.h"

namespace thaw::snapshot {

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kMagic[8] = {'T', 'H', 'A', 'W', 'W', 'S', 'E', 'T'};
constexpr char kTmpName[] = "working-set.tmp";
// Reads in flight while prefetching, and the most one read moves: long runs
// are split so several pieces of them overlap.
constexpr unsigned kPrefetchQueueDepth = 16;
constexpr uint64_t kPrefetchMaxRead = 1ull << 20;

// x86-64 only, so the in-memory little-endian layout is the file layout.
struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t page_bytes;
  uint64_t count;
  uint64_t memory_bytes;
  uint64_t pages_xxh3;
};
static_assert(sizeof(FileHeader) == kWorkingSetHeaderBytes);

[[noreturn]] void reject(const std::string& why) { throw InputError("working set: " + why); }

uint64_t max_pages(uint64_t memory_size) { return memory_size / kWorkingSetPageBytes; }

// Page size, order, uniqueness and range: what both the writer and the
// reader insist on.
void check_pages(const WorkingSet& ws, uint64_t memory_size) {
  if (ws.page_bytes != kWorkingSetPageBytes) {
    reject("page size " + std::to_string(ws.page_bytes) + ", thaw uses " + std::to_string(kWorkingSetPageBytes));
  }
  const uint64_t limit = max_pages(memory_size);
  if (ws.pages.size() > limit) {
    reject(std::to_string(ws.pages.size()) + " pages, more than the " + std::to_string(limit) +
           " pages of guest memory (" + std::to_string(memory_size) + " bytes)");
  }
  for (size_t i = 0; i < ws.pages.size(); ++i) {
    uint64_t page = ws.pages[i];
    if (page >= limit) {
      reject("page index " + std::to_string(page) + " (entry " + std::to_string(i) +
             ") is past the end of guest memory (" + std::to_string(limit) + " pages)");
    }
    if (i > 0 && page == ws.pages[i - 1]) {
      reject("page index " + std::to_string(page) + " is repeated (entries " + std::to_string(i - 1) + " and " +
             std::to_string(i) + ")");
    }
    if (i > 0 && page < ws.pages[i - 1]) {
      reject("page indices are not sorted: entry " + std::to_string(i) + " (" + std::to_string(page) +
             ") follows " + std::to_string(ws.pages[i - 1]));
    }
  }
}

}  // namespace

WorkingSet working_set_from_offsets(std::span<const uint64_t> offsets) {
  WorkingSet ws;
  ws.pages.reserve(offsets.size());
  for (uint64_t offset : offsets) {
    uint64_t page = offset / ws.page_bytes;
    if (ws.pages.empty() || page > ws.pages.back()) {
      ws.pages.push_back(page);
    } else if (page < ws.pages.back()) {
      throw std::invalid_argument("working_set_from_offsets: offsets are not sorted");
    }
  }
  return ws;
}

std::vector<uint8_t> encode_working_set(const WorkingSet& ws, uint64_t memory_size) {
  check_pages(ws, memory_size);
  FileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.version = kWorkingSetVersion;
  header.page_bytes = static_cast<uint32_t>(ws.page_bytes);
  header.count = ws.pages.size();
  header.memory_bytes = memory_size;
  const size_t list_bytes = ws.pages.size() * sizeof(uint64_t);
  header.pages_xxh3 = XXH3_64bits(ws.pages.data(), list_bytes);
  std::vector<uint8_t> file(sizeof header + list_bytes);
  std::memcpy(file.data(), &header, sizeof header);
  if (list_bytes > 0) std::memcpy(file.data() + sizeof header, ws.pages.data(), list_bytes);
  return file;
}

WorkingSet decode_working_set(std::span<const uint8_t> file, uint64_t memory_size) {
  if (file.size() < sizeof(FileHeader)) {
    reject("truncated: " + std::to_string(file.size()) + " bytes, the header alone is " +
           std::to_string(sizeof(FileHeader)));
  }
  FileHeader header;
  std::memcpy(&header, file.data(), sizeof header);
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0) reject("bad magic (not a thaw working-set file)");
  if (header.version != kWorkingSetVersion) {
    reject("format version " + std::to_string(header.version) + ", this thaw reads version " +
           std::to_string(kWorkingSetVersion));
  }
  if (header.page_bytes != kWorkingSetPageBytes) {
    reject("page size " + std::to_string(header.page_bytes) + ", thaw uses " + std::to_string(kWorkingSetPageBytes));
  }
  if (header.memory_bytes != memory_size) {
    reject("recorded for " + std::to_string(header.memory_bytes) + " bytes of guest memory, the snapshot has " +
           std::to_string(memory_size));
  }
  // The count is capped before it is multiplied, so the size below cannot overflow.
  const uint64_t limit = max_pages(memory_size);
  if (header.count > limit) {
    reject("page count " + std::to_string(header.count) + " is more than the " + std::to_string(limit) +
           " pages of guest memory");
  }
  const uint64_t want = sizeof(FileHeader) + header.count * sizeof(uint64_t);
  if (file.size() < want) {
    reject("truncated: " + std::to_string(file.size()) + " bytes, " + std::to_string(header.count) + " pages need " +
           std::to_string(want));
  }
  if (file.size() > want) {
    reject(std::to_string(file.size() - want) + " trailing bytes after " + std::to_string(header.count) + " pages");
  }
  auto list = file.subspan(sizeof(FileHeader));
  uint64_t hash = XXH3_64bits(list.data(), list.size());
  if (hash != header.pages_xxh3) {
    reject("checksum mismatch: the page list has XXH3 " + hex16(hash) + ", the header says " + hex16(header.pages_xxh3));
  }
  WorkingSet ws;
  ws.page_bytes = header.page_bytes;
  ws.pages.resize(header.count);
  if (!list.empty()) std::memcpy(ws.pages.data(), list.data(), list.size());
  check_pages(ws, memory_size);
  return ws;
}

void write_working_set(const std::string& dir, const WorkingSet& ws, uint64_t memory_size) {
  std::vector<uint8_t> bytes = encode_working_set(ws, memory_size);
  (void)decode_working_set(bytes, memory_size);  // never commit a file a reader would reject
  UniqueFd dir_fd = open_dir(dir);
  write_file(dir_fd.get(), dir, kTmpName, bytes);
  rename_in(dir_fd.get(), dir, kTmpName, kWorkingSetFileName);
  fsync_dir(dir_fd.get(), dir);
}

std::optional<WorkingSet> read_working_set(const std::string& dir, uint64_t memory_size) {
  const std::string path = join(dir, kWorkingSetFileName);
  // O_NONBLOCK: a FIFO in its place is refused below, never waited on.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd && errno == ENOENT) return std::nullopt;
  if (!fd) throw_errno("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) throw InputError("working set " + path + " is not a regular file");
  const uint64_t cap = sizeof(FileHeader) + max_pages(memory_size) * sizeof(uint64_t);
  if (static_cast<uint64_t>(st.st_size) > cap) {
    throw InputError("working set " + path + " is " + std::to_string(st.st_size) +
                     " bytes, more than a working set of every page of " + std::to_string(memory_size) +
                     " bytes of guest memory (" + std::to_string(cap) + ")");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  auto read = read_until_full(fd.get(), bytes);
  if (read.error != 0) throw SysError("read", read.error, path);
  bytes.resize(read.bytes);  // shrank under us: decode names the truncation
  try {
    return decode_working_set(bytes, memory_size);
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
}

std::vector<PageRun> runs(const WorkingSet& ws) {
  std::vector<PageRun> out;
  for (size_t i = 0; i < ws.pages.size();) {
    size_t j = i + 1;
    while (j < ws.pages.size() && ws.pages[j] == ws.pages[j - 1] + 1) ++j;
    out.push_back(PageRun{ws.pages[i] * ws.page_bytes, (j - i) * ws.page_bytes});
    i = j;
  }
  return out;
}

PrefetchResult prefetch_working_set(vmm::GuestMemory& memory, const std::string& memory_path, const WorkingSet& ws,
                                    vmm::GuestMemory::Backing backing) {
  auto start = Clock::now();
  if (backing != memory.backing()) {
    throw std::logic_error("prefetch_working_set: the backing given is not the guest memory's");
  }
  check_pages(ws, memory.size());
  PrefetchResult result;
  const std::vector<PageRun> page_runs = runs(ws);
  result.runs = page_runs.size();
  if (page_runs.empty()) {
    result.elapsed = Clock::now() - start;
    return result;
  }
  switch (backing) {
    case vmm::GuestMemory::Backing::kAnonymous: {
      UniqueFd fd(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) throw_errno("open", "memory file " + memory_path);
      IoRing ring = IoRing::create(
          static_cast<unsigned>(std::min<uint64_t>(kPrefetchQueueDepth, ws.bytes() / ws.page_bytes)));
      TransferQueue queue(ring, fd.get(), memory_path, [](unsigned, uint64_t) {});
      for (const PageRun& run : page_runs) {
        for (uint64_t done = 0; done < run.length;) {
          uint64_t length = std::min(kPrefetchMaxRead, run.length - done);
          std::span<uint8_t> dest(memory.host_base() + run.offset + done, static_cast<size_t>(length));
          queue.start_read(queue.free_slot(), dest, run.offset + done, run.offset + done);
          done += length;
        }
      }
      queue.drain();
      break;
    }
    case vmm::GuestMemory::Backing::kPrivateFile: {
      int advice = MADV_POPULATE_READ;
      for (const PageRun& run : page_runs) {
        void* addr = memory.host_base() + run.offset;
        for (;;) {
          if (::madvise(addr, run.length, advice) == 0) break;
          if (errno == EINTR) continue;
          if (errno == EINVAL && advice == MADV_POPULATE_READ) {  // kernel before 5.14
            advice = MADV_WILLNEED;
            continue;
          }
          throw_errno(advice == MADV_POPULATE_READ ? "madvise(MADV_POPULATE_READ)" : "madvise(MADV_WILLNEED)",
                      "working set run at offset " + std::to_string(run.offset) + " of " + memory_path);
        }
      }
      break;
    }
    case vmm::GuestMemory::Backing::kMemfd:
      throw std::logic_error("prefetch_working_set: memfd guest memory has no snapshot file behind it");
  }
  result.bytes = ws.bytes();
  result.elapsed = Clock::now() - start;
  return result;
}

}  // namespace thaw::snapshot
