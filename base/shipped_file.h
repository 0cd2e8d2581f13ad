// Files that ship with thaw beside its programs (the mini guest, the Linux
// init agent): the build tree's copy when the program runs from it, else
// the install's, ../lib/thaw/<name> next to the running binary.
#pragma once

#include <string>

namespace thaw {

// `built` is the build tree's path (CMake's $<TARGET_FILE:...>, compiled
// in; may be empty), `name` the file's name under lib/thaw. Returns a
// regular file's path, or "" when neither exists.
std::string shipped_file(const std::string& built, const std::string& name);

// The install's lib/thaw directory beside the running binary ("" when
// /proc/self/exe cannot be read).
std::string installed_lib_dir();

}  // namespace thaw
