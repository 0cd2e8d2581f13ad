// The VMM's side of virtio-vsock with the real mini guest (thaw.after=agent):
// the device on the command line, host sockets per VM, and what snapshots
// do with it (no host path saved, streams reset, reset in place, a running
// VM snapshotted with a stream open).
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/vsock_device.h"
#include "pool/invoke_protocol.h"
#include "snapshot/snapshot_dir.h"
#include "snapshot/vm_snapshot.h"
#include "tests/integration/kvm_test_support.h"
#include "tests/integration/stream_io.h"
#include "tests/integration/snapshot_test_support.h"
#include "tests/unix_socket_support.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using testing::CapturedConsole;

constexpr char kAgentCmdline[] = "console=ttyS0 thaw.fn_bytes=4096 thaw.after=agent";

// One host client of a VM's vsock socket, connected to the agent's port.
class Stream {
 public:
  // Connects and sends CONNECT 5000; ok() tells whether the guest accepted.
  explicit Stream(const std::string& path) : fd_(testing::connect_unix_blocking(path)) {
    if (!fd_) return;
    const std::string line = "CONNECT " + std::to_string(pool::kAgentPort) + "\n";
    if (!send_all(line.data(), line.size())) return;
    std::string reply;
    char c;
    while (reply.size() < 32 && recv_all(&c, 1)) {
      reply += c;
      if (c == '\n') break;
    }
    ok_ = reply.rfind("OK ", 0) == 0 && reply.back() == '\n';
  }
  bool ok() const { return ok_; }

  // One invoke of "echo"; the payload that came back, or nullopt.
  std::optional<std::string> echo(const std::string& payload) {
    const std::string name = "echo";
    uint32_t length = static_cast<uint32_t>(2 + name.size() + payload.size());
    uint16_t name_len = static_cast<uint16_t>(name.size());
    std::string request(reinterpret_cast<const char*>(&length), 4);
    request.append(reinterpret_cast<const char*>(&name_len), 2);
    request += name + payload;
    if (!send_all(request.data(), request.size())) return std::nullopt;
    uint32_t head[3];
    if (!recv_all(head, sizeof head) || head[0] < 8 || head[1] != pool::kInvokeOk) return std::nullopt;
    std::string out(head[0] - 8, '\0');
    if (!recv_all(out.data(), out.size())) return std::nullopt;
    return out;
  }

  // True when the VMM closed the stream (EOF or reset) within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c;
    ssize_t n = ::recv(fd_.get(), &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool send_all(const void* data, size_t size) { return testing::send_all(fd_.get(), data, size); }
  bool recv_all(void* data, size_t size, std::chrono::milliseconds timeout = 20s) {
    return testing::recv_all(fd_.get(), data, size, timeout);
  }

  UniqueFd fd_;
  bool ok_ = false;
};

bool is_socket(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Cold-boots the agent with a vsock socket at `path`; runs on after boot
// complete, or pauses there with `pause`.
vmm::VmConfig agent_config(const std::string& path, CapturedConsole& console, bool pause) {
  auto config = testing::mini_config(kAgentCmdline, console);
  config.boot_complete_action = pause ? vmm::BootCompleteAction::kPause : vmm::BootCompleteAction::kContinue;
  config.vsock_path = path;
  return config;
}

std::unique_ptr<vmm::Vm> boot_agent(const std::string& path, CapturedConsole& console) {
  auto vm = vmm::Vm::create(agent_config(path, console, /*pause=*/false));
  vm->start();
  return vm;
}

// The agent guest on `path`, saved at its boot-complete write to `snap`.
void snapshot_agent(const std::string& path, const std::string& snap) {
  CapturedConsole console;
  auto vm = vmm::Vm::create(agent_config(path, console, /*pause=*/true));
  ASSERT_NO_THROW(snapshot::boot_and_snapshot(*vm, snap, 60s)) << console.text();
}

snapshot::RestoreOptions clone_options(const std::string& vsock_path, CapturedConsole& console) {
  snapshot::RestoreOptions options;
  options.console = console.sink();
  options.vsock_path = vsock_path;
  return options;
}

TEST(Vsock, DeviceIsOnTheCommandLineAndTheSocketLivesWithTheVm) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  const std::string path = dir.path() + "/vm.sock";
  // A socket left behind by a VMM that crashed is replaced.
  ASSERT_TRUE(testing::make_stale_unix_socket(path)) << std::strerror(errno);
  CapturedConsole console;
  auto vm = boot_agent(path, console);
  EXPECT_TRUE(is_socket(path));
  EXPECT_EQ(vm->kernel_cmdline(), std::string(kAgentCmdline) + " virtio_mmio.device=4K@0xd0001000:5");
  ASSERT_TRUE(console.wait_for_all({"thaw-mini: ready"}, 30s)) << console.text();
  EXPECT_TRUE(console.contains("virtio_mmio.device=4K@0xd0001000:5")) << console.text();
  EXPECT_TRUE(console.contains("agent: vsock cid 3 at 0xd0001000 irq 5")) << console.text();
  ASSERT_NE(vm->vsock(), nullptr);
  EXPECT_TRUE(vm->vsock_transport()->active());

  Stream stream(path);
  ASSERT_TRUE(stream.ok()) << console.text();
  EXPECT_EQ(stream.echo("hello vsock"), "hello vsock");
  EXPECT_EQ(vm->vsock()->connection_count(), 1u);
  vm->stop();
  vm.reset();
  EXPECT_FALSE(std::filesystem::exists(path)) << "the socket outlived its VM";
}

TEST(Vsock, NoPathNoDevice) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = testing::mini_config("console=ttyS0", console);
  auto vm = vmm::Vm::create(config);
  EXPECT_EQ(vm->vsock(), nullptr);
  EXPECT_EQ(vm->kernel_cmdline(), "console=ttyS0");
}

TEST(Vsock, ClonesGetTheirOwnSocketsAndTheSnapshotNamesNone) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  const std::string snap = dir.path() + "/snap";
  const std::string original_path = dir.path() + "/original.sock";
  ASSERT_NO_FATAL_FAILURE(snapshot_agent(original_path, snap));
  // Nothing host-specific in the state file.
  std::ifstream state_file(snap + "/state", std::ios::binary);
  std::string state_bytes((std::istreambuf_iterator<char>(state_file)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(state_bytes.empty());
  EXPECT_EQ(state_bytes.find("original.sock"), std::string::npos);

  auto loaded = snapshot::read_snapshot_dir(snap);
  ASSERT_TRUE(loaded.state.machine.devices.vsock.has_value());
  EXPECT_EQ(loaded.state.machine.devices.vsock->device.guest_cid, 3u);

  // Two clones side by side, each on its own socket.
  CapturedConsole console_a, console_b;
  auto a = snapshot::restore_vm(loaded, clone_options(dir.path() + "/a.sock", console_a));
  auto b = snapshot::restore_vm(loaded, clone_options(dir.path() + "/b.sock", console_b));
  a.vm->start();
  b.vm->start();
  Stream to_a(dir.path() + "/a.sock");
  Stream to_b(dir.path() + "/b.sock");
  ASSERT_TRUE(to_a.ok()) << console_a.text();
  ASSERT_TRUE(to_b.ok()) << console_b.text();
  EXPECT_EQ(to_a.echo("to a"), "to a");
  EXPECT_EQ(to_b.echo("to b"), "to b");
  EXPECT_EQ(to_a.echo(std::string(200'000, 'a')), std::string(200'000, 'a'));

  // A clone needs its own socket; a snapshot without vsock takes none.
  CapturedConsole console_c;
  EXPECT_THROW(snapshot::restore_vm(loaded, clone_options("", console_c)), InputError);
  const std::string plain = dir.path() + "/plain";
  testing::snapshot_mini_guest("console=ttyS0 thaw.fn_bytes=4096", plain);
  EXPECT_THROW(snapshot::restore_vm(plain, clone_options(dir.path() + "/c.sock", console_c)), InputError);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/c.sock"));
}

TEST(Vsock, ResetInPlaceDropsTheStreamAndServesAgain) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  const std::string snap = dir.path() + "/snap";
  ASSERT_NO_FATAL_FAILURE(snapshot_agent(dir.path() + "/original.sock", snap));
  auto loaded = snapshot::read_snapshot_dir(snap);
  CapturedConsole console;
  const std::string path = dir.path() + "/clone.sock";
  auto options = clone_options(path, console);
  auto clone = snapshot::restore_vm(loaded, options);
  clone.vm->start();
  Stream first(path);
  ASSERT_TRUE(first.ok()) << console.text();
  EXPECT_EQ(first.echo("before reset"), "before reset");

  ASSERT_TRUE(clone.vm->pause());
  snapshot::reset_vm(clone, loaded, options);
  EXPECT_TRUE(first.closed_within(5s)) << "a stream open at reset must be reset";
  EXPECT_EQ(clone.vm->vsock()->connection_count(), 0u);
  clone.vm->resume();

  Stream second(path);
  ASSERT_TRUE(second.ok()) << console.text();
  EXPECT_EQ(second.echo("after reset"), "after reset");
}

TEST(Vsock, RunningVmSnapshottedWithAStreamOpenKeepsServingIt) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  CapturedConsole console;
  const std::string path = dir.path() + "/vm.sock";
  auto vm = boot_agent(path, console);
  ASSERT_TRUE(console.wait_for_all({"thaw-mini: ready"}, 30s)) << console.text();
  Stream stream(path);
  ASSERT_TRUE(stream.ok()) << console.text();
  EXPECT_EQ(stream.echo("one"), "one");

  snapshot::snapshot_running_vm(*vm, dir.path() + "/snap");
  // The original's stream survives its own snapshot.
  EXPECT_EQ(stream.echo("two"), "two");

  // The clone starts without it: its guest learns so from TRANSPORT_RESET
  // and accepts new streams.
  CapturedConsole clone_console;
  auto clone = snapshot::restore_vm(dir.path() + "/snap", clone_options(dir.path() + "/clone.sock", clone_console));
  clone.vm->start();
  Stream to_clone(dir.path() + "/clone.sock");
  ASSERT_TRUE(to_clone.ok()) << clone_console.text();
  EXPECT_EQ(to_clone.echo("three"), "three");
  EXPECT_EQ(stream.echo("four"), "four");
}

}  // namespace
}  // namespace thaw
