#include "vmm/loader/kernel_image.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "synthetic_images.h"
#include "tests/temp_dir.h"
#include "vmm/loader/cmdline.h"

namespace thaw::vmm::loader {
namespace {

using testing::input_error_of;

TEST(DetectKernelFormat, RecognisesElfAndBzImage) {
  EXPECT_EQ(detect_kernel_format(testing::make_minimal_elf(), "k"), KernelFormat::kElf64);
  EXPECT_EQ(detect_kernel_format(testing::make_bzimage(), "k"), KernelFormat::kBzImage);
  EXPECT_STREQ(to_string(KernelFormat::kBzImage), "bzImage");
}

TEST(DetectKernelFormat, RejectsRandomBytes) {
  std::mt19937 rng(42);
  std::vector<uint8_t> junk(8192);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  junk[0] = 0x12;
  junk[1] = 0x34;
  junk[2] = 0x56;
  junk[3] = 0x78;
  auto msg = input_error_of([&] { detect_kernel_format(junk, "foo.bin"); });
  EXPECT_CONTAINS(msg, "kernel 'foo.bin': neither ELF64 nor bzImage (8192 bytes; no ELF magic at 0");
  EXPECT_EQ(msg.find("12 34"), std::string::npos) << "the file's content stays out of the message: " << msg;
}

TEST(DetectKernelFormat, RejectsShortAndEmptyInput) {
  std::vector<uint8_t> tiny = {0x7f, 'E', 'L'};
  EXPECT_CONTAINS(input_error_of([&] { detect_kernel_format(tiny, "t"); }), "(3 bytes; no ELF magic at 0");
  EXPECT_CONTAINS(input_error_of([&] { detect_kernel_format({}, "e"); }), "empty");
}

class ReadImageFileTest : public ::testing::Test {
 protected:
  thaw::testing::TempDir scratch{"thaw-image-test"};
  std::string dir = scratch.path();
  std::string write(const char* name, const std::string& content) {
    std::ofstream(dir + name, std::ios::binary) << content;
    return dir + name;
  }
};

TEST_F(ReadImageFileTest, ReadsTheWholeFile) {
  auto path = write("/k", std::string("\x7f" "ELF and more"));
  auto data = read_image_file(path, "kernel");
  ASSERT_EQ(data.size(), 13u);
  EXPECT_EQ(data[0], 0x7f);
  EXPECT_EQ(data[12], 'e');
}

TEST_F(ReadImageFileTest, ReportsAMissingFile) {
  auto msg = input_error_of([&] { read_image_file(dir + "/nope", "kernel"); });
  EXPECT_CONTAINS(msg, "kernel '" + dir + "/nope': cannot open: No such file or directory");
}

TEST_F(ReadImageFileTest, ReportsAnEmptyFile) {
  auto path = write("/empty", "");
  EXPECT_CONTAINS(input_error_of([&] { read_image_file(path, "initrd"); }), "initrd '" + path + "': file is empty");
}

TEST_F(ReadImageFileTest, ReportsADirectory) {
  EXPECT_CONTAINS(input_error_of([&] { read_image_file(dir, "kernel"); }), "not a regular file");
}

TEST_F(ReadImageFileTest, ReportsATooLargeFile) {
  auto path = write("/k", std::string(3 << 20, 'x'));
  auto msg = input_error_of([&] { read_image_file(path, "kernel", 2 << 20); });
  EXPECT_CONTAINS(msg, "file is 3 MiB; the limit is 2 MiB");
}

TEST(Cmdline, AcceptsUpToTheLimit) {
  EXPECT_NO_THROW(validate_cmdline(std::string(2047, 'a'), elf_cmdline_limit(), "k"));
  EXPECT_CONTAINS(input_error_of([] { validate_cmdline(std::string(3000, 'a'), 2047, "the kernel"); }),
                  "command line is 3000 bytes; the kernel accepts at most 2047");
}

TEST(Cmdline, RejectsNulBytes) {
  std::string s("root=/dev/vda\0evil", 18);
  EXPECT_CONTAINS(input_error_of([&] { validate_cmdline(s, 2047, "k"); }), "NUL byte at offset 13");
}

TEST(Cmdline, LimitsFollowTheBootProtocol) {
  EXPECT_EQ(bzimage_cmdline_limit(0x0205, 4096), 255u) << "cmdline_size exists from 2.06 on";
  EXPECT_EQ(bzimage_cmdline_limit(0x020f, 4095), 4095u);
  EXPECT_EQ(elf_cmdline_limit(), 2047u);
}

TEST(Cmdline, WritesNulTerminated) {
  auto mem = GuestMemory::create(128 << 20);
  std::memset(mem.host_base() + 0x20000, 'Z', 64);
  EXPECT_EQ(write_cmdline(mem, "a=b", 2047, "k"), 0x20000u);
  EXPECT_STREQ(reinterpret_cast<const char*>(mem.host_base() + 0x20000), "a=b");
}

}  // namespace
}  // namespace thaw::vmm::loader
