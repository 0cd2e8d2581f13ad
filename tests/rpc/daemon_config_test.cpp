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
  // Each of `bad` as `key`'s value (line 2) is refused, naming the line and key.
  void expect_each_refused(const std::string& key, std::initializer_list<const char*> bad) {
    for (const char* value : bad) {
      try {
        read_back("socket = \"/tmp/x.sock\"\n" + key + " = " + value + "\n");
        ADD_FAILURE() << key << " = " << value << " was accepted";
      } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find(":2: " + key), std::string::npos) << e.what();
      }
    }
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
  c.refill_threads = 3;
  c.reset_threads = 4;
  c.clones_per_worker = 250;
  c.max_connections = 17;
  c.max_message_kib = 4096;
  c.message_timeout_ms = 2500;
  c.max_inflight_mib = 512;
  c.allowed_image_dirs = {"/usr/lib/thaw", "/srv/functions"};
  c.user = "thaw";
  c.allow_root = true;
  c.socket_group = "thaw-clients";
  c.kvm_device = "/dev/kvm-test";
  c.template_workers = false;
  c.worker_cgroups = "/sys/fs/cgroup/thaw-workers";
  c.vm_shells = "on";
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

TEST_F(DaemonConfigFile, AProgramPoolReadsBackTheSame) {
  DaemonConfig c;
  c.socket = "/tmp/x.sock";
  PoolConfig p;
  p.spec = pool::TemplateSpec{"bb", "/k/thaw-mini.elf", "", "console=ttyS0 thaw.quiet=1", 64, 1};
  p.spec.program = "/bin/busybox";
  p.spec.args = {"sh", "-c", "echo \"$X\"\tdone"};
  p.spec.env = {"X=1", "PATH=/bin"};
  p.spec.files_dir = "/srv/fn";
  c.pools = {p};
  const std::string text = render_config(c);
  EXPECT_NE(text.find("program = \"/bin/busybox\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("files = \"/srv/fn\"\n"), std::string::npos) << text;
  expect_same(read_back(text), c);
  // Without args, env or files only `program` is written.
  p.spec.args.clear();
  p.spec.env.clear();
  p.spec.files_dir.clear();
  const std::string bare = render_pool(p);
  EXPECT_EQ(bare.find("args"), std::string::npos) << bare;
  EXPECT_EQ(bare.find("files"), std::string::npos) << bare;
  // A kernel pool has none of the program keys.
  EXPECT_EQ(render_pool(PoolConfig{}).find("program"), std::string::npos);
}

TEST_F(DaemonConfigFile, AHandWrittenProgramPoolLoadsAndBadProgramKeysAreNamed) {
  const std::string head = "socket = \"/tmp/x.sock\"\n[[pool]]\nname = \"fn\"\nkernel = \"/k/mini\"\n";
  auto c = read_back(head + "program = \"/bin/busybox\"\nargs = [\"wc\", \"-c\"]\nenv = [\"A=b\"]\nfiles = \"/srv\"\n");
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].spec.program, "/bin/busybox");
  EXPECT_EQ(c.pools[0].spec.args, (std::vector<std::string>{"wc", "-c"}));
  EXPECT_EQ(c.pools[0].spec.env, std::vector<std::string>{"A=b"});
  EXPECT_EQ(c.pools[0].spec.files_dir, "/srv");
  auto error_of = [&](const std::string& text) {
    try {
      read_back(text);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(error_of(head + "program = \"/bin/busybox\"\nargs = \"wc\"\n").find("pool[0].args: must be an array"),
            std::string::npos);
  EXPECT_NE(error_of(head + "program = \"/bin/busybox\"\nargs = [1]\n").find("pool[0].args[0]: must be a string"),
            std::string::npos);
  EXPECT_NE(error_of(head + "program = \"bin/busybox\"\n").find("spec.program"), std::string::npos);
  EXPECT_NE(error_of(head + "program = \"/bin/busybox\"\nenv = [\"NOEQ\"]\n").find("not K=V"), std::string::npos);
  EXPECT_NE(error_of(head + "args = [\"x\"]\n").find("need spec.program"), std::string::npos);
}

TEST_F(DaemonConfigFile, ALinuxPoolReadsBackTheSameAndItsRulesAreNamed) {
  DaemonConfig c;
  c.socket = "/tmp/x.sock";
  PoolConfig p;
  p.spec = pool::TemplateSpec{"py", "/k/bzImage", "", "loglevel=4", 128, 1};
  p.spec.guest = pool::GuestKind::kLinux;
  p.spec.program = "/usr/bin/python3";
  p.spec.args = {"/srv/handler.py"};
  p.spec.files_dir = "/srv/rootfs";
  c.pools = {p};
  const std::string text = render_config(c);
  EXPECT_NE(text.find("guest = \"linux\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rootfs = \"/srv/rootfs\"\n"), std::string::npos) << text;
  expect_same(read_back(text), c);
  // A hand-written Linux pool's command line is only the user's words.
  const std::string head = "socket = \"/tmp/x.sock\"\n[[pool]]\nname = \"lx\"\nguest = \"linux\"\n";
  auto bare = read_back(head + "kernel = \"/k/bzImage\"\nprogram = \"/bin/busybox\"\n");
  ASSERT_EQ(bare.pools.size(), 1u);
  EXPECT_EQ(bare.pools[0].spec.cmdline, "");
  EXPECT_TRUE(bare.pools[0].spec.is_linux());
  auto error_of = [&](const std::string& body) {
    try {
      read_back(body);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(error_of(head + "program = \"/bin/busybox\"\n").find("pool[0].kernel: is required"), std::string::npos);
  EXPECT_NE(error_of(head + "kernel = \"/k/bzImage\"\n").find("pool[0].program: is required"), std::string::npos);
  EXPECT_NE(error_of(head + "kernel = \"/k\"\nprogram = \"/bin/sh\"\nfiles = \"/srv\"\n").find("pool[0].files"),
            std::string::npos);
  const std::string mini = "socket = \"/tmp/x.sock\"\n[[pool]]\nname = \"m\"\nkernel = \"/k\"\n";
  EXPECT_NE(error_of(mini + "rootfs = \"/srv\"\n").find("needs guest = \"linux\""), std::string::npos);
  EXPECT_NE(error_of(mini + "guest = \"bsd\"\n").find("pool[0].guest"), std::string::npos);
}

// A program pool may leave out the kernel: it runs in thawd's own mini
// guest, quietly; a kernel pool may not, and neither may a program pool
// when no mini guest came with thawd.
TEST_F(DaemonConfigFile, AProgramPoolWithoutAKernelRunsInThawdsMiniGuest) {
  const std::string path = dir_.path() + "/thawd.toml";
  const std::string head = "socket = \"/tmp/x.sock\"\n[[pool]]\nname = \"fn\"\n";
  std::ofstream(path) << head << "program = \"/bin/busybox\"\nargs = [\"wc\"]\n";
  auto c = load_config(path, "/usr/lib/thaw/thaw-mini.elf");
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].spec.kernel, "/usr/lib/thaw/thaw-mini.elf");
  EXPECT_EQ(c.pools[0].spec.cmdline, "console=ttyS0 thaw.quiet=1");
  auto message = [&](const std::string& default_kernel) {
    try {
      load_config(path, default_kernel);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message("").find("pool[0].kernel: is required: no mini guest was found beside thawd"),
            std::string::npos) << message("");
  std::ofstream(path, std::ios::trunc) << head;
  EXPECT_NE(message("/usr/lib/thaw/thaw-mini.elf").find("pool[0].kernel: is required (or give a program"),
            std::string::npos) << message("/usr/lib/thaw/thaw-mini.elf");
}

TEST(TomlString, EscapesWhatTomlNeedsEscaped) {
  EXPECT_EQ(toml_string("plain"), "\"plain\"");
  EXPECT_EQ(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(toml_string("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(toml_string(std::string("\x01\x7f", 2)), "\"\\u0001\\u007F\"");
  EXPECT_EQ(toml_string("é"), "\"é\"");
}

}  // namespace
TEST_F(DaemonConfigFile, InflightBudgetMustHoldOneWholeMessage) {
  try {
    read_back("socket = \"/tmp/x.sock\"\nmax_message_kib = 4096\nmax_inflight_mib = 2\n");
    ADD_FAILURE() << "2 MiB in flight cannot hold one 4096 KiB message";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_inflight_mib"), std::string::npos) << e.what();
  }
}

TEST_F(DaemonConfigFile, WorkerCgroupsIsAutoOffOrAnAbsolutePath) {
  EXPECT_EQ(read_back("socket = \"/tmp/x.sock\"\n").worker_cgroups, "auto");
  EXPECT_EQ(read_back("socket = \"/tmp/x.sock\"\nworker_cgroups = \"off\"\n").worker_cgroups, "off");
  expect_each_refused("worker_cgroups", {"\"relative/dir\"", "\"\"", "\"on\"", "true"});
}

TEST_F(DaemonConfigFile, VmShellsIsAutoOnOrOff) {
  EXPECT_EQ(read_back("socket = \"/tmp/x.sock\"\n").vm_shells, "auto");
  EXPECT_EQ(read_back("socket = \"/tmp/x.sock\"\nvm_shells = \"off\"\n").vm_shells, "off");
  expect_each_refused("vm_shells", {"\"yes\"", "\"\"", "true", "1"});
}

// The RPC has no authentication: TCP only on loopback.
TEST_F(DaemonConfigFile, TcpListensOnLoopbackOnly) {
  auto error_of = [&](const std::string& tcp) -> std::string {
    try {
      read_back("socket = \"/tmp/x.sock\"\ntcp = \"" + tcp + "\"\n");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of("127.0.0.1:7777"), "");
  EXPECT_EQ(error_of("127.1.2.3:7777"), "");
  EXPECT_EQ(error_of("[::1]:7777"), "");
  for (const char* remote : {"0.0.0.0:7777", "10.0.0.5:7777", "[::]:7777", "[2001:db8::1]:7777"}) {
    auto message = error_of(remote);
    EXPECT_NE(message.find("is not a loopback address"), std::string::npos) << remote << ": " << message;
    EXPECT_NE(message.find("no authentication"), std::string::npos) << message;
  }
}

}  // namespace thaw::daemon
