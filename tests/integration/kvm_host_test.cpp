// vmm::KvmHost: /dev/kvm opened once for many VMs, with its answers read
// once. They must be what the device itself answers, every VM made from it
// must be a VM of its own, and a device that cannot be opened is an error
// naming it (that one runs without KVM too).
#include "vmm/kvm_host.h"

#include <gtest/gtest.h>

#include <string>

#include "base/errors.h"
#include "vmm/state_capture.h"
#include "tests/kvm_available.h"

namespace thaw::vmm {
namespace {

TEST(KvmHost, AnswersAsTheDeviceDoes) {
  THAW_REQUIRE_KVM();
  auto host = KvmHost::open("/dev/kvm");
  EXPECT_EQ(host->path(), "/dev/kvm");
  EXPECT_EQ(host->backend(), kvm::detect_backend());
  EXPECT_EQ(host->max_vcpus(), host->system().max_vcpus());
  EXPECT_EQ(host->msr_indices(), host->system().msr_index_list());
  EXPECT_FALSE(host->msr_indices().empty());
}

TEST(KvmHost, EachVmItMakesIsItsOwn) {
  THAW_REQUIRE_KVM();
  auto host = KvmHost::open();
  auto first = host->create_vm();
  auto second = host->create_vm();
  EXPECT_GE(first.fd(), 0);
  EXPECT_GE(second.fd(), 0);
  EXPECT_NE(first.fd(), second.fd());
  // Each takes a vCPU 0 of its own (KVM refuses a second vCPU 0 in one VM),
  // with a kvm_run mapping of the size the host read once.
  auto vcpu_a = first.create_vcpu(0);
  auto vcpu_b = second.create_vcpu(0);
  EXPECT_NE(vcpu_a.run_struct(), nullptr);
  EXPECT_NE(vcpu_a.run_struct(), vcpu_b.run_struct());
  EXPECT_THROW(first.create_vcpu(0), SysError);
}

// Asked of the first VM, remembered for the rest: what every later VM
// would have answered itself.
TEST(KvmHost, VmCapabilitiesAreWhatEachVmAnswers) {
  THAW_REQUIRE_KVM();
  auto host = KvmHost::open();
  auto first = host->create_vm();
  const auto& remembered = host->vm_capabilities(first);
  for (int i = 0; i < 3; ++i) {
    auto vm = host->create_vm();
    EXPECT_EQ(host->vm_capabilities(vm).xsave_size, xsave_size(vm));
    EXPECT_EQ(host->vm_capabilities(vm).tsc_scaling, has_tsc_scaling(vm));
    EXPECT_EQ(&host->vm_capabilities(vm), &remembered);
  }
  // The x86-64 hosts thaw runs on have XSAVE; its area is at least the legacy 4 KiB.
  EXPECT_GE(remembered.xsave_size, 4096u);
}

TEST(KvmHost, AMissingDeviceIsASysErrorNamingIt) {
  try {
    KvmHost::open("/nonexistent/kvm");
    FAIL() << "opened a device that does not exist";
  } catch (const SysError& e) {
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/kvm"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thaw::vmm
