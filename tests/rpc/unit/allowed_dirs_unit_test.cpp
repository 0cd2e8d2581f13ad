// createTemplate names files that thawd opens with its own rights: with
// allowed_image_dirs set, only paths inside them (symlinks resolved) pass
// check_spec, and the refusal names the path, never the file's content.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <kj/exception.h>

#include "rpc/error_mapping.h"
#include "rpc/validation.h"
#include "tests/temp_dir.h"

namespace thaw::rpc {
namespace {

class AllowedImageDirs : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(allowed_ + "/sub");
    std::filesystem::create_directories(outside_);
    std::ofstream(allowed_ + "/sub/kernel.elf") << "kernel";
    std::ofstream(outside_ + "/secret") << "root:x:0:0";
    limits_.allowed_image_dirs = resolve_allowed_dirs({allowed_ + "/"});
  }
  pool::TemplateSpec spec(const std::string& kernel) {
    pool::TemplateSpec s;
    s.name = "t";
    s.kernel = kernel;
    return s;
  }
  // The refusal's message, or "" if check_spec let `kernel` through.
  std::string refusal(const std::string& kernel) {
    try {
      check_spec(spec(kernel), limits_);
      return {};
    } catch (const kj::Exception& e) {
      return error_message(e);
    }
  }

  testing::TempDir scratch_{"thaw-allowed-dirs"};
  std::string allowed_ = scratch_ / "images";
  std::string outside_ = scratch_ / "elsewhere";
  Limits limits_;
};

TEST_F(AllowedImageDirs, InsideIsAcceptedOutsideIsRefusedWithoutContent) {
  EXPECT_EQ(refusal(allowed_ + "/sub/kernel.elf"), "");
  auto why = refusal(outside_ + "/secret");
  EXPECT_NE(why.find("outside the directories thawd may read images from"), std::string::npos) << why;
  EXPECT_NE(why.find("spec.kernel"), std::string::npos) << why;
  EXPECT_EQ(why.find("root:x"), std::string::npos) << why;
}

TEST_F(AllowedImageDirs, SymlinksAndDotDotCannotLeadOut) {
  ASSERT_EQ(::symlink((outside_ + "/secret").c_str(), (allowed_ + "/link").c_str()), 0);
  EXPECT_NE(refusal(allowed_ + "/link"), "");
  EXPECT_NE(refusal(allowed_ + "/../elsewhere/secret"), "");
  // A sibling whose name starts with the allowed one is not inside it.
  std::filesystem::create_directories(allowed_ + "-evil");
  std::ofstream(allowed_ + "-evil/k") << "k";
  EXPECT_NE(refusal(allowed_ + "-evil/k"), "");
}

TEST_F(AllowedImageDirs, MissingFileIsNamedAndNoLimitAllowsAnything) {
  auto why = refusal(allowed_ + "/absent.elf");
  EXPECT_NE(why.find("absent.elf"), std::string::npos) << why;
  limits_.allowed_image_dirs.clear();
  EXPECT_EQ(refusal(outside_ + "/secret"), "");
}

}  // namespace
}  // namespace thaw::rpc
