// `thaw template create|policy|delete` end to end: the real `thaw` binary
// against the real thawd (no [[pool]]: every template comes from the CLI).
// Bad input that the CLI rejects before any RPC is checked without a daemon.
#include <nlohmann/json.hpp>

#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

// A missing kernel and a bad name fail before connecting: a socket that does
// not exist turns any RPC into exit 3, so exit 2 shows nothing was sent.
class TemplateCliInput : public ::testing::Test {
 protected:
  TempDir scratch_{"thaw-tmpl-input"};
  std::filesystem::path dir_ = scratch_.path();
  std::string sock_ = " --socket " + (dir_ / "no.sock").string();
};

TEST_F(TemplateCliInput, MissingKernelNamesTheFile) {
  auto missing = (dir_ / "nowhere" / "missing-kernel.elf").string();
  auto r = run_thaw("template create t1 --kernel " + missing + sock_, dir_);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--kernel"), std::string::npos) << r.err;
  // A relative path is shown resolved too, so the user sees where it looked.
  auto rel = run_thaw("template create t1 --kernel missing-kernel.elf" + sock_, dir_);
  EXPECT_EQ(rel.exit_code, 2) << rel.err;
  EXPECT_NE(rel.err.find("missing-kernel.elf ("), std::string::npos) << rel.err;
  auto initrd = run_thaw("template create t1 --kernel " + std::string(THAW_MINI_GUEST) + " --initrd " + missing + sock_,
                         dir_);
  EXPECT_EQ(initrd.exit_code, 2) << initrd.err;
  EXPECT_NE(initrd.err.find("--initrd"), std::string::npos) << initrd.err;
}

TEST_F(TemplateCliInput, BadNamesAndPoliciesAreRejected) {
  std::string kernel = " --kernel " + std::string(THAW_MINI_GUEST);
  auto name = run_thaw("template create Bad_Name" + kernel + sock_, dir_);
  EXPECT_EQ(name.exit_code, 2) << name.err;
  EXPECT_NE(name.err.find("\"Bad_Name\" is not a template name"), std::string::npos) << name.err;
  auto del = run_thaw("template delete ../etc" + sock_, dir_);
  EXPECT_EQ(del.exit_code, 2) << del.err;
  EXPECT_NE(del.err.find("../etc"), std::string::npos) << del.err;
  auto range = run_thaw("template create t1 --min-warm 5 --max-warm 2" + kernel + sock_, dir_);
  EXPECT_EQ(range.exit_code, 2) << range.err;
  EXPECT_NE(range.err.find("--min-warm 5 is more than --max-warm 2"), std::string::npos) << range.err;
  auto zero = run_thaw("template create t1 --max-warm 0" + kernel + sock_, dir_);
  EXPECT_EQ(zero.exit_code, 2) << zero.err;
  EXPECT_NE(zero.err.find("--max-warm"), std::string::npos) << zero.err;
  auto nothing = run_thaw("template policy t1" + sock_, dir_);
  EXPECT_EQ(nothing.exit_code, 2) << nothing.err;
  EXPECT_NE(nothing.err.find("nothing to change"), std::string::npos) << nothing.err;
  auto help = run_thaw("template create --help", dir_);
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("thaw.after=agent"), std::string::npos) << help.out;
}

// Where the host cannot run VMs, a template the daemon cannot boot is a host
// error (exit 3) that says why, not bad input (exit 2), and thawd logs it.
TEST(TemplateCliHost, NoKvmIsAHostErrorNamedByTheDaemon) {
  if (kvm_unavailable_reason().empty()) GTEST_SKIP() << "this host has a usable /dev/kvm";
  TempDir scratch("thaw-tmpl-nokvm");
  ThawdProcess daemon(scratch.path());
  daemon.write_config(daemon.config_text({}));
  ASSERT_TRUE(daemon.start()) << daemon.log();
  auto r = run_thaw("template create t1 --kernel " + std::string(THAW_MINI_GUEST) + " --socket " + daemon.socket(),
                    scratch.path());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("host error"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/dev/kvm"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  EXPECT_NE(daemon.log().find("createTemplate t1 failed"), std::string::npos) << daemon.log();
}

// createTemplate may only name files inside allowed_image_dirs: thawd must
// not become a way for any client to read any file (no KVM needed: the
// check comes before the VM).
TEST(TemplateCliHost, ImagesOutsideTheAllowedDirsAreRefusedWithoutTheirContent) {
  TempDir scratch("thaw-tmpl-allowed");
  ThawdProcess daemon(scratch.path());
  daemon.write_config(daemon.config_text({}));
  ASSERT_TRUE(daemon.start()) << daemon.log();
  auto r = run_thaw("template create t1 --kernel /etc/passwd --socket " + daemon.socket(), scratch.path());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("outside the directories thawd may read images from"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("root:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("0x72 6f 6f 74"), std::string::npos) << r.err;  // "root" as the loader's hex prefix
}

class TemplateCli : public SharedThawdTest<TemplateCli> {
 public:
  static constexpr const char* kDirTag = "tmpl-cli";
  static std::string daemon_config(const ThawdProcess& daemon) { return daemon.config_text({}); }

 protected:
  void SetUp() override {
    SharedThawdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    sock_ = " --socket " + daemon_->socket();
  }

  // The entry for `name` in `thaw templates --json`, or null.
  nlohmann::json listed(const std::string& name) {
    auto r = run_thaw("templates --json" + sock_, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const auto& t : nlohmann::json::parse(r.out)) {
      if (t["name"] == name) return t;
    }
    return nullptr;
  }

  std::string sock_;
};

TEST_F(TemplateCli, CreateListPolicyDelete) {
  // A relative kernel path: thawd has another working directory, so the CLI
  // must send it absolute.
  auto kernel = std::filesystem::relative(THAW_MINI_GUEST, std::filesystem::current_path());
  ASSERT_TRUE(kernel.is_relative()) << kernel;
  auto c = run_thaw("template create cli-made --kernel " + kernel.string() +
                        " --mem-mib 32 --min-warm 1 --max-warm 2 --memory-budget-mib 1024 --json" + sock_,
                    dir_);
  ASSERT_EQ(c.exit_code, 0) << c.err << daemon_->log();
  auto created = nlohmann::json::parse(c.out);
  EXPECT_EQ(created["name"], "cli-made");
  EXPECT_EQ(created["kernel"], std::filesystem::absolute(THAW_MINI_GUEST).lexically_normal().string());
  EXPECT_NE(created["cmdline"].get<std::string>().find("thaw.after=agent"), std::string::npos) << c.out;
  EXPECT_EQ(created["mem_mib"], 32);
  EXPECT_EQ(created["vcpus"], 1);
  EXPECT_EQ(created["policy"]["max_warm"], 2);
  EXPECT_GT(created["cold_boot_ms"].get<double>(), 0.0);

  auto entry = listed("cli-made");
  ASSERT_FALSE(entry.is_null()) << "not in thaw templates --json";
  EXPECT_EQ(entry["kernel"], created["kernel"]);
  EXPECT_EQ(entry["policy"], created["policy"]);
  // The default command line makes the mini guest serve invokes.
  auto inv = run_thaw("invoke cli-made echo --payload made --timeout-ms 10000 --json" + sock_, dir_);
  ASSERT_EQ(inv.exit_code, 0) << inv.err;
  EXPECT_EQ(nlohmann::json::parse(inv.out)["payload_text"], "made");

  // Only --max-warm given: min_warm and the budget keep their values.
  auto p = run_thaw("template policy cli-made --max-warm 3 --json" + sock_, dir_);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(nlohmann::json::parse(p.out)["previous"]["max_warm"], 2) << p.out;
  entry = listed("cli-made");
  ASSERT_FALSE(entry.is_null());
  EXPECT_EQ(entry["policy"]["min_warm"], 1);
  EXPECT_EQ(entry["policy"]["max_warm"], 3);
  EXPECT_EQ(entry["policy"]["memory_budget_mib"], 1024);
  p = run_thaw("template policy cli-made --min-warm 0 --memory-budget-mib 512" + sock_, dir_);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("0..3 warm, 512 MiB budget"), std::string::npos) << p.out;
  entry = listed("cli-made");
  EXPECT_EQ(entry["policy"]["min_warm"], 0);
  EXPECT_EQ(entry["policy"]["memory_budget_mib"], 512);
  // A --min-warm above the current max_warm is caught against that value.
  auto over = run_thaw("template policy cli-made --min-warm 5" + sock_, dir_);
  EXPECT_EQ(over.exit_code, 2) << over.err;
  EXPECT_NE(over.err.find("--min-warm 5 is more than the template's current max_warm 3"), std::string::npos)
      << over.err;

  auto d = run_thaw("template delete cli-made" + sock_, dir_);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NE(d.out.find("deleted template cli-made"), std::string::npos) << d.out;
  EXPECT_TRUE(listed("cli-made").is_null()) << "still listed after delete";
}

TEST_F(TemplateCli, UnknownTemplatesAndDuplicates) {
  auto d = run_thaw("template delete no-such" + sock_, dir_);
  EXPECT_EQ(d.exit_code, 2) << d.out << d.err;
  EXPECT_NE(d.err.find("no-such"), std::string::npos) << d.err;
  auto p = run_thaw("template policy no-such --max-warm 3" + sock_, dir_);
  EXPECT_EQ(p.exit_code, 2) << p.err;
  EXPECT_NE(p.err.find("no template 'no-such'"), std::string::npos) << p.err;
  // Creating a name twice: the server refuses the second.
  std::string create = "template create twice --kernel " + std::string(THAW_MINI_GUEST) +
                       " --mem-mib 32 --min-warm 0 --max-warm 1" + sock_;
  auto first = run_thaw(create, dir_);
  ASSERT_EQ(first.exit_code, 0) << first.err << daemon_->log();
  EXPECT_NE(first.out.find("twice"), std::string::npos) << first.out;
  auto second = run_thaw(create, dir_);
  EXPECT_EQ(second.exit_code, 2) << second.err;
  EXPECT_NE(second.err.find("twice"), std::string::npos) << second.err;
  EXPECT_EQ(run_thaw("template delete twice" + sock_, dir_).exit_code, 0);
}

}  // namespace
}  // namespace thaw::testing
