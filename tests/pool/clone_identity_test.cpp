// Identities: unique ids and seeds, a rising generation, and the control
// page layout the guest reads (guest/mini/README.md).
#include "pool/clone_identity.h"

#include <gtest/gtest.h>
#include <time.h>

#include <set>

namespace thaw::pool {
namespace {

TEST(CloneIdentity, IdsAndSeedsAreUniqueAndGenerationRises) {
  IdentityIssuer issuer;
  std::set<uint64_t> ids, seeds;
  uint64_t last_generation = 0;
  for (int i = 0; i < 1000; ++i) {
    auto id = issuer.next();
    EXPECT_GT(id.generation, last_generation);
    last_generation = id.generation;
    ids.insert(id.clone_id);
    seeds.insert(id.seed);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(seeds.size(), 1000u);
}

TEST(CloneIdentity, RenewKeepsTheCloneAndDrawsNewSeedGenerationAndClock) {
  IdentityIssuer issuer;
  auto first = issuer.next();
  first.wall_ns -= 1'000'000'000;  // as if the lease began a second ago
  auto second = issuer.renew(first);
  EXPECT_EQ(second.clone_id, first.clone_id);
  EXPECT_GT(second.generation, first.generation);
  EXPECT_NE(second.seed, first.seed);
  EXPECT_GT(second.wall_ns, first.wall_ns);
}

TEST(CloneIdentity, WallClockIsNow) {
  IdentityIssuer issuer;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  uint64_t ns = static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
  auto id = issuer.next();
  EXPECT_GE(id.wall_ns, ns);
  EXPECT_LT(id.wall_ns - ns, 5'000'000'000ULL);
}

TEST(CloneIdentity, ControlPageLayout) {
  CloneIdentity id{7, 42, 0x1122334455667788ULL, 99};
  auto page = control_page_for(id);
  const auto* words = reinterpret_cast<const uint64_t*>(&page);
  EXPECT_EQ(words[0], 0x4b434f4c57414854ULL);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&page), 8), "THAWLOCK");
  EXPECT_EQ(words[1], 7u);
  EXPECT_EQ(words[2], 42u);
  EXPECT_EQ(words[3], 0x1122334455667788ULL);
  EXPECT_EQ(words[4], 99u);
  EXPECT_EQ(words[5], 0x1122334455667788ULL) << "clone_input is the seed";
}

TEST(CloneIdentity, WrittenIntoGuestMemory) {
  auto memory = vmm::GuestMemory::anonymous(4 << 20);
  CloneIdentity id{3, 5, 11, 13};
  write_control_page(memory, control_page_for(id));
  auto back = read_control_page(memory);
  EXPECT_EQ(back.magic, kControlPageMagic);
  EXPECT_EQ(back.clone_id, 5u);
  EXPECT_EQ(memory.host_base()[kControlPageAddress], 'T');
}

}  // namespace
}  // namespace thaw::pool
