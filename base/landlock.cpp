#include "base/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

#include "base/errors.h"
#include "base/proc_self_status.h"
#include "base/unique_fd.h"

// Debian 12's <linux/landlock.h> is from Linux 6.1 (ABI 2); the rights added
// since have fixed bit numbers in the kernel's ABI.
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

namespace thaw {

namespace {

// ABI 1's rights: bits 0 (EXECUTE) to 12 (MAKE_SYM).
constexpr uint64_t kAbi1Rights =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
    LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
    LANDLOCK_ACCESS_FS_MAKE_SYM;

// The only rights a rule on a non-directory may carry; any other bit makes
// landlock_add_rule fail with EINVAL.
constexpr uint64_t kFileRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
                                 LANDLOCK_ACCESS_FS_IOCTL_DEV;

// Every right the running ABI can deny. A right the kernel does not know
// would make landlock_create_ruleset fail with EINVAL; one left unhandled
// stays allowed everywhere.
uint64_t handled_rights(int abi) {
  uint64_t rights = kAbi1Rights;
  if (abi >= 2) rights |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return rights;
}

// Not in read-write: EXECUTE (nothing a sandboxed process could have
// written should run, and a worker execs nothing); MAKE_CHAR/MAKE_BLOCK (a new device node would be a way around the
// device rules); IOCTL_DEV (device ioctls come only from allow_device, so a
// read-write directory that holds device nodes does not grant theirs).
// MAKE_SYM stays: Landlock checks the path a link resolves to, so a link
// reaches nothing the policy does not already allow. REFER stays too: with
// it, a file may move between read-write directories (without it the kernel
// refuses every cross-directory rename or link with EXDEV), and Landlock
// still refuses a move that would give the file more rights.
constexpr uint64_t kReadRights = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr uint64_t kNotInReadWrite = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                                     LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_IOCTL_DEV;
constexpr uint64_t kDeviceRights =
    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_IOCTL_DEV;

int create_ruleset(const landlock_ruleset_attr* attr, size_t size, uint32_t flags) {
  return static_cast<int>(::syscall(SYS_landlock_create_ruleset, attr, size, flags));
}

// What the running ABI cannot take away, for the log.
std::string unenforced(int abi) {
  std::string text;
  auto note = [&text](const char* what) {
    text += text.empty() ? "; not enforced by this ABI: " : ", ";
    text += what;
  };
  if (abi < 3) note("truncate");
  if (abi < 5) note("device ioctls");
  // Without REFER the kernel refuses every cross-directory rename or link.
  if (abi < 2) text += "; no file may move between directories";
  return text;
}

}  // namespace

int landlock_abi() {
  int abi = create_ruleset(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi >= 0) return abi;
  // ENOSYS: not built in; EOPNOTSUPP: built in but not enabled at boot;
  // EPERM: a seccomp filter above this process (a container's, a systemd
  // unit's SystemCallFilter) refuses the call.
  if (errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM) return 0;
  throw_errno("landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION)");
}

LandlockPolicy& LandlockPolicy::allow_read(std::string path) { return add(std::move(path), Kind::kRead); }

LandlockPolicy& LandlockPolicy::allow_read_write(std::string path) {
  return add(std::move(path), Kind::kReadWrite);
}

LandlockPolicy& LandlockPolicy::allow_device(std::string path) { return add(std::move(path), Kind::kDevice); }

LandlockPolicy& LandlockPolicy::add(std::string path, Kind kind) {
  if (path.empty()) throw InputError("landlock: a rule needs a path");
  rules_.push_back({std::move(path), kind});
  return *this;
}

LandlockResult LandlockPolicy::apply() const {
  const int abi = landlock_abi();
  if (abi == 0) {
    return {false, 0, "landlock: not offered by this kernel; no file-system sandbox"};
  }
  // Threads running now would keep every access: refuse rather than leave
  // a hole nobody sees.
  if (int threads = current_thread_count(); threads > 1) {
    throw std::logic_error("landlock: apply() with " + std::to_string(threads) +
                           " threads running; it restricts only the calling thread and those it starts");
  }

  const uint64_t handled = handled_rights(abi);
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = handled;
  // The kernel makes the ruleset fd close-on-exec.
  UniqueFd ruleset(create_ruleset(&attr, sizeof attr, 0));
  if (!ruleset) throw_errno("landlock_create_ruleset", "ABI " + std::to_string(abi));

  size_t added[3] = {0, 0, 0};
  std::vector<std::string> missing;
  for (const auto& rule : rules_) {
    // O_PATH: the rule needs the inode, not read or write permission on it.
    UniqueFd fd(::open(rule.path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT || errno == ENOTDIR) {
        missing.push_back(rule.path);
        continue;
      }
      throw_errno("open(O_PATH)", "landlock rule for " + rule.path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("fstat", "landlock rule for " + rule.path);

    uint64_t rights = 0;
    const char* kind = "";
    switch (rule.kind) {
      case Kind::kRead: rights = kReadRights, kind = "read"; break;
      case Kind::kReadWrite: rights = ~kNotInReadWrite, kind = "read-write"; break;
      case Kind::kDevice: rights = kDeviceRights, kind = "device"; break;
    }
    rights &= handled;
    if (!S_ISDIR(st.st_mode)) rights &= kFileRights;
    // Never empty (READ_FILE is in every kind), which the kernel refuses.
    landlock_path_beneath_attr beneath{};
    beneath.allowed_access = rights;
    beneath.parent_fd = fd.get();
    if (::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) != 0) {
      throw_errno("landlock_add_rule", std::string(kind) + " " + rule.path);
    }
    ++added[static_cast<size_t>(rule.kind)];
  }

  // Without CAP_SYS_ADMIN the kernel requires no_new_privs; setting it
  // always keeps the outcome the same with or without the capability.
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    throw_errno("prctl(PR_SET_NO_NEW_PRIVS)", "before landlock_restrict_self");
  }
  if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0) {
    throw_errno("landlock_restrict_self", "ABI " + std::to_string(abi));
  }

  const size_t total = added[0] + added[1] + added[2];
  std::string summary = "landlock ABI " + std::to_string(abi) + ": " + std::to_string(total) +
                        (total == 1 ? " rule" : " rules") + " (" + std::to_string(added[0]) + " read, " +
                        std::to_string(added[1]) + " read-write, " + std::to_string(added[2]) + " device)";
  if (!missing.empty()) {
    summary += "; skipped " + std::to_string(missing.size()) + " missing:";
    for (const auto& path : missing) summary += " " + path;
  }
  summary += unenforced(abi);
  return {true, abi, std::move(summary)};
}

}  // namespace thaw
