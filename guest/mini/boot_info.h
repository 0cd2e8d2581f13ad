/* thaw-mini: what the boot protocol handed us, in one shape for both paths. */
#ifndef THAW_MINI_BOOT_INFO_H
#define THAW_MINI_BOOT_INFO_H

#include <stdint.h>

struct boot_info {
  const char *cmdline; /* never NULL; "" when the loader gave none */
  uint64_t ram_bytes;  /* sum of usable-RAM (type 1) map entries */
  int ram_known;       /* 0 when there was no memory map */
  /* End of the usable-RAM entry that holds the image (IMAGE_BASE), capped at
   * 4 GiB (the end of our identity map); 0 if no entry holds it. The agent
   * keeps its buffers and the "touch" area below it. */
  uint64_t image_ram_end;
};

/* kind is BOOT_KIND_LINUX (info = struct boot_params) or BOOT_KIND_PVH
 * (info = struct hvm_start_info); both are physical = virtual addresses. */
struct boot_info read_boot_info(unsigned kind, uint64_t info);

#endif
