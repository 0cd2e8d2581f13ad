// Program templates end to end: the real thawd, the real `thaw` CLI and a
// real static program (Debian's busybox-static at /bin/busybox). A template
// made with `thaw template create --program` answers `thaw invoke NAME run`
// as the host's own busybox does on the same input; a lease serves several
// requests, each from the ready point; a [[pool]] with a program loads; a
// dynamically linked program is refused before any VM exists.
#include <elf.h>

#include <nlohmann/json.hpp>

#include "rpc/convert.h"
#include "rpc/pool_client.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

constexpr const char* kBusybox = "/bin/busybox";

// Why /bin/busybox cannot serve as the test program ("" when it can): it
// must be there and static (no PT_INTERP), as Debian's busybox-static is.
std::string busybox_unusable() {
  std::ifstream in(kBusybox, std::ios::binary);
  if (!in) return std::string(kBusybox) + " is missing (apt-get install busybox-static)";
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64) {
    return std::string(kBusybox) + " is not an ELF64 file";
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    in.seekg(static_cast<std::streamoff>(eh.e_phoff + i * sizeof ph));
    if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) return std::string(kBusybox) + ": short program headers";
    if (ph.p_type == PT_INTERP) {
      return std::string(kBusybox) + " is dynamically linked (install busybox-static for a static one)";
    }
  }
  return {};
}

#define REQUIRE_STATIC_BUSYBOX()                               \
  do {                                                         \
    if (auto why = busybox_unusable(); !why.empty()) GTEST_SKIP() << why; \
  } while (0)

// What the host's busybox prints for `applet` on `input`.
std::string host_busybox(const std::string& applet, const std::string& input, const std::filesystem::path& dir) {
  auto file = dir / "host-input";
  std::ofstream(file, std::ios::binary) << input;
  return run_shell(std::string(kBusybox) + " " + applet + " < " + file.string()).output;
}

// A [[pool]] running busybox sha256sum, as thawd's config has it.
daemon::PoolConfig busybox_pool(const std::string& name) {
  daemon::PoolConfig pool;
  pool.spec.name = name;
  pool.spec.kernel = THAW_MINI_GUEST;
  pool.spec.cmdline = "console=ttyS0 thaw.quiet=1";
  pool.spec.mem_mib = 64;
  pool.spec.program = kBusybox;
  pool.spec.args = {"sha256sum"};
  pool.spec.env = {"THAW_TEST=1"};
  pool.policy = pool::PoolPolicy{1, 2, 1024};
  return pool;
}

// No VM needed: the CLI reads the ELF before any RPC, and thawd reads it
// before it opens /dev/kvm, so both refuse on any host.
TEST(ProgramTemplateInput, ADynamicProgramIsRefusedByTheCliAndByThawd) {
  TempDir scratch("thaw-prog-input");
  const std::filesystem::path dir = scratch.path();
  const std::string no_sock = (dir / "no.sock").string();
  std::string dynamic = "/bin/true";
  ASSERT_TRUE(std::filesystem::exists(dynamic));
  auto cli = run_thaw("template create dyn --program " + dynamic + " --socket " + no_sock, dir);
  EXPECT_EQ(cli.exit_code, 2) << cli.out << cli.err;
  EXPECT_NE(cli.err.find("statically"), std::string::npos) << cli.err;
  auto args = run_thaw("template create dyn --kernel " + std::string(THAW_MINI_GUEST) + " --arg x --socket " + no_sock,
                       dir);
  EXPECT_EQ(args.exit_code, 2) << args.err;
  EXPECT_NE(args.err.find("need --program"), std::string::npos) << args.err;

  ThawdProcess daemon(dir);
  daemon.write_config(daemon.config_text({}));
  ASSERT_TRUE(daemon.start()) << daemon.log();
  rpc::PoolConnection conn(daemon.socket());
  pool::TemplateSpec spec = busybox_pool("dyn").spec;
  spec.program = dynamic;
  expect_failed("createTemplate of a dynamic program", "statically", [&] {
    auto req = conn.pool().createTemplateRequest();
    rpc::to_schema(spec, req.initSpec());
    rpc::to_schema(pool::PoolPolicy{0, 1, 256}, req.initPolicy());
    req.send().wait(conn.wait_scope());
  });
  spec.program = "relative/busybox";
  expect_failed("createTemplate of a relative program path", "spec.program", [&] {
    auto req = conn.pool().createTemplateRequest();
    rpc::to_schema(spec, req.initSpec());
    rpc::to_schema(pool::PoolPolicy{0, 1, 256}, req.initPolicy());
    req.send().wait(conn.wait_scope());
  });
}

class ProgramTemplate : public SharedThawdTest<ProgramTemplate> {
 public:
  static constexpr const char* kDirTag = "prog-tmpl";
  // The daemon starts with a program [[pool]] where busybox can serve; else
  // with none (every test then skips on busybox first).
  static std::string daemon_config(const ThawdProcess& daemon) {
    if (!busybox_unusable().empty()) return daemon.config_text({});
    return daemon.config_text({busybox_pool("bb-toml")});
  }

 protected:
  void SetUp() override {
    REQUIRE_STATIC_BUSYBOX();
    SharedThawdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    sock_ = " --socket " + daemon_->socket();
  }

  nlohmann::json invoke_json(const std::string& name, const std::string& payload_file) {
    auto r = run_thaw("invoke " + name + " run --payload-file " + payload_file + " --timeout-ms 30000 --invoke-timeout-ms 30000 --json" + sock_,
                      dir_);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << daemon_->log();
    if (r.exit_code != 0) return nullptr;
    return nlohmann::json::parse(r.out);
  }

  std::string sock_;
};

TEST_F(ProgramTemplate, CreateFromTheCliAndInvokeMatchesTheHostsBusybox) {
  auto c = run_thaw("template create bb-cli --program " + std::string(kBusybox) +
                        " --arg sha256sum --env GREETING=hi --mem-mib 64 --min-warm 1 --max-warm 2"
                        " --memory-budget-mib 1024 --json" + sock_,
                    dir_);
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err << daemon_->log();
  auto created = nlohmann::json::parse(c.out);
  EXPECT_EQ(created["program"], kBusybox);
  EXPECT_EQ(created["args"], nlohmann::json::array({"sha256sum"}));
  EXPECT_EQ(created["env"], nlohmann::json::array({"GREETING=hi"}));
  EXPECT_EQ(created["cmdline"].get<std::string>().find("thaw.after="), std::string::npos) << c.out;
  EXPECT_GT(created["cold_boot_ms"].get<double>(), 0.0);
  auto list = run_thaw("templates" + sock_, dir_);
  EXPECT_NE(list.out.find("program /bin/busybox sha256sum"), std::string::npos) << list.out;

  const std::string input = "hello from a program template\n";
  auto payload = dir_ / "payload";
  std::ofstream(payload, std::ios::binary) << input;
  auto expected = host_busybox("sha256sum", input, dir_);
  ASSERT_FALSE(expected.empty());
  for (int i = 0; i < 2; ++i) {  // the second from a clone the first one's release reset
    auto j = invoke_json("bb-cli", payload.string());
    ASSERT_FALSE(j.is_null());
    EXPECT_EQ(j["status"], 0) << j.dump();
    EXPECT_EQ(j["payload_text"], expected) << j.dump();
    EXPECT_TRUE(j.contains("stderr_text")) << j.dump();
    EXPECT_EQ(j["stderr_text"], "") << j.dump();
  }
  // Another function than "run" is a clear error.
  auto wrong = run_thaw("invoke bb-cli echo --payload x --json" + sock_, dir_);
  EXPECT_EQ(wrong.exit_code, 2) << wrong.out << wrong.err;
  EXPECT_NE(wrong.err.find("\"run\""), std::string::npos) << wrong.err;
  EXPECT_EQ(run_thaw("template delete bb-cli" + sock_, dir_).exit_code, 0);
}

TEST_F(ProgramTemplate, TheTomlPoolServesSeveralRequestsOnOneLeaseEachFromTheReadyPoint) {
  rpc::PoolConnection conn(daemon_->socket());
  auto& ws = conn.wait_scope();
  auto list = conn.pool().listTemplatesRequest().send().wait(ws);
  std::optional<pool::TemplateInfo> info;
  for (auto t : list.getTemplates()) {
    if (t.getName() == "bb-toml") info = rpc::from_schema(t);
  }
  ASSERT_TRUE(info) << "the [[pool]] with a program did not load\n" << daemon_->log();
  EXPECT_EQ(info->spec.program, kBusybox);
  EXPECT_EQ(info->spec.args, std::vector<std::string>{"sha256sum"});

  auto vm = acquire(conn, "bb-toml", 60000, 30000);
  for (const std::string input : {"first request", "second, longer request on the same lease", ""}) {
    auto req = vm.invokeRequest();
    req.setFunction("run");
    req.setPayload(kj::arrayPtr(reinterpret_cast<const uint8_t*>(input.data()), input.size()));
    req.setTimeoutMs(30000);
    auto r = req.send().wait(ws);
    EXPECT_EQ(r.getStatus(), 0u) << input;
    std::string out(r.getPayload().begin(), r.getPayload().end());
    EXPECT_EQ(out, host_busybox("sha256sum", input, dir_)) << input;
    EXPECT_EQ(r.getStderr().size(), 0u) << input;
  }
  expect_failed("invoke echo on a program clone", "\"run\"", [&] {
    auto req = vm.invokeRequest();
    req.setFunction("echo");
    req.send().wait(ws);
  });
  vm.releaseRequest().send().wait(ws);
}

}  // namespace
}  // namespace thaw::testing
