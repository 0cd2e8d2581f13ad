// fuzz_virtio_vsock: the virtio-mmio transport's register interface
// (devices/virtio/mmio_transport.h) and the vsock device behind it
// (devices/virtio/vsock_device.h), driven as a hostile guest would: every
// register access, every byte of guest RAM (descriptors, rings, packet
// headers) comes from the input.
//
// Input: a stream of operations (FuzzedDataProvider). One of them brings the
// device up the way Linux's driver does, with three queues at fixed places,
// so that mutations reach the queue code without first having to discover
// the whole handshake.
#include <fuzzer/FuzzedDataProvider.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "devices/interrupt_line.h"
#include "devices/virtio/guest_memory_access.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/vsock_device.h"

namespace {

using namespace thaw::devices;

constexpr uint64_t kRamBase = 0x10000;
constexpr uint64_t kRamSize = 0x10000;  // 64 KiB: small enough to hit its edges

class FuzzMemory : public GuestMemoryAccess {
 public:
  std::span<uint8_t> slice(uint64_t gpa, uint64_t len) override {
    if (len == 0 || gpa < kRamBase || gpa - kRamBase > bytes.size() || len > bytes.size() - (gpa - kRamBase)) {
      return {};
    }
    return {bytes.data() + (gpa - kRamBase), len};
  }
  std::vector<uint8_t> bytes = std::vector<uint8_t>(kRamSize);
};

class NullInterrupt : public InterruptNotifier {
 public:
  void notify() override { count.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<uint64_t> count{0};
};

void write32(MmioTransport& t, uint64_t offset, uint32_t v) {
  t.write(offset, {reinterpret_cast<const uint8_t*>(&v), 4});
}

// Lets the device's muxer thread take what a notify queued: waits (briefly)
// for the eventfd to be drained, then for the processing lock.
void settle(VsockDevice& device) {
  for (int i = 0; i < 2000; ++i) {
    pollfd p{device.notify_fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) break;
    sched_yield();
  }
  device.pause_processing();
  device.resume_processing();
}

void bring_up(MmioTransport& t) {
  namespace r = virtio_mmio;
  write32(t, r::kStatus, 0);
  write32(t, r::kStatus, kVirtioStatusAcknowledge);
  write32(t, r::kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver);
  write32(t, r::kDriverFeaturesSel, 1);
  write32(t, r::kDriverFeatures, 1);  // VIRTIO_F_VERSION_1
  write32(t, r::kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk);
  for (uint32_t q = 0; q < 3; ++q) {
    const uint64_t desc = kRamBase + q * 0x1000, avail = desc + 0x200, used = desc + 0x400;
    write32(t, r::kQueueSel, q);
    write32(t, r::kQueueNum, 16);
    write32(t, r::kQueueDescLow, static_cast<uint32_t>(desc));
    write32(t, r::kQueueDriverLow, static_cast<uint32_t>(avail));
    write32(t, r::kQueueDeviceLow, static_cast<uint32_t>(used));
    write32(t, r::kQueueReady, 1);
  }
  write32(t, r::kStatus,
          kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk | kVirtioStatusDriverOk);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/thaw-fuzz-vsock-" + std::to_string(::getpid()) + ".sock";
  FuzzedDataProvider in(data, size);
  auto memory = std::make_shared<FuzzMemory>();
  auto irq = std::make_shared<NullInterrupt>();
  auto device = std::make_shared<VsockDevice>(path, 3);
  {
    MmioTransport transport(device, memory, irq);
    for (int ops = 0; ops < 256 && in.remaining_bytes() > 0; ++ops) {
      switch (in.ConsumeIntegralInRange<uint8_t>(0, 5)) {
        case 0: {  // a register write of any width, anywhere in the window
          const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, kVirtioMmioWindow + 8);
          auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 8));
          transport.write(offset, bytes);
          break;
        }
        case 1: {  // a register read
          const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, kVirtioMmioWindow + 8);
          std::vector<uint8_t> bytes(in.ConsumeIntegralInRange<size_t>(0, 8));
          transport.read(offset, bytes);
          break;
        }
        case 2: {  // the guest writes its RAM (descriptors, rings, packets)
          const size_t at = in.ConsumeIntegralInRange<size_t>(0, kRamSize - 1);
          auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 512));
          for (size_t i = 0; i < bytes.size() && at + i < kRamSize; ++i) memory->bytes[at + i] = bytes[i];
          break;
        }
        case 3:
          bring_up(transport);
          break;
        case 4:  // QueueNotify, then let the device work
          write32(transport, virtio_mmio::kQueueNotify, in.ConsumeIntegralInRange<uint32_t>(0, 3));
          settle(*device);
          break;
        case 5:  // 32-bit register write with a chosen register
          write32(transport, in.ConsumeIntegralInRange<uint64_t>(0, 0x10f) & ~3ull, in.ConsumeIntegral<uint32_t>());
          break;
      }
    }
    settle(*device);
  }
  return 0;
}
