// A Linux template through the real thawd and the real `thaw` CLI: one
// [[pool]] with guest = "linux" loads at start-up, one is made with
// `thaw template create --guest linux`, and both answer `thaw invoke NAME
// run` as the host's busybox does on the same input. Needs hardware KVM
// and a kernel (tests/linux_guest_available.h); skips with the reason
// elsewhere.
#include <nlohmann/json.hpp>

#include "tests/linux_guest_available.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

constexpr const char* kBusybox = "/bin/busybox";

std::string host_sha256(const std::string& input, const std::filesystem::path& dir) {
  auto file = dir / "host-input";
  std::ofstream(file, std::ios::binary) << input;
  return run_shell(std::string(kBusybox) + " sha256sum < " + file.string()).output;
}

TEST(LinuxTemplateE2E, APoolFromTomlAndOneFromTheCliAnswerLikeTheHostsBusybox) {
  THAW_REQUIRE_LINUX_GUEST();
  if (!std::filesystem::is_regular_file(kBusybox)) GTEST_SKIP() << "needs " << kBusybox << " (busybox-static)";
  TempDir scratch("thaw-linux-e2e");
  const std::filesystem::path dir = scratch.path();
  // thawd reads images only from its allowed_image_dirs: the test's own
  // directory is one of them.
  const std::string kernel = (dir / "bzImage").string();
  std::filesystem::copy_file(linux_guest_kernel(), kernel);

  daemon::PoolConfig pool;
  pool.spec.name = "lx-toml";
  pool.spec.guest = pool::GuestKind::kLinux;
  pool.spec.kernel = kernel;
  pool.spec.mem_mib = 64;
  pool.spec.program = kBusybox;
  pool.spec.args = {"sha256sum"};
  pool.policy = pool::PoolPolicy{1, 2, 1024};
  ThawdProcess daemon(dir);
  daemon.write_config(daemon.config_text({pool}));
  // Start-up cold-boots the pool's Linux: tens of seconds on an emulated CPU.
  ASSERT_TRUE(daemon.start(std::chrono::seconds(240))) << daemon.log();
  const std::string sock = " --socket " + daemon.socket();

  auto created = run_thaw("template create lx-cli --guest linux --kernel " + kernel + " --program " + kBusybox +
                              " --arg sha256sum --mem-mib 64 --min-warm 1 --max-warm 2 --memory-budget-mib 1024"
                              " --json" + sock,
                          dir);
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err << daemon.log();
  auto info = nlohmann::json::parse(created.out);
  EXPECT_EQ(info["program"], kBusybox) << created.out;
  EXPECT_GT(info["cold_boot_ms"].get<double>(), 0.0);

  const std::string input = "hello from a Linux template\n";
  auto payload = dir / "payload";
  std::ofstream(payload, std::ios::binary) << input;
  const std::string expected = host_sha256(input, dir);
  ASSERT_FALSE(expected.empty());
  for (const char* name : {"lx-toml", "lx-cli", "lx-cli"}) {
    auto r = run_thaw(std::string("invoke ") + name + " run --payload-file " + payload.string() +
                          " --timeout-ms 60000 --invoke-timeout-ms 60000 --json" + sock,
                      dir);
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err << daemon.log();
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["status"], 0) << j.dump();
    EXPECT_EQ(j["payload_text"], expected) << j.dump();
    EXPECT_EQ(j["stderr_text"], "") << j.dump();
  }
  auto list = run_thaw("templates --json" + sock, dir);
  EXPECT_NE(list.out.find("\"linux\""), std::string::npos) << list.out;
}

// Flags are checked before any RPC: no daemon, no KVM needed.
TEST(LinuxTemplateCli, MissingPiecesAreNamedBeforeAnyRpc) {
  TempDir scratch("thaw-linux-cli");
  const std::filesystem::path dir = scratch.path();
  const std::string sock = " --socket " + (dir / "none.sock").string();
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = run_thaw("template create lx " + args + sock, dir);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
  };
  expect_error("--guest linux --kernel /bin/busybox", "--guest linux needs --program");
  expect_error("--guest linux --program /bin/busybox", "--guest linux needs --kernel");
  expect_error("--guest linux --kernel /bin/busybox --program /bin/busybox --initrd /bin/busybox", "no --initrd");
  expect_error("--guest linux --kernel /bin/busybox --program /bin/busybox --files /tmp", "--rootfs");
  expect_error("--guest bsd --kernel /bin/busybox", "must be mini or linux");
  expect_error("--kernel /bin/busybox --rootfs /tmp", "--rootfs needs --guest linux");
  expect_error("--guest linux --kernel /bin/busybox --program /no/such/program", "/no/such/program");
}

}  // namespace
}  // namespace thaw::testing
