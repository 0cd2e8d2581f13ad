// check_kvm_host reads files only: each finding is driven here by a scratch
// copy of /dev, /sys/module, /proc/misc, /proc/cpuinfo and the kernel log.
#include "vmm/kvm_host_check.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/temp_dir.h"

namespace thaw::vmm {
namespace {

class KvmHostCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "module");
    paths_.kvm_device = dir_ / "kvm";
    paths_.sys_module_dir = dir_ / "module";
    paths_.proc_misc = dir_ / "misc";
    paths_.cpuinfo = dir_ / "cpuinfo";
    paths_.read_kernel_log = false;
    write("misc", "237 loop-control\n");
    write("cpuinfo", "processor\t: 0\nflags\t\t: fpu vme de pse sse2\n");
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  void load_module(const std::string& name) { std::filesystem::create_directories(dir_ / ("module/" + name)); }
  static bool mentions(const std::vector<std::string>& lines, const std::string& text) {
    return std::any_of(lines.begin(), lines.end(), [&](const auto& l) { return l.find(text) != std::string::npos; });
  }

  testing::TempDir dir_{"thaw-kvm-host-check"};
  HostPaths paths_;
};

TEST_F(KvmHostCheckTest, PvmGuestWithoutDeviceIsExplained) {
  load_module("kvm");
  load_module("kvm_pvm");
  paths_.kernel_log = {"[ 0.5] kvm-pvm: this kernel is itself a kvm-pvm guest; not binding"};
  auto c = check_kvm_host(paths_);
  EXPECT_FALSE(c.device_exists);
  EXPECT_FALSE(c.device_usable);
  EXPECT_TRUE(c.is_pvm_guest);
  EXPECT_EQ(c.modules, (std::vector<std::string>{"kvm", "kvm_pvm"}));
  EXPECT_TRUE(c.cpu_virt_flag.empty());
  auto why = c.explain();
  EXPECT_TRUE(mentions(why, "no /dev/kvm")) << why.front();
  EXPECT_TRUE(mentions(why, "itself a kvm-pvm guest"));
  EXPECT_TRUE(mentions(why, "no vmx or svm"));
  EXPECT_TRUE(mentions(why, "what to do"));
}

TEST_F(KvmHostCheckTest, CpuFlagAndMissingModuleLeadToTheModuleToLoad) {
  write("cpuinfo", "processor\t: 0\nflags\t\t: fpu svm sse2\nprocessor\t: 1\nflags\t\t: fpu\n");
  auto c = check_kvm_host(paths_);
  EXPECT_EQ(c.cpu_virt_flag, "svm");
  EXPECT_TRUE(c.modules.empty());
  auto why = c.explain();
  EXPECT_TRUE(mentions(why, "no kvm module is loaded"));
  EXPECT_TRUE(mentions(why, "load kvm_amd"));
}

TEST_F(KvmHostCheckTest, RegisteredMiscDeviceIsSeen) {
  write("misc", "232 kvm\n237 loop-control\n");
  load_module("kvm_intel");
  auto c = check_kvm_host(paths_);
  EXPECT_TRUE(c.misc_registered);
  EXPECT_FALSE(mentions(c.explain(), "/proc/misc has no kvm"));
}

TEST_F(KvmHostCheckTest, AnOpenableNodeIsUsableAndNeedsNoExplanation) {
  write("kvm", "");  // a regular file stands in for the node: it opens read-write
  auto c = check_kvm_host(paths_);
  EXPECT_TRUE(c.device_exists);
  EXPECT_TRUE(c.device_usable);
  EXPECT_TRUE(c.explain().empty());
}

TEST_F(KvmHostCheckTest, AnUnopenableNodeNamesTheError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root opens a mode-000 file anyway";
  write("kvm", "");
  ::chmod(paths_.kvm_device.c_str(), 0);
  auto c = check_kvm_host(paths_);
  EXPECT_TRUE(c.device_exists);
  EXPECT_FALSE(c.device_usable);
  EXPECT_EQ(c.open_errno, EACCES);
  EXPECT_TRUE(mentions(c.explain(), "cannot be opened"));
}

}  // namespace
}  // namespace thaw::vmm
