#include "vmm/loader/elf_loader.h"

#include <gtest/gtest.h>

#include "synthetic_images.h"

namespace thaw::vmm::loader {
namespace {

using testing::ElfSegment;
using testing::input_error_of;
using testing::make_elf;

class ElfLoaderTest : public ::testing::Test {
 protected:
  GuestMemory mem = GuestMemory::create(128 << 20);
  std::string load_error(const std::vector<uint8_t>& img) {
    return input_error_of([&] { load_elf_kernel(mem, img, "vmlinux"); });
  }
};

TEST_F(ElfLoaderTest, LoadsSegmentsAtTheirPhysicalAddresses) {
  std::vector<uint8_t> text = {0xf4, 0xeb, 0xfe, 0x11};
  std::vector<uint8_t> data = {1, 2, 3, 4, 5};
  auto img = make_elf(0x100001, {ElfSegment{PT_LOAD, 0x100000, text, 0},
                                 ElfSegment{PT_LOAD, 0x300000, data, 0x3000}});
  // Garbage where .bss goes: the loader must zero it.
  std::memset(mem.host_base() + 0x300000, 0xcc, 0x3000);
  auto k = load_elf_kernel(mem, img, "vmlinux");
  EXPECT_EQ(k.entry, 0x100001u);
  EXPECT_EQ(k.load_start, 0x100000u);
  EXPECT_EQ(k.load_end, 0x303000u);
  EXPECT_FALSE(k.pvh_entry.has_value());
  EXPECT_EQ(std::memcmp(mem.host_base() + 0x100000, text.data(), text.size()), 0);
  EXPECT_EQ(std::memcmp(mem.host_base() + 0x300000, data.data(), data.size()), 0);
  for (size_t i = data.size(); i < 0x3000; ++i) ASSERT_EQ(mem.host_base()[0x300000 + i], 0) << i;
}

TEST_F(ElfLoaderTest, FindsThePvhEntryNote) {
  std::vector<uint8_t> code(16, 0x90);
  auto img = make_elf(0x100000, {ElfSegment{PT_NOTE, 0, testing::xen_note(12, 0x55), 0},
                                 ElfSegment{PT_NOTE, 0, testing::xen_note(18, 0x1000123), 0},
                                 ElfSegment{PT_LOAD, 0x100000, code, 0}});
  auto k = load_elf_kernel(mem, img, "mini");
  ASSERT_TRUE(k.pvh_entry.has_value());
  EXPECT_EQ(*k.pvh_entry, 0x1000123u);
}

TEST_F(ElfLoaderTest, FindsA32BitPvhEntryNote) {
  std::vector<uint8_t> code(16, 0x90);
  auto img = make_elf(0x100000, {ElfSegment{PT_NOTE, 0, testing::xen_note(18, 0x100040, 4), 0},
                                 ElfSegment{PT_LOAD, 0x100000, code, 0}});
  EXPECT_EQ(load_elf_kernel(mem, img, "mini").pvh_entry, std::optional<uint64_t>(0x100040));
}

TEST_F(ElfLoaderTest, RejectsATruncatedHeader) {
  auto img = testing::make_minimal_elf();
  img.resize(40);
  auto msg = load_error(img);
  EXPECT_CONTAINS(msg, "kernel 'vmlinux'");
  EXPECT_CONTAINS(msg, "truncated ELF header");
}

TEST_F(ElfLoaderTest, RejectsA32BitClass) {
  auto img = testing::make_minimal_elf();
  img[EI_CLASS] = ELFCLASS32;
  EXPECT_CONTAINS(load_error(img), "not ELFCLASS64");
}

TEST_F(ElfLoaderTest, RejectsBigEndian) {
  auto img = testing::make_minimal_elf();
  img[EI_DATA] = ELFDATA2MSB;
  EXPECT_CONTAINS(load_error(img), "little-endian");
}

TEST_F(ElfLoaderTest, RejectsAnotherMachine) {
  auto img = testing::make_minimal_elf();
  auto eh = testing::elf_header_of(img);
  eh.e_machine = EM_386;
  testing::set_elf_header(img, eh);
  EXPECT_CONTAINS(load_error(img), "ELF machine 3 is not x86-64");
}

TEST_F(ElfLoaderTest, RejectsSharedObjects) {
  auto img = testing::make_minimal_elf();
  auto eh = testing::elf_header_of(img);
  eh.e_type = ET_DYN;
  testing::set_elf_header(img, eh);
  EXPECT_CONTAINS(load_error(img), "not ET_EXEC");
}

TEST_F(ElfLoaderTest, RejectsProgramHeadersOutsideTheFile) {
  auto img = testing::make_minimal_elf();
  auto eh = testing::elf_header_of(img);
  eh.e_phoff = img.size() - 8;
  testing::set_elf_header(img, eh);
  EXPECT_CONTAINS(load_error(img), "are outside the file");
  eh.e_phoff = ~0ull - 8;  // must not wrap around
  testing::set_elf_header(img, eh);
  EXPECT_CONTAINS(load_error(img), "are outside the file");
  eh = testing::elf_header_of(testing::make_minimal_elf());
  eh.e_phnum = 1000;
  testing::set_elf_header(img, eh);
  EXPECT_CONTAINS(load_error(img), "e_phnum 1000");
}

TEST_F(ElfLoaderTest, RejectsFileSizeLargerThanMemorySize) {
  auto img = testing::make_minimal_elf();
  auto ph = testing::phdr_of(img, 0);
  ph.p_memsz = ph.p_filesz - 1;
  testing::set_phdr(img, 0, ph);
  EXPECT_CONTAINS(load_error(img), "p_filesz 0x1000 is larger than p_memsz 0xfff");
}

TEST_F(ElfLoaderTest, RejectsSegmentDataBeyondTheFile) {
  auto img = testing::make_minimal_elf();
  auto ph = testing::phdr_of(img, 0);
  ph.p_offset = img.size() - 100;
  testing::set_phdr(img, 0, ph);
  EXPECT_CONTAINS(load_error(img), "beyond the end of the file");
}

TEST_F(ElfLoaderTest, RejectsASegmentOutsideRam) {
  std::vector<uint8_t> code(16, 0x90);
  auto img = make_elf(0x100000, {ElfSegment{PT_LOAD, 0x100000, code, 0},
                                 ElfSegment{PT_LOAD, 0x7ff'f000, code, 0x2000}});
  auto msg = load_error(img);
  EXPECT_CONTAINS(msg, "kernel 'vmlinux': segment 1 [0x7fff000, 0x8001000) is outside guest RAM (128 MiB)");
  // Nothing was copied: checks run before the first byte moves.
  EXPECT_EQ(mem.host_base()[0x100000], 0);
}

TEST_F(ElfLoaderTest, RejectsASegmentWhoseEndWrapsAround) {
  std::vector<uint8_t> code(16, 0x90);
  auto img = make_elf(0x100000, {ElfSegment{PT_LOAD, 0x100000, code, ~0ull - 0x100}});
  EXPECT_CONTAINS(load_error(img), "outside guest RAM");
}

TEST_F(ElfLoaderTest, RejectsASegmentBelowOneMiB) {
  std::vector<uint8_t> code(16, 0x90);
  auto img = make_elf(0x9000, {ElfSegment{PT_LOAD, 0x9000, code, 0}});
  auto msg = load_error(img);
  EXPECT_CONTAINS(msg, "segment 0 [0x9000, 0x9010) starts below 1 MiB");
  EXPECT_CONTAINS(msg, "boot structures");
}

TEST_F(ElfLoaderTest, RejectsAnEntryOutsideTheSegments) {
  auto img = testing::make_minimal_elf();
  auto eh = testing::elf_header_of(img);
  eh.e_entry = 0xffff'ffff'8100'0000ull;  // a virtual address
  testing::set_elf_header(img, eh);
  EXPECT_CONTAINS(load_error(img), "entry point 0xffffffff81000000 is not inside any PT_LOAD");
}

TEST_F(ElfLoaderTest, RejectsAFileWithoutLoadSegments) {
  auto img = make_elf(0x100000, {ElfSegment{PT_NOTE, 0, testing::xen_note(18, 0x100000), 0}});
  EXPECT_CONTAINS(load_error(img), "no PT_LOAD segment");
}

TEST_F(ElfLoaderTest, RejectsANoteRunningPastItsSegment) {
  auto note = testing::xen_note(18, 0x100000);
  note[4] = 200;  // descsz far beyond the segment
  std::vector<uint8_t> code(16, 0x90);
  auto img = make_elf(0x100000, {ElfSegment{PT_NOTE, 0, note, 0}, ElfSegment{PT_LOAD, 0x100000, code, 0}});
  EXPECT_CONTAINS(load_error(img), "runs past the end of the segment");
}

}  // namespace
}  // namespace thaw::vmm::loader
