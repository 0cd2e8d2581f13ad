// Threads on stacks thaw maps itself, so that a clone's threads do not each
// cost the process two memory mappings (VMAs).
//
// glibc gives every thread an 8 MiB stack with a PROT_NONE guard page made
// by mprotect: two VMAs a thread, and a worker with 1,000 clones (a vCPU
// thread and a vsock muxer each) held ~4,000 of its ~6,100 VMAs in thread
// stacks. KVM_CREATE_VM takes every VMA's lock while it registers its MMU
// notifier, with page faults in the whole process waiting (measured: 0.09 ms
// at 40 VMAs, 0.51 ms at 6,000; bench/vm_create_bench.cpp), so VMAs are
// restore latency. Here the guard page is a guard region installed with
// MADV_GUARD_INSTALL (Linux 6.13): it lives in the page tables, not in a
// VMA of its own, so the stack is one VMA, and stacks mapped next to each
// other merge into one. Older kernels get the mprotect guard, as glibc's.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace thaw {

// How a ThreadStack's lowest page is made to fault.
enum class StackGuard {
  kGuardRegion,       // MADV_GUARD_INSTALL: no VMA of its own
  kProtectedMapping,  // mprotect(PROT_NONE): a VMA of its own (older kernels)
};

// One thread stack: a private anonymous mapping whose lowest page faults.
// Move-only owner; unmaps on destruction (after its thread is joined).
class ThreadStack {
 public:
  static constexpr size_t kGuardBytes = 4096;
  static constexpr size_t kMinUsableBytes = 64 * 1024;

  ThreadStack() = default;
  // `usable_bytes` is rounded up to whole pages and to kMinUsableBytes.
  // `guard`: kGuardRegion falls back to kProtectedMapping where the kernel
  // lacks guard regions; kProtectedMapping forces the old way (tests).
  // Throws SysError naming `context` when the host refuses the mapping.
  explicit ThreadStack(size_t usable_bytes, StackGuard guard = StackGuard::kGuardRegion,
                       const std::string& context = "thread stack");
  ~ThreadStack();
  ThreadStack(ThreadStack&& other) noexcept;
  ThreadStack& operator=(ThreadStack&& other) noexcept;
  ThreadStack(const ThreadStack&) = delete;
  ThreadStack& operator=(const ThreadStack&) = delete;

  bool valid() const { return base_ != nullptr; }
  StackGuard guard() const { return guard_; }
  // The guard page: any access faults.
  void* guard_page() const { return base_; }
  // What the thread runs on: just above the guard page.
  void* usable_begin() const { return static_cast<char*>(base_) + kGuardBytes; }
  size_t usable_bytes() const { return total_ == 0 ? 0 : total_ - kGuardBytes; }

 private:
  void release();

  void* base_ = nullptr;
  size_t total_ = 0;
  StackGuard guard_ = StackGuard::kGuardRegion;
};

// Whether this kernel installs guard regions (MADV_GUARD_INSTALL).
bool guard_regions_supported();

// A thread running `body` on a ThreadStack of its own. Like std::thread,
// but the destructor and move-assignment join a thread still running
// instead of aborting, and the stack goes only after the join. An exception
// escaping `body` ends the process (as with std::thread).
class StackThread {
 public:
  // Enough for a vCPU's exit handling and a device's packet loop, with
  // room for sanitizer builds' larger frames.
  static constexpr size_t kDefaultStackBytes = 1024 * 1024;

  StackThread() = default;
  // Throws SysError naming `name` when the stack or the thread cannot be made.
  explicit StackThread(std::function<void()> body, const std::string& name = "thread",
                       size_t stack_bytes = kDefaultStackBytes);
  // Adopts `running`, a thread another thread started on `stack` with
  // start_on() (FilteredThreadSpawner): this object joins it and then
  // unmaps the stack.
  StackThread(ThreadStack stack, pthread_t running);
  // pthread_create of `body` on `stack` by the calling thread: 0 and the
  // handle in `thread`, or the error number (the body is then dropped).
  static int start_on(const ThreadStack& stack, std::function<void()> body, pthread_t* thread);
  ~StackThread();
  StackThread(StackThread&& other) noexcept;
  StackThread& operator=(StackThread&& other) noexcept;
  StackThread(const StackThread&) = delete;
  StackThread& operator=(const StackThread&) = delete;

  bool joinable() const { return running_; }
  void join();
  pthread_t native_handle() const { return thread_; }
  const ThreadStack& stack() const { return stack_; }

 private:
  ThreadStack stack_;
  pthread_t thread_{};
  bool running_ = false;
};

}  // namespace thaw
