#include "devices/virtio/mmio_transport.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "base/errors.h"

namespace thaw::devices {

namespace {

using namespace virtio_mmio;

[[noreturn]] void bad_field(const std::string& field, const std::string& why) {
  throw StateError("VirtioMmioState." + field + ": " + why);
}

void set_low(uint64_t& v, uint32_t low) { v = (v & 0xffff'ffff'0000'0000ull) | low; }
void set_high(uint64_t& v, uint32_t high) { v = (v & 0xffff'ffffull) | (uint64_t{high} << 32); }

}  // namespace

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, std::shared_ptr<GuestMemoryAccess> memory,
                             std::shared_ptr<InterruptNotifier> irq)
    : device_(std::move(device)), memory_(std::move(memory)), irq_(std::move(irq)) {
  if (!device_ || !memory_) throw std::invalid_argument("MmioTransport needs a device and guest memory");
  if (!(device_->device_features() & kVirtioFVersion1)) {
    throw std::invalid_argument("virtio device " + std::to_string(device_->device_id()) +
                                " does not offer VIRTIO_F_VERSION_1; the MMIO transport is non-legacy only");
  }
  s_.queues.resize(device_->queue_count());
}

MmioTransport::~MmioTransport() {
  // The backend may outlive the transport (it is shared); it must not keep
  // a context that points here.
  std::lock_guard lock(device_->mutex());
  if (active_) device_->reset();
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
  std::lock_guard lock(device_->mutex());
  if (offset >= kConfig) {
    const uint64_t config_offset = offset - kConfig;
    if (config_offset + data.size() <= device_->config_size()) device_->read_config(config_offset, data);
    return;
  }
  // Registers are 32 bits wide and aligned (4.2.2.2); anything else reads 0.
  if (data.size() != 4 || offset % 4 != 0) return;
  const uint32_t value = read_register(offset);
  std::memcpy(data.data(), &value, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(device_->mutex());
  if (offset >= kConfig) {
    const uint64_t config_offset = offset - kConfig;
    if (config_offset + data.size() <= device_->config_size()) device_->write_config(config_offset, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) return;
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  write_register(offset, value);
}

VirtqueueState* MmioTransport::selected_queue() {
  return s_.queue_sel < s_.queues.size() ? &s_.queues[s_.queue_sel] : nullptr;
}

uint32_t MmioTransport::read_register(uint64_t offset) {
  const VirtqueueState* q = selected_queue();
  switch (offset) {
    case kMagicValue: return kVirtioMmioMagic;
    case kVersion: return kVirtioMmioVersion;
    case kDeviceId: return device_->device_id();
    case kVendorId: return kVirtioMmioVendorId;
    case kDeviceFeatures: {
      const uint64_t features = device_->device_features();
      if (s_.device_features_sel == 0) return static_cast<uint32_t>(features);
      if (s_.device_features_sel == 1) return static_cast<uint32_t>(features >> 32);
      return 0;
    }
    case kQueueNumMax: return q ? device_->queue_max_size() : 0;
    case kQueueNum: return q ? q->size : 0;
    case kQueueReady: return q && q->ready ? 1 : 0;
    case kInterruptStatus: return s_.interrupt_status;
    case kStatus: return s_.status;
    case kQueueDescLow: return q ? static_cast<uint32_t>(q->desc_addr) : 0;
    case kQueueDescHigh: return q ? static_cast<uint32_t>(q->desc_addr >> 32) : 0;
    case kQueueDriverLow: return q ? static_cast<uint32_t>(q->avail_addr) : 0;
    case kQueueDriverHigh: return q ? static_cast<uint32_t>(q->avail_addr >> 32) : 0;
    case kQueueDeviceLow: return q ? static_cast<uint32_t>(q->used_addr) : 0;
    case kQueueDeviceHigh: return q ? static_cast<uint32_t>(q->used_addr >> 32) : 0;
    // No shared memory regions: a length of all ones says "none" (4.2.2).
    case kShmLenLow:
    case kShmLenHigh:
    case kShmBaseLow:
    case kShmBaseHigh: return 0xffff'ffff;
    case kConfigGeneration: return s_.config_generation;
    default: return 0;
  }
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
  VirtqueueState* q = selected_queue();
  // Queue layout is frozen while the queue is ready or the device runs.
  const bool q_writable = q && !q->ready && !(s_.status & kVirtioStatusDriverOk);
  const bool features_writable = !(s_.status & (kVirtioStatusFeaturesOk | kVirtioStatusDriverOk));
  switch (offset) {
    case kDeviceFeaturesSel: s_.device_features_sel = value; break;
    case kDriverFeatures:
      if (!features_writable) break;
      if (s_.driver_features_sel == 0) set_low(s_.driver_features, value);
      if (s_.driver_features_sel == 1) set_high(s_.driver_features, value);
      break;
    case kDriverFeaturesSel: s_.driver_features_sel = value; break;
    case kQueueSel: s_.queue_sel = value; break;
    case kQueueNum:
      // Stored as written; a size the device cannot take fails activation.
      if (q_writable) q->size = value <= 0xffff ? static_cast<uint16_t>(value) : 0;
      break;
    case kQueueReady:
      if (q && !(s_.status & kVirtioStatusDriverOk)) q->ready = value & 1;
      break;
    case kQueueNotify:
      if (active_ && value < s_.queues.size()) device_->queue_notify(value);
      break;
    case kInterruptAck: s_.interrupt_status &= ~value; break;
    case kStatus: write_status(value); break;
    case kQueueDescLow: if (q_writable) set_low(q->desc_addr, value); break;
    case kQueueDescHigh: if (q_writable) set_high(q->desc_addr, value); break;
    case kQueueDriverLow: if (q_writable) set_low(q->avail_addr, value); break;
    case kQueueDriverHigh: if (q_writable) set_high(q->avail_addr, value); break;
    case kQueueDeviceLow: if (q_writable) set_low(q->used_addr, value); break;
    case kQueueDeviceHigh: if (q_writable) set_high(q->used_addr, value); break;
    default: break;  // read-only or unknown: ignored
  }
}

void MmioTransport::write_status(uint32_t value) {
  if (value == 0) {
    reset_locked();
    return;
  }
  const uint32_t old = s_.status;
  // NEEDS_RESET is the device's to set; the driver only adds bits (3.1.1).
  uint32_t next = (value & kVirtioStatusMask & ~kVirtioStatusNeedsReset) | (old & kVirtioStatusNeedsReset);
  if ((next & kVirtioStatusFeaturesOk) && !(old & kVirtioStatusFeaturesOk)) {
    // Accept only a subset of what was offered, and never a legacy driver:
    // the driver reads FEATURES_OK back and gives up when it is clear.
    const uint64_t offered = device_->device_features();
    if ((s_.driver_features & ~offered) || !(s_.driver_features & kVirtioFVersion1)) next &= ~kVirtioStatusFeaturesOk;
  }
  if ((next & kVirtioStatusDriverOk) && !(next & kVirtioStatusFeaturesOk)) next &= ~kVirtioStatusDriverOk;
  s_.status = next;
  if ((next & kVirtioStatusDriverOk) && !(old & kVirtioStatusDriverOk)) activate_locked();
}

void MmioTransport::activate_locked() {
  if (active_ || broken()) return;
  for (const auto& q : s_.queues) {
    if (!q.ready) continue;
    try {
      Virtqueue::check(*memory_, q, device_->queue_max_size());
    } catch (const StateError&) {
      set_needs_reset();  // a driver that placed a queue badly: it sees DEVICE_NEEDS_RESET
      return;
    }
  }
  live_.clear();
  for (const auto& q : s_.queues) live_.push_back(q.ready ? std::make_unique<Virtqueue>(*memory_, q) : nullptr);
  active_ = true;
  device_->activate(*this);
}

void MmioTransport::reset_locked() {
  if (active_) device_->reset();
  active_ = false;
  live_.clear();
  const uint32_t generation = s_.config_generation;
  s_ = VirtioMmioState{};
  s_.config_generation = generation;
  s_.queues.resize(device_->queue_count());
}

void MmioTransport::set_needs_reset() {
  if (s_.status & kVirtioStatusNeedsReset) return;
  s_.status |= kVirtioStatusNeedsReset;
  // A configuration-change interrupt tells a running driver (2.1.2).
  if (s_.status & kVirtioStatusDriverOk) {
    s_.interrupt_status |= kVirtioInterruptConfigChange;
    if (irq_) irq_->notify();
  }
}

Virtqueue* MmioTransport::queue(size_t index) { return active_ && index < live_.size() ? live_[index].get() : nullptr; }

void MmioTransport::finish_batch(bool used_buffers) {
  bool failed = false;
  for (const auto& q : live_) failed |= q && q->failed();
  if (failed) set_needs_reset();
  if (used_buffers) {
    // Every batch interrupts, even when the bit is still set: the edge is
    // what wakes the guest, and it reads the register in its handler.
    s_.interrupt_status |= kVirtioInterruptUsedBuffer;
    if (irq_) irq_->notify();
  }
}

VirtioMmioState MmioTransport::snapshot_locked() const {
  VirtioMmioState out = s_;
  for (size_t i = 0; i < live_.size(); ++i) {
    if (live_[i]) out.queues[i] = live_[i]->state();
  }
  return out;
}

VirtioMmioState MmioTransport::save() const {
  std::lock_guard lock(device_->mutex());
  return snapshot_locked();
}

uint32_t MmioTransport::status() const {
  std::lock_guard lock(device_->mutex());
  return s_.status;
}

bool MmioTransport::active() const {
  std::lock_guard lock(device_->mutex());
  return active_;
}

void MmioTransport::check_state(const VirtioMmioState& st) const {
  if (st.status & ~kVirtioStatusMask) bad_field("status", "unknown bits in " + std::to_string(st.status));
  if ((st.status & kVirtioStatusDriverOk) && !(st.status & kVirtioStatusFeaturesOk)) {
    bad_field("status", "DRIVER_OK without FEATURES_OK");
  }
  if (st.driver_features & ~device_->device_features()) {
    bad_field("driver_features", "bits the device does not offer");
  }
  if ((st.status & kVirtioStatusFeaturesOk) && !(st.driver_features & kVirtioFVersion1)) {
    bad_field("driver_features", "FEATURES_OK without VIRTIO_F_VERSION_1");
  }
  if (st.interrupt_status & ~(kVirtioInterruptUsedBuffer | kVirtioInterruptConfigChange)) {
    bad_field("interrupt_status", "unknown bits in " + std::to_string(st.interrupt_status));
  }
  if (st.queues.size() != device_->queue_count()) {
    bad_field("queues", std::to_string(st.queues.size()) + " queues, the device has " +
                            std::to_string(device_->queue_count()));
  }
  for (size_t i = 0; i < st.queues.size(); ++i) {
    const auto& q = st.queues[i];
    if (q.size > device_->queue_max_size()) {
      bad_field("queues[" + std::to_string(i) + "].size", std::to_string(q.size) + " is above the maximum " +
                                                              std::to_string(device_->queue_max_size()));
    }
    if (!q.ready) continue;
    try {
      Virtqueue::check(*memory_, q, device_->queue_max_size());
    } catch (const StateError& e) {
      bad_field("queues[" + std::to_string(i) + "]", e.what());
    }
  }
}

void MmioTransport::restore(const VirtioMmioState& state) {
  std::lock_guard lock(device_->mutex());
  check_state(state);
  if (active_) device_->reset();
  active_ = false;
  live_.clear();
  s_ = state;
  if ((s_.status & kVirtioStatusDriverOk) && !(s_.status & kVirtioStatusNeedsReset)) activate_locked();
}

void MmioTransport::notify_pending() {
  std::lock_guard lock(device_->mutex());
  if (s_.interrupt_status != 0 && irq_) irq_->notify();
}

}  // namespace thaw::devices
