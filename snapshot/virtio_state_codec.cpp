#include "snapshot/virtio_state_codec.h"

#include <bit>
#include <cstdio>
#include <string>

#include "base/hex_text.h"
#include "base/errors.h"

namespace thaw::snapshot {

namespace {

[[noreturn]] void reject(const std::string& why) { throw InputError("snapshot state: vsock " + why); }

// True when [addr, addr + len) lies inside one saved RAM region.
bool inside_ram(const MemoryLayout& memory, uint64_t addr, uint64_t len) {
  for (const auto& r : memory.regions) {
    if (addr >= r.guest_start && addr - r.guest_start < r.size && len <= r.size - (addr - r.guest_start)) return true;
  }
  return false;
}

void check_ring(const MemoryLayout& memory, size_t queue, const char* name, uint64_t addr, uint64_t len,
                uint64_t align) {
  const std::string where = "queue " + std::to_string(queue) + " " + name + " at " + hex(addr);
  if (addr % align != 0) reject(where + " is not " + std::to_string(align) + "-byte aligned");
  if (!inside_ram(memory, addr, len)) reject(where + " (" + std::to_string(len) + " bytes) is not inside guest RAM");
}

devices::VirtqueueState decode_queue(schema::VirtqueueState::Reader in, size_t index, const MemoryLayout& memory) {
  devices::VirtqueueState q;
  q.size = in.getSize();
  q.ready = in.getReady();
  q.desc_addr = in.getDescAddr();
  q.avail_addr = in.getAvailAddr();
  q.used_addr = in.getUsedAddr();
  q.next_avail = in.getNextAvail();
  q.next_used = in.getNextUsed();
  if (q.size > devices::kVirtqMaxSize || (q.size != 0 && !std::has_single_bit(q.size))) {
    reject("queue " + std::to_string(index) + " size " + std::to_string(q.size) + " is not a power of two up to " +
           std::to_string(devices::kVirtqMaxSize));
  }
  if (!q.ready) return q;
  if (q.size == 0) reject("queue " + std::to_string(index) + " is ready with size 0");
  // The split ring's three parts (virtio 1.x, 2.7): 16-byte descriptors;
  // avail flags, idx, ring, used_event; used flags, idx, ring, avail_event.
  check_ring(memory, index, "descriptor table", q.desc_addr, 16ull * q.size, 16);
  check_ring(memory, index, "avail ring", q.avail_addr, 6 + 2ull * q.size, 2);
  check_ring(memory, index, "used ring", q.used_addr, 6 + 8ull * q.size, 4);
  if (static_cast<uint16_t>(q.next_avail - q.next_used) > q.size) {
    reject("queue " + std::to_string(index) + " has " + std::to_string(static_cast<uint16_t>(q.next_avail - q.next_used)) +
           " buffers in flight, more than its size " + std::to_string(q.size));
  }
  return q;
}

}  // namespace

void encode_vsock(const vmm::VsockDeviceStates& vsock, schema::VirtioVsockState::Builder out) {
  out.setGuestCid(vsock.device.guest_cid);
  out.setNextHostPort(vsock.device.next_host_port);
  const auto& t = vsock.transport;
  auto tr = out.initTransport();
  tr.setStatus(t.status);
  tr.setDeviceFeaturesSel(t.device_features_sel);
  tr.setDriverFeaturesSel(t.driver_features_sel);
  tr.setDriverFeatures(t.driver_features);
  tr.setQueueSel(t.queue_sel);
  tr.setInterruptStatus(t.interrupt_status);
  tr.setConfigGeneration(t.config_generation);
  auto queues = tr.initQueues(static_cast<unsigned>(t.queues.size()));
  for (unsigned i = 0; i < t.queues.size(); ++i) {
    const auto& q = t.queues[i];
    queues[i].setSize(q.size);
    queues[i].setReady(q.ready);
    queues[i].setDescAddr(q.desc_addr);
    queues[i].setAvailAddr(q.avail_addr);
    queues[i].setUsedAddr(q.used_addr);
    queues[i].setNextAvail(q.next_avail);
    queues[i].setNextUsed(q.next_used);
  }
}

vmm::VsockDeviceStates decode_vsock(schema::VirtioVsockState::Reader in, const MemoryLayout& memory) {
  vmm::VsockDeviceStates v;
  v.device.guest_cid = in.getGuestCid();
  if (v.device.guest_cid < devices::kVsockMinGuestCid || v.device.guest_cid > devices::kVsockMaxGuestCid) {
    reject("guest CID " + std::to_string(v.device.guest_cid) + " is reserved");
  }
  const uint32_t port = in.getNextHostPort();
  if (port != 0 && !devices::is_vsock_host_port(port)) {
    reject("next host port " + std::to_string(port) + " is outside " + std::to_string(devices::kVsockFirstHostPort) +
           ".." + std::to_string(devices::kVsockLastHostPort));
  }
  if (port != 0) v.device.next_host_port = port;
  if (!in.hasTransport()) reject("transport state is missing");
  auto t = in.getTransport();
  auto& s = v.transport;
  s.status = t.getStatus();
  s.device_features_sel = t.getDeviceFeaturesSel();
  s.driver_features_sel = t.getDriverFeaturesSel();
  s.driver_features = t.getDriverFeatures();
  s.queue_sel = t.getQueueSel();
  s.interrupt_status = t.getInterruptStatus();
  s.config_generation = t.getConfigGeneration();
  if (s.status & ~devices::kVirtioStatusMask) reject("status " + hex(s.status) + " has unknown bits");
  if ((s.status & devices::kVirtioStatusDriverOk) && !(s.status & devices::kVirtioStatusFeaturesOk)) {
    reject("status " + hex(s.status) + " has DRIVER_OK without FEATURES_OK");
  }
  // The vsock device offers VIRTIO_F_VERSION_1 and nothing else.
  if (s.driver_features & ~devices::kVirtioFVersion1) {
    reject("driver features " + hex(s.driver_features) + " include bits the device does not offer");
  }
  if ((s.status & devices::kVirtioStatusFeaturesOk) && !(s.driver_features & devices::kVirtioFVersion1)) {
    reject("features were accepted without VIRTIO_F_VERSION_1");
  }
  if (s.interrupt_status & ~(devices::kVirtioInterruptUsedBuffer | devices::kVirtioInterruptConfigChange)) {
    reject("interrupt status " + hex(s.interrupt_status) + " has unknown bits");
  }
  auto queues = t.getQueues();
  if (queues.size() != devices::kVsockQueueCount) {
    reject("has " + std::to_string(queues.size()) + " queues, the device has " +
           std::to_string(devices::kVsockQueueCount));
  }
  for (unsigned i = 0; i < queues.size(); ++i) s.queues.push_back(decode_queue(queues[i], i, memory));
  return v;
}

}  // namespace thaw::snapshot
