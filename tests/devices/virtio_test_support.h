// Test doubles for virtio devices: guest RAM as a plain buffer, an
// interrupt counter, and a driver that sets up split queues in that RAM and
// talks to a transport through its registers, as a guest driver does.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "devices/interrupt_line.h"
#include "devices/virtio/guest_memory_access.h"
#include "devices/virtio/mmio_transport.h"

namespace thaw::devices::test {

// `size` bytes of RAM at guest-physical `base`; nothing else is RAM.
class FakeGuestMemory : public GuestMemoryAccess {
 public:
  FakeGuestMemory(uint64_t base, uint64_t size) : base_(base), bytes_(size) {}
  std::span<uint8_t> slice(uint64_t gpa, uint64_t len) override {
    if (len == 0 || gpa < base_ || gpa - base_ > bytes_.size() || len > bytes_.size() - (gpa - base_)) return {};
    return {bytes_.data() + (gpa - base_), len};
  }
  template <class T>
  T get(uint64_t gpa) {
    return *read_obj<T>(gpa);
  }
  template <class T>
  void put(uint64_t gpa, const T& v) {
    ASSERT_TRUE(write_obj(gpa, v));
  }
  uint64_t base() const { return base_; }
  uint64_t end() const { return base_ + bytes_.size(); }

 private:
  uint64_t base_;
  std::vector<uint8_t> bytes_;
};

class CountingInterrupt : public InterruptNotifier {
 public:
  void notify() override { count.fetch_add(1); }
  std::atomic<int> count{0};
};

struct Segment {
  uint64_t addr;
  uint32_t len;
  bool device_writes;
};

// One split queue the fake driver owns, at fixed addresses in fake RAM.
struct DriverQueue {
  uint16_t size = 0;
  uint64_t desc = 0, avail = 0, used = 0;
  uint16_t next_desc = 0;   // descriptors are handed out round-robin
  uint16_t avail_idx = 0;
  uint16_t seen_used = 0;
};

class FakeDriver {
 public:
  FakeDriver(MmioTransport& transport, FakeGuestMemory& memory) : t_(transport), mem_(memory) {}

  uint32_t read32(uint64_t offset) {
    uint32_t v = 0;
    t_.read(offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
  void write32(uint64_t offset, uint32_t v) { t_.write(offset, {reinterpret_cast<const uint8_t*>(&v), 4}); }

  // Places queue `index` (size entries) at `base` in RAM: descriptors, then
  // avail, then used, each suitably aligned. Returns the first byte after it.
  uint64_t setup_queue(uint32_t index, uint16_t size, uint64_t base) {
    DriverQueue q;
    q.size = size;
    q.desc = base;
    q.avail = q.desc + 16ull * size;
    q.used = (q.avail + 6 + 2ull * size + 3) & ~3ull;
    if (queues_.size() <= index) queues_.resize(index + 1);
    queues_[index] = q;
    namespace r = virtio_mmio;
    write32(r::kQueueSel, index);
    write32(r::kQueueNum, size);
    write32(r::kQueueDescLow, static_cast<uint32_t>(q.desc));
    write32(r::kQueueDescHigh, static_cast<uint32_t>(q.desc >> 32));
    write32(r::kQueueDriverLow, static_cast<uint32_t>(q.avail));
    write32(r::kQueueDriverHigh, static_cast<uint32_t>(q.avail >> 32));
    write32(r::kQueueDeviceLow, static_cast<uint32_t>(q.used));
    write32(r::kQueueDeviceHigh, static_cast<uint32_t>(q.used >> 32));
    write32(r::kQueueReady, 1);
    return q.used + 6 + 8ull * size;
  }

  // The Linux driver's sequence up to FEATURES_OK (3.1.1).
  bool negotiate(uint64_t features) {
    namespace r = virtio_mmio;
    write32(r::kStatus, 0);
    write32(r::kStatus, kVirtioStatusAcknowledge);
    write32(r::kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver);
    write32(r::kDriverFeaturesSel, 0);
    write32(r::kDriverFeatures, static_cast<uint32_t>(features));
    write32(r::kDriverFeaturesSel, 1);
    write32(r::kDriverFeatures, static_cast<uint32_t>(features >> 32));
    write32(r::kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk);
    return read32(r::kStatus) & kVirtioStatusFeaturesOk;
  }
  void driver_ok() {
    write32(virtio_mmio::kStatus,
            kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk | kVirtioStatusDriverOk);
  }

  // Writes a chain of descriptors and makes it available; returns its head.
  uint16_t add_chain(uint32_t index, const std::vector<Segment>& segments, bool publish = true) {
    DriverQueue& q = queues_[index];
    std::vector<uint16_t> ids;
    for (size_t i = 0; i < segments.size(); ++i) ids.push_back(static_cast<uint16_t>((q.next_desc + i) % q.size));
    q.next_desc = static_cast<uint16_t>((q.next_desc + segments.size()) % q.size);
    for (size_t i = 0; i < segments.size(); ++i) {
      const uint64_t d = q.desc + 16ull * ids[i];
      mem_.put<uint64_t>(d, segments[i].addr);
      mem_.put<uint32_t>(d + 8, segments[i].len);
      uint16_t flags = segments[i].device_writes ? kVirtqDescFlagWrite : 0;
      if (i + 1 < segments.size()) flags |= kVirtqDescFlagNext;
      mem_.put<uint16_t>(d + 12, flags);
      mem_.put<uint16_t>(d + 14, i + 1 < segments.size() ? ids[i + 1] : 0);
    }
    mem_.put<uint16_t>(q.avail + 4 + 2ull * (q.avail_idx % q.size), ids.front());
    ++q.avail_idx;
    if (publish) mem_.put<uint16_t>(q.avail + 2, q.avail_idx);
    return ids.front();
  }
  void notify(uint32_t index) { write32(virtio_mmio::kQueueNotify, index); }

  uint16_t used_idx(uint32_t index) { return mem_.get<uint16_t>(queues_[index].used + 2); }
  // The used element at ring position `n` (not reduced modulo the size).
  std::pair<uint32_t, uint32_t> used_elem(uint32_t index, uint16_t n) {
    const DriverQueue& q = queues_[index];
    const uint64_t e = q.used + 4 + 8ull * (n % q.size);
    return {mem_.get<uint32_t>(e), mem_.get<uint32_t>(e + 4)};
  }
  // Waits until the device has used more buffers than last seen; returns the
  // new ones as (head, length) pairs.
  std::vector<std::pair<uint32_t, uint32_t>> wait_used(uint32_t index,
                                                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    DriverQueue& q = queues_[index];
    while (used_idx(index) == q.seen_used && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (uint16_t end = used_idx(index); q.seen_used != end; ++q.seen_used) out.push_back(used_elem(index, q.seen_used));
    return out;
  }
  DriverQueue& queue(uint32_t index) { return queues_[index]; }

 private:
  MmioTransport& t_;
  FakeGuestMemory& mem_;
  std::vector<DriverQueue> queues_;
};

}  // namespace thaw::devices::test
