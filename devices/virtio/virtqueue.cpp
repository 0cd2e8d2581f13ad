#include "devices/virtio/virtqueue.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>

#include "base/errors.h"
#include "base/hex_text.h"

namespace thaw::devices {

namespace {

// struct virtq_desc, as the guest lays it out (little-endian, x86 only).
struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

struct VirtqUsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(VirtqUsedElem) == 8);

// Ring sizes in bytes (2.7.5, 2.7.6, 2.7.8), each with its trailing event field.
uint64_t desc_bytes(uint16_t size) { return 16ull * size; }
uint64_t avail_bytes(uint16_t size) { return 6 + 2ull * size; }
uint64_t used_bytes(uint16_t size) { return 6 + 8ull * size; }

constexpr uint64_t kAvailIdxOffset = 2;
constexpr uint64_t kAvailRingOffset = 4;
constexpr uint64_t kUsedIdxOffset = 2;
constexpr uint64_t kUsedRingOffset = 4;

void check_ring(GuestMemoryAccess& memory, const char* name, uint64_t addr, uint64_t bytes, uint64_t align) {
  if (addr % align != 0) {
    throw StateError(std::string(name) + " at " + hex(addr) + " is not " + std::to_string(align) + "-byte aligned");
  }
  if (!memory.contains(addr, bytes)) {
    throw StateError(std::string(name) + " [" + hex(addr) + ", +" + std::to_string(bytes) +
                     ") is not inside guest RAM");
  }
}

}  // namespace

uint64_t DescriptorChain::readable_bytes() const {
  uint64_t total = 0;
  for (const auto& s : readable) total += s.len;
  return total;
}

uint64_t DescriptorChain::writable_bytes() const {
  uint64_t total = 0;
  for (const auto& s : writable) total += s.len;
  return total;
}

size_t DescriptorChain::read(GuestMemoryAccess& memory, uint64_t offset, std::span<uint8_t> out) const {
  size_t done = 0;
  for (const auto& seg : readable) {
    if (done == out.size()) break;
    if (offset >= seg.len) {
      offset -= seg.len;
      continue;
    }
    uint64_t n = std::min<uint64_t>(seg.len - offset, out.size() - done);
    auto src = memory.slice(seg.addr + offset, n);
    if (src.empty()) break;  // checked at pop(); memory does not shrink
    std::copy(src.begin(), src.end(), out.begin() + static_cast<ptrdiff_t>(done));
    done += n;
    offset = 0;
  }
  return done;
}

size_t DescriptorChain::write(GuestMemoryAccess& memory, uint64_t offset, std::span<const uint8_t> in) const {
  size_t done = 0;
  for (const auto& seg : writable) {
    if (done == in.size()) break;
    if (offset >= seg.len) {
      offset -= seg.len;
      continue;
    }
    uint64_t n = std::min<uint64_t>(seg.len - offset, in.size() - done);
    auto dst = memory.slice(seg.addr + offset, n);
    if (dst.empty()) break;
    std::copy_n(in.begin() + static_cast<ptrdiff_t>(done), n, dst.begin());
    done += n;
    offset = 0;
  }
  return done;
}

void Virtqueue::check(GuestMemoryAccess& memory, const VirtqueueState& s, uint16_t max_size) {
  if (s.size == 0 || s.size > max_size || !std::has_single_bit(s.size)) {
    throw StateError("queue size " + std::to_string(s.size) + " is not a power of two from 1 to " +
                     std::to_string(max_size));
  }
  check_ring(memory, "descriptor table", s.desc_addr, desc_bytes(s.size), 16);
  check_ring(memory, "avail ring", s.avail_addr, avail_bytes(s.size), 2);
  check_ring(memory, "used ring", s.used_addr, used_bytes(s.size), 4);
  if (static_cast<uint16_t>(s.next_avail - s.next_used) > s.size) {
    throw StateError("next avail index " + std::to_string(s.next_avail) +
                     " is more than the queue size ahead of next used " + std::to_string(s.next_used));
  }
}

Virtqueue::Virtqueue(GuestMemoryAccess& memory, const VirtqueueState& state) : memory_(memory), state_(state) {}

void Virtqueue::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

std::optional<uint16_t> Virtqueue::pending_count() {
  if (failed()) return std::nullopt;
  auto idx = memory_.read_obj<uint16_t>(state_.avail_addr + kAvailIdxOffset);
  if (!idx) {
    fail("avail ring idx is not readable");
    return std::nullopt;
  }
  // Ring entries are read only after the index that published them.
  std::atomic_thread_fence(std::memory_order_acquire);
  auto pending = static_cast<uint16_t>(*idx - state_.next_avail);
  if (pending > state_.size) {
    fail("avail idx " + std::to_string(*idx) + " is " + std::to_string(pending) +
         " entries ahead of the device, more than the queue size " + std::to_string(state_.size));
    return std::nullopt;
  }
  return pending;
}

bool Virtqueue::has_available() {
  auto pending = pending_count();
  return pending && *pending > 0;
}

uint16_t Virtqueue::available_count() { return pending_count().value_or(0); }

std::optional<DescriptorChain> Virtqueue::pop() {
  auto pending = pending_count();
  if (!pending || *pending == 0) return std::nullopt;

  const uint16_t slot = state_.next_avail % state_.size;
  auto head = memory_.read_obj<uint16_t>(state_.avail_addr + kAvailRingOffset + 2ull * slot);
  if (!head || *head >= state_.size) {
    fail("avail ring slot " + std::to_string(slot) + " names descriptor " + (head ? std::to_string(*head) : "?") +
         ", the table has " + std::to_string(state_.size));
    return std::nullopt;
  }

  DescriptorChain chain;
  chain.head = *head;
  uint16_t index = *head;
  // A well-formed chain visits each descriptor at most once, so more than
  // `size` steps means a loop: fail instead of spinning.
  for (unsigned steps = 1;; ++steps) {
    if (steps > state_.size) {
      fail("descriptor chain from head " + std::to_string(*head) + " is longer than the queue (a loop?)");
      return std::nullopt;
    }
    auto desc = memory_.read_obj<VirtqDesc>(state_.desc_addr + 16ull * index);
    if (!desc) {
      fail("descriptor " + std::to_string(index) + " is not readable");
      return std::nullopt;
    }
    if (desc->flags & kVirtqDescFlagIndirect) {
      fail("descriptor " + std::to_string(index) + " is indirect; VIRTIO_F_INDIRECT_DESC was not offered");
      return std::nullopt;
    }
    if (desc->len != 0) {
      if (!memory_.contains(desc->addr, desc->len)) {
        fail("descriptor " + std::to_string(index) + " buffer [" + hex(desc->addr) + ", +" + std::to_string(desc->len) +
             ") is not inside guest RAM");
        return std::nullopt;
      }
      auto& list = (desc->flags & kVirtqDescFlagWrite) ? chain.writable : chain.readable;
      list.push_back({desc->addr, desc->len});
    }
    if (!(desc->flags & kVirtqDescFlagNext)) break;
    if (desc->next >= state_.size) {
      fail("descriptor " + std::to_string(index) + " chains to " + std::to_string(desc->next) + ", the table has " +
           std::to_string(state_.size));
      return std::nullopt;
    }
    index = desc->next;
  }
  ++state_.next_avail;
  return chain;
}

void Virtqueue::undo_pop() { --state_.next_avail; }

void Virtqueue::push_used(uint16_t head, uint32_t written) {
  if (failed()) return;
  const uint16_t slot = state_.next_used % state_.size;
  VirtqUsedElem elem{head, written};
  memory_.write_obj(state_.used_addr + kUsedRingOffset + 8ull * slot, elem);
  ++state_.next_used;
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  memory_.write_obj(state_.used_addr + kUsedIdxOffset, state_.next_used);
}

}  // namespace thaw::devices
