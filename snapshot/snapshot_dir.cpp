#include "snapshot/snapshot_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/fd_io.h"
#include "base/unique_fd.h"
#include "snapshot/dir_files.h"
#include "base/errors.h"

namespace thaw::snapshot {

namespace {

constexpr char kStateTmp[] = "state.tmp";
constexpr char kMemoryTmp[] = "memory.tmp";


// Reads the state file, refusing one over the cap before reading it.
std::vector<uint8_t> read_state_file(int dir_fd, const std::string& dir, const DecodeLimits& limits) {
  const std::string path = join(dir, kStateFileName);
  // O_NONBLOCK: a FIFO planted as `state` must be refused, not waited on.
  UniqueFd fd(::openat(dir_fd, kStateFileName, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd && errno == ENOENT) {
    struct stat st {};
    bool interrupted = ::fstatat(dir_fd, kStateTmp, &st, 0) == 0;
    throw InputError("snapshot directory " + dir + " has no state file" +
                     (interrupted ? " (a snapshot write was interrupted: state.tmp is left)" : ""));
  }
  if (!fd) throw_errno("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) throw InputError("snapshot state " + path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > limits.max_file_bytes) {
    throw InputError("snapshot state " + path + " is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                     std::to_string(limits.max_file_bytes));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  auto read = read_until_full(fd.get(), bytes);
  if (read.error != 0) throw SysError("read", read.error, path);
  bytes.resize(read.bytes);  // shrank under us: decode_state names the truncation
  return bytes;
}

}  // namespace

SnapshotWriteResult write_snapshot_dir(const std::string& dir, const SnapshotState& state_without_hashes,
                                       std::span<const uint8_t> memory, unsigned queue_depth) {
  if (state_without_hashes.memory.size_bytes != memory.size()) {
    throw InputError("snapshot of " + std::to_string(memory.size()) + " bytes of memory, but the state says " +
                     std::to_string(state_without_hashes.memory.size_bytes));
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("mkdir", "snapshot directory " + dir);
  UniqueFd dir_fd = open_dir(dir);
  unlink_if_present(dir_fd.get(), dir, kStateTmp);
  unlink_if_present(dir_fd.get(), dir, kMemoryTmp);

  SnapshotWriteResult result;
  result.memory = write_memory_file(join(dir, kMemoryTmp), memory, state_without_hashes.memory.chunk_bytes,
                                    queue_depth);
  SnapshotState state = state_without_hashes;
  state.memory.chunk_hashes = result.memory.chunk_hashes;
  std::vector<uint8_t> encoded = encode_state(state);
  (void)decode_state(encoded);  // throws InputError naming what a reader would reject
  write_file(dir_fd.get(), dir, kStateTmp, encoded);
  result.state_bytes = encoded.size();

  // From here the old snapshot goes away; see the header for why `state`
  // is removed (durably) before `memory` is replaced.
  unlink_if_present(dir_fd.get(), dir, kStateFileName);
  fsync_dir(dir_fd.get(), dir);
  rename_in(dir_fd.get(), dir, kMemoryTmp, kMemoryFileName);
  rename_in(dir_fd.get(), dir, kStateTmp, kStateFileName);
  fsync_dir(dir_fd.get(), dir);
  return result;
}

LoadedSnapshot read_snapshot_dir(const std::string& dir, const DecodeLimits& limits) {
  UniqueFd dir_fd = open_dir(dir);
  std::vector<uint8_t> bytes = read_state_file(dir_fd.get(), dir, limits);
  LoadedSnapshot loaded{decode_state(bytes, limits), join(dir, kMemoryFileName), dir};

  // O_NONBLOCK: a FIFO in the file's place must not hang the load; it is
  // refused below as not a regular file.
  UniqueFd memory(::openat(dir_fd.get(), kMemoryFileName, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!memory) {
    if (errno == ENOENT) throw InputError("snapshot directory " + dir + " has a state file but no memory file");
    throw_errno("open", loaded.memory_path);
  }
  struct stat st {};
  if (::fstat(memory.get(), &st) != 0) throw_errno("stat", loaded.memory_path);
  if (!S_ISREG(st.st_mode)) throw InputError("memory file " + loaded.memory_path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) != loaded.state.memory.size_bytes) {
    throw InputError("memory file " + loaded.memory_path + " is " + std::to_string(st.st_size) +
                     " bytes, the state says " + std::to_string(loaded.state.memory.size_bytes));
  }
  // Clones fault its pages one at a time (vmm/memory/guest_memory.cpp says why).
  (void)::posix_fadvise(memory.get(), 0, 0, POSIX_FADV_RANDOM);
  loaded.memory_file = std::make_shared<const UniqueFd>(std::move(memory));
  return loaded;
}

}  // namespace thaw::snapshot
