// Captures and re-applies the machine state KVM holds, on /dev/kvm, with
// the mini guest paused at its boot-complete write.
#include "vmm/state_capture.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/integration/kvm_test_support.h"
#include "base/errors.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using testing::CapturedConsole;
using KvmSystem = vmm::kvm::KvmSystem;

constexpr uint32_t kMsrIa32Tsc = 0x10;
constexpr size_t kLapicTimerCurrentCount = 0x390;  // TMCCT: counts down while the timer runs

// `vcpus_have_run`: the vCPUs already ran with this CPUID (restore into the
// same VM, as reset in place does). Hardware KVM refuses KVM_SET_CPUID2 once
// a vCPU has run; PVM accepts and ignores it.
void restore_machine(vmm::Vm& vm, const vmm::MachineState& state, bool vcpus_have_run = false) {
  ASSERT_NO_THROW(vm.check_state(state));
  vm.restore_state(state, {.reset_in_place = vcpus_have_run});
}

template <class T>
bool same_bytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Everything that must survive a save/restore/save unchanged; the TSC and
// the LAPIC timer's current count move on with time.
void expect_same_vcpu(const vmm::VcpuState& a, const vmm::VcpuState& b) {
  SCOPED_TRACE("vCPU " + std::to_string(a.vcpu_id));
  EXPECT_EQ(a.vcpu_id, b.vcpu_id);
  EXPECT_EQ(a.cpuid.size(), b.cpuid.size());
  EXPECT_TRUE(a.cpuid.size() == b.cpuid.size() &&
              std::memcmp(a.cpuid.data(), b.cpuid.data(), a.cpuid.size() * sizeof(kvm_cpuid_entry2)) == 0);
  EXPECT_EQ(a.mp_state.mp_state, b.mp_state.mp_state);
  EXPECT_TRUE(same_bytes(a.regs, b.regs)) << "rip " << a.regs.rip << " vs " << b.regs.rip;
  EXPECT_TRUE(same_bytes(a.sregs, b.sregs));
  EXPECT_EQ(a.xsave, b.xsave);
  EXPECT_TRUE(same_bytes(a.xcrs, b.xcrs));
  EXPECT_TRUE(same_bytes(a.debugregs, b.debugregs));
  EXPECT_TRUE(same_bytes(a.events, b.events));
  EXPECT_EQ(a.tsc_khz, b.tsc_khz);
  auto lapic_a = a.lapic, lapic_b = b.lapic;
  std::memset(lapic_a.regs + kLapicTimerCurrentCount, 0, 4);
  std::memset(lapic_b.regs + kLapicTimerCurrentCount, 0, 4);
  EXPECT_TRUE(same_bytes(lapic_a, lapic_b));
  ASSERT_EQ(a.msrs.size(), b.msrs.size());
  for (size_t i = 0; i < a.msrs.size(); ++i) {
    EXPECT_EQ(a.msrs[i].index, b.msrs[i].index);
    // Counters of time, which move on between the two saves: the TSC, and
    // on hardware KVM the Hyper-V VP runtime (0x40000010) and reference
    // time count (0x40000020) that KVM's MSR list names.
    if (a.msrs[i].index == kMsrIa32Tsc || a.msrs[i].index == 0x40000010 || a.msrs[i].index == 0x40000020) {
      EXPECT_GE(b.msrs[i].data, a.msrs[i].data) << "a time counter went backwards: MSR 0x" << std::hex
                                                << a.msrs[i].index;
      continue;
    }
    EXPECT_EQ(a.msrs[i].data, b.msrs[i].data) << "MSR 0x" << std::hex << a.msrs[i].index;
  }
}

void expect_same_vm(const vmm::VmState& a, const vmm::VmState& b) {
  EXPECT_TRUE(same_bytes(a.pic_master, b.pic_master));
  EXPECT_TRUE(same_bytes(a.pic_slave, b.pic_slave));
  EXPECT_TRUE(same_bytes(a.ioapic, b.ioapic));
  for (int i = 0; i < 3; ++i) {
    auto ca = a.pit.channels[i], cb = b.pit.channels[i];
    ca.count_load_time = cb.count_load_time = 0;  // KVM reloads the count on restore
    EXPECT_TRUE(same_bytes(ca, cb)) << "PIT channel " << i;
  }
  EXPECT_EQ(a.pit.flags, b.pit.flags);
  EXPECT_GE(b.clock.clock, a.clock.clock) << "kvmclock went backwards";
}

// A mini guest that pauses at boot complete and exits cleanly when resumed.
vmm::VmConfig pausing_config(CapturedConsole& console, unsigned vcpus) {
  auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096 thaw.exit_after_ready=1", console);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  config.vcpus = vcpus;
  return config;
}

std::unique_ptr<vmm::Vm> boot_to_pause(const vmm::VmConfig& config, const CapturedConsole& console) {
  auto vm = vmm::Vm::create(config);
  vm->start();
  EXPECT_TRUE(vm->wait(60s)) << console.text();
  EXPECT_EQ(vm->state(), vmm::RunState::kPaused) << vm->stop_detail() << "\n" << console.text();
  return vm;
}

class StateCapture : public ::testing::TestWithParam<unsigned> {};

TEST_P(StateCapture, RoundTripInTheSameVmIsLossless) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto vm = boot_to_pause(pausing_config(console, GetParam()), console);
  ASSERT_EQ(vm->state(), vmm::RunState::kPaused);

  auto first = vm->save_state();
  ASSERT_EQ(first.vcpus.size(), GetParam());
  EXPECT_FALSE(first.vcpus[0].msrs.empty());
  EXPECT_FALSE(first.vcpus[0].cpuid.empty());
  restore_machine(*vm, first, /*vcpus_have_run=*/true);
  auto second = vm->save_state();
  for (size_t i = 0; i < first.vcpus.size(); ++i) expect_same_vcpu(first.vcpus[i], second.vcpus[i]);
  expect_same_vm(first.vm, second.vm);
  EXPECT_EQ(first.devices, second.devices);

  // The restored VM still runs: on to the clean exit after "ready".
  vm->resume();
  ASSERT_TRUE(vm->wait(30s)) << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestExit) << vm->stop_detail();
}

TEST_P(StateCapture, FreshVmRestoredFromStateContinuesAfterBootComplete) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = pausing_config(console, GetParam());
  auto source = boot_to_pause(config, console);
  ASSERT_EQ(source->state(), vmm::RunState::kPaused);
  ASSERT_TRUE(console.contains("thaw-mini: ready")) << console.text();
  auto saved = source->save_state();

  // A second VM of the same shape: it loads the kernel fresh, then gets the
  // first one's memory and state before its vCPUs ever run.
  CapturedConsole clone_console;
  auto clone_config = config;
  clone_config.console = clone_console.sink();
  auto clone = vmm::Vm::create(clone_config);
  ASSERT_EQ(clone->memory().size(), source->memory().size());
  std::memcpy(clone->memory().host_base(), source->memory().host_base(), source->memory().size());
  restore_machine(*clone, saved);
  source->stop();

  clone->start();
  ASSERT_TRUE(clone->wait(30s)) << clone_console.text();
  EXPECT_EQ(clone->stop_reason(), vmm::StopReason::kGuestExit) << clone->stop_detail() << "\n" << clone_console.text();
  EXPECT_FALSE(clone->boot_complete_after().has_value()) << "the clone must not boot again";
  EXPECT_FALSE(clone_console.contains("thaw-mini: booting")) << clone_console.text();
}

INSTANTIATE_TEST_SUITE_P(Vcpus, StateCapture, ::testing::Values(1u, 2u),
                         [](const auto& param_info) { return std::to_string(param_info.param) + "vcpu"; });

TEST(StateCaptureTsc, MismatchedRateIsRefusedBeforeAnyChangeUnlessAllowed) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto vm = vmm::Vm::create(pausing_config(console, 1));
  auto kvm = KvmSystem::open();
  auto& fd = vm->vcpus()[0]->fd();
  auto state = vmm::save_vcpu_state(fd, kvm.msr_index_list(), vmm::xsave_size(vm->vm_fd()));
  ASSERT_GT(state.tsc_khz, 0u);
  auto before = fd.get_regs();
  state.tsc_khz /= 2;
  state.regs.rip += 0x1000;  // would show if restore got past the TSC check

  vmm::VcpuRestoreOptions no_scaling;  // as on a host without KVM_CAP_TSC_CONTROL
  try {
    vmm::restore_vcpu_state(fd, state, no_scaling);
    FAIL() << "a TSC rate of half the host's must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("tsc rate mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("vCPU 0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fd.get_regs().rip, before.rip) << "a refused restore must change nothing";

  vmm::VcpuRestoreOptions allowed;
  allowed.allow_tsc_mismatch = true;
  vmm::restore_vcpu_state(fd, state, allowed);
  EXPECT_EQ(fd.get_regs().rip, state.regs.rip);
}

TEST(StateCaptureWrappers, ReadBackWhatWasSet) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto vm = vmm::Vm::create(pausing_config(console, 1));
  auto& fd = vm->vcpus()[0]->fd();
  auto cpuid = fd.get_cpuid2();
  EXPECT_FALSE(cpuid.empty()) << "Vm::create gave the vCPU a CPUID table";
  size_t xsave = vmm::xsave_size(vm->vm_fd());
  ASSERT_GE(xsave, 4096u) << "every x86-64 host KVM runs on has XSAVE";
  auto area = xsave > 4096 ? fd.get_xsave2(xsave) : fd.get_xsave();
  EXPECT_EQ(area.size(), xsave);
  EXPECT_EQ(fd.get_xsave2(xsave), area);
  fd.set_xsave(area);
  auto xcrs = fd.get_xcrs();
  EXPECT_GE(xcrs.nr_xcrs, 1u);
  EXPECT_EQ(xcrs.xcrs[0].value & 1, 1u) << "XCR0 always has x87";
  fd.set_xcrs(xcrs);
  auto dbg = fd.get_debugregs();
  dbg.db[0] = 0x1234000;
  fd.set_debugregs(dbg);
  EXPECT_EQ(fd.get_debugregs().db[0], 0x1234000u);
  uint32_t khz = fd.get_tsc_khz();
  EXPECT_GT(khz, 100'000u);
  fd.set_tsc_khz(khz);
  // No kvmclock in a guest that never ran: KVM says EINVAL, with the name.
  try {
    fd.kvmclock_ctrl();
    ADD_FAILURE() << "KVM_KVMCLOCK_CTRL without an enabled kvmclock";
  } catch (const SysError& e) {
    EXPECT_EQ(e.error_number(), EINVAL);
    EXPECT_NE(std::string(e.what()).find("KVM_KVMCLOCK_CTRL (vCPU 0)"), std::string::npos) << e.what();
  }
}

TEST(StateCaptureWrappers, KvmclockCtrlOnceTheGuestEnabledKvmclock) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto vm = vmm::Vm::create(pausing_config(console, 1));
  auto kvm = KvmSystem::open();
  auto& fd = vm->vcpus()[0]->fd();
  // What a guest's kvmclock driver does: MSR_KVM_SYSTEM_TIME_NEW = GPA | enable.
  constexpr uint32_t kMsrKvmSystemTimeNew = 0x4b564d01;
  fd.set_msrs({{kMsrKvmSystemTimeNew, 0, 0x200000 | 1}});
  fd.kvmclock_ctrl();
  // And restore, which calls it, saves and applies the MSR with the rest.
  auto state = vmm::save_vcpu_state(fd, kvm.msr_index_list(), vmm::xsave_size(vm->vm_fd()));
  vmm::restore_vcpu_state(fd, state);
  auto again = fd.get_msrs({kMsrKvmSystemTimeNew});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].data, 0x200001u);
}

}  // namespace
}  // namespace thaw
