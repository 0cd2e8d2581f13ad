// Marks the calling thread as background work for the host scheduler
// (SCHED_BATCH): it still gets its full share of CPU, but waking it never
// preempts the thread that woke it. On these small hosts a vCPU thread
// resumed by an acquire used to preempt thawd's RPC loop before the reply
// went out, and guest ring-0 work on PVM is slow, so the reply waited
// ~0.3 ms; the same held for resets and restores. Unprivileged, so it
// cannot fail for want of rights; an error is returned, not thrown.
#pragma once

#include <sched.h>

#include <cerrno>

namespace thaw {

// 0 on success, else the errno of sched_setscheduler.
inline int make_this_thread_background() {
  sched_param param{};
  param.sched_priority = 0;
  return ::sched_setscheduler(0, SCHED_BATCH, &param) == 0 ? 0 : errno;
}

}  // namespace thaw
