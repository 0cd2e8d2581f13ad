// Landlock file-system sandbox: a process lists the files and directories it
// still needs (read, read-write, or a device to open and ioctl) and then
// loses every other file-system access the running kernel's Landlock ABI can
// take away. Irreversible: the restriction holds for the calling thread and
// every thread and process it starts afterwards, and cannot be lifted.
//
// What Landlock leaves alone, whatever the policy: fds already open before
// apply() (their rights were settled at open), stat/chdir/chmod/chown/utime
// and the like, connect() to a unix socket's path (only bind, which makes
// the socket file, is checked), memfds and pipes, and fds the kernel makes
// without opening a path (anonymous inodes such as KVM's VM and vCPU fds,
// eventfds, epoll). Network and IPC scoping (ABI 4 and 6: TCP ports,
// abstract unix sockets, signals) are not used here.
//
// Device ioctls (ABI 5, LANDLOCK_ACCESS_FS_IOCTL_DEV): the right is checked
// only on fds of character and block device files, and it is taken from the
// policy when the device is opened. So a worker that opens /dev/kvm after
// apply() needs allow_device("/dev/kvm") for KVM_CREATE_VM and the other
// /dev/kvm ioctls; the VM and vCPU fds KVM hands back are anonymous inodes,
// never opened through a path, and their ioctls are not restricted at all.
#pragma once

#include <string>
#include <vector>

namespace thaw {

// Which Landlock ABI the running kernel offers; 0 when none (not built in,
// or left out of the lsm= list at boot).
int landlock_abi();

struct LandlockResult {
  bool applied = false;  // false: the kernel has no Landlock, nothing changed
  int abi = 0;
  std::string summary;   // one line for the log
};

class LandlockPolicy {
 public:
  // Paths may be files or directories; a directory rule covers everything
  // beneath it. Symbolic links are followed when apply() opens the path, so
  // a rule names the link's target. A path missing at apply() is skipped and
  // named in the summary.

  // Read files and list directories. No execute.
  LandlockPolicy& allow_read(std::string path);
  // Also write and truncate files; create, remove and rename regular files,
  // directories, symbolic links, named pipes and unix sockets (bind). Not
  // execute, not device nodes (neither making them nor their ioctls).
  LandlockPolicy& allow_read_write(std::string path);
  // A device node: open it for reading and writing and, from ABI 5, its
  // driver's ioctls.
  LandlockPolicy& allow_device(std::string path);

  // Restricts the calling thread and every thread or process it starts
  // afterwards to the rules. Threads that already run are NOT restricted
  // (Landlock's rule), so this throws std::logic_error when the process has
  // more than one thread. Sets no_new_privs when it is not set (Landlock
  // needs it without CAP_SYS_ADMIN). With no rules at all, every handled
  // access is denied. Where the kernel has no Landlock, applies nothing and
  // says so (applied=false) instead of throwing. Throws SysError when the
  // kernel refuses anything else, or a path exists but cannot be opened.
  LandlockResult apply() const;

  size_t rule_count() const { return rules_.size(); }

 private:
  enum class Kind { kRead, kReadWrite, kDevice };
  struct Rule {
    std::string path;
    Kind kind;
  };

  LandlockPolicy& add(std::string path, Kind kind);

  std::vector<Rule> rules_;
};

}  // namespace thaw
