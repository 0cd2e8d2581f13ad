#include "vmm/x86_64/mptable.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "synthetic_images.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {
namespace {

uint8_t byte_sum(std::span<const uint8_t> bytes) {
  uint8_t s = 0;
  for (uint8_t b : bytes) s = static_cast<uint8_t>(s + b);
  return s;
}

struct ParsedMpTable {
  MpFloatingPointer fp;
  MpConfigHeader hdr;
  std::vector<MpProcessorEntry> cpus;
  std::vector<MpIoapicEntry> ioapics;
  std::vector<MpBusEntry> buses;
  std::vector<MpInterruptEntry> io_irqs, local_irqs;
  unsigned entries = 0;
};

// Reads the table back the way a guest OS would, checking both checksums.
ParsedMpTable parse(GuestMemory& mem) {
  ParsedMpTable t;
  t.fp = mem.read_obj<MpFloatingPointer>(GuestAddress(kMpTableAddr));
  EXPECT_EQ(std::memcmp(t.fp.signature, "_MP_", 4), 0);
  EXPECT_EQ(byte_sum(mem.slice(GuestAddress(kMpTableAddr), 16)), 0) << "floating pointer checksum";
  t.hdr = mem.read_obj<MpConfigHeader>(GuestAddress(t.fp.config_table_addr));
  EXPECT_EQ(std::memcmp(t.hdr.signature, "PCMP", 4), 0);
  EXPECT_EQ(byte_sum(mem.slice(GuestAddress(t.fp.config_table_addr), t.hdr.base_table_length)), 0)
      << "config table checksum";
  uint64_t p = t.fp.config_table_addr + sizeof(MpConfigHeader);
  const uint64_t end = t.fp.config_table_addr + t.hdr.base_table_length;
  while (p < end) {
    auto type = mem.read_obj<uint8_t>(GuestAddress(p));
    ++t.entries;
    switch (type) {
      case kMpProcessor:
        t.cpus.push_back(mem.read_obj<MpProcessorEntry>(GuestAddress(p)));
        p += sizeof(MpProcessorEntry);
        break;
      case kMpBus:
        t.buses.push_back(mem.read_obj<MpBusEntry>(GuestAddress(p)));
        p += 8;
        break;
      case kMpIoapic:
        t.ioapics.push_back(mem.read_obj<MpIoapicEntry>(GuestAddress(p)));
        p += 8;
        break;
      case kMpIoInterrupt:
        t.io_irqs.push_back(mem.read_obj<MpInterruptEntry>(GuestAddress(p)));
        p += 8;
        break;
      case kMpLocalInterrupt:
        t.local_irqs.push_back(mem.read_obj<MpInterruptEntry>(GuestAddress(p)));
        p += 8;
        break;
      default:
        ADD_FAILURE() << "unknown MP entry type " << int(type);
        return t;
    }
  }
  EXPECT_EQ(p, end);
  return t;
}

class MpTableTest : public ::testing::TestWithParam<unsigned> {};

TEST_P(MpTableTest, DescribesEveryCpuTheIoapicAndIsaIrqs) {
  const unsigned n = GetParam();
  auto mem = GuestMemory::create(128 << 20);
  write_mptable(mem, n);
  auto t = parse(mem);
  EXPECT_EQ(t.fp.config_table_addr, kMpTableAddr + 16);
  EXPECT_EQ(t.fp.spec_rev, 4);
  EXPECT_EQ(t.hdr.lapic_addr, kLapicAddr);
  EXPECT_EQ(t.hdr.entry_count, t.entries);
  EXPECT_EQ(mptable_size(n), 16 + t.hdr.base_table_length);

  ASSERT_EQ(t.cpus.size(), n);
  for (unsigned i = 0; i < n; ++i) {
    EXPECT_EQ(t.cpus[i].lapic_id, i);
    EXPECT_EQ(t.cpus[i].cpu_flags & 1, 1) << "cpu " << i << " enabled";
    EXPECT_EQ((t.cpus[i].cpu_flags & 2) != 0, i == 0) << "only cpu 0 is the BSP";
  }
  ASSERT_EQ(t.buses.size(), 1u);
  EXPECT_EQ(std::memcmp(t.buses[0].bus_type, "ISA   ", 6), 0);
  ASSERT_EQ(t.ioapics.size(), 1u);
  EXPECT_EQ(t.ioapics[0].ioapic_id, n);
  EXPECT_EQ(t.ioapics[0].addr, 0xfec0'0000u);
  EXPECT_EQ(t.ioapics[0].flags & 1, 1);

  ASSERT_EQ(t.io_irqs.size(), 16u);
  for (unsigned irq = 0; irq < 16; ++irq) {
    EXPECT_EQ(t.io_irqs[irq].source_bus_irq, irq);
    EXPECT_EQ(t.io_irqs[irq].dest_id, n);
    EXPECT_EQ(t.io_irqs[irq].dest_pin, irq);
    EXPECT_EQ(t.io_irqs[irq].interrupt_type, kMpIntInt);
  }
  ASSERT_EQ(t.local_irqs.size(), 2u);
  EXPECT_EQ(t.local_irqs[0].interrupt_type, kMpIntExtInt);
  EXPECT_EQ(t.local_irqs[0].dest_pin, 0);
  EXPECT_EQ(t.local_irqs[1].interrupt_type, kMpIntNmi);
  EXPECT_EQ(t.local_irqs[1].dest_id, 0xff);
  EXPECT_EQ(t.local_irqs[1].dest_pin, 1);
}

INSTANTIATE_TEST_SUITE_P(VcpuCounts, MpTableTest, ::testing::Values(1u, 2u, 4u, 254u));

TEST(MpTable, TheLargestTableEndsBelowOneMiB) {
  EXPECT_EQ(max_mptable_vcpus(), 254u);
  EXPECT_LE(kMpTableAddr + mptable_size(max_mptable_vcpus()), kMpTableEnd);
}

TEST(MpTable, RejectsUnsupportedVcpuCounts) {
  auto mem = GuestMemory::create(128 << 20);
  EXPECT_CONTAINS(testing::input_error_of([&] { write_mptable(mem, 0); }), "vCPU count 0");
  EXPECT_CONTAINS(testing::input_error_of([&] { write_mptable(mem, 255); }), "1 to 254");
}

}  // namespace
}  // namespace thaw::vmm::x86
