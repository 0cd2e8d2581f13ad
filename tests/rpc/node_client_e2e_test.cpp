// The example client in another language (examples/node-client: Node.js and
// capnp-es, on code generated from rpc/thaw.capnp) against the real thawd:
// it lists templates, invokes in a clone, and tells the schema's error kinds
// apart by their exit status (2 FAILED, 3 OVERLOADED, 4 DISCONNECTED). Skips
// where node or the example's packages (deploy/setup.sh --examples) are missing.
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

const std::string kExample = THAW_NODE_CLIENT_DIR;

class NodeClientE2E : public SharedThawdTest<NodeClientE2E> {
 public:
  static constexpr const char* kDirTag = "node-client";
  static std::string daemon_config(const ThawdProcess& daemon) {
    auto one = mini_pool("one");
    one.policy.min_warm = one.policy.max_warm = 1;
    one.policy.memory_budget_mib = 9;  // room for exactly one clone (thawd_e2e_test.cpp)
    return daemon.config_text({mini_pool(), one});
  }

  void SetUp() override {
    if (run_shell("command -v node >/dev/null").exit_code != 0) GTEST_SKIP() << "node is not installed";
    if (!std::filesystem::exists(kExample + "/node_modules/capnp-es/package.json")) {
      GTEST_SKIP() << "the example's packages are not installed (deploy/setup.sh --examples)";
    }
    // Regenerate from the schema once per process: a stale gen/ would test an
    // old contract. Into a private directory first, then renamed into place,
    // because ctest runs these tests in parallel processes.
    static bool generated = false;
    if (!generated) {
      const std::string tmp = "gen.tmp." + std::to_string(::getpid());
      auto r = run_shell("cd " + kExample + " && node_modules/.bin/capnp-es -ojs:" + tmp +
                         " --src-prefix=../../rpc ../../rpc/thaw.capnp 2>&1 && mkdir -p gen && mv " + tmp +
                         "/thaw.js gen/thaw.js && rmdir " + tmp);
      ASSERT_EQ(r.exit_code, 0) << r.output;
      generated = true;
    }
    SharedThawdTest::SetUp();
  }

  struct Outcome {
    int exit_code;
    nlohmann::json json;  // its stdout, parsed
    std::string text;     // stdout and stderr
  };
  Outcome client(const std::string& args) {
    const std::string errors = (dir_ / "node-client.stderr").string();
    auto r = run_shell("cd " + kExample + " && timeout 60 node thaw-node.mjs --socket " + daemon_->socket() + " " +
                       args + " 2>" + errors);
    std::ifstream in(errors);
    std::string stderr_text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return {r.exit_code, nlohmann::json::parse(r.output, nullptr, false), r.output + stderr_text};
  }
};

TEST_F(NodeClientE2E, ListsTheDaemonsTemplates) {
  auto r = client("templates");
  ASSERT_EQ(r.exit_code, 0) << r.text;
  ASSERT_TRUE(r.json.is_array()) << r.text;
  std::set<std::string> names;
  for (const auto& t : r.json) {
    names.insert(t.at("name").get<std::string>());
    EXPECT_EQ(t.at("guest"), "mini");
    EXPECT_GT(t.at("coldBootMs").get<double>(), 0.0);
  }
  EXPECT_EQ(names, (std::set<std::string>{"mini", "one"}));
}

TEST_F(NodeClientE2E, InvokesInALeasedCloneAndReleasesIt) {
  auto r = client("invoke mini echo --payload 'hello from node'");
  ASSERT_EQ(r.exit_code, 0) << r.text;
  EXPECT_EQ(r.json.at("status"), 0) << r.text;
  EXPECT_EQ(r.json.at("payload"), "hello from node");
  EXPECT_EQ(r.json.at("template"), "mini");
  rpc::PoolConnection c(daemon_->socket());
  EXPECT_EQ(leased(c), 0u) << "the client released its clone";
}

TEST_F(NodeClientE2E, TellsTheErrorKindsApart) {
  auto unknown = client("invoke nope echo");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.text;
  EXPECT_EQ(unknown.json.value("error", ""), "FAILED") << unknown.text;
  EXPECT_NE(unknown.json.value("reason", "").find("nope"), std::string::npos) << unknown.text;

  // The guest faults during the invoke: the clone is gone.
  auto crashed = client("invoke mini crash");
  EXPECT_EQ(crashed.exit_code, 4) << crashed.text;
  EXPECT_EQ(crashed.json.value("error", ""), "DISCONNECTED") << crashed.text;

  // "one" has room for a single clone; while this test holds it, the
  // client's acquire can only time out.
  rpc::PoolConnection c(daemon_->socket());
  auto held = acquire(c, "one");
  auto busy = client("invoke one echo --timeout-ms 200");
  EXPECT_EQ(busy.exit_code, 3) << busy.text;
  EXPECT_EQ(busy.json.value("error", ""), "OVERLOADED") << busy.text;
  held.releaseRequest().send().wait(c.wait_scope());
}

TEST_F(NodeClientE2E, BadCommandLinesAreRefusedBeforeConnecting) {
  auto r = client("--lease-ms soon invoke mini echo");
  EXPECT_EQ(r.exit_code, 1) << r.text;
  EXPECT_NE(r.text.find("--lease-ms must be a whole number"), std::string::npos) << r.text;
  auto missing = run_shell("cd " + kExample + " && node thaw-node.mjs --socket " + daemon_->socket() +
                           ".missing templates 2>&1");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("cannot connect"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace thaw::testing
