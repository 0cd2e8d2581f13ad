// fuzz_program_image: a user's static program (vmm/loader/program_elf.h's
// check_program_elf) and the whole program image load
// (vmm/loader/program_image.h: ELF, files archive, stack, info page) into
// 64 MiB of guest RAM. The input's first byte splits it: the files archive
// (cpio newc, read on the host by read_cpio too) is that many 256-byte
// blocks from the end, the program ELF is the rest.
#include <cstdint>
#include <span>
#include <string>

#include "vmm/loader/cpio_archive.h"
#include "vmm/loader/program_elf.h"
#include "vmm/loader/program_image.h"
#include "vmm/memory/guest_memory.h"
#include "base/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t archive_bytes = static_cast<size_t>(data[0]) * 256;
  std::span<const uint8_t> rest(data + 1, size - 1);
  if (archive_bytes > rest.size()) archive_bytes = rest.size();
  auto elf = rest.first(rest.size() - archive_bytes);
  auto archive = rest.last(archive_bytes);

  try {
    (void)thaw::vmm::loader::check_program_elf(elf, "fuzz-program");
  } catch (const thaw::InputError&) {
  }
  try {
    (void)thaw::vmm::loader::read_cpio(archive);
  } catch (const thaw::InputError&) {
  }

  static auto mem = thaw::vmm::GuestMemory::anonymous(64ull << 20);
  thaw::vmm::loader::ProgramImageInput in;
  in.elf = elf;
  in.name = "fuzz-program";
  in.exe_path = "/prog";
  in.args = {"a", "bc"};
  in.env = {"K=V"};
  in.files_archive = archive;
  try {
    (void)thaw::vmm::loader::check_program_image(mem.size(), in);
    auto layout = thaw::vmm::loader::load_program_image(mem, in);
    (void)layout;
  } catch (const thaw::InputError&) {
  }
  return 0;
}
