// Restore of the same mini guest by QEMU (migration stream, `-incoming
// exec:`) and by thaw (restore_vm), run to the guest's answer, in one run of
// the restore benchmark.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "bench/json_report.h"
#include "snapshot/vm_snapshot.h"

namespace thaw::bench {

struct RestoreComparisonOptions {
  std::string qemu;        // qemu-system-x86_64
  std::string kernel;      // the mini guest ELF
  unsigned ticks = 3;      // thaw.after=ticks:N, the work left after the snapshot point
  unsigned fn_bytes = 4096;
  size_t runs = 20;
  std::string work_dir;    // where snapshots go; empty: a fresh directory under /tmp, removed afterwards
};

// Takes clones off the caller's hands (the benchmark destroys them on a
// background thread, as a pool would).
using CloneDisposer = std::function<void(snapshot::RestoredVm)>;

// Snapshots the mini guest under QEMU (QMP stop + migrate to a file right
// after `thaw-mini: ready`) and under thaw (at the boot-complete write), times
// `runs` restores of each to the guest's exit and prints the table. Returns
// false when a side failed (the reason is printed); nothing is left running.
// With `report`, both rows' samples and the QEMU / thaw ratios go into it too.
bool run_qemu_restore_comparison(const RestoreComparisonOptions& options, const CloneDisposer& dispose,
                                 JsonReport* report = nullptr);

}  // namespace thaw::bench
