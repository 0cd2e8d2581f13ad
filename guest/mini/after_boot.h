/* thaw-mini: what the guest does after its boot-complete write
 * (thaw.after=). A VMM snapshots the guest at that write, so this is what
 * every restored clone runs. */
#ifndef THAW_MINI_AFTER_BOOT_H
#define THAW_MINI_AFTER_BOOT_H

#include "boot_info.h"
#include "options.h"

/* Before the boot-complete write: the part of the work that must be in the
 * snapshot (thaw.after=split: the first half of the hash; thaw.after=agent:
 * the vsock device set up). */
void after_boot_prepare(const struct options *options, const struct boot_info *boot);

/* After the boot-complete write returned: never returns. */
__attribute__((noreturn)) void after_boot_run(const struct options *options);

#endif
