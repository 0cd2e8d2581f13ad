#include "vmm/x86_64/mptable.h"

#include <cstring>
#include <vector>

#include "base/errors.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {

namespace {

constexpr uint8_t kSpecRev14 = 4;
constexpr uint8_t kLapicVersion = 0x14;   // integrated APIC, as KVM's LAPIC reports
constexpr uint8_t kIoapicVersion = 0x11;  // KVM's IOAPIC version register
constexpr uint8_t kCpuEnabled = 1 << 0;
constexpr uint8_t kCpuBootstrap = 1 << 1;
// Family 6 signature and FPU|APIC feature bits: what an OS falls back to
// when it reads CPUID itself anyway.
constexpr uint32_t kCpuSignature = 0x600;
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);

// Appends the bytes of `obj` to `out`.
template <class T>
void append(std::vector<uint8_t>& out, const T& obj) {
  const auto* p = reinterpret_cast<const uint8_t*>(&obj);
  out.insert(out.end(), p, p + sizeof(T));
}

// The byte that makes the sum of [data, data+len) zero modulo 256.
uint8_t checksum_for(const uint8_t* data, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; ++i) sum = static_cast<uint8_t>(sum + data[i]);
  return static_cast<uint8_t>(-sum);
}

MpInterruptEntry interrupt(MpEntryType type, MpInterruptType irq_type, uint8_t bus_irq, uint8_t dest,
                           uint8_t pin) {
  return MpInterruptEntry{static_cast<uint8_t>(type), static_cast<uint8_t>(irq_type), 0, kMpIsaBusId,
                          bus_irq, dest, pin};
}

}  // namespace

unsigned max_mptable_vcpus() { return 254; }

void write_mptable(GuestMemory& mem, unsigned vcpu_count) {
  if (vcpu_count == 0 || vcpu_count > max_mptable_vcpus()) {
    throw InputError("vCPU count " + std::to_string(vcpu_count) + " is not supported; the MP table takes 1 to " +
                     std::to_string(max_mptable_vcpus()));
  }
  // The largest table still ends below 1 MiB, inside the reserved e820 range.
  static_assert(kMpTableAddr + mptable_size(254) <= kMpTableEnd);
  const uint64_t config_addr = kMpTableAddr + sizeof(MpFloatingPointer);
  const auto ioapic_id = static_cast<uint8_t>(vcpu_count);

  // Entries first, then the header in front of them once their size is known.
  std::vector<uint8_t> entries;
  uint16_t entry_count = 0;
  for (unsigned cpu = 0; cpu < vcpu_count; ++cpu, ++entry_count) {
    MpProcessorEntry p{};
    p.entry_type = kMpProcessor;
    p.lapic_id = static_cast<uint8_t>(cpu);
    p.lapic_version = kLapicVersion;
    p.cpu_flags = kCpuEnabled | (cpu == 0 ? kCpuBootstrap : 0);
    p.cpu_signature = kCpuSignature;
    p.feature_flags = kCpuFeatures;
    append(entries, p);
  }
  MpBusEntry bus{kMpBus, kMpIsaBusId, {'I', 'S', 'A', ' ', ' ', ' '}};
  append(entries, bus);
  ++entry_count;
  append(entries, MpIoapicEntry{kMpIoapic, ioapic_id, kIoapicVersion, 1, static_cast<uint32_t>(kIoapicAddr)});
  ++entry_count;
  // ISA IRQ n -> IOAPIC pin n: the same identity routing KVM's default GSI
  // table (kvm_setup_default_irq_routing) uses.
  for (unsigned irq = 0; irq < kIsaIrqCount; ++irq, ++entry_count) {
    auto n = static_cast<uint8_t>(irq);
    append(entries, interrupt(kMpIoInterrupt, kMpIntInt, n, ioapic_id, n));
  }
  // Virtual-wire mode: the PIC reaches the BSP's LINT0 as ExtINT, NMI goes
  // to LINT1 of every CPU.
  append(entries, interrupt(kMpLocalInterrupt, kMpIntExtInt, 0, 0, 0));
  append(entries, interrupt(kMpLocalInterrupt, kMpIntNmi, 0, 0xff, 1));
  entry_count += 2;

  MpConfigHeader hdr{};
  std::memcpy(hdr.signature, "PCMP", 4);
  hdr.base_table_length = static_cast<uint16_t>(sizeof(MpConfigHeader) + entries.size());
  hdr.spec_rev = kSpecRev14;
  std::memcpy(hdr.oem_id, "THAW    ", 8);
  std::memcpy(hdr.product_id, "MICROVM     ", 12);
  hdr.entry_count = entry_count;
  hdr.lapic_addr = static_cast<uint32_t>(kLapicAddr);

  std::vector<uint8_t> config;
  append(config, hdr);
  config.insert(config.end(), entries.begin(), entries.end());
  config[offsetof(MpConfigHeader, checksum)] = checksum_for(config.data(), config.size());

  MpFloatingPointer fp{};
  std::memcpy(fp.signature, "_MP_", 4);
  fp.config_table_addr = static_cast<uint32_t>(config_addr);
  fp.length_paragraphs = 1;
  fp.spec_rev = kSpecRev14;
  fp.checksum = checksum_for(reinterpret_cast<const uint8_t*>(&fp), sizeof fp);

  mem.write_obj(GuestAddress(kMpTableAddr), fp, "MP floating pointer");
  mem.write(GuestAddress(config_addr), config, "MP config table");
}

}  // namespace thaw::vmm::x86
