// read_program_files / validate_program_spec: the user's program input is
// checked, without /dev/kvm, before anything is opened for the VM.
#include "vmm/program_load.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "guest/mini/program_abi.h"
#include "tests/temp_dir.h"
#include "tests/vmm/program_elf_builder.h"
#include "tests/vmm/synthetic_images.h"
#include "vmm/loader/cpio_archive.h"

namespace thaw::vmm {
namespace {

using testing::input_error_of;

class ProgramLoadTest : public ::testing::Test {
 protected:
  thaw::testing::TempDir dir_{"thaw-program"};

  std::string write_program(const std::string& name, const testing::ProgramElfSpec& spec) {
    const auto image = testing::build_program_elf(spec);
    std::ofstream(dir_ / name, std::ios::binary).write(reinterpret_cast<const char*>(image.data()),
                                                      static_cast<std::streamsize>(image.size()));
    return dir_ / name;
  }

  VmConfig config_for(const std::string& path) {
    VmConfig config;
    config.kernel_path = "/unused/kernel";
    config.mem_mib = 64;
    config.program = ProgramSpec{path, {"arg"}, {"K=V"}, ""};
    return config;
  }
};

TEST_F(ProgramLoadTest, ReadsTheProgramAndPacksItsFiles) {
  auto config = config_for(write_program("prog", testing::simple_program_spec()));
  std::filesystem::create_directories(dir_ / "files/lib");
  std::ofstream(dir_ / "files/lib/x.lua") << "return 1";
  config.program->files_dir = dir_ / "files";
  const auto files = read_program_files(config);
  EXPECT_EQ(files.guest_path, "/prog");
  EXPECT_EQ(files.elf.size(), std::filesystem::file_size(dir_ / "prog"));
  const auto entries = loader::read_cpio(files.archive);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].name, "lib/x.lua");

  auto mem = GuestMemory::create(64 << 20);
  const auto layout = load_program(mem, *config.program, files);
  EXPECT_EQ(layout.files_size, files.archive.size());
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(PROGRAM_INFO_ADDR)), PROGRAM_INFO_MAGIC);
}

TEST_F(ProgramLoadTest, RefusesAFifoWithoutBlocking) {
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0644), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_CONTAINS(input_error_of([&] { validate_program_spec(config_for(dir_ / "fifo")); }), "not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(ProgramLoadTest, NamesAMissingProgramAndFilesDirectory) {
  const std::string missing = dir_ / "missing";
  const auto msg = input_error_of([&] { validate_program_spec(config_for(missing)); });
  EXPECT_CONTAINS(msg, missing);
  EXPECT_CONTAINS(msg, "No such file");
  auto config = config_for(write_program("prog", testing::simple_program_spec()));
  config.program->files_dir = dir_ / "nofiles";
  EXPECT_CONTAINS(input_error_of([&] { validate_program_spec(config); }), "files directory");
}

TEST_F(ProgramLoadTest, RefusesADynamicProgramTooLittleRamAndAnInitrd) {
  auto spec = testing::simple_program_spec();
  spec.interp = true;
  EXPECT_CONTAINS(input_error_of([&] { validate_program_spec(config_for(write_program("dyn", spec))); }),
                  "link it statically");
  auto config = config_for(write_program("prog", testing::simple_program_spec()));
  config.mem_mib = 8;
  EXPECT_CONTAINS(input_error_of([&] { validate_program_spec(config); }), "raise --mem");
  config.mem_mib = 4096;
  EXPECT_CONTAINS(input_error_of([&] { validate_program_spec(config); }), "at most 3072 MiB");
  config.mem_mib = 64;
  config.initrd_path = "/some/initrd";
  EXPECT_CONTAINS(input_error_of([&] { validate_program_spec(config); }), "--initrd cannot be combined");
  config.initrd_path.clear();
  config.program->env = {"BAD"};
  EXPECT_CONTAINS(input_error_of([&] { validate_program_spec(config); }), "has no '='");
  EXPECT_NO_THROW(validate_program_spec(config_for(dir_ / "prog")));
}

}  // namespace
}  // namespace thaw::vmm
