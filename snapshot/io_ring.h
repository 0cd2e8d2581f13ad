// io_uring for the memory file: one move-only owner of the ring, and a
// queue that keeps several whole-buffer reads or writes of one file in
// flight. The memory file is large (GiBs) and written or read in MiB
// chunks, so overlapping the I/O with hashing is what makes it fast.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace thaw::snapshot {

class IoRing {
 public:
  struct Completion {
    uint64_t user_data = 0;
    int32_t result = 0;  // bytes transferred, or -errno
  };

  // Throws SysError("io_uring_queue_init", ...) where the kernel has no
  // io_uring or a sandbox forbids it.
  static IoRing create(unsigned entries);

  IoRing(IoRing&&) noexcept = default;
  IoRing& operator=(IoRing&&) noexcept = default;
  ~IoRing() = default;

  unsigned entries() const { return entries_; }

  // Queue one operation and submit it at once, so the kernel starts on it
  // while the caller hashes the next chunk. Throws SysError when the
  // submission queue is full or io_uring_submit fails.
  void submit_read(int fd, void* buf, uint32_t len, uint64_t offset, uint64_t user_data);
  void submit_write(int fd, const void* buf, uint32_t len, uint64_t offset, uint64_t user_data);

  // Waits for the next completion (retrying EINTR) and consumes it.
  Completion wait();

 private:
  struct Exit {
    void operator()(io_uring* ring) const;
  };
  IoRing(std::unique_ptr<io_uring, Exit> ring, unsigned entries) : ring_(std::move(ring)), entries_(entries) {}
  io_uring_sqe* next_sqe();
  void submit(const char* what);

  // Behind a pointer so moving the owner never moves the struct liburing set up.
  std::unique_ptr<io_uring, Exit> ring_;
  unsigned entries_ = 0;
};

// Whole-buffer reads or writes on one file, at most `depth` in flight, each
// in its own slot. Short transfers are resubmitted for the rest, so
// `on_done(slot, tag)` sees only complete ones. A failed transfer throws
// SysError naming the operation, offset and path; a read that meets the end
// of the file throws InputError. The destructor waits for everything still
// in flight, so no buffer is freed while the kernel may still touch it.
class TransferQueue {
 public:
  using Done = std::function<void(unsigned slot, uint64_t tag)>;

  TransferQueue(IoRing& ring, int fd, std::string path, Done on_done);
  TransferQueue(const TransferQueue&) = delete;
  TransferQueue& operator=(const TransferQueue&) = delete;
  ~TransferQueue();

  unsigned depth() const { return static_cast<unsigned>(slots_.size()); }

  // Returns a free slot, first waiting for a transfer to finish if all are busy.
  unsigned free_slot();
  void start_read(unsigned slot, std::span<uint8_t> buf, uint64_t offset, uint64_t tag);
  void start_write(unsigned slot, std::span<const uint8_t> buf, uint64_t offset, uint64_t tag);
  // Waits for every transfer in flight.
  void drain();

 private:
  struct Slot {
    bool busy = false;
    bool write = false;
    uint8_t* buf = nullptr;
    uint64_t remaining = 0;
    uint64_t offset = 0;
    uint64_t tag = 0;
  };
  void submit(unsigned slot);
  void complete_one();

  IoRing& ring_;
  int fd_;
  std::string path_;
  Done on_done_;
  std::vector<Slot> slots_;
  unsigned in_flight_ = 0;
};

}  // namespace thaw::snapshot
