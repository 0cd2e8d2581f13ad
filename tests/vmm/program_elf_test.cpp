// check_program_elf: a user's program file is untrusted input; each test
// breaks one thing and expects the message to say what.
#include "vmm/loader/program_elf.h"

#include <gtest/gtest.h>

#include <limits>

#include "guest/mini/program_abi.h"
#include "tests/vmm/program_elf_builder.h"
#include "tests/vmm/synthetic_images.h"

namespace thaw::vmm::loader {
namespace {

using testing::build_program_elf;
using testing::input_error_of;
using testing::simple_program_spec;

std::string refusal(const std::vector<uint8_t>& image, uint64_t user_end = UINT64_MAX) {
  return input_error_of([&] { check_program_elf(image, "/tmp/prog", user_end); });
}

TEST(ProgramElfTest, AcceptsAStaticExecutableAndFindsItsHeaders) {
  const auto elf = check_program_elf(build_program_elf(simple_program_spec()), "prog");
  EXPECT_FALSE(elf.pie);
  EXPECT_EQ(elf.bias, 0u);
  EXPECT_EQ(elf.entry, 0x401000u);
  EXPECT_EQ(elf.phdr_addr, 0x400040u);  // inside the header PT_LOAD at file offset 64
  EXPECT_EQ(elf.phnum, 3u);
  ASSERT_EQ(elf.segments.size(), 3u);
  EXPECT_EQ(elf.load_start, 0x400000u);
  EXPECT_EQ(elf.load_end, 0x405000u);
  EXPECT_EQ(elf.segments[2].filesz, 0x80u);
  EXPECT_EQ(elf.segments[2].memsz, 0x3000u);
}

TEST(ProgramElfTest, RefusesADynamicallyLinkedProgram) {
  auto spec = simple_program_spec();
  spec.interp = true;
  const auto msg = refusal(build_program_elf(spec));
  EXPECT_CONTAINS(msg, "/tmp/prog");
  EXPECT_CONTAINS(msg, "dynamically linked");
  EXPECT_CONTAINS(msg, "statically");
}

TEST(ProgramElfTest, RefusesTruncatedAndForeignHeaders) {
  auto image = build_program_elf(simple_program_spec());
  EXPECT_CONTAINS(refusal(std::vector<uint8_t>(image.begin(), image.begin() + 40)), "truncated ELF header");
  EXPECT_CONTAINS(refusal(std::vector<uint8_t>{'#', '!', '/', 'b', 'i', 'n'}), "truncated");
  std::vector<uint8_t> script(100, ' ');
  script[0] = '#';
  script[1] = '!';
  EXPECT_CONTAINS(refusal(script), "a script");

  auto eh = testing::elf_header_of(image);
  auto bad = image;
  eh.e_ident[EI_CLASS] = ELFCLASS32;
  testing::set_elf_header(bad, eh);
  EXPECT_CONTAINS(refusal(bad), "64-bit");

  eh = testing::elf_header_of(image);
  eh.e_machine = EM_AARCH64;
  bad = image;
  testing::set_elf_header(bad, eh);
  EXPECT_CONTAINS(refusal(bad), "is not x86-64");

  eh = testing::elf_header_of(image);
  eh.e_type = ET_REL;
  bad = image;
  testing::set_elf_header(bad, eh);
  EXPECT_CONTAINS(refusal(bad), "neither ET_EXEC nor ET_DYN");

  eh = testing::elf_header_of(image);
  eh.e_phnum = 1000;  // the table would run past the file
  bad = image;
  testing::set_elf_header(bad, eh);
  EXPECT_CONTAINS(refusal(bad), "run past the end of the file");

  eh = testing::elf_header_of(image);
  eh.e_phoff = std::numeric_limits<uint64_t>::max() - 8;  // offset + size overflows
  bad = image;
  testing::set_elf_header(bad, eh);
  EXPECT_CONTAINS(refusal(bad), "run past the end of the file");
}

TEST(ProgramElfTest, RefusesASegmentWhoseFileRangeOverflows) {
  auto image = build_program_elf(simple_program_spec());
  auto ph = testing::phdr_of(image, 1);
  ph.p_offset = std::numeric_limits<uint64_t>::max() - 0x10;  // p_offset + p_filesz wraps
  ph.p_vaddr = 0x401000 + (ph.p_offset % 0x1000);
  testing::set_phdr(image, 1, ph);
  EXPECT_CONTAINS(refusal(image), "runs past the end of the file");
}

TEST(ProgramElfTest, RefusesFileSizeOverMemorySize) {
  auto image = build_program_elf(simple_program_spec());
  auto ph = testing::phdr_of(image, 2);
  ph.p_memsz = ph.p_filesz - 1;
  testing::set_phdr(image, 2, ph);
  EXPECT_CONTAINS(refusal(image), "larger than p_memsz");
}

TEST(ProgramElfTest, RefusesASegmentBelowTwoMiB) {
  auto spec = simple_program_spec();
  spec.header_vaddr = 0x100000;
  EXPECT_CONTAINS(refusal(build_program_elf(spec)), "below 0x200000");
}

TEST(ProgramElfTest, RefusesASegmentPastTheStackBottom) {
  const auto image = build_program_elf(simple_program_spec());
  EXPECT_NO_THROW(check_program_elf(image, "prog", 0x405000));
  EXPECT_CONTAINS(refusal(image, 0x404fff), "past the bottom of the stack");
}

TEST(ProgramElfTest, RefusesOverlappingSegments) {
  auto spec = simple_program_spec();
  spec.segments.push_back({0x404000, std::vector<uint8_t>(16, 1), 0});  // inside the bss of 0x402000
  EXPECT_CONTAINS(refusal(build_program_elf(spec)), "overlaps the segment at 0x402000");
}

TEST(ProgramElfTest, RefusesAnEntryOutsideTheSegments) {
  auto spec = simple_program_spec();
  spec.entry = 0x300000;
  EXPECT_CONTAINS(refusal(build_program_elf(spec)), "entry point 0x300000");
}

TEST(ProgramElfTest, RefusesBadAlignment) {
  auto image = build_program_elf(simple_program_spec());
  auto ph = testing::phdr_of(image, 1);
  ph.p_align = 0x3000;
  testing::set_phdr(image, 1, ph);
  EXPECT_CONTAINS(refusal(image), "p_align 0x3000");
  ph.p_align = 0x1000;
  ph.p_vaddr += 8;  // no longer congruent with p_offset modulo the page
  testing::set_phdr(image, 1, ph);
  EXPECT_CONTAINS(refusal(image), "differ modulo the 4 KiB page");
}

TEST(ProgramElfTest, RefusesProgramHeadersThatAreNotLoaded) {
  auto spec = simple_program_spec();
  spec.header_vaddr = UINT64_MAX;
  EXPECT_CONTAINS(refusal(build_program_elf(spec)), "AT_PHDR");
}

TEST(ProgramElfTest, LoadsAStaticPieAtThePieBase) {
  testing::ProgramElfSpec spec;
  spec.type = ET_DYN;
  spec.header_vaddr = 0;
  spec.entry = 0x1010;
  spec.segments.push_back({0x1000, std::vector<uint8_t>(0x40, 0xc3), 0});
  const auto elf = check_program_elf(build_program_elf(spec), "pie");
  EXPECT_TRUE(elf.pie);
  EXPECT_EQ(elf.bias, PROGRAM_PIE_BASE);
  EXPECT_EQ(elf.entry, PROGRAM_PIE_BASE + 0x1010);
  EXPECT_EQ(elf.phdr_addr, PROGRAM_PIE_BASE + 0x40);
  EXPECT_EQ(elf.segments.front().addr, PROGRAM_PIE_BASE);
}

}  // namespace
}  // namespace thaw::vmm::loader
