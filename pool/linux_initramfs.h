// A Linux template's boot (TemplateSpec::guest == kLinux): its initramfs
// and its VM configuration. The initramfs is two newc archives back to
// back, as Linux's unpacker allows: the template's root file system
// (files_dir, may be absent), then what thaw adds over it:
//
//   /init            the init agent (guest/linux, static): PID 1
//   /<basename>      the program, at "/" + its host basename, as in the mini
//                    guest's function runtime (argv[0] is that path)
//   /thaw/argv       argv, NUL-terminated strings: the path, then spec.args
//   /thaw/env        spec.env, NUL-terminated K=V strings
//   /dev/console     so the kernel gives init a console before devtmpfs
//   /proc /sys /tmp /run  mount points
//
// The agent runs the program to its first read of stdin, then writes
// boot-complete: the template's snapshot is taken there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pool/pool_types.h"
#include "vmm/vm_config.h"

namespace thaw::pool {

// What thaw puts on a Linux template's command line before the user's:
// the console on the 8250, a panic or a reset ends the VM (reboot=k goes
// through the i8042, which stops it) instead of hanging.
inline constexpr char kLinuxBaseCmdline[] = "console=ttyS0 reboot=k panic=-1 quiet";

// The initramfs bytes for `spec`, with the init agent read from
// `init_agent`. The root file system's FIFOs, sockets and device nodes are
// left out (devtmpfs provides /dev). BadArgument naming the path for a
// missing or unreadable program, agent or root file system, or a result
// over the packer's limit.
std::vector<uint8_t> pack_linux_initramfs(const TemplateSpec& spec, const std::string& init_agent);

// Packs it into `dir`/initramfs.cpio and returns that path (the cold boot
// deletes it once the kernel has its copy). SysError when it cannot be
// written.
std::string write_linux_initramfs(const TemplateSpec& spec, const std::string& init_agent, const std::string& dir);

// Makes `config` cold-boot `spec`: its kernel, the initramfs at
// `initramfs_path`, kLinuxBaseCmdline plus spec.cmdline, a vsock device
// on `vsock_path` (the invoke channel) and the pause at boot-complete.
void configure_linux_boot(vmm::VmConfig& config, const TemplateSpec& spec, const std::string& initramfs_path,
                          const std::string& vsock_path);

}  // namespace thaw::pool
