// Small file operations inside a snapshot directory, shared by the state,
// memory and working-set writers: each failure names the path.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/unique_fd.h"

namespace thaw::snapshot {

std::string join(const std::string& dir, const char* name);
// Opens `dir` as a directory; InputError when it is missing or not a directory.
UniqueFd open_dir(const std::string& dir);
void fsync_dir(int dir_fd, const std::string& dir);
void unlink_if_present(int dir_fd, const std::string& dir, const char* name);
// Creates or truncates `name`, writes all of `bytes` and fsyncs it.
void write_file(int dir_fd, const std::string& dir, const char* name, std::span<const uint8_t> bytes);
void rename_in(int dir_fd, const std::string& dir, const char* from, const char* to);

}  // namespace thaw::snapshot
