#include "vmm/loader/cpio_archive.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/fd_io.h"
#include "base/unique_fd.h"
#include "base/errors.h"

namespace thaw::vmm::loader {

namespace {

constexpr char kNewcMagic[] = "070701";
constexpr size_t kHeaderSize = 110;  // magic + 13 fields of 8 hex digits
constexpr char kTrailerName[] = "TRAILER!!!";
constexpr uint32_t kSymlinkMode = S_IFLNK | 0777;

void pad4(std::vector<uint8_t>& out) {
  while (out.size() % 4 != 0) out.push_back(0);
}

std::string errno_text(int err) { return std::strerror(err); }

class DirectoryPacker {
 public:
  DirectoryPacker(std::string root, uint64_t max_bytes, SpecialFiles special)
      : root_(std::move(root)), max_bytes_(max_bytes), special_(special) {}

  std::vector<uint8_t> pack() {
    UniqueFd dir(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
      const int err = errno;
      if (err == ENOTDIR) throw InputError("files directory '" + root_ + "' is not a directory");
      throw InputError("files directory '" + root_ + "': cannot open: " + errno_text(err));
    }
    pack_directory(dir.get(), "");
    append_cpio_trailer(out_);
    check_size("");
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& rel, const std::string& what) const {
    throw InputError("files directory '" + root_ + "': '" + rel + "' " + what);
  }

  void check_size(const std::string& rel) const {
    if (out_.size() > max_bytes_) {
      throw InputError("files directory '" + root_ + "' packs to more than " + limit_text() +
                       (rel.empty() ? "" : " (at '" + rel + "')") + ": give the program fewer files");
    }
  }

  // `prefix` is "" for the root, else "a/b/".
  void pack_directory(int dir_fd, const std::string& prefix) {
    std::vector<std::string> names = list(dir_fd, prefix);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      const std::string rel = prefix + name;
      struct stat st {};
      // lstat first: a FIFO or device is refused before anything opens it.
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        fail(rel, "cannot be read: " + errno_text(errno));
      }
      if (S_ISREG(st.st_mode)) {
        pack_file(dir_fd, name, rel);
      } else if (S_ISDIR(st.st_mode)) {
        append(CpioEntry{rel, static_cast<uint32_t>(S_IFDIR | (st.st_mode & 07777)), {}}, rel);
        UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) fail(rel + "/", "cannot be opened: " + errno_text(errno));
        pack_directory(sub.get(), rel + "/");
      } else if (S_ISLNK(st.st_mode)) {
        pack_symlink(dir_fd, name, rel);
      } else if (special_ == SpecialFiles::kSkip) {
        continue;  // lstat only: never opened
      } else {
        const char* kind = S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device";
        fail(rel, std::string("is ") + kind + "; only regular files, directories and symlinks can be packed");
      }
    }
  }

  std::vector<std::string> list(int dir_fd, const std::string& prefix) const {
    // fdopendir owns the fd it is given: hand it a duplicate.
    int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) fail(prefix.empty() ? "." : prefix, "cannot be listed: " + errno_text(errno));
    DIR* d = ::fdopendir(dup_fd);
    if (d == nullptr) {
      const int err = errno;
      ::close(dup_fd);
      fail(prefix.empty() ? "." : prefix, "cannot be listed: " + errno_text(err));
    }
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
      errno = 0;
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) fail(prefix.empty() ? "." : prefix, "cannot be listed: " + errno_text(err));
    return names;
  }

  void pack_file(int dir_fd, const std::string& name, const std::string& rel) {
    // O_NONBLOCK and O_NOFOLLOW: if the entry became a FIFO or symlink since
    // fstatat, open neither blocks nor follows; fstat then says what it is.
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) fail(rel, "cannot be opened: " + errno_text(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(rel, "cannot be read: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) fail(rel, "changed into something other than a regular file while packing");
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size > max_bytes_) check_size_with(rel, size);
    if (out_.size() + size > max_bytes_) check_size_with(rel, 0);
    CpioEntry entry{rel, static_cast<uint32_t>(S_IFREG | (st.st_mode & 07777)), std::vector<uint8_t>(size)};
    auto read = read_until_full(fd.get(), entry.data);
    if (read.error != 0) fail(rel, "read failed: " + errno_text(read.error));
    if (read.bytes < size) fail(rel, "shrank while it was read");
    append(entry, rel);
  }

  // `size` non-zero: that one file is over the limit by itself.
  [[noreturn]] void check_size_with(const std::string& rel, uint64_t size) const {
    throw InputError("files directory '" + root_ + "' packs to more than " + limit_text() + " (" +
                     (size != 0 ? "'" + rel + "' alone is " + std::to_string(size) + " bytes" : "at '" + rel + "'") +
                     "): give the program fewer files");
  }

  std::string limit_text() const {
    if (max_bytes_ >= (1u << 20)) return std::to_string(max_bytes_ >> 20) + " MiB";
    return std::to_string(max_bytes_) + " bytes";
  }

  void pack_symlink(int dir_fd, const std::string& name, const std::string& rel) {
    std::vector<char> target(4096);
    ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
    if (n < 0) fail(rel, "symlink cannot be read: " + errno_text(errno));
    if (static_cast<size_t>(n) >= target.size()) fail(rel, "symlink target is longer than 4095 bytes");
    append(CpioEntry{rel, kSymlinkMode, std::vector<uint8_t>(target.begin(), target.begin() + n)}, rel);
  }

  void append(const CpioEntry& entry, const std::string& rel) {
    append_cpio_entry(out_, entry, next_ino_++);
    check_size(rel);
  }

  std::string root_;
  uint64_t max_bytes_;
  SpecialFiles special_;
  std::vector<uint8_t> out_;
  uint32_t next_ino_ = 1;
};

uint32_t parse_hex8(std::span<const uint8_t> archive, size_t at, const char* field) {
  uint32_t v = 0;
  for (size_t i = 0; i < 8; ++i) {
    const char c = static_cast<char>(archive[at + i]);
    uint32_t digit;
    if (c >= '0' && c <= '9') digit = static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') digit = static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') digit = static_cast<uint32_t>(c - 'A' + 10);
    else throw InputError("cpio: field " + std::string(field) + " at byte " + std::to_string(at) + " is not hex");
    v = (v << 4) | digit;
  }
  return v;
}

size_t round4(size_t v) { return (v + 3) & ~size_t{3}; }

}  // namespace

void append_cpio_entry(std::vector<uint8_t>& out, const CpioEntry& entry, uint32_t ino) {
  const bool is_dir = S_ISDIR(entry.mode);
  const uint32_t fields[13] = {ino, entry.mode, 0 /*uid*/, 0 /*gid*/, is_dir ? 2u : 1u, 0 /*mtime*/,
                               static_cast<uint32_t>(entry.data.size()), 0, 0, entry.rdev_major, entry.rdev_minor,
                               static_cast<uint32_t>(entry.name.size() + 1), 0 /*check*/};
  char header[kHeaderSize + 1];
  std::memcpy(header, kNewcMagic, 6);
  for (size_t i = 0; i < 13; ++i) std::snprintf(header + 6 + 8 * i, 9, "%08X", fields[i]);
  out.insert(out.end(), header, header + kHeaderSize);
  out.insert(out.end(), entry.name.begin(), entry.name.end());
  out.push_back(0);
  pad4(out);  // header + name together are padded to 4 bytes
  out.insert(out.end(), entry.data.begin(), entry.data.end());
  pad4(out);
}

void append_cpio_trailer(std::vector<uint8_t>& out) { append_cpio_entry(out, CpioEntry{kTrailerName, 0, {}}, 0); }

std::vector<uint8_t> pack_cpio_directory(const std::string& dir, uint64_t max_bytes, SpecialFiles special) {
  return DirectoryPacker(dir, max_bytes, special).pack();
}

std::vector<CpioEntry> read_cpio(std::span<const uint8_t> archive) {
  std::vector<CpioEntry> entries;
  size_t pos = 0;
  while (true) {
    if (archive.size() - pos < kHeaderSize) throw InputError("cpio: truncated header at byte " + std::to_string(pos));
    if (std::memcmp(archive.data() + pos, kNewcMagic, 6) != 0) {
      throw InputError("cpio: no newc magic 070701 at byte " + std::to_string(pos));
    }
    CpioEntry e;
    e.mode = parse_hex8(archive, pos + 6 + 8 * 1, "c_mode");
    const uint32_t filesize = parse_hex8(archive, pos + 6 + 8 * 6, "c_filesize");
    e.rdev_major = parse_hex8(archive, pos + 6 + 8 * 9, "c_rdevmajor");
    e.rdev_minor = parse_hex8(archive, pos + 6 + 8 * 10, "c_rdevminor");
    const uint32_t namesize = parse_hex8(archive, pos + 6 + 8 * 11, "c_namesize");
    const size_t name_at = pos + kHeaderSize;
    if (namesize == 0 || archive.size() - name_at < namesize) {
      throw InputError("cpio: name at byte " + std::to_string(name_at) + " runs past the end");
    }
    e.name.assign(reinterpret_cast<const char*>(archive.data() + name_at), namesize - 1);
    const size_t data_at = round4(name_at + namesize);
    if (data_at > archive.size() || archive.size() - data_at < filesize) {
      throw InputError("cpio: data of '" + e.name + "' runs past the end");
    }
    if (e.name == kTrailerName) return entries;
    e.data.assign(archive.begin() + static_cast<ptrdiff_t>(data_at),
                  archive.begin() + static_cast<ptrdiff_t>(data_at + filesize));
    entries.push_back(std::move(e));
    pos = round4(data_at + filesize);
    if (pos > archive.size()) throw InputError("cpio: padding of '" + entries.back().name + "' runs past the end");
  }
}

}  // namespace thaw::vmm::loader
