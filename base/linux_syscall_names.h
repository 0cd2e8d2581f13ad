// Names of x86-64 Linux system calls, for messages about the calls a
// user's program made that the function runtime answers with -ENOSYS.
#pragma once

#include <cstdint>
#include <string>

namespace thaw {

// "clone3" for 435; "syscall 999" for a number the table does not know.
std::string linux_syscall_name(uint64_t number);
// The name, or null for a number the table does not know. Allocates
// nothing, so a signal handler may call it.
const char* linux_syscall_name_or_null(uint64_t number);

}  // namespace thaw
