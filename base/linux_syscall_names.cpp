#include "base/linux_syscall_names.h"


namespace thaw {

namespace {

struct Entry {
  uint64_t number;
  const char* name;
};

// From the build machine's kernel headers (cmake/linux_syscall_names.cmake).
constexpr Entry kEntries[] = {
#include "linux_syscall_names.inc"
    {~0ull, nullptr},  // keeps the array non-empty without the header
};

}  // namespace

const char* linux_syscall_name_or_null(uint64_t number) {
  for (const auto& e : kEntries) {
    if (e.number == number && e.name != nullptr) return e.name;
  }
  return nullptr;
}

std::string linux_syscall_name(uint64_t number) {
  const char* name = linux_syscall_name_or_null(number);
  return name != nullptr ? name : "syscall " + std::to_string(number);
}

}  // namespace thaw
