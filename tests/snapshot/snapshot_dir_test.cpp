#include "snapshot/snapshot_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <fstream>
#include <vector>

#include "snapshot_test_support.h"

namespace thaw::snapshot {
namespace {

using test::expect_input_error;
using test::make_full_state;
using test::TempDir;

constexpr uint64_t kMem = 4ull << 20;

SnapshotState small_state(uint64_t boot_ns) {
  SnapshotState s = make_full_state(kMem, 1);
  s.memory.chunk_bytes = 64 * 1024;
  s.memory.chunk_hashes.clear();  // the writer fills them in
  s.boot_complete_after_ns = boot_ns;
  return s;
}

std::vector<uint8_t> memory_with(uint8_t marker) {
  std::vector<uint8_t> mem(kMem, 0);
  mem[0] = marker;
  mem[kMem / 2 + 1] = marker;
  return mem;
}

void write_garbage(const std::string& path) {
  std::ofstream(path) << "half-written by a writer that crashed";
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

TEST(SnapshotDir, WriteThenReadRoundTrips) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  auto mem = memory_with(1);
  auto written = write_snapshot_dir(dir, small_state(111), mem);
  EXPECT_EQ(written.memory.bytes_written, 2 * 64 * 1024u);
  EXPECT_GT(written.state_bytes, 0u);

  auto loaded = read_snapshot_dir(dir);
  EXPECT_EQ(loaded.state.boot_complete_after_ns, 111u);
  EXPECT_EQ(loaded.state.memory.chunk_hashes, written.memory.chunk_hashes);
  EXPECT_EQ(loaded.memory_path, dir + "/memory");
  EXPECT_NO_THROW(verify_memory_file(loaded.memory_path, loaded.state.memory));
  std::vector<uint8_t> back(kMem);
  read_memory_file_into(loaded.memory_path, back, loaded.state.memory);
  EXPECT_EQ(back, mem);
  EXPECT_FALSE(exists(dir + "/state.tmp"));
  EXPECT_FALSE(exists(dir + "/memory.tmp"));
}

TEST(SnapshotDir, SecondWriteReplacesTheFirst) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  auto mem2 = memory_with(2);
  write_snapshot_dir(dir, small_state(2), mem2);
  auto loaded = read_snapshot_dir(dir);
  EXPECT_EQ(loaded.state.boot_complete_after_ns, 2u);
  std::vector<uint8_t> back(kMem);
  read_memory_file_into(loaded.memory_path, back, loaded.state.memory);
  EXPECT_EQ(back, mem2);
}

TEST(SnapshotDir, CrashBeforeCommitLeavesTheOldSnapshot) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  // A writer died after writing its temporaries, before the commit.
  write_garbage(dir + "/state.tmp");
  write_garbage(dir + "/memory.tmp");

  auto loaded = read_snapshot_dir(dir);
  EXPECT_EQ(loaded.state.boot_complete_after_ns, 1u);
  EXPECT_NO_THROW(verify_memory_file(loaded.memory_path, loaded.state.memory));

  write_snapshot_dir(dir, small_state(3), memory_with(3));
  EXPECT_FALSE(exists(dir + "/state.tmp"));
  EXPECT_FALSE(exists(dir + "/memory.tmp"));
  EXPECT_EQ(read_snapshot_dir(dir).state.boot_complete_after_ns, 3u);
}

TEST(SnapshotDir, CrashAfterStateRemovalIsRejected) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  // The state is unlinked (step 4) and the new memory renamed in, but the
  // new state never made it: no state to pair with the wrong memory.
  std::filesystem::rename(dir + "/state", dir + "/state.tmp");
  expect_input_error([&] { read_snapshot_dir(dir); }, "has no state file (a snapshot write was interrupted");
}

TEST(SnapshotDir, MemoryFileOfTheWrongSizeIsRejected) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  std::filesystem::resize_file(dir + "/memory", kMem / 2);
  expect_input_error([&] { read_snapshot_dir(dir); },
                     "is " + std::to_string(kMem / 2) + " bytes, the state says " + std::to_string(kMem));
}

// Replaces `file` of a written snapshot with a FIFO: reading the snapshot
// must refuse it by its path, never wait for a writer.
void expect_fifo_refused_without_waiting(const std::string& file) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  const std::string path = dir + "/" + file;
  std::filesystem::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto reading = std::async(std::launch::async, [&] {
    expect_input_error([&] { read_snapshot_dir(dir); }, path + " is not a regular file");
  });
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // Unblock the reader so that the test ends, then fail.
    int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    ADD_FAILURE() << "read_snapshot_dir waited on a FIFO as " << file;
    reading.wait();
    if (writer >= 0) ::close(writer);
  }
}

TEST(SnapshotDir, FifoAsStateIsRefusedWithoutWaitingForAWriter) {
  expect_fifo_refused_without_waiting("state");
}

TEST(SnapshotDir, FifoAsMemoryIsRefusedWithoutWaitingForAWriter) {
  expect_fifo_refused_without_waiting("memory");
}

// A loaded snapshot keeps its memory file open for the restores: they map
// the file the state was checked against, even once a new snapshot has been
// written over the directory, and copies share the one descriptor.
TEST(SnapshotDir, LoadedSnapshotKeepsTheMemoryFileItWasCheckedWith) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  auto loaded = read_snapshot_dir(dir);
  ASSERT_TRUE(loaded.memory_file);
  ASSERT_TRUE(loaded.memory_file->valid());
  auto copy = loaded;
  EXPECT_EQ(copy.memory_file, loaded.memory_file);
  write_snapshot_dir(dir, small_state(2), memory_with(2));
  uint8_t first = 0;
  ASSERT_EQ(::pread(loaded.memory_file->get(), &first, 1, 0), 1);
  EXPECT_EQ(first, 1) << "the descriptor must still read the memory of the state it was loaded with";
  EXPECT_EQ(::fcntl(loaded.memory_file->get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_NE(::fcntl(loaded.memory_file->get(), F_GETFD) & FD_CLOEXEC, 0) << "a worker's children must not inherit it";
}

TEST(SnapshotDir, MissingPiecesGiveClearErrors) {
  TempDir tmp;
  expect_input_error([&] { read_snapshot_dir(tmp / "nowhere"); }, "snapshot directory " + (tmp / "nowhere") +
                                                                       " does not exist");
  expect_input_error([&] { read_snapshot_dir(tmp.path()); }, "has no state file");

  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  std::filesystem::remove(dir + "/memory");
  expect_input_error([&] { read_snapshot_dir(dir); }, "has a state file but no memory file");

  write_garbage(tmp / "file");
  expect_input_error([&] { read_snapshot_dir(tmp / "file"); }, "is not a directory");
}

TEST(SnapshotDir, CorruptStateIsRejected) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  write_garbage(dir + "/state");
  expect_input_error([&] { read_snapshot_dir(dir); }, "not a thaw snapshot state file");
  DecodeLimits tight;
  tight.max_file_bytes = 10;
  expect_input_error([&] { read_snapshot_dir(dir, tight); }, "over the limit of 10");
}

TEST(SnapshotDir, InvalidStateIsNeverCommitted) {
  TempDir tmp;
  const std::string dir = tmp / "snap";
  write_snapshot_dir(dir, small_state(1), memory_with(1));
  auto bad = small_state(2);
  bad.machine.devices.serial.rx_fifo.assign(100, 'x');
  expect_input_error([&] { write_snapshot_dir(dir, bad, memory_with(2)); }, "serial rx FIFO holds 100 bytes");
  EXPECT_EQ(read_snapshot_dir(dir).state.boot_complete_after_ns, 1u) << "the old snapshot must survive";
}

TEST(SnapshotDir, MemorySizeMustMatchTheState) {
  TempDir tmp;
  std::vector<uint8_t> mem(kMem / 2, 0);
  expect_input_error([&] { write_snapshot_dir(tmp / "snap", small_state(1), mem); },
                     "snapshot of 2097152 bytes of memory, but the state says 4194304");
}

TEST(SnapshotDir, MissingParentIsASysError) {
  TempDir tmp;
  EXPECT_THROW(write_snapshot_dir(tmp / "a/b/c", small_state(1), memory_with(1)), SysError);
}

}  // namespace
}  // namespace thaw::snapshot
