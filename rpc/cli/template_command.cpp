// `thaw template create|delete|policy`: manage thawd's templates over RPC
// (`thaw templates` lists them). Flags are checked here, before connecting,
// so an error names the flag; thawd checks everything again.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "rpc/cli/client_options.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/program_options.h"
#include "rpc/cli/template_view.h"
#include "rpc/convert.h"
#include "rpc/pool_client.h"
#include "rpc/validation.h"
#include "base/errors.h"

namespace thaw::cli {

namespace {

// The mini guest serves invokes only with thaw.after=agent; thaw.quiet=1
// keeps its banner out of thawd's log. Other kernels need their own.
constexpr const char* kDefaultCmdline = "console=ttyS0 thaw.quiet=1 thaw.after=agent";
// A program template's: the VMM appends thaw.after=program itself.
constexpr const char* kProgramCmdline = "console=ttyS0 thaw.quiet=1";

struct CreateOptions {
  ClientOptions client;
  pool::TemplateSpec spec;
  pool::PoolPolicy policy;
  ProgramOptions program;  // its path, args, env and files; mem and kernel are the spec's
  bool cmdline_given = false;
  std::string guest = "mini";
  std::string rootfs;  // --guest linux: the program's root file system
};

// A directory sent to thawd: absolute, and a directory here already.
std::string absolute_dir(const std::string& path, const char* flag) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) throw InputError(std::string(flag) + " " + path + ": " + ec.message());
  if (!std::filesystem::is_directory(abs, ec)) {
    throw InputError(std::string(flag) + " " + path + (abs == path ? "" : " (" + abs + ")") + ": not a directory");
  }
  return abs;
}

struct DeleteOptions {
  ClientOptions client;
  std::string name;
};

struct PolicyOptions {
  ClientOptions client;
  std::string name;
  pool::PoolPolicy flags;  // only the fields whose flag was given count
  bool has_min = false, has_max = false, has_budget = false;
};

struct PolicyFlags {
  CLI::Option *min_warm, *max_warm, *budget;
};

PolicyFlags add_policy_flags(CLI::App& cmd, pool::PoolPolicy& policy, bool show_defaults) {
  rpc::Limits limits;
  PolicyFlags f;
  f.min_warm = cmd.add_option("--min-warm", policy.min_warm, "Never fewer warm clones than this (budget permitting)")
                   ->check(CLI::Range(uint32_t{0}, limits.max_warm));
  f.max_warm = cmd.add_option("--max-warm", policy.max_warm, "Never more warm clones than this")
                   ->check(CLI::Range(uint32_t{1}, limits.max_warm));
  f.budget = cmd.add_option("--memory-budget-mib", policy.memory_budget_mib,
                            "Private memory of warm and leased clones together")
                 ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  if (show_defaults) {
    for (auto* o : {f.min_warm, f.max_warm, f.budget}) o->capture_default_str();
  }
  return f;
}

// thawd opens the files from its own working directory: send absolute
// paths, and report a missing file here, naming it, before any RPC.
std::string absolute_file(const std::string& path, const char* flag) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) throw InputError(std::string(flag) + " " + path + ": " + ec.message());
  std::string shown = std::string(flag) + " " + path + (abs == path ? "" : " (" + abs + ")");
  struct stat st {};
  if (::stat(abs.c_str(), &st) != 0) throw InputError(shown + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw InputError(shown + ": not a regular file");
  return abs;
}

// `min_name` and `max_name` say where each value came from: a flag, or the
// template's current policy when the flag was not given.
void check_min_max(const pool::PoolPolicy& p, const std::string& min_name, const std::string& max_name) {
  if (p.min_warm > p.max_warm) {
    throw InputError(min_name + " " + std::to_string(p.min_warm) + " is more than " + max_name + " " +
                     std::to_string(p.max_warm));
  }
}

std::string policy_text(const pool::PoolPolicy& p) {
  return std::to_string(p.min_warm) + ".." + std::to_string(p.max_warm) + " warm, " +
         std::to_string(p.memory_budget_mib) + " MiB budget";
}

// A program template: the mini guest by default, its own command line, and
// the program read and checked here (static ELF, fits the RAM) so that a
// wrong file is exit 2 before any RPC; thawd checks it again.
void prepare_program(CreateOptions& opt) {
  auto& spec = opt.spec;
  spec.program = absolute_file(opt.program.path, "--program");
  spec.args = opt.program.args;
  spec.env = opt.program.env;
  if (!opt.program.files_dir.empty()) spec.files_dir = absolute_dir(opt.program.files_dir, "--files");
  if (spec.kernel.empty()) spec.kernel = default_mini_guest();
  if (spec.kernel.empty()) {
    throw InputError("no mini guest found beside this thaw (build the thaw_mini target) and no --kernel given");
  }
  spec.kernel = absolute_file(spec.kernel, "--kernel");
  if (!opt.cmdline_given) spec.cmdline = kProgramCmdline;
  ProgramOptions check = opt.program;
  check.path = spec.program;
  check.files_dir = spec.files_dir;
  check.kernel = spec.kernel;
  check.mem_mib = spec.mem_mib;
  (void)check.vm_config();
}

// A Linux template: the user's kernel (no default), the program (any
// executable the root file system can run: thaw-init execs it), the root
// file system, and only the user's extra command-line words (thaw adds its
// own: pool/linux_initramfs.h).
void prepare_linux(CreateOptions& opt) {
  auto& spec = opt.spec;
  spec.guest = pool::GuestKind::kLinux;
  if (opt.program.path.empty()) throw InputError("--guest linux needs --program (the function thaw-init runs)");
  if (spec.kernel.empty()) throw InputError("--guest linux needs --kernel (a bzImage: deploy/linux/build-kernel.sh builds one)");
  if (!spec.initrd.empty()) throw InputError("--guest linux takes no --initrd: thaw packs --rootfs into the initramfs");
  if (!opt.program.files_dir.empty()) throw InputError("--files is the mini guest's; with --guest linux give --rootfs");
  spec.program = absolute_file(opt.program.path, "--program");
  spec.args = opt.program.args;
  spec.env = opt.program.env;
  if (!opt.rootfs.empty()) spec.files_dir = absolute_dir(opt.rootfs, "--rootfs");
  if (!opt.cmdline_given) spec.cmdline.clear();
}

int run_create(CreateOptions opt) {
  rpc::check_template_name(opt.spec.name, "name");  // the server's own check, before connecting
  auto guest = pool::parse_guest_kind(opt.guest);
  if (!guest) throw InputError("--guest " + opt.guest + ": must be mini or linux");
  if (*guest != pool::GuestKind::kLinux && !opt.rootfs.empty()) throw InputError("--rootfs needs --guest linux");
  if (*guest == pool::GuestKind::kLinux) {
    prepare_linux(opt);
  } else if (!opt.program.path.empty()) {
    prepare_program(opt);
  } else if (!opt.program.args.empty() || !opt.program.env.empty() || !opt.program.files_dir.empty()) {
    throw InputError("--arg, --env and --files need --program");
  } else if (opt.spec.kernel.empty()) {
    throw InputError("give --kernel (a kernel template) or --program (a program template)");
  }
  opt.spec.kernel = absolute_file(opt.spec.kernel, "--kernel");
  if (!opt.spec.initrd.empty()) opt.spec.initrd = absolute_file(opt.spec.initrd, "--initrd");
  check_min_max(opt.policy, "--min-warm", "--max-warm");
  rpc::PoolConnection conn(opt.client.socket);
  auto req = conn.pool().createTemplateRequest();
  rpc::to_schema(opt.spec, req.initSpec());
  rpc::to_schema(opt.policy, req.initPolicy());
  auto start = std::chrono::steady_clock::now();
  auto info = rpc::from_schema(req.send().wait(conn.wait_scope()).getInfo());
  double create_ms = ms_since(start);
  if (opt.client.json) {
    std::cout << template_json(info).dump(2) << std::endl;
    return kExitOk;
  }
  print_template_header();
  print_template_row(info);
  std::printf("created in %.1f ms (cold boot and snapshot); snapshot in %s\n", create_ms, info.snapshot_dir.c_str());
  return kExitOk;
}

int run_delete(const DeleteOptions& opt) {
  rpc::check_template_name(opt.name, "name");
  rpc::PoolConnection conn(opt.client.socket);
  auto req = conn.pool().deleteTemplateRequest();
  req.setName(opt.name);
  req.send().wait(conn.wait_scope());
  if (opt.client.json) {
    std::cout << nlohmann::json{{"deleted", opt.name}}.dump(2) << std::endl;
  } else {
    std::printf("deleted template %s\n", opt.name.c_str());
  }
  return kExitOk;
}

int run_policy(const PolicyOptions& opt) {
  rpc::check_template_name(opt.name, "name");
  if (!opt.has_min && !opt.has_max && !opt.has_budget) {
    throw InputError("nothing to change: give --min-warm, --max-warm or --memory-budget-mib");
  }
  rpc::PoolConnection conn(opt.client.socket);
  auto& ws = conn.wait_scope();
  // Flags not given keep the current values. Read and write are two calls:
  // a concurrent setPolicy in between is overwritten, as any later one would.
  auto list = conn.pool().listTemplatesRequest().send().wait(ws);
  std::optional<pool::PoolPolicy> current;
  for (auto t : list.getTemplates()) {
    if (t.getName() == opt.name.c_str()) current = rpc::from_schema(t.getPolicy());
  }
  if (!current) throw InputError("no template '" + opt.name + "' on thawd (`thaw templates` lists them)");
  pool::PoolPolicy policy = *current;
  if (opt.has_min) policy.min_warm = opt.flags.min_warm;
  if (opt.has_max) policy.max_warm = opt.flags.max_warm;
  if (opt.has_budget) policy.memory_budget_mib = opt.flags.memory_budget_mib;
  check_min_max(policy, opt.has_min ? "--min-warm" : "the template's current min_warm",
                opt.has_max ? "--max-warm" : "the template's current max_warm");
  auto req = conn.pool().setPolicyRequest();
  req.setName(opt.name);
  rpc::to_schema(policy, req.initPolicy());
  req.send().wait(ws);
  if (opt.client.json) {
    nlohmann::json out = {{"name", opt.name}, {"policy", policy_json(policy)}, {"previous", policy_json(*current)}};
    std::cout << out.dump(2) << std::endl;
  } else {
    std::printf("%s: policy %s (was %s)\n", opt.name.c_str(), policy_text(policy).c_str(),
                policy_text(*current).c_str());
  }
  return kExitOk;
}

void add_create(CLI::App& parent, std::function<int()>& run) {
  auto opt = std::make_shared<CreateOptions>();
  opt->spec.cmdline = kDefaultCmdline;
  auto* cmd = parent.add_subcommand(
      "create", "Cold-boot a kernel (or your static program in the mini guest), snapshot it and start a warm pool");
  rpc::Limits limits;
  cmd->add_option("name", opt->spec.name, "Template name: 1 to 63 of [a-z0-9_-], starting with [a-z0-9]")->required();
  cmd->add_option("--kernel", opt->spec.kernel,
                  "Guest kernel (ELF64 or bzImage); sent to thawd as an absolute path. Required without --program; "
                  "with it, the mini guest by default");
  cmd->add_option("--initrd", opt->spec.initrd, "Initial ramdisk");
  auto* cmdline = cmd->add_option("--cmdline", opt->spec.cmdline,
                                  "Guest command line. The default suits the mini guest: thaw.after=agent makes it "
                                  "serve invokes (with --program: \"" + std::string(kProgramCmdline) +
                                      "\"). Give your own for other kernels")
                      ->capture_default_str();
  add_program_flags(*cmd, opt->program, /*program_required=*/false);
  cmd->add_option("--guest", opt->guest,
                  "mini (thaw's own guest kernel, any KVM) or linux (--kernel is a Linux bzImage, hardware KVM "
                  "only: thaw-init runs --program from --rootfs)")
      ->capture_default_str();
  cmd->add_option("--rootfs", opt->rootfs,
                  "With --guest linux: a directory packed as the guest's root file system (the program's "
                  "libraries, interpreter, data); writable in the guest, reset after every request");
  cmd->add_option("--mem-mib", opt->spec.mem_mib, "Guest RAM in MiB")
      ->check(CLI::Range(uint64_t{1}, limits.max_mem_mib))
      ->capture_default_str();
  cmd->add_option("--vcpus", opt->spec.vcpus, "vCPUs")
      ->check(CLI::Range(uint32_t{1}, limits.max_vcpus))
      ->capture_default_str();
  add_policy_flags(*cmd, opt->policy, true);
  add_client_options(*cmd, opt->client);
  cmd->footer(
      "With --program the template runs your static x86-64 Linux executable in the mini guest: the snapshot is\n"
      "taken at its first read of stdin, and `thaw invoke NAME run --payload ...` feeds the payload as stdin to a\n"
      "pristine clone (stdout is the reply, the exit status the status).\n"
      "With --guest linux the same contract holds for any program --rootfs can run (dynamically linked,\n"
      "interpreted): Linux boots on --kernel, thaw-init (PID 1) starts the program and the snapshot is taken\n"
      "at its first read of stdin. Needs hardware KVM (kvm_intel or kvm_amd; not PVM).");
  cmd->callback([&run, opt, cmdline] {
    opt->cmdline_given = cmdline->count() > 0;
    run = [opt] { return run_rpc_command([&] { return run_create(*opt); }); };
  });
}

void add_delete(CLI::App& parent, std::function<int()>& run) {
  auto opt = std::make_shared<DeleteOptions>();
  auto* cmd = parent.add_subcommand("delete", "Destroy a template's clones and delete its snapshot");
  cmd->add_option("name", opt->name, "Template name")->required();
  add_client_options(*cmd, opt->client);
  cmd->callback([&run, opt] { run = [opt] { return run_rpc_command([&] { return run_delete(*opt); }); }; });
}

void add_policy(CLI::App& parent, std::function<int()>& run) {
  auto opt = std::make_shared<PolicyOptions>();
  auto* cmd = parent.add_subcommand("policy", "Change a template's pool size and memory budget; flags not given "
                                              "keep their current values");
  cmd->add_option("name", opt->name, "Template name")->required();
  auto flags = add_policy_flags(*cmd, opt->flags, false);
  add_client_options(*cmd, opt->client);
  cmd->callback([&run, opt, flags] {
    opt->has_min = flags.min_warm->count() > 0;
    opt->has_max = flags.max_warm->count() > 0;
    opt->has_budget = flags.budget->count() > 0;
    run = [opt] { return run_rpc_command([&] { return run_policy(*opt); }); };
  });
}

}  // namespace

void add_template_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("template", "Create, delete or re-size thawd's templates (`thaw templates` lists them)");
  cmd->require_subcommand(1);
  add_create(*cmd, run);
  add_delete(*cmd, run);
  add_policy(*cmd, run);
}

}  // namespace thaw::cli
