// A pool's vsock sockets never take over someone else's. The template's
// cold boot and every clone bind their socket in vsock_dir; a live socket
// already there (another thawd sharing the directory, or a user's service)
// is refused with the path named and left serving, where a stale one (a
// killed daemon's) is replaced. A clone's refusal costs one restore: the
// pool fills on the next serial.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "base/unix_socket.h"
#include "tests/pool/pool_test_support.h"
#include "tests/unix_socket_support.h"

namespace thaw::pool {
namespace {

using namespace testing;
using ::thaw::testing::inode_of;

TEST(VsockSocketPaths, ALiveSocketAtTheTemplatesPathRefusesTheTemplateAndKeepsServing) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  const auto config = test_config(dir);
  std::filesystem::create_directories(config.vsock_dir);
  const std::string taken = config.vsock_dir + "/mini-template.sock";
  UniqueFd other = listen_unix(taken);
  const ino_t before = inode_of(taken);

  {
    PoolManager pool(config);
    try {
      pool.create_template(mini_spec("mini"), PoolPolicy{1, 2, 1024});
      ADD_FAILURE() << "the template was made over a live socket at " << taken;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(pool.stats().templates.empty()) << "a refused template was kept";
  }  // and its destroyer has finished with what the cold boot left

  EXPECT_FALSE(std::filesystem::exists(config.template_dir + "/mini")) << "a refused template left its directory";
  EXPECT_EQ(inode_of(taken), before) << "the live socket was replaced or removed";
  EXPECT_EQ(probe_unix_socket(taken).state, UnixSocketState::kListening);
}

TEST(VsockSocketPaths, ALiveSocketAtAClonesPathCostsOneRestoreAndIsLeftServing) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  const auto config = test_config(dir);
  std::filesystem::create_directories(config.vsock_dir);
  const std::string taken = config.vsock_dir + "/mini-1.sock";  // the first clone's serial
  UniqueFd other = listen_unix(taken);
  const ino_t before = inode_of(taken);
  // A killed daemon's socket where the second clone goes is replaced.
  const std::string stale = config.vsock_dir + "/mini-2.sock";
  ASSERT_TRUE(::thaw::testing::make_stale_unix_socket(stale)) << std::strerror(errno);

  auto pool = std::make_unique<PoolManager>(config);
  pool->create_template(mini_spec("mini"), PoolPolicy{2, 2, 1024});
  ASSERT_TRUE(warm_at_least(*pool, "mini", 2)) << "the pool did not fill past the refused clone";
  const auto stats = stats_of(*pool, "mini");
  EXPECT_GE(stats.restore_failures, 1u);
  EXPECT_EQ(probe_unix_socket(stale).state, UnixSocketState::kListening) << "the stale socket was not replaced";
  auto lease = pool->acquire("mini", 0, 5s);
  EXPECT_NE(lease.vsock_path, taken);
  pool->release(lease.lease_id);
  pool.reset();  // every clone destroyed, the destroyer done
  EXPECT_EQ(inode_of(taken), before) << "a clone took over or removed the live socket";
  EXPECT_EQ(probe_unix_socket(taken).state, UnixSocketState::kListening);
}

}  // namespace
}  // namespace thaw::pool
