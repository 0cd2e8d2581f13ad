#include "vmm/x86_64/boot_setup.h"

#include "vmm/loader/bzimage_loader.h"
#include "vmm/loader/cmdline.h"
#include "vmm/loader/elf_loader.h"
#include "vmm/loader/initrd.h"
#include "base/errors.h"
#include "vmm/x86_64/boot_params.h"
#include "vmm/x86_64/e820.h"
#include "vmm/x86_64/gdt.h"
#include "vmm/x86_64/layout.h"
#include "vmm/x86_64/mptable.h"
#include "vmm/x86_64/page_tables.h"
#include "vmm/x86_64/registers.h"

namespace thaw::vmm::x86 {

namespace {

// What either loader tells the rest of the set-up.
struct LoadedKernel {
  SetupHeader header;
  uint64_t entry = 0;
  uint64_t kernel_end = 0;
  uint64_t cmdline_limit = 0;
  std::string cmdline_limit_source;
  uint64_t initrd_addr_max = 0;
  std::optional<uint64_t> pvh_entry;
};

LoadedKernel load_kernel(GuestMemory& mem, KernelFormat format, const BootSetupInput& in) {
  LoadedKernel k;
  if (format == KernelFormat::kElf64) {
    auto elf = loader::load_elf_kernel(mem, in.kernel_image, in.kernel_name);
    k.header = elf_setup_header();
    k.entry = elf.entry;
    k.kernel_end = elf.load_end;
    k.cmdline_limit = loader::elf_cmdline_limit();
    k.cmdline_limit_source = "ELF kernel '" + in.kernel_name + "'";
    // A 64-bit kernel can reach all of low RAM; the low region already ends below 4 GiB.
    k.initrd_addr_max = kMmioGapStart - 1;
    k.pvh_entry = elf.pvh_entry;
  } else {
    auto bz = loader::load_bzimage(mem, in.kernel_image, in.kernel_name);
    k.header = bz.header;
    k.entry = bz.entry;
    k.kernel_end = bz.kernel_end;
    k.cmdline_limit = bz.cmdline_limit;
    k.cmdline_limit_source = "bzImage '" + in.kernel_name + "' (cmdline_size in its header)";
    k.initrd_addr_max = bz.initrd_addr_max;
  }
  return k;
}

}  // namespace

BootInfo setup_boot(GuestMemory& mem, const BootSetupInput& in) {
  // Cheap checks first, so bad input fails before megabytes are copied.
  if (in.vcpu_count == 0 || in.vcpu_count > max_mptable_vcpus()) {
    throw InputError("vCPU count " + std::to_string(in.vcpu_count) + " is not supported; give 1 to " +
                     std::to_string(max_mptable_vcpus()));
  }
  const std::vector<E820Entry> e820 = build_e820(mem.regions());
  const KernelFormat format = loader::detect_kernel_format(in.kernel_image, in.kernel_name);

  LoadedKernel k = load_kernel(mem, format, in);
  const uint64_t cmdline_addr =
      loader::write_cmdline(mem, in.cmdline, k.cmdline_limit, k.cmdline_limit_source);
  const auto initrd = loader::load_initrd(mem, in.initrd, in.initrd_name.empty() ? "initrd" : in.initrd_name,
                                          k.kernel_end, k.initrd_addr_max);

  BootParamsInput bpi{.header = k.header,
                      .cmdline_addr = cmdline_addr,
                      .initrd_addr = initrd.addr,
                      .initrd_size = initrd.size,
                      .e820 = e820};
  mem.write_obj(GuestAddress(kZeroPageAddr), build_boot_params(bpi), "boot_params (zero page)");

  write_descriptor_tables(mem);
  const uint64_t cr3 = write_identity_page_tables(mem);
  write_mptable(mem, in.vcpu_count);

  BootInfo info{.format = format,
                .entry = k.entry,
                .boot_params_addr = kZeroPageAddr,
                .cr3 = cr3,
                .kernel_end = k.kernel_end,
                .initrd_addr = initrd.addr,
                .initrd_size = initrd.size,
                .pvh_entry = k.pvh_entry};
  return info;
}

kvm_sregs long_mode_sregs(const kvm_sregs& current, const BootInfo& info) {
  return long_mode_sregs(current, info.cr3);
}

kvm_regs boot_regs(const BootInfo& info) { return boot_regs(info.entry, info.boot_params_addr); }

}  // namespace thaw::vmm::x86
