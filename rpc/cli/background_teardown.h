// Lets `thaw` exit without waiting for the kernel to tear its VM down.
//
// Destroying a VM with an in-kernel irqchip costs 15-25 ms on PVM hosts
// (synchronize_srcu for each irqchip device), which would dominate a
// whole-process cold boot of ~2 ms. A forked child keeps the last
// references to the VM's fds and drops them once this process has exited,
// so the teardown happens beside the caller, not in front of it.
#pragma once

namespace thaw::cli {

// Forks the reaper child. Call after the VM stopped and before returning
// from main. Does nothing if fork fails (the teardown then happens inline).
void hand_teardown_to_background();

}  // namespace thaw::cli
