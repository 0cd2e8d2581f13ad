#include "devices/bus.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "base/hex_text.h"

namespace thaw::devices {
namespace {

// "[0x3f8, 0x3ff]": inclusive so the top of the address space prints sanely.
std::string range_text(uint64_t base, uint64_t last) {
  return "[" + hex(base) + ", " + hex(last) + "]";
}

}  // namespace

Bus::Bus(std::string name) : name_(std::move(name)) {}

void Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length,
                 std::string device_name) {
  const std::string who = name_ + " bus: device '" + device_name + "'";
  if (!device) throw std::invalid_argument(who + " is null");
  if (length == 0) throw std::invalid_argument(who + " at " + hex(base) + " has length 0");
  if (length - 1 > UINT64_MAX - base) {
    throw std::invalid_argument(who + " at " + hex(base) + " with length " + hex(length) +
                                " runs past the end of the address space");
  }
  const uint64_t last = base + (length - 1);

  // Entries are sorted and disjoint, so only the first entry ending at or
  // after `base` can overlap.
  auto pos = std::lower_bound(entries_.begin(), entries_.end(), base,
                              [](const Entry& e, uint64_t b) { return e.last < b; });
  if (pos != entries_.end() && pos->base <= last) {
    throw std::invalid_argument(who + " " + range_text(base, last) + " overlaps device '" +
                                pos->name + "' " + range_text(pos->base, pos->last));
  }
  entries_.insert(pos, Entry{base, last, std::move(device_name), std::move(device)});
}

const Bus::Entry* Bus::find(uint64_t addr, uint64_t size) const {
  if (size == 0) return nullptr;
  // Last entry whose base is <= addr.
  auto pos = std::upper_bound(entries_.begin(), entries_.end(), addr,
                              [](uint64_t a, const Entry& e) { return a < e.base; });
  if (pos == entries_.begin()) return nullptr;
  const Entry& e = *std::prev(pos);
  if (addr > e.last) return nullptr;
  if (size - 1 > e.last - addr) return nullptr;  // straddles the device's end
  return &e;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  const Entry* e = find(addr, data.size());
  if (!e) {
    std::fill(data.begin(), data.end(), uint8_t{0xff});
    return false;
  }
  e->device->read(addr - e->base, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  const Entry* e = find(addr, data.size());
  if (!e) return false;
  e->device->write(addr - e->base, data);
  return true;
}

std::string_view Bus::device_name_at(uint64_t addr) const {
  const Entry* e = find(addr, 1);
  return e ? std::string_view(e->name) : std::string_view();
}

}  // namespace thaw::devices
