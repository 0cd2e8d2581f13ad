// The layers of thaw, lowest first: base < devices < vmm < snapshot < pool
// < rpc. A file may include its own layer and those below, never one above
// (devices never see KVM, snapshot/ never sees the pool, ...). Between
// thaw and its guest, only the ABI headers guest/mini/program_abi.h and
// guest/mini/control_page_abi.h (plain C,
// shared by the guest kernel and the VMM) may be included. This test reads
// the source tree, so the build enforces what was a convention.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace thaw {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kLayers = {"base", "devices", "vmm", "snapshot", "pool", "rpc"};

int layer_of(const std::string& folder) {
  for (size_t i = 0; i < kLayers.size(); ++i) {
    if (kLayers[i] == folder) return static_cast<int>(i);
  }
  return -1;
}

// Every include of a file under a layer that points above it: "file:line: include".
std::vector<std::string> upward_includes(const fs::path& root) {
  std::vector<std::string> found;
  const std::regex include_line(R"re(^\s*#\s*include\s*"([a-z_]+)/([^"]+)")re");
  for (const auto& layer : kLayers) {
    for (const auto& entry : fs::recursive_directory_iterator(root / layer)) {
      const auto ext = entry.path().extension();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
      std::ifstream in(entry.path());
      std::string line;
      for (int number = 1; std::getline(in, line); ++number) {
        std::smatch m;
        if (!std::regex_search(line, m, include_line)) continue;
        const std::string target = m[1];
        const std::string where = fs::relative(entry.path(), root).string() + ":" + std::to_string(number) + ": ";
        if (target == "guest") {
          if (m[2] != "mini/program_abi.h" && m[2] != "mini/control_page_abi.h") {
            found.push_back(where + line + " (only the guest ABI headers)");
          }
          continue;
        }
        const int to = layer_of(target);
        if (to > layer_of(layer)) found.push_back(where + line + " (" + layer + " may not include " + target + ")");
      }
    }
  }
  return found;
}

TEST(Layering, IncludesPointDownOnly) {
  const fs::path root = THAW_SOURCE_DIR;
  ASSERT_TRUE(fs::is_directory(root / "vmm")) << root;
  std::string report;
  for (const auto& f : upward_includes(root)) report += "  " + f + "\n";
  EXPECT_TRUE(report.empty()) << "includes that point up a layer:\n" << report;
}

// The check itself must be able to fail: an include of pool/ from a file
// under devices/ is found.
TEST(Layering, AnUpwardIncludeIsFound) {
  const fs::path root = fs::temp_directory_path() / ("thaw-layering-" + std::to_string(::getpid()));
  for (const auto& layer : kLayers) fs::create_directories(root / layer);
  std::ofstream(root / "devices" / "bad.h") << "#pragma once\n#include \"base/unique_fd.h\"\n#include \"pool/pool_manager.h\"\n";
  std::ofstream(root / "rpc" / "fine.cpp") << "#include \"vmm/vm.h\"\n#include \"guest/mini/program_abi.h\"\n";
  std::ofstream(root / "vmm" / "guest.cpp") << "#include \"guest/mini/kmain.c\"\n";
  auto found = upward_includes(root);
  fs::remove_all(root);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_NE(found[0].find("devices/bad.h:3:"), std::string::npos) << found[0];
  EXPECT_NE(found[1].find("vmm/guest.cpp:1:"), std::string::npos) << found[1];
}

}  // namespace
}  // namespace thaw
