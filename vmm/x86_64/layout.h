// Every fixed guest-physical address of the x86-64 machine, in one place.
//
// Low memory at boot (all inside the first 1 MiB, which the e820 map and the
// loaders keep free of kernel segments):
//
//   0x0000_0500  GDT (8 slots)                0x0000_7000  zero page (boot_params)
//   0x0000_0540  IDT (one empty gate)         0x0000_8000  boot stack, grows down from 0x8ff0
//   0x0000_0580  TSS (104 bytes)              0x0000_9000  PML4, then PDPT, then 4 PDs
//   0x0002_0000  kernel command line          0x0009_fc00  EBDA: MP floating pointer + table
//   0x0010_0000  high memory: the kernel
//
// Devices the VMM emulates sit at the addresses below; they are here so the
// VMM, the device wiring and the tests agree on one number.
#pragma once

#include <cstdint>

namespace thaw::vmm::x86 {

inline constexpr uint64_t kPageSize = 0x1000;
inline constexpr uint64_t kOneMiB = 0x10'0000;

// --- Descriptor tables -----------------------------------------------------
inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr unsigned kGdtSlots = 8;  // room for null, code, data, 16-byte TSS
inline constexpr uint64_t kIdtAddr = 0x540;  // kGdtAddr + kGdtSlots * 8
// A single zero gate: the guest installs its own IDT before it enables
// interrupts; until then any exception is a triple fault, which is what we want.
inline constexpr uint64_t kIdtLimit = 8 - 1;
inline constexpr uint64_t kTssAddr = 0x580;
inline constexpr uint64_t kTssLimit = 0x67;  // 104-byte 64-bit TSS

// Selectors of the boot GDT. 0x10/0x18 are what the Linux 64-bit boot
// protocol names __BOOT_CS/__BOOT_DS.
inline constexpr uint16_t kCodeSelector = 0x10;
inline constexpr uint16_t kDataSelector = 0x18;
inline constexpr uint16_t kTssSelector = 0x20;  // 16 bytes: slots 4 and 5

// --- Zero page, stack and page tables ---------------------------------------
inline constexpr uint64_t kZeroPageAddr = 0x7000;
inline constexpr uint64_t kBootStackBottom = 0x8000;
inline constexpr uint64_t kBootStackPointer = 0x8ff0;  // 16-byte aligned, below the PML4

inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;  // kIdentityMapGiB consecutive pages
// 4 GiB, not just RAM: the guest must be able to write the boot-complete MMIO
// register at 0xd000_0000 before it builds its own tables.
inline constexpr unsigned kIdentityMapGiB = 4;
inline constexpr uint64_t kPageTablesEnd = kPdAddr + kIdentityMapGiB * kPageSize;

// --- Command line ------------------------------------------------------------
inline constexpr uint64_t kCmdlineAddr = 0x2'0000;
// Room reserved for the command line (incl. its NUL); a bzImage may accept
// more than an ELF kernel, never more than this.
inline constexpr uint64_t kCmdlineAreaSize = 0x1'0000;
// Linux's COMMAND_LINE_SIZE is 2048 including the NUL; ELF kernels carry no
// header that says otherwise.
inline constexpr uint64_t kElfCmdlineMaxLen = 2047;

// --- MP table and the BIOS area ----------------------------------------------
// The last KiB of base memory is one of the places an OS scans for the MP
// floating pointer; the config table follows it. [kEbdaStart, 1 MiB) is
// reported as reserved in e820.
inline constexpr uint64_t kEbdaStart = 0x9'fc00;
inline constexpr uint64_t kMpTableAddr = kEbdaStart;
inline constexpr uint64_t kMpTableEnd = kOneMiB;

inline constexpr uint64_t kHighMemStart = kOneMiB;  // kernels are loaded here or above

// --- Interrupt controllers ---------------------------------------------------
inline constexpr uint64_t kIoapicAddr = 0xfec0'0000;
inline constexpr uint64_t kLapicAddr = 0xfee0'0000;
inline constexpr unsigned kIsaIrqCount = 16;

// --- Devices -------------------------------------------------------------------
// The guest writes kBootCompleteValue here when it is ready to be snapshotted.
inline constexpr uint64_t kBootCompleteMmioAddr = 0xd000'0000;
inline constexpr uint8_t kBootCompleteValue = 123;

// virtio-mmio devices: one 4 KiB window each, from the page after the
// boot-complete page, each on its own ISA IRQ (the MP table routes ISA IRQs
// 0-15 to the IOAPIC pins of the same number). The guest learns them from
// its command line: virtio_mmio.device=4K@0xd0001000:5 (Linux syntax).
inline constexpr uint64_t kVirtioMmioBase = 0xd000'1000;
inline constexpr uint64_t kVirtioMmioSize = 0x1000;
inline constexpr unsigned kVsockIrq = 5;
inline constexpr uint64_t kVsockGuestCid = 3;

inline constexpr uint16_t kCom1Port = 0x3f8;
inline constexpr uint16_t kCom1PortCount = 8;
inline constexpr unsigned kCom1Irq = 4;
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;  // a write of 0xfe resets the machine
// isa-debug-exit compatible: a write ends the VM (same port QEMU uses).
inline constexpr uint16_t kDebugExitPort = 0xf4;
// The exit code of a clean power-off, on that port or the boot-complete
// page's exit byte (0 is "done", anything else a failure). Mirrors
// guest/mini/layout.h's EXIT_CODE_POWER_OFF (tests/integration/guest_exit_code_test.cpp).
inline constexpr uint8_t kExitCodePowerOff = 0x50;

// Sanity: the pieces do not overlap.
static_assert(kIdtAddr >= kGdtAddr + kGdtSlots * 8);
static_assert(kTssAddr >= kIdtAddr + kIdtLimit + 1);
static_assert(kTssAddr + kTssLimit < kZeroPageAddr);
static_assert(kZeroPageAddr + kPageSize <= kBootStackBottom);
static_assert(kBootStackPointer < kPml4Addr);
static_assert(kPageTablesEnd <= kCmdlineAddr);
static_assert(kCmdlineAddr + kCmdlineAreaSize <= kEbdaStart);
static_assert(kVirtioMmioBase >= kBootCompleteMmioAddr + kPageSize);
static_assert(kVsockIrq < kIsaIrqCount && kVsockIrq != kCom1Irq);

}  // namespace thaw::vmm::x86
