// The Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
// learns its CPUs, the ISA bus and the IOAPIC and how ISA IRQs are wired.
// Layout: floating pointer at kMpTableAddr (last KiB of base memory, where an
// OS scans for it), then the config table header and its entries.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vmm/memory/guest_memory.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {

#pragma pack(push, 1)
struct MpFloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t config_table_addr;
  uint8_t length_paragraphs;  // 1: 16 bytes
  uint8_t spec_rev;           // 4: version 1.4
  uint8_t checksum;
  uint8_t feature1;  // 0: a config table is present
  uint8_t feature2;  // bit 7 (IMCR) clear: virtual-wire mode
  uint8_t feature_reserved[3];
};

struct MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t base_table_length;
  uint8_t spec_rev;
  uint8_t checksum;
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table_ptr;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_addr;
  uint16_t ext_table_length;
  uint8_t ext_table_checksum;
  uint8_t reserved;
};

struct MpProcessorEntry {
  uint8_t entry_type;  // 0
  uint8_t lapic_id;
  uint8_t lapic_version;
  uint8_t cpu_flags;  // bit 0 enabled, bit 1 bootstrap processor
  uint32_t cpu_signature;
  uint32_t feature_flags;
  uint32_t reserved[2];
};

struct MpBusEntry {
  uint8_t entry_type;  // 1
  uint8_t bus_id;
  char bus_type[6];  // "ISA   "
};

struct MpIoapicEntry {
  uint8_t entry_type;  // 2
  uint8_t ioapic_id;
  uint8_t ioapic_version;
  uint8_t flags;  // bit 0 enabled
  uint32_t addr;
};

// Used for both I/O interrupt (type 3) and local interrupt (type 4) entries.
struct MpInterruptEntry {
  uint8_t entry_type;
  uint8_t interrupt_type;  // kMpIntInt, kMpIntNmi, kMpIntExtInt
  uint16_t flags;          // polarity/trigger; 0 = conforms to the bus
  uint8_t source_bus_id;
  uint8_t source_bus_irq;
  uint8_t dest_id;    // IOAPIC id (type 3) or local APIC id, 0xff = all (type 4)
  uint8_t dest_pin;   // IOAPIC INTIN (type 3) or LINTIN (type 4)
};
#pragma pack(pop)

static_assert(sizeof(MpFloatingPointer) == 16);
static_assert(sizeof(MpConfigHeader) == 44);
static_assert(sizeof(MpProcessorEntry) == 20);
static_assert(sizeof(MpBusEntry) == 8);
static_assert(sizeof(MpIoapicEntry) == 8);
static_assert(sizeof(MpInterruptEntry) == 8);

enum MpEntryType : uint8_t { kMpProcessor = 0, kMpBus = 1, kMpIoapic = 2, kMpIoInterrupt = 3, kMpLocalInterrupt = 4 };
enum MpInterruptType : uint8_t { kMpIntInt = 0, kMpIntNmi = 1, kMpIntExtInt = 3 };

inline constexpr uint8_t kMpIsaBusId = 0;

// APIC IDs are 8 bits, 0xff is the broadcast ID and the IOAPIC takes the ID
// after the last CPU, so at most 254 CPUs.
unsigned max_mptable_vcpus();

// Bytes the whole table (pointer, header, entries) takes for `vcpu_count`
// CPUs: processors, one bus, one IOAPIC, 16 ISA IRQs, ExtINT and NMI.
constexpr size_t mptable_size(unsigned vcpu_count) {
  return sizeof(MpFloatingPointer) + sizeof(MpConfigHeader) + vcpu_count * sizeof(MpProcessorEntry) +
         sizeof(MpBusEntry) + sizeof(MpIoapicEntry) + (kIsaIrqCount + 2) * sizeof(MpInterruptEntry);
}

// Writes the table at kMpTableAddr. CPU i gets APIC ID i; the IOAPIC gets ID
// vcpu_count. Throws InputError when vcpu_count is 0 or above the maximum.
void write_mptable(GuestMemory& mem, unsigned vcpu_count);

}  // namespace thaw::vmm::x86
