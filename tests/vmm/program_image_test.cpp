// load_program_image / plan_program_layout and the initial stack: what a
// static libc start-up reads at its first instruction.
#include "vmm/loader/program_image.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>

#include "guest/mini/program_abi.h"
#include "vmm/loader/program_stack.h"
#include "tests/vmm/program_elf_builder.h"
#include "tests/vmm/synthetic_images.h"

namespace thaw::vmm::loader {
namespace {

using testing::input_error_of;

constexpr uint64_t kMiB = 1ull << 20;

// Reads the guest's initial stack the way libc's _start does.
struct StackView {
  uint64_t argc = 0;
  std::vector<std::string> argv, envp;
  std::map<uint64_t, uint64_t> auxv;
  std::vector<uint64_t> auxv_order;
};

std::string guest_string(GuestMemory& mem, uint64_t addr) {
  std::string s;
  for (char c; (c = static_cast<char>(mem.read_obj<uint8_t>(GuestAddress(addr)))) != 0; ++addr) s += c;
  return s;
}

StackView read_stack(GuestMemory& mem, uint64_t sp) {
  StackView v;
  auto word = [&](uint64_t& at) {
    uint64_t w = mem.read_obj<uint64_t>(GuestAddress(at));
    at += 8;
    return w;
  };
  uint64_t at = sp;
  v.argc = word(at);
  for (uint64_t i = 0; i < v.argc; ++i) v.argv.push_back(guest_string(mem, word(at)));
  EXPECT_EQ(word(at), 0u) << "argv is NULL-terminated";
  for (uint64_t p; (p = word(at)) != 0;) v.envp.push_back(guest_string(mem, p));
  for (uint64_t type; (type = word(at)) != AT_NULL;) {
    v.auxv[type] = word(at);
    v.auxv_order.push_back(type);
  }
  return v;
}

ProgramImageInput simple_input(const std::vector<uint8_t>& elf) {
  ProgramImageInput in;
  in.elf = elf;
  in.name = "/host/bin/prog";
  in.exe_path = "/prog";
  in.args = {"-c", "echo hi"};
  in.env = {"HOME=/root", "LANG=C.UTF-8"};
  return in;
}

TEST(ProgramLayoutTest, FollowsTheFormulaFor64And128MiB) {
  for (uint64_t ram : {64 * kMiB, 128 * kMiB}) {
    const auto l = plan_program_layout(ram, 0x5e4b58, 0x2345, "prog");
    EXPECT_EQ(l.ram_top, ram);
    EXPECT_EQ(l.mailbox_addr, ram - MAILBOX_SIZE);  // MAILBOX_SIZE is page-sized
    EXPECT_EQ(l.mailbox_size, MAILBOX_SIZE);
    EXPECT_EQ(l.files_addr, ram - MAILBOX_SIZE - 0x3000);
    EXPECT_EQ(l.files_size, 0x2345u);
    EXPECT_EQ(l.stack_top, ram - 4 * kMiB) << "2 MiB boundary below the files";
    EXPECT_EQ(l.stack_bottom, l.stack_top - PROGRAM_STACK_SIZE);
    EXPECT_EQ(l.mmap_top, l.stack_bottom);
    EXPECT_EQ(l.brk_start, 0x5e5000u);
  }
}

TEST(ProgramLayoutTest, RefusesTooLittleRamAndSaysHowMuchIsNeeded) {
  // 6 MiB of segments + 1 MiB heap + 8 MiB stack -> 16 MiB, + 2.1 MiB mailbox.
  const auto msg = input_error_of([] { plan_program_layout(16 * kMiB, 6 * kMiB, 0, "/bin/prog"); });
  EXPECT_CONTAINS(msg, "program '/bin/prog' needs 19 MiB");
  EXPECT_CONTAINS(msg, "the guest has 16 MiB: raise --mem");
  EXPECT_NO_THROW(plan_program_layout(19 * kMiB, 6 * kMiB, 0, "/bin/prog"));
  EXPECT_CONTAINS(input_error_of([] { plan_program_layout(18 * kMiB, 6 * kMiB, 0, "p"); }), "needs 19 MiB");
}

TEST(ProgramLayoutTest, RefusesGuestsOverThreeGiB) {
  EXPECT_CONTAINS(input_error_of([] { plan_program_layout(3 * 1024 * kMiB + kMiB, 0x500000, 0, "p"); }),
                  "at most 3072 MiB");
}

TEST(ProgramPathTest, IsTheBasenameUnderRoot) {
  EXPECT_EQ(guest_program_path("/usr/bin/busybox"), "/busybox");
  EXPECT_EQ(guest_program_path("prog"), "/prog");
  EXPECT_EQ(guest_program_path("./dir/prog/"), "/prog");
  EXPECT_CONTAINS(input_error_of([] { guest_program_path("/"); }), "does not name a file");
}

TEST(ProgramEnvironmentTest, MergesTheUserOverTheDefaults) {
  EXPECT_EQ(program_environment({}), default_program_environment());
  const auto env = program_environment({"HOME=/root", "A=1", "A=2", "EMPTY="});
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin:/usr/bin", "HOME=/root", "TERM=dumb", "A=2", "EMPTY="}));
  EXPECT_CONTAINS(input_error_of([] { program_environment({"NOEQUALS"}); }), "has no '='");
  EXPECT_CONTAINS(input_error_of([] { program_environment({"=x"}); }), "empty key");
  EXPECT_CONTAINS(input_error_of([] { program_environment({std::string("K=a\0b", 5)}); }), "NUL");
}

TEST(ProgramEnvironmentTest, LimitsArgumentsToOneHundredTwentyEightKiB) {
  std::vector<std::string> argv{std::string(64 * 1024 - 1, 'a')};
  std::vector<std::string> envp{"K=" + std::string(64 * 1024 - 3, 'b')};
  EXPECT_NO_THROW(check_program_strings(argv, envp));
  envp[0] += 'c';
  EXPECT_CONTAINS(input_error_of([&] { check_program_strings(argv, envp); }), "limit is 131072");
  EXPECT_CONTAINS(input_error_of([] { check_program_strings({std::string("a\0", 2)}, {}); }), "argument 0");
}

TEST(ProgramImageTest, LoadsSegmentsAndZeroesTheBss) {
  auto mem = GuestMemory::create(64 * kMiB);
  const auto elf = testing::build_program_elf(testing::simple_program_spec());
  // Garbage where the bss goes: the loader must write the zeros itself.
  auto bss = mem.slice(GuestAddress(0x402080), 0x2f80);
  std::fill(bss.begin(), bss.end(), 0x5a);
  const auto layout = load_program_image(mem, simple_input(elf));
  EXPECT_EQ(layout.entry, 0x401000u);
  EXPECT_EQ(layout.brk_start, 0x405000u);
  auto text = mem.slice(GuestAddress(0x401000), 0x100);
  for (size_t i = 0; i < text.size(); ++i) ASSERT_EQ(text[i], static_cast<uint8_t>(i * 3 + 1)) << i;
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(0x40207f)), 0xab);
  for (uint8_t b : mem.slice(GuestAddress(0x402080), 0x2f80)) ASSERT_EQ(b, 0);
  EXPECT_EQ(std::memcmp(mem.slice(GuestAddress(0x400000), 4).data(), ELFMAG, 4), 0) << "headers loaded";
}

TEST(ProgramImageTest, BuildsTheInitialStackLikeLinux) {
  auto mem = GuestMemory::create(64 * kMiB);
  const auto elf = testing::build_program_elf(testing::simple_program_spec());
  const auto layout = load_program_image(mem, simple_input(elf));
  EXPECT_EQ(layout.stack_pointer % 16, 0u) << "RSP is 16-byte aligned with argc at [rsp]";
  EXPECT_LT(layout.stack_pointer, layout.stack_top);
  EXPECT_GT(layout.stack_pointer, layout.stack_bottom);

  const auto v = read_stack(mem, layout.stack_pointer);
  EXPECT_EQ(v.argc, 3u);
  EXPECT_EQ(v.argv, (std::vector<std::string>{"/prog", "-c", "echo hi"}));
  EXPECT_EQ(v.envp, (std::vector<std::string>{"PATH=/bin:/usr/bin", "HOME=/root", "TERM=dumb", "LANG=C.UTF-8"}));
  EXPECT_EQ(v.auxv.at(AT_PHDR), 0x400040u);
  EXPECT_EQ(v.auxv.at(AT_PHENT), sizeof(Elf64_Phdr));
  EXPECT_EQ(v.auxv.at(AT_PHNUM), 3u);
  EXPECT_EQ(v.auxv.at(AT_PAGESZ), 4096u);
  EXPECT_EQ(v.auxv.at(AT_ENTRY), 0x401000u);
  EXPECT_EQ(v.auxv.at(AT_BASE), 0u);
  EXPECT_EQ(v.auxv.at(AT_SECURE), 0u);
  EXPECT_EQ(v.auxv.at(AT_UID), 0u);
  EXPECT_EQ(v.auxv.at(AT_CLKTCK), 100u);
  EXPECT_NE(v.auxv.at(AT_HWCAP) & (1u << 25), 0u) << "SSE, which every x86-64 has";
  EXPECT_EQ(guest_string(mem, v.auxv.at(AT_PLATFORM)), "x86_64");
  EXPECT_EQ(guest_string(mem, v.auxv.at(AT_EXECFN)), "/prog");
  const uint64_t random = v.auxv.at(AT_RANDOM);
  EXPECT_GT(random, layout.stack_pointer);
  EXPECT_LE(random + 16, layout.stack_top);
  auto bytes = mem.slice(GuestAddress(random), 16);
  EXPECT_FALSE(std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; })) << "random bytes";
  // Every string lies above the tables and inside the stack.
  EXPECT_GT(v.auxv.at(AT_EXECFN), random);
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(layout.stack_top - 8)), 0u) << "Linux's end marker";
}

TEST(ProgramImageTest, FillsTheInfoPageAndZeroesTheMailbox) {
  auto mem = GuestMemory::create(128 * kMiB);
  const auto elf = testing::build_program_elf(testing::simple_program_spec());
  auto in = simple_input(elf);
  std::vector<uint8_t> archive(5000, 0x77);
  in.files_archive = archive;
  auto header = mem.slice(GuestAddress(128 * kMiB - MAILBOX_SIZE), MAILBOX_HEADER_SIZE);
  std::fill(header.begin(), header.end(), 0xee);
  const auto l = load_program_image(mem, in);

  const auto info = mem.read_obj<thaw_program_info>(GuestAddress(PROGRAM_INFO_ADDR));
  EXPECT_EQ(info.magic, PROGRAM_INFO_MAGIC);
  EXPECT_EQ(info.version, PROGRAM_INFO_VERSION);
  EXPECT_EQ(info.entry, l.entry);
  EXPECT_EQ(info.stack_pointer, l.stack_pointer);
  EXPECT_EQ(info.brk_start, 0x405000u);
  EXPECT_EQ(info.mmap_top, l.stack_bottom);
  EXPECT_EQ(info.stack_bottom, l.stack_bottom);
  EXPECT_EQ(info.stack_top, l.stack_top);
  EXPECT_EQ(info.files_addr, 128 * kMiB - MAILBOX_SIZE - 0x2000);
  EXPECT_EQ(info.files_size, 5000u);
  EXPECT_EQ(info.mailbox_addr, 128 * kMiB - MAILBOX_SIZE);
  EXPECT_EQ(info.mailbox_size, MAILBOX_SIZE);
  EXPECT_EQ(info.ram_top, 128 * kMiB);
  EXPECT_STREQ(info.exe_path, "/prog");
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(info.files_addr + 4999)), 0x77);
  for (uint8_t b : mem.slice(GuestAddress(info.mailbox_addr), MAILBOX_HEADER_SIZE)) ASSERT_EQ(b, 0);
}

TEST(ProgramImageTest, RefusesBeforeWritingAnything) {
  auto mem = GuestMemory::create(16 * kMiB);
  const auto elf = testing::build_program_elf(testing::simple_program_spec());
  EXPECT_CONTAINS(input_error_of([&] { load_program_image(mem, simple_input(elf)); }), "raise --mem");
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(PROGRAM_INFO_ADDR)), 0u);
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(0x401000)), 0u);
  auto in = simple_input(elf);
  in.exe_path = "prog";
  EXPECT_CONTAINS(input_error_of([&] { load_program_image(mem, in); }), "not absolute");
}

TEST(ProgramImageTest, LoadsBusybox) {
  std::ifstream file("/bin/busybox", std::ios::binary);
  if (!file) GTEST_SKIP() << "/bin/busybox is not installed here (apt-get install busybox-static)";
  const std::vector<uint8_t> image{std::istreambuf_iterator<char>(file), {}};
  if (!input_error_of([&] { check_program_image(64 * kMiB, simple_input(image)); }).starts_with("<no")) {
    GTEST_SKIP() << "/bin/busybox is not a static executable here";
  }
  auto mem = GuestMemory::create(64 * kMiB);
  auto in = simple_input(image);
  in.exe_path = "/busybox";
  const auto layout = load_program_image(mem, in);
  Elf64_Ehdr eh;
  std::memcpy(&eh, image.data(), sizeof eh);
  EXPECT_EQ(layout.entry, eh.e_entry);
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, image.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    auto got = mem.slice(GuestAddress(ph.p_vaddr), ph.p_memsz);
    ASSERT_EQ(std::memcmp(got.data(), image.data() + ph.p_offset, ph.p_filesz), 0) << "segment " << i;
    for (uint64_t j = ph.p_filesz; j < ph.p_memsz; ++j) ASSERT_EQ(got[j], 0) << "bss of segment " << i;
    EXPECT_LE(ph.p_vaddr + ph.p_memsz, layout.brk_start);
  }
  const auto v = read_stack(mem, layout.stack_pointer);
  EXPECT_EQ(v.argv.front(), "/busybox");
  Elf64_Phdr first;
  std::memcpy(&first, mem.slice(GuestAddress(v.auxv.at(AT_PHDR)), sizeof first).data(), sizeof first);
  Elf64_Phdr expected;
  std::memcpy(&expected, image.data() + eh.e_phoff, sizeof expected);
  EXPECT_EQ(std::memcmp(&first, &expected, sizeof first), 0) << "AT_PHDR points at the loaded program headers";
}

}  // namespace
}  // namespace thaw::vmm::loader
