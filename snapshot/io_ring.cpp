#include "snapshot/io_ring.h"

#include <algorithm>
#include <cerrno>

#include "base/errors.h"

namespace thaw::snapshot {

namespace {
// One io_uring read or write moves at most this much (the kernel's
// MAX_RW_COUNT is a little under 2 GiB); longer buffers go in pieces.
constexpr uint64_t kMaxTransfer = 1ull << 30;
}  // namespace

void IoRing::Exit::operator()(io_uring* ring) const {
  io_uring_queue_exit(ring);
  delete ring;
}

IoRing IoRing::create(unsigned entries) {
  if (entries == 0) throw InputError("io_uring queue depth is 0; give at least 1");
  auto raw = std::make_unique<io_uring>();
  int ret = io_uring_queue_init(entries, raw.get(), 0);
  if (ret < 0) throw SysError("io_uring_queue_init", -ret, std::to_string(entries) + " entries");
  return IoRing(std::unique_ptr<io_uring, Exit>(raw.release()), entries);
}

io_uring_sqe* IoRing::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) throw SysError("io_uring_get_sqe", EBUSY, "submission queue full");
  return sqe;
}

void IoRing::submit(const char* what) {
  for (;;) {
    int ret = io_uring_submit(ring_.get());
    if (ret >= 0) return;
    if (ret != -EINTR) throw SysError("io_uring_submit", -ret, what);
  }
}

void IoRing::submit_read(int fd, void* buf, uint32_t len, uint64_t offset, uint64_t user_data) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_read(sqe, fd, buf, len, offset);
  io_uring_sqe_set_data64(sqe, user_data);
  submit("read");
}

void IoRing::submit_write(int fd, const void* buf, uint32_t len, uint64_t offset, uint64_t user_data) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_write(sqe, fd, buf, len, offset);
  io_uring_sqe_set_data64(sqe, user_data);
  submit("write");
}

IoRing::Completion IoRing::wait() {
  io_uring_cqe* cqe = nullptr;
  for (;;) {
    int ret = io_uring_wait_cqe(ring_.get(), &cqe);
    if (ret == 0) break;
    if (ret != -EINTR) throw SysError("io_uring_wait_cqe", -ret);
  }
  Completion c{io_uring_cqe_get_data64(cqe), cqe->res};
  io_uring_cqe_seen(ring_.get(), cqe);
  return c;
}

TransferQueue::TransferQueue(IoRing& ring, int fd, std::string path, Done on_done)
    : ring_(ring), fd_(fd), path_(std::move(path)), on_done_(std::move(on_done)), slots_(ring.entries()) {}

TransferQueue::~TransferQueue() {
  // After an error the kernel may still be reading into or writing from
  // the caller's buffers: wait for it before they go away.
  while (in_flight_ > 0) {
    try {
      ring_.wait();
    } catch (...) {
      break;  // the ring itself failed; nothing more will complete
    }
    --in_flight_;
  }
}

unsigned TransferQueue::free_slot() {
  for (;;) {
    for (unsigned i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].busy) return i;
    }
    complete_one();
  }
}

void TransferQueue::start_read(unsigned slot, std::span<uint8_t> buf, uint64_t offset, uint64_t tag) {
  slots_.at(slot) = Slot{true, false, buf.data(), buf.size(), offset, tag};
  submit(slot);
}

void TransferQueue::start_write(unsigned slot, std::span<const uint8_t> buf, uint64_t offset, uint64_t tag) {
  // The slot never writes through `buf`; it keeps one pointer type for both directions.
  slots_.at(slot) = Slot{true, true, const_cast<uint8_t*>(buf.data()), buf.size(), offset, tag};
  submit(slot);
}

void TransferQueue::drain() {
  while (in_flight_ > 0) complete_one();
}

void TransferQueue::submit(unsigned slot) {
  Slot& s = slots_[slot];
  auto len = static_cast<uint32_t>(std::min(s.remaining, kMaxTransfer));
  if (s.write) {
    ring_.submit_write(fd_, s.buf, len, s.offset, slot);
  } else {
    ring_.submit_read(fd_, s.buf, len, s.offset, slot);
  }
  ++in_flight_;
}

void TransferQueue::complete_one() {
  IoRing::Completion c = ring_.wait();
  --in_flight_;
  if (c.user_data >= slots_.size() || !slots_[c.user_data].busy) {
    throw SysError("io_uring_wait_cqe", EPROTO, "completion for unknown slot " + std::to_string(c.user_data));
  }
  auto slot = static_cast<unsigned>(c.user_data);
  Slot& s = slots_[slot];
  const char* op = s.write ? "io_uring write" : "io_uring read";
  if (c.result < 0) {
    s.busy = false;
    throw SysError(op, -c.result, path_ + " at offset " + std::to_string(s.offset));
  }
  if (c.result == 0) {
    s.busy = false;
    if (!s.write) {
      throw InputError(path_ + " ends at offset " + std::to_string(s.offset) + ", " + std::to_string(s.remaining) +
                       " bytes short of what the snapshot state says");
    }
    throw SysError(op, EIO, "0 bytes written to " + path_ + " at offset " + std::to_string(s.offset));
  }
  auto done = static_cast<uint64_t>(c.result);
  s.buf += done;
  s.offset += done;
  s.remaining -= std::min(done, s.remaining);
  if (s.remaining > 0) {  // short transfer: the rest goes back in the queue
    submit(slot);
    return;
  }
  s.busy = false;
  on_done_(slot, s.tag);
}

}  // namespace thaw::snapshot
