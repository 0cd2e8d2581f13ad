// A Linux template's initramfs and the init agent's "run" answer, without
// KVM: what thaw packs (agent as /init, the program at "/" + its basename,
// argv and env, a console node, after the root file system so it wins) and
// how the answer becomes the function runtime's InvokeResult.
#include "pool/linux_initramfs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

#include "base/errors.h"
#include "pool/invoke_protocol.h"
#include "pool/program_clone.h"
#include "tests/temp_dir.h"
#include "vmm/loader/cpio_archive.h"

namespace thaw::pool {
namespace {

using ::thaw::testing::TempDir;
namespace loader = vmm::loader;

std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// The archives Linux reads one after another: each ends at its trailer.
std::vector<std::map<std::string, loader::CpioEntry>> read_archives(const std::vector<uint8_t>& bytes) {
  std::vector<std::map<std::string, loader::CpioEntry>> out;
  static const std::string kTrailer = "TRAILER!!!";
  size_t start = 0;
  while (start < bytes.size()) {
    std::map<std::string, loader::CpioEntry> entries;
    for (auto& e : loader::read_cpio(std::span(bytes).subspan(start))) entries[e.name] = e;
    out.push_back(std::move(entries));
    auto it = std::search(bytes.begin() + static_cast<ptrdiff_t>(start), bytes.end(), kTrailer.begin(), kTrailer.end());
    if (it == bytes.end()) break;
    start = static_cast<size_t>(it - bytes.begin()) + kTrailer.size() + 1;
    start = (start + 3) & ~size_t{3};
  }
  return out;
}

struct Fixture {
  TempDir dir;
  TemplateSpec spec;
  std::string agent;
  Fixture() {
    agent = dir / "thaw-init";
    write(agent, "AGENT");
    write(dir / "busybox", "PROGRAM");
    spec.name = "lx";
    spec.guest = GuestKind::kLinux;
    spec.program = dir / "busybox";
    spec.args = {"sh", "-c", "cat"};
    spec.env = {"A=1", "B=two words"};
  }
};

TEST(LinuxInitramfs, CarriesTheAgentTheProgramItsArgvAndEnvAndAConsole) {
  Fixture f;
  auto archives = read_archives(pack_linux_initramfs(f.spec, f.agent));
  ASSERT_EQ(archives.size(), 1u);  // no root file system given
  auto& e = archives[0];
  ASSERT_TRUE(e.contains("init"));
  EXPECT_EQ(text(e["init"].data), "AGENT");
  EXPECT_EQ(e["init"].mode, static_cast<uint32_t>(S_IFREG | 0755));
  ASSERT_TRUE(e.contains("busybox"));
  EXPECT_EQ(text(e["busybox"].data), "PROGRAM");
  EXPECT_EQ(e["thaw/argv"].data, (std::vector<uint8_t>{'/', 'b', 'u', 's', 'y', 'b', 'o', 'x', 0, 's', 'h', 0, '-',
                                                       'c', 0, 'c', 'a', 't', 0}));
  EXPECT_EQ(text(e["thaw/env"].data), std::string("A=1\0B=two words\0", 16));
  ASSERT_TRUE(e.contains("dev/console"));
  EXPECT_TRUE(S_ISCHR(e["dev/console"].mode));
  EXPECT_EQ(e["dev/console"].rdev_major, 5u);
  EXPECT_EQ(e["dev/console"].rdev_minor, 1u);
  for (const char* d : {"dev", "proc", "sys", "tmp", "run", "thaw"}) {
    ASSERT_TRUE(e.contains(d)) << d;
    EXPECT_TRUE(S_ISDIR(e[d].mode)) << d;
  }
}

TEST(LinuxInitramfs, TheRootFileSystemComesFirstSoThawsFilesWin) {
  Fixture f;
  std::string root = f.dir / "rootfs";
  std::filesystem::create_directories(root + "/lib");
  write(root + "/lib/libc.so.6", "LIBC");
  write(root + "/init", "THE ROOTFS'S OWN INIT");
  f.spec.files_dir = root;
  auto archives = read_archives(pack_linux_initramfs(f.spec, f.agent));
  ASSERT_EQ(archives.size(), 2u);
  EXPECT_EQ(text(archives[0]["lib/libc.so.6"].data), "LIBC");
  EXPECT_EQ(text(archives[0]["init"].data), "THE ROOTFS'S OWN INIT");
  EXPECT_EQ(text(archives[1]["init"].data), "AGENT");  // unpacked later: replaces it
}

// A debootstrap tree carries device nodes in /dev; a FIFO stands in for
// them (mknod of a device needs privilege): left out, never opened.
TEST(LinuxInitramfs, SpecialFilesInTheRootFileSystemAreLeftOut) {
  Fixture f;
  std::string root = f.dir / "rootfs";
  std::filesystem::create_directories(root + "/dev");
  ASSERT_EQ(::mkfifo((root + "/dev/initctl").c_str(), 0600), 0);
  write(root + "/hello", "hi");
  f.spec.files_dir = root;
  auto archives = read_archives(pack_linux_initramfs(f.spec, f.agent));
  ASSERT_EQ(archives.size(), 2u);
  EXPECT_TRUE(archives[0].contains("dev"));
  EXPECT_FALSE(archives[0].contains("dev/initctl"));
  EXPECT_EQ(text(archives[0]["hello"].data), "hi");
}

TEST(LinuxInitramfs, BadInputIsNamed) {
  Fixture f;
  auto message = [&](const TemplateSpec& spec, const std::string& agent) -> std::string {
    try {
      pack_linux_initramfs(spec, agent);
    } catch (const BadArgument& e) {
      return e.what();
    }
    return "(packed)";
  };
  auto spec = f.spec;
  spec.program = f.dir / "missing";
  EXPECT_NE(message(spec, f.agent).find("program '" + spec.program + "': cannot open: No such file"), std::string::npos)
      << message(spec, f.agent);
  EXPECT_NE(message(f.spec, f.dir / "none").find("the Linux init agent"), std::string::npos);
  spec = f.spec;
  spec.files_dir = f.dir / "no-such-dir";
  EXPECT_NE(message(spec, f.agent).find("root file system"), std::string::npos) << message(spec, f.agent);
  EXPECT_THROW(write_linux_initramfs(f.spec, "", f.dir.path()), BadArgument);  // no agent in this build
}

TEST(LinuxInitramfs, TheBootConfigurationAddsThawsWordsBeforeTheUsers) {
  Fixture f;
  f.spec.kernel = "/k/bzImage";
  f.spec.cmdline = "loglevel=7";
  f.spec.mem_mib = 96;
  vmm::VmConfig config;
  configure_linux_boot(config, f.spec, "/t/initramfs.cpio", "/run/v.sock");
  EXPECT_EQ(config.kernel_path, "/k/bzImage");
  EXPECT_EQ(config.initrd_path, "/t/initramfs.cpio");
  EXPECT_EQ(config.cmdline, std::string(kLinuxBaseCmdline) + " loglevel=7");
  EXPECT_EQ(config.vsock_path, "/run/v.sock");
  EXPECT_EQ(config.mem_mib, 96u);
  EXPECT_EQ(config.boot_complete_action, vmm::BootCompleteAction::kPause);
  EXPECT_FALSE(config.program.has_value());
}

// The agent's "run" answer: u32 outcome, u32 status, u32 stdout length, stdout, stderr.
InvokeResult answer(uint32_t outcome, uint32_t status, const std::string& out, const std::string& err,
                    uint32_t agent_status = kInvokeOk) {
  InvokeResult r;
  r.status = agent_status;
  uint32_t header[3] = {outcome, status, static_cast<uint32_t>(out.size())};
  // Sized once and filled: GCC 12's -Warray-bounds misreads inserts here.
  r.payload.assign(sizeof header + out.size() + err.size(), 0);
  std::memcpy(r.payload.data(), header, sizeof header);
  std::copy(out.begin(), out.end(), r.payload.begin() + sizeof header);
  std::copy(err.begin(), err.end(), r.payload.begin() + static_cast<ptrdiff_t>(sizeof header + out.size()));
  r.guest_ms = 1.5;
  return r;
}

TEST(LinuxRunAnswer, BecomesTheFunctionRuntimesResult) {
  auto ok = program_result_from_linux_run(answer(1, 0, "out", "err"));
  EXPECT_EQ(ok.status, 0u);
  EXPECT_EQ(text(ok.payload), "out");
  EXPECT_EQ(text(ok.stderr_bytes), "err");
  EXPECT_DOUBLE_EQ(ok.guest_ms, 1.5);
  EXPECT_EQ(program_result_from_linux_run(answer(1, 7, "", "")).status, 7u);
  auto fault = program_result_from_linux_run(answer(2, 11, "", "boom"));
  EXPECT_EQ(fault.status, 139u);
  EXPECT_EQ(text(fault.stderr_bytes), "boom\nthaw: the program was killed by signal 11\n");
  auto over = program_result_from_linux_run(answer(3, 9, "lots", ""));
  EXPECT_EQ(over.status, 137u);
  EXPECT_NE(text(over.stderr_bytes).find("went over what one response carries"), std::string::npos);
}

TEST(LinuxRunAnswer, NonsenseIsAGoneGuest) {
  EXPECT_THROW(program_result_from_linux_run(answer(1, 0, "", "", kInvokeFailed)), GuestGone);
  EXPECT_THROW(program_result_from_linux_run(answer(9, 0, "", "")), GuestGone);
  EXPECT_THROW(program_result_from_linux_run(answer(1, 256, "", "")), GuestGone);
  EXPECT_THROW(program_result_from_linux_run(answer(2, 0, "", "")), GuestGone);
  EXPECT_THROW(program_result_from_linux_run(answer(1, 0, "", std::string(kMaxInvokeStderrBytes + 1, 'e'))), GuestGone);
  auto lying = answer(1, 0, "abc", "");
  lying.payload[8] = 200;  // stdout length past the end
  EXPECT_THROW(program_result_from_linux_run(lying), GuestGone);
  InvokeResult short_one;
  short_one.payload = {1, 0, 0};
  EXPECT_THROW(program_result_from_linux_run(short_one), GuestGone);
}

}  // namespace
}  // namespace thaw::pool
