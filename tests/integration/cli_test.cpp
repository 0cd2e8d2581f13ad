// Runs the real `thaw` binary: exit codes, messages, and that bad input
// leaves nothing behind.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/process_namespaces.h"

#include "tests/integration/kvm_test_support.h"
#include "tests/integration/thaw_cli_runner.h"
#include "tests/temp_dir.h"

namespace thaw {
namespace {

using testing::CommandResult;
using testing::run_thaw_line;

class ThawCli : public ::testing::Test {
 protected:
  std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
    auto path = dir_ / name;
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
    return path.string();
  }
  std::vector<uint8_t> mini_prefix(size_t bytes) {
    std::ifstream in(THAW_MINI_GUEST, std::ios::binary);
    std::vector<uint8_t> data(bytes);
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(bytes));
    return data;
  }
  testing::TempDir scratch_{"thaw-cli-test"};
  std::filesystem::path dir_ = scratch_.path();
};

TEST_F(ThawCli, HelpExplainsTheCommands) {
  auto r = run_thaw_line("--help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("boot"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("doctor"), std::string::npos) << r.output;
  auto b = run_thaw_line("boot --help");
  EXPECT_EQ(b.exit_code, 0);
  EXPECT_NE(b.output.find("--kernel"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("Exit status"), std::string::npos) << b.output;
}

TEST_F(ThawCli, MissingKernelFileIsBadInputAndLeavesNoConsoleFile) {
  auto console = (dir_ / "console.log").string();
  auto r = run_thaw_line("boot --kernel " + (dir_ / "no-such-kernel").string() + " --console " + console);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no-such-kernel"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(console)) << "a failed boot must not leave a console file";
}

TEST_F(ThawCli, MissingKernelIsNamedBeforeKvmIsOpened) {
  // The user's mistake wins over the host's: on a machine without /dev/kvm
  // a wrong path must still be reported as bad input (exit 2), not as a
  // missing /dev/kvm (exit 3).
  auto r = run_thaw_line("boot --kernel " + (dir_ / "absent.elf").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output.find("/dev/kvm"), std::string::npos) << r.output;
  auto initrd = run_thaw_line(std::string("boot --kernel ") + THAW_MINI_GUEST + " --initrd " +
                              (dir_ / "absent.cpio").string());
  EXPECT_EQ(initrd.exit_code, 2) << initrd.output;
  EXPECT_NE(initrd.output.find("absent.cpio"), std::string::npos) << initrd.output;
}

TEST_F(ThawCli, FifoAsKernelIsRefusedWithoutWaitingForAWriter) {
  auto fifo = dir_ / "kernel.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without O_NONBLOCK the open would block forever; the runner's timeout
  // turns that into a failure instead of a hung suite.
  auto r = testing::run_shell("timeout 20 " + std::string(THAW_CLI) + " boot --kernel " + fifo.string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("not a regular file"), std::string::npos) << r.output;
}

TEST_F(ThawCli, ImagesThatAreNeitherElfNorBzImageAreRejected) {
  std::vector<uint8_t> noise(8192);
  std::mt19937 rng(42);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  auto r = run_thaw_line("boot --kernel " + write_file("noise.bin", noise));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("noise.bin"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bzImage"), std::string::npos) << r.output;

  auto empty = run_thaw_line("boot --kernel " + write_file("empty.bin", {}));
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  EXPECT_NE(empty.output.find("empty"), std::string::npos) << empty.output;

  // A truncated ELF header is found by the loader, which runs once the VM exists.
  if (!testing::kvm_unavailable_reason().empty()) return;
  auto truncated = run_thaw_line("boot --kernel " + write_file("truncated.elf", mini_prefix(40)));
  EXPECT_EQ(truncated.exit_code, 2) << truncated.output;
  EXPECT_NE(truncated.output.find("truncated.elf"), std::string::npos) << truncated.output;
}

TEST_F(ThawCli, BadSizesAndCountsAreRejected) {
  std::string kernel = std::string(" --kernel ") + THAW_MINI_GUEST;
  auto mem0 = run_thaw_line("boot --mem 0" + kernel);
  EXPECT_EQ(mem0.exit_code, 2) << mem0.output;
  EXPECT_NE(mem0.output.find("--mem"), std::string::npos) << mem0.output;
  auto huge = run_thaw_line("boot --mem 99999999" + kernel);
  EXPECT_EQ(huge.exit_code, 2) << huge.output;
  EXPECT_NE(huge.output.find("host"), std::string::npos) << huge.output;
  auto vcpus0 = run_thaw_line("boot --vcpus 0" + kernel);
  EXPECT_EQ(vcpus0.exit_code, 2) << vcpus0.output;
  EXPECT_NE(vcpus0.output.find("--vcpus"), std::string::npos) << vcpus0.output;
  auto not_a_number = run_thaw_line("boot --mem lots" + kernel);
  EXPECT_EQ(not_a_number.exit_code, 2) << not_a_number.output;
}

TEST_F(ThawCli, LimitsThatNeedKvmAreRejected) {
  THAW_REQUIRE_KVM();
  std::string kernel = std::string(" --kernel ") + THAW_MINI_GUEST;
  auto many = run_thaw_line("boot --vcpus 100000" + kernel);
  EXPECT_EQ(many.exit_code, 2) << many.output;
  EXPECT_NE(many.output.find("limit"), std::string::npos) << many.output;
  auto long_cmdline = run_thaw_line("boot --cmdline " + std::string(5000, 'x') + kernel);
  EXPECT_EQ(long_cmdline.exit_code, 2) << long_cmdline.output;
  EXPECT_NE(long_cmdline.output.find("command line"), std::string::npos) << long_cmdline.output;
}

TEST_F(ThawCli, BootPrintsJsonTimings) {
  THAW_REQUIRE_KVM();
  auto r = run_thaw_line(std::string("boot --json --console none --cmdline 'thaw.fn_bytes=4096' --kernel ") + THAW_MINI_GUEST);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(json["boot_complete"], true);
  EXPECT_EQ(json["format"], "ELF64");
  EXPECT_GT(json["ms"]["total"].get<double>(), 0.0);
  EXPECT_GE(json["ms"]["total"].get<double>(), json["ms"]["guest_run"].get<double>());
}

TEST_F(ThawCli, GuestFailureExitsWithOne) {
  THAW_REQUIRE_KVM();
  auto console = (dir_ / "console.log").string();
  auto r = run_thaw_line(std::string("boot --cmdline 'console=ttyS0 thaw.fault=ud' --console ") + console +
                    " --kernel " + THAW_MINI_GUEST);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("guest failure"), std::string::npos) << r.output;
  std::ifstream in(console);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("EXCEPTION #UD"), std::string::npos) << text;
}

TEST_F(ThawCli, DoctorNamesTheBackend) {
  THAW_REQUIRE_KVM();
  auto r = run_thaw_line("doctor");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("KVM backend:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("IRQCHIP"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("every vCPU thread runs under filter 'vcpu'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("every vsock muxer thread under filter 'vsock'"), std::string::npos) << r.output;
  // What confines a template worker on this host, whichever way it is.
  EXPECT_NE(r.output.find(user_namespace_refusal().empty() ? "Namespaces:       each template worker enters its own user"
                                                            : "Namespaces:       user namespaces refused"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Cgroup v2:        "), std::string::npos) << r.output;
}

TEST_F(ThawCli, DoctorWithoutKvmSaysWhyAndExitsThree) {
  if (testing::kvm_unavailable_reason().empty()) GTEST_SKIP() << "this host has a usable /dev/kvm";
  auto r = run_thaw_line("doctor");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("not usable"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("what to do"), std::string::npos) << r.output;
  auto j = run_thaw_line("doctor --json");
  EXPECT_EQ(j.exit_code, 3) << j.output;
  auto parsed = nlohmann::json::parse(j.output, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(parsed.is_discarded()) << j.output;
  EXPECT_EQ(parsed["ok"], false);
  EXPECT_FALSE(parsed["reasons"].empty());
}

}  // namespace
}  // namespace thaw
