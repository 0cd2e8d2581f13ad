#include "snapshot/state_codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "snapshot/host_fingerprint.h"
#include "snapshot_test_support.h"

namespace thaw::snapshot {
namespace {

using test::make_full_state;
using test::same_bytes;

void expect_same_vcpu(const vmm::VcpuState& a, const vmm::VcpuState& b) {
  SCOPED_TRACE("vCPU " + std::to_string(a.vcpu_id));
  EXPECT_EQ(a.vcpu_id, b.vcpu_id);
  ASSERT_EQ(a.cpuid.size(), b.cpuid.size());
  for (size_t i = 0; i < a.cpuid.size(); ++i) {
    EXPECT_EQ(a.cpuid[i].function, b.cpuid[i].function);
    EXPECT_EQ(a.cpuid[i].index, b.cpuid[i].index);
    EXPECT_EQ(a.cpuid[i].flags, b.cpuid[i].flags);
    EXPECT_EQ(a.cpuid[i].eax, b.cpuid[i].eax);
    EXPECT_EQ(a.cpuid[i].ebx, b.cpuid[i].ebx);
    EXPECT_EQ(a.cpuid[i].ecx, b.cpuid[i].ecx);
    EXPECT_EQ(a.cpuid[i].edx, b.cpuid[i].edx);
  }
  EXPECT_EQ(a.mp_state.mp_state, b.mp_state.mp_state);
  EXPECT_TRUE(same_bytes(a.regs, b.regs));
  EXPECT_TRUE(same_bytes(a.sregs, b.sregs));
  EXPECT_EQ(a.xsave, b.xsave);
  EXPECT_TRUE(same_bytes(a.fpu, b.fpu));
  EXPECT_TRUE(same_bytes(a.xcrs, b.xcrs));
  EXPECT_TRUE(same_bytes(a.debugregs, b.debugregs));
  EXPECT_TRUE(same_bytes(a.lapic, b.lapic));
  ASSERT_EQ(a.msrs.size(), b.msrs.size());
  for (size_t i = 0; i < a.msrs.size(); ++i) {
    EXPECT_EQ(a.msrs[i].index, b.msrs[i].index);
    EXPECT_EQ(a.msrs[i].data, b.msrs[i].data);
  }
  EXPECT_TRUE(same_bytes(a.events, b.events));
  EXPECT_EQ(a.tsc_khz, b.tsc_khz);
}

TEST(StateCodec, RoundTripKeepsEveryField) {
  SnapshotState in = make_full_state(5ull << 30, 3);  // above 4 GiB: two regions
  ASSERT_EQ(in.memory.regions.size(), 2u);
  SnapshotState out = decode_state(encode_state(in));

  EXPECT_EQ(out.host, in.host);
  EXPECT_EQ(out.memory, in.memory);
  ASSERT_EQ(out.machine.vcpus.size(), in.machine.vcpus.size());
  for (size_t i = 0; i < in.machine.vcpus.size(); ++i) expect_same_vcpu(in.machine.vcpus[i], out.machine.vcpus[i]);
  EXPECT_TRUE(same_bytes(out.machine.vm.pic_master, in.machine.vm.pic_master));
  EXPECT_TRUE(same_bytes(out.machine.vm.pic_slave, in.machine.vm.pic_slave));
  EXPECT_TRUE(same_bytes(out.machine.vm.ioapic, in.machine.vm.ioapic));
  EXPECT_TRUE(same_bytes(out.machine.vm.pit, in.machine.vm.pit));
  EXPECT_TRUE(same_bytes(out.machine.vm.clock, in.machine.vm.clock));
  EXPECT_EQ(out.machine.devices, in.machine.devices);
  EXPECT_EQ(out.machine.devices.serial.rx_fifo, in.machine.devices.serial.rx_fifo);
  EXPECT_EQ(out.boot_complete_after_ns, in.boot_complete_after_ns);
}

TEST(StateCodec, RoundTripWithoutXsaveKeepsFpu) {
  SnapshotState in = make_full_state();
  in.machine.vcpus[0].xsave.clear();
  SnapshotState out = decode_state(encode_state(in));
  EXPECT_TRUE(out.machine.vcpus[0].xsave.empty());
  EXPECT_TRUE(same_bytes(out.machine.vcpus[0].fpu, in.machine.vcpus[0].fpu));
}

TEST(StateCodec, FileStartsWithTheDocumentedHeader) {
  auto file = encode_state(make_full_state());
  ASSERT_GT(file.size(), kStateHeaderBytes);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(file.data()), 8), "THAWSNAP");
  uint16_t major = 0, minor = 0;
  uint32_t header = 0;
  uint64_t length = 0;
  std::memcpy(&major, file.data() + 8, 2);
  std::memcpy(&minor, file.data() + 10, 2);
  std::memcpy(&header, file.data() + 12, 4);
  std::memcpy(&length, file.data() + 16, 8);
  EXPECT_EQ(major, kFormatMajor);
  EXPECT_EQ(minor, kFormatMinor);
  EXPECT_EQ(header, kStateHeaderBytes);
  EXPECT_EQ(length, file.size() - kStateHeaderBytes);
}

TEST(StateCodec, AVmWithoutAPitRoundTripsWithNoPitBytes) {
  auto without = make_full_state();
  without.machine.vm.has_pit = false;
  auto out = decode_state(encode_state(without));
  EXPECT_FALSE(out.machine.vm.has_pit);
  EXPECT_TRUE(decode_state(encode_state(make_full_state())).machine.vm.has_pit);
  EXPECT_EQ(encode_state(out), encode_state(without));
  EXPECT_LT(encode_state(without).size(), encode_state(make_full_state()).size());
}

TEST(StateCodec, EncodingIsDeterministic) {
  EXPECT_EQ(encode_state(make_full_state()), encode_state(make_full_state()));
}

TEST(HostFingerprint, SameHostIsCompatible) {
  HostFingerprint here{"Intel(R) Xeon(R)", "kvm_intel", "0.1.0"};
  EXPECT_EQ(check_host_compatible(here, here), "");
  HostFingerprint newer = here;
  newer.thaw_version = "0.2.0";  // the format version, not this, decides readability
  EXPECT_EQ(check_host_compatible(here, newer), "");
}

TEST(HostFingerprint, MismatchNamesWhatDiffers) {
  HostFingerprint saved{"Intel(R) Xeon(R)", "kvm_intel", "0.1.0"};
  HostFingerprint cpu = saved;
  cpu.cpu_model = "AMD EPYC";
  EXPECT_NE(check_host_compatible(saved, cpu).find("AMD EPYC"), std::string::npos);
  HostFingerprint backend = saved;
  backend.kvm_backend = "kvm_pvm";
  auto why = check_host_compatible(saved, backend);
  EXPECT_NE(why.find("kvm_pvm"), std::string::npos) << why;
  EXPECT_EQ(why.find("CPU"), std::string::npos) << why;
}

TEST(HostFingerprint, CurrentHostReadsCpuModel) {
  auto here = current_host_fingerprint("kvm_intel");
  EXPECT_FALSE(here.cpu_model.empty()) << "no \"model name\" in /proc/cpuinfo";
  EXPECT_EQ(here.kvm_backend, "kvm_intel");
  EXPECT_EQ(here.thaw_version, THAW_VERSION);
}

}  // namespace
}  // namespace thaw::snapshot
