// A Linux template end to end in the pool: the microVM kernel boots,
// thaw-init runs busybox's shell to its first read of stdin, the snapshot
// is taken there, and clones serve invoke("run") under the function
// runtime's contract (stdin in; stdout, stderr and the exit status out; a
// reset to the snapshot between two requests; each clone its own clock and
// random seed). Needs hardware KVM and a kernel (tests/linux_guest_available.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "tests/linux_guest_available.h"
#include "tests/pool/pool_test_support.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using namespace testing;

constexpr char kBusybox[] = "/bin/busybox";  // Debian's busybox-static (deploy/setup.sh)

// One script for every case: the first line of stdin names it.
constexpr char kScript[] = R"(read what
case "$what" in
  echo) /busybox cat ;;
  fail) echo "partial"; echo "oops" >&2; exit 3 ;;
  random) /busybox head -c 16 /dev/urandom | /busybox od -An -tx1 ;;
  clock) /busybox date +%s ;;
  mark) [ -e /tmp/mark ] && echo present || echo absent; /busybox touch /tmp/mark ;;
  crash) kill -SEGV $$ ;;
  poweroff) /busybox poweroff -f ;;
  reboot) /busybox reboot -f ;;
  *) echo "unknown case '$what'" >&2; exit 2 ;;
esac
)";

std::vector<uint8_t> bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

TemplateSpec linux_spec(const std::string& name, std::vector<std::string> args) {
  TemplateSpec spec;
  spec.name = name;
  spec.guest = GuestKind::kLinux;
  spec.kernel = ::thaw::testing::linux_guest_kernel();
  spec.cmdline = ::thaw::testing::linux_guest_extra_cmdline();
  spec.program = kBusybox;
  spec.args = std::move(args);
  spec.mem_mib = 64;
  return spec;
}

class LinuxTemplate : public ::testing::Test {
 protected:
  void SetUp() override {
    THAW_REQUIRE_LINUX_GUEST();
    if (!std::filesystem::is_regular_file(kBusybox)) GTEST_SKIP() << "needs " << kBusybox << " (busybox-static)";
    auto config = test_config(dir_);
    config.linux_init_agent = THAW_LINUX_INIT;
    config.cold_boot_timeout = 240s;  // an emulated CPU under nested-kvm boots Linux in 4-8 s; CI allows 300 s per test
    pool_ = std::make_unique<PoolManager>(config);
  }
  InvokeResult run(uint64_t lease, const std::string& input) {
    return pool_->invoke(lease, kProgramFunction, bytes(input), 120s);
  }
  TempDir dir_;
  std::unique_ptr<PoolManager> pool_;
};

TEST_F(LinuxTemplate, ClonesServeTheProgramContract) {
  auto info = pool_->create_template(linux_spec("lx", {"sh", "-c", kScript}), PoolPolicy{3, 3, 4096});
  EXPECT_GT(info.cold_boot_ms, 0);
  ASSERT_TRUE(warm_at_least(*pool_, "lx", 3, 120s));

  std::vector<LeaseInfo> leases;
  for (int i = 0; i < 3; ++i) leases.push_back(pool_->acquire("lx", 0, 120s));
  std::set<std::string> randoms;
  for (size_t i = 0; i < leases.size(); ++i) {
    std::string payload = "hello from request " + std::to_string(i) + "\n";
    auto echo = run(leases[i].lease_id, "echo\n" + payload);
    EXPECT_EQ(echo.status, 0u) << text(echo.stderr_bytes);
    EXPECT_EQ(text(echo.payload), payload);
    // A reset to the snapshot came between: the clone draws from the RNG
    // the seed of its own identity reseeded.
    auto random = run(leases[i].lease_id, "random\n");
    EXPECT_EQ(random.status, 0u) << text(random.stderr_bytes);
    EXPECT_EQ(random.payload.size(), 49u) << text(random.payload);
    randoms.insert(text(random.payload));
  }
  EXPECT_EQ(randoms.size(), 3u) << "clones of one snapshot drew the same random bytes";

  uint64_t lease = leases[0].lease_id;
  auto fail = run(lease, "fail\n");
  EXPECT_EQ(fail.status, 3u);
  EXPECT_EQ(text(fail.payload), "partial\n");
  EXPECT_EQ(text(fail.stderr_bytes), "oops\n");

  auto crash = run(lease, "crash\n");
  EXPECT_EQ(crash.status, 128u + 11u);
  EXPECT_NE(text(crash.stderr_bytes).find("killed by signal 11"), std::string::npos) << text(crash.stderr_bytes);

  // What a request leaves behind is gone by the next one.
  EXPECT_EQ(text(run(lease, "mark\n").payload), "absent\n");
  EXPECT_EQ(text(run(lease, "mark\n").payload), "absent\n");

  // The guest's wall clock is the host's, set from the identity at hand-out.
  auto clock = run(lease, "clock\n");
  long long guest_s = std::stoll(text(clock.payload));
  long long host_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  EXPECT_LE(std::llabs(host_s - guest_s), 120) << "guest clock " << guest_s << ", host " << host_s;

  // One function, as for the mini guest's programs.
  EXPECT_THROW(pool_->invoke(lease, "echo", bytes("x"), 10s), BadArgument);

  for (auto& l : leases) pool_->release(l.lease_id);
  EXPECT_TRUE(warm_at_least(*pool_, "lx", 3, 120s));
  auto again = pool_->acquire("lx", 0, 120s);
  EXPECT_EQ(text(run(again.lease_id, "echo\nafter release\n").payload), "after release\n");
  pool_->release(again.lease_id);

  // `poweroff -f` and `reboot -f` end their clone at once (no halted guest
  // waiting for the deadline), say why, and the pool carries on.
  for (const std::string request : {"poweroff\n", "reboot\n"}) {
    auto doomed = pool_->acquire("lx", 0, 120s);
    auto started = std::chrono::steady_clock::now();
    try {
      run(doomed.lease_id, request);
      ADD_FAILURE() << "a program that ran '" << request << "' answered";
    } catch (const GuestGone& e) {
      EXPECT_NE(std::string(e.what()).find("guest powered off"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, 60s) << "the clone waited for the deadline";
  }
  auto after = pool_->acquire("lx", 0, 120s);
  EXPECT_EQ(text(run(after.lease_id, "echo\nafter power-off\n").payload), "after power-off\n");
}

// The host's output of `command` (popen), or "" when it cannot run.
std::string host_output(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// A dynamically linked program, Debian's own sha256sum, from a root file
// system that holds only its loader and libraries (at the paths ldd names):
// what the mini guest's runtime cannot run and Linux can.
TEST_F(LinuxTemplate, ADynamicallyLinkedProgramRunsFromItsRootFileSystem) {
  const std::string program = "/usr/bin/sha256sum";
  std::string ldd = host_output("ldd " + program + " 2>/dev/null");
  if (ldd.find("libc.so") == std::string::npos) GTEST_SKIP() << "ldd " << program << " did not name libc";
  const std::string root = dir_ / "rootfs";
  std::istringstream lines(ldd);
  for (std::string line; std::getline(lines, line);) {
    auto at = line.find('/');
    if (at == std::string::npos) continue;  // linux-vdso.so.1: the kernel's
    std::string path = line.substr(at, line.find(' ', at) - at);
    std::filesystem::create_directories(root + std::filesystem::path(path).parent_path().string());
    std::filesystem::copy_file(path, root + path);  // follows symlinks: the file itself
  }
  auto spec = linux_spec("dyn", {"-"});
  spec.program = program;
  spec.files_dir = root;
  pool_->create_template(spec, PoolPolicy{1, 1, 1024});
  auto lease = pool_->acquire("dyn", 0, 120s);
  const std::string input = "a dynamically linked function\n";
  auto r = run(lease.lease_id, input);
  EXPECT_EQ(r.status, 0u) << text(r.stderr_bytes);
  EXPECT_EQ(text(r.payload), host_output("printf 'a dynamically linked function\\n' | " + program + " -"));
}

TEST_F(LinuxTemplate, AProgramThatEndsBeforeReadingStdinIsRefusedWithWhatItSaid) {
  try {
    pool_->create_template(linux_spec("early", {"sh", "-c", "echo 'no input for me' >&2; exit 4"}), PoolPolicy{1, 1, 1024});
    FAIL() << "the template was created";
  } catch (const BadArgument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("exited with status 4 before its first read of stdin"), std::string::npos) << what;
    EXPECT_NE(what.find("no input for me"), std::string::npos) << what;
  }
  EXPECT_TRUE(pool_->list_templates().empty());
}

}  // namespace
}  // namespace thaw::pool
