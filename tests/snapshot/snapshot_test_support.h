// Shared by the snapshot tests: a fully populated state, a scratch
// directory (tests/temp_dir.h), and a way to re-frame a hand-edited Cap'n
// Proto message so validation (not the checksum) is what a test exercises.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>
#include <xxhash.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "snapshot/snapshot.capnp.h"
#include "snapshot/state_codec.h"
#include "tests/temp_dir.h"
#include "base/errors.h"

namespace thaw::snapshot::test {

// Every byte of `obj` set from a seed, so a field copied to the wrong place
// or truncated shows up in a byte comparison.
template <class T>
void fill_pattern(T& obj, uint8_t seed) {
  auto* p = reinterpret_cast<uint8_t*>(&obj);
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
}

template <class T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

inline vmm::VcpuState make_vcpu(uint32_t id) {
  vmm::VcpuState v;
  v.vcpu_id = id;
  for (uint32_t f = 0; f < 5; ++f) {
    kvm_cpuid_entry2 e{};
    e.function = f == 4 ? 0x4000'0001 : f;
    e.index = f;
    e.flags = f & 1;
    e.eax = 0x1000 + f + id;
    e.ebx = 0x2000 + f;
    e.ecx = 0x3000 + f;
    e.edx = 0x4000 + f;
    v.cpuid.push_back(e);
  }
  v.mp_state.mp_state = id == 0 ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_HALTED;
  fill_pattern(v.regs, static_cast<uint8_t>(1 + id));
  fill_pattern(v.sregs, static_cast<uint8_t>(2 + id));
  v.xsave.resize(4096 + 64);
  for (size_t i = 0; i < v.xsave.size(); ++i) v.xsave[i] = static_cast<uint8_t>(i * 13 + id);
  fill_pattern(v.fpu, static_cast<uint8_t>(3 + id));
  fill_pattern(v.xcrs, static_cast<uint8_t>(4 + id));
  v.xcrs.nr_xcrs = 1;
  fill_pattern(v.debugregs, static_cast<uint8_t>(5 + id));
  fill_pattern(v.lapic, static_cast<uint8_t>(6 + id));
  for (uint32_t i = 0; i < 20; ++i) {
    kvm_msr_entry m{};
    m.index = 0xc000'0080 + i;
    m.data = 0x1122'3344'5566'7788ull + i + id;
    v.msrs.push_back(m);
  }
  fill_pattern(v.events, static_cast<uint8_t>(7 + id));
  v.tsc_khz = 2'100'000 + id;
  return v;
}

// A state a real save could produce: every field non-default.
inline SnapshotState make_full_state(uint64_t mem_bytes = 64ull << 20, uint32_t vcpus = 2) {
  SnapshotState s;
  s.host = {"Test CPU @ 3.00GHz", "kvm_intel", "0.1.0"};
  s.memory = MemoryLayout::for_ram(mem_bytes, 2ull << 20);
  for (uint64_t i = 0; i < s.memory.chunk_count(); ++i) s.memory.chunk_hashes.push_back(0x9e37'79b9'7f4a'7c15ull * (i + 1));
  for (uint32_t i = 0; i < vcpus; ++i) s.machine.vcpus.push_back(make_vcpu(i));
  fill_pattern(s.machine.vm.pic_master, 11);
  s.machine.vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  fill_pattern(s.machine.vm.pic_slave, 12);
  s.machine.vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  fill_pattern(s.machine.vm.ioapic, 13);
  s.machine.vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  fill_pattern(s.machine.vm.pit, 14);
  fill_pattern(s.machine.vm.clock, 15);
  s.machine.devices.serial = {.dll = 1, .dlm = 2, .ier = 0x0f, .lcr = 0x03, .mcr = 0x0b, .scr = 0x5a, .fcr = 0xc1,
                      .msr_deltas = 0x05, .overrun = true, .thr_interrupt_pending = true,
                      .rx_fifo = {'h', 'e', 'l', 'l', 'o'}};
  s.machine.devices.i8042 = {.control = 0x47, .output = 0xfa, .output_full = true, .last_write_command = true,
                     .pending_command = 0x60};
  s.machine.devices.boot_complete = {.completions = 1, .ignored_writes = 3, .last_since_request_ns = 123'456'789};
  s.machine.devices.debug_exit = {.exited = true, .code = 42};
  s.boot_complete_after_ns = 987'654'321;
  return s;
}

// Expects `fn` to throw InputError whose message contains `needle`.
inline void expect_input_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning \"" << needle << "\"";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message \"" << e.what() << "\" does not mention \"" << needle << "\"";
  }
}

// Decodes a valid file's payload, lets `edit` change the message, and
// frames it again with a correct header and checksum.
inline std::vector<uint8_t> edit_message(const std::vector<uint8_t>& file,
                                         const std::function<void(schema::SnapshotState::Builder)>& edit) {
  kj::ArrayInputStream in(kj::arrayPtr(file.data() + kStateHeaderBytes, file.size() - kStateHeaderBytes));
  capnp::PackedMessageReader reader(in);
  capnp::MallocMessageBuilder builder;
  builder.setRoot(reader.getRoot<schema::SnapshotState>());
  edit(builder.getRoot<schema::SnapshotState>());
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, builder);
  auto payload = out.getArray();

  std::vector<uint8_t> framed(file.begin(), file.begin() + kStateHeaderBytes);
  uint64_t length = payload.size();
  uint64_t hash = XXH3_64bits(payload.begin(), payload.size());
  std::memcpy(framed.data() + 16, &length, 8);
  std::memcpy(framed.data() + 24, &hash, 8);
  framed.insert(framed.end(), payload.begin(), payload.end());
  return framed;
}

using ::thaw::testing::TempDir;

}  // namespace thaw::snapshot::test
