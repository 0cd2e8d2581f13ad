// thawd's config written by render_config and read back by load_config: every
// key survives, strings that need escaping included, and defaults stay out
// of the file. No KVM, no daemon.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "rpc/daemon/config.h"
#include "tests/temp_dir.h"

namespace thaw::daemon {
namespace {

// Equal, or both shown as the file they render to.
void expect_same(const DaemonConfig& read, const DaemonConfig& written) {
  EXPECT_TRUE(read == written) << "read back:\n" << render_config(read) << "written:\n" << render_config(written);
}

class DaemonConfigFile : public ::testing::Test {
 protected:
  DaemonConfig read_back(const std::string& text) {
    const std::string path = dir_.path() + "/thawd.toml";
    std::ofstream(path) << text;
    return load_config(path);
  }
  testing::TempDir dir_{"thaw-config"};
};

TEST_F(DaemonConfigFile, EveryKeyReadsBackTheSame) {
  DaemonConfig c;
  c.socket = "/run/th\"aw/th\\aw.sock";  // a quote and a backslash
  c.tcp = "127.0.0.1:7777";
  c.template_dir = "/var/lib/thaw/tëmplates";  // UTF-8 passes as it is
  c.vsock_dir = "/run/thaw/vsock";
  c.log_level = "warn";
  c.metrics = "127.0.0.1:9464";
  c.default_lease_ms = 1234;
  c.max_lease_ms = 99999;
  c.workers = 7;
  c.autoscale_period_ms = 250;
  c.autoscale_headroom = 3;
  c.autoscale_stall_ms = 0;
  c.reset_threads = 4;
  PoolConfig a;
  a.spec = pool::TemplateSpec{"mini", "/k/vmlinux", "/k/initrd.img", "console=ttyS0\tquiet \x01 x=\"1\"", 64, 2};
  a.policy = pool::PoolPolicy{0, 5, 77};
  PoolConfig b;
  b.spec = pool::TemplateSpec{"second", "/k/other", "", "", 128, 1};
  c.pools = {a, b};
  expect_same(read_back(render_config(c)), c);
}

TEST_F(DaemonConfigFile, DefaultsStayOutOfTheFile) {
  DaemonConfig c;
  c.socket = "/tmp/x.sock";
  const std::string text = render_config(c);
  EXPECT_EQ(text, "socket = \"/tmp/x.sock\"\ntemplate_dir = \"/var/lib/thaw/templates\"\nvsock_dir = \"/run/thaw/vsock\"\n");
  expect_same(read_back(text), c);
  PoolConfig p;
  p.spec = pool::TemplateSpec{"p", "/k", "", "", 128, 1};
  const std::string pool = render_pool(p);
  EXPECT_EQ(pool.find("initrd"), std::string::npos) << pool;
  EXPECT_EQ(pool.find("vcpus"), std::string::npos) << pool;
  EXPECT_EQ(pool.rfind("\n[[pool]]\nname = \"p\"\n", 0), 0u) << pool;
}

TEST(TomlString, EscapesWhatTomlNeedsEscaped) {
  EXPECT_EQ(toml_string("plain"), "\"plain\"");
  EXPECT_EQ(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(toml_string("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(toml_string(std::string("\x01\x7f", 2)), "\"\\u0001\\u007F\"");
  EXPECT_EQ(toml_string("é"), "\"é\"");
}

}  // namespace
}  // namespace thaw::daemon
