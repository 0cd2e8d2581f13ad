// fuzz_guest_cpio: the mini guest's cpio "newc" index (guest/mini/
// cpio_reader.c), built for the host: the program's files archive is the
// user's, and the guest parses it in ring 0. After indexing, every node is
// looked up again by name and its data must lie inside the archive.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "cpio_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto index = std::make_unique<cpio_index>();
  cpio_index_reset(index.get());
  (void)cpio_index_add_archive(index.get(), data, size);
  if (index->count > CPIO_MAX_NODES) __builtin_trap();
  for (uint32_t i = 0; i < index->count; ++i) {
    const cpio_node& n = index->nodes[i];
    if (n.parent >= index->count) __builtin_trap();
    if (n.data != nullptr && n.size != 0 && n.special == NODE_PLAIN) {
      // File contents point into the archive, never past it.
      if (n.data < data || n.data > data + size || n.size > static_cast<uint64_t>(data + size - n.data)) {
        __builtin_trap();
      }
    }
    (void)cpio_index_find(index.get(), n.name, n.name_len);
  }
  return 0;
}
