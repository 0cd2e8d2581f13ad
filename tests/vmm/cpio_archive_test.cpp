// pack_cpio_directory: the program's files as the guest will unpack them.
#include "vmm/loader/cpio_archive.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/temp_dir.h"
#include "tests/vmm/synthetic_images.h"

namespace thaw::vmm::loader {
namespace {

using vmm::testing::input_error_of;

void write_file(const std::string& path, const std::string& contents, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << contents;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

std::string text(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }

TEST(CpioArchiveTest, RoundTripsFilesDirectoriesAndSymlinksInSortedOrder) {
  thaw::testing::TempDir dir("thaw-cpio");
  std::filesystem::create_directories(dir / "lib/sub");
  ASSERT_EQ(::chmod((dir / "lib").c_str(), 0750), 0);
  write_file(dir / "z.txt", "last", 0600);
  write_file(dir / "a.lua", "print(1)\n", 0755);
  write_file(dir / "lib/x.lua", "return 42", 0644);
  write_file(dir / "empty", "");
  ASSERT_EQ(::symlink("lib/x.lua", (dir / "link").c_str()), 0);

  const auto archive = pack_cpio_directory(dir.path());
  EXPECT_EQ(archive.size() % 4, 0u);
  const auto entries = read_cpio(archive);
  ASSERT_EQ(entries.size(), 7u);
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.lua", "empty", "lib", "lib/sub", "lib/x.lua", "link", "z.txt"}));
  EXPECT_EQ(entries[0].mode, static_cast<uint32_t>(S_IFREG | 0755));
  EXPECT_EQ(text(entries[0].data), "print(1)\n");
  EXPECT_TRUE(entries[1].data.empty());
  EXPECT_EQ(entries[2].mode, static_cast<uint32_t>(S_IFDIR | 0750));
  EXPECT_EQ(text(entries[4].data), "return 42");
  EXPECT_EQ(entries[5].mode, static_cast<uint32_t>(S_IFLNK | 0777));
  EXPECT_EQ(text(entries[5].data), "lib/x.lua");
  EXPECT_EQ(entries[6].mode, static_cast<uint32_t>(S_IFREG | 0600));

  // Reproducible: the same tree packs to the same bytes.
  EXPECT_EQ(pack_cpio_directory(dir.path()), archive);
}

TEST(CpioArchiveTest, WritesNewcHeadersWithPaddingAndATrailer) {
  std::vector<uint8_t> out;
  append_cpio_entry(out, CpioEntry{"ab", S_IFREG | 0644, {'x', 'y', 'z'}}, 7);
  // 110-byte header + "ab\0" = 113 -> padded to 116; 3 data bytes -> 120.
  ASSERT_EQ(out.size(), 120u);
  const std::string header(out.begin(), out.begin() + 110);
  EXPECT_EQ(header.substr(0, 6), "070701");
  EXPECT_EQ(header.substr(6, 8), "00000007");     // c_ino
  EXPECT_EQ(header.substr(14, 8), "000081A4");    // c_mode 0100644
  EXPECT_EQ(header.substr(22, 16), std::string(16, '0'));  // uid, gid
  EXPECT_EQ(header.substr(46, 8), "00000000");    // c_mtime
  EXPECT_EQ(header.substr(54, 8), "00000003");    // c_filesize
  EXPECT_EQ(header.substr(94, 8), "00000003");    // c_namesize incl. NUL
  EXPECT_EQ(std::string(out.begin() + 110, out.begin() + 113), std::string("ab\0", 3));
  EXPECT_EQ(out[116], 'x');
  EXPECT_EQ(out[119], 0);
  append_cpio_trailer(out);
  EXPECT_EQ(out.size() % 4, 0u);
  const auto entries = read_cpio(out);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "ab");
}

TEST(CpioArchiveTest, RefusesAFifoWithoutOpeningIt) {
  thaw::testing::TempDir dir("thaw-cpio");
  write_file(dir / "ok", "fine");
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0644), 0);
  // Opening the FIFO for reading would block this test forever.
  const auto msg = input_error_of([&] { pack_cpio_directory(dir.path()); });
  EXPECT_CONTAINS(msg, "'pipe' is a FIFO");
  EXPECT_CONTAINS(msg, dir.path());
}

TEST(CpioArchiveTest, RefusesASocket) {
  thaw::testing::TempDir dir("thaw-cpio");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = dir / "sock";
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  EXPECT_CONTAINS(input_error_of([&] { pack_cpio_directory(dir.path()); }), "'sock' is a socket");
}

TEST(CpioArchiveTest, RefusesAMissingDirectoryAndAFile) {
  thaw::testing::TempDir dir("thaw-cpio");
  EXPECT_CONTAINS(input_error_of([&] { pack_cpio_directory(dir / "nope"); }), "No such file or directory");
  write_file(dir / "file", "x");
  EXPECT_CONTAINS(input_error_of([&] { pack_cpio_directory(dir / "file"); }), "is not a directory");
}

TEST(CpioArchiveTest, RefusesAnArchiveOverTheCap) {
  thaw::testing::TempDir dir("thaw-cpio");
  write_file(dir / "big", std::string(5000, 'b'));
  EXPECT_CONTAINS(input_error_of([&] { pack_cpio_directory(dir.path(), 4096); }), "'big' alone is 5000 bytes");
  EXPECT_NO_THROW(pack_cpio_directory(dir.path(), 8192));
  write_file(dir / "big2", std::string(3000, 'c'));
  EXPECT_CONTAINS(input_error_of([&] { pack_cpio_directory(dir.path(), 8192); }),
                  "packs to more than 8192 bytes (at 'big2')");
}

TEST(CpioArchiveTest, ReaderRefusesBrokenArchives) {
  std::vector<uint8_t> out;
  append_cpio_entry(out, CpioEntry{"f", S_IFREG | 0644, std::vector<uint8_t>(10, 1)}, 1);
  append_cpio_trailer(out);
  auto bad = out;
  bad[0] = '9';
  EXPECT_CONTAINS(input_error_of([&] { read_cpio(bad); }), "no newc magic");
  bad = out;
  bad[60] = 'G';  // inside c_filesize
  EXPECT_CONTAINS(input_error_of([&] { read_cpio(bad); }), "not hex");
  bad = out;
  std::memcpy(bad.data() + 54, "FFFFFFFF", 8);  // a file size past the end
  EXPECT_CONTAINS(input_error_of([&] { read_cpio(bad); }), "runs past the end");
  EXPECT_CONTAINS(input_error_of([&] { read_cpio(std::span(out).first(50)); }), "truncated header");
}

}  // namespace
}  // namespace thaw::vmm::loader
