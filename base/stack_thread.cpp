#include "base/stack_thread.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "base/errors.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13, include/uapi/asm-generic/mman-common.h
#endif

namespace thaw {

namespace {

size_t round_up_to_pages(size_t bytes) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes < ThreadStack::kMinUsableBytes) bytes = ThreadStack::kMinUsableBytes;
  return (bytes + page - 1) / page * page;
}

// Puts a fault on [page, page + kGuardBytes): a guard region if the kernel
// has them, else a PROT_NONE mapping. Returns which, or throws.
StackGuard install_guard(void* page, StackGuard wanted, const std::string& context) {
  if (wanted == StackGuard::kGuardRegion) {
    if (::madvise(page, ThreadStack::kGuardBytes, MADV_GUARD_INSTALL) == 0) return StackGuard::kGuardRegion;
    // EINVAL: a kernel without guard regions. Anything else is a real failure.
    if (errno != EINVAL) throw_errno("madvise(MADV_GUARD_INSTALL)", context);
  }
  if (::mprotect(page, ThreadStack::kGuardBytes, PROT_NONE) != 0) throw_errno("mprotect(PROT_NONE)", context);
  return StackGuard::kProtectedMapping;
}

void* run_body(void* arg) {
  std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
  (*body)();  // an escaping exception terminates, as std::thread's would
  return nullptr;
}

}  // namespace

ThreadStack::ThreadStack(size_t usable_bytes, StackGuard guard, const std::string& context) {
  const size_t total = round_up_to_pages(usable_bytes) + kGuardBytes;
  // MAP_NORESERVE: only the pages a thread touches cost memory.
  void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                      -1, 0);
  if (base == MAP_FAILED) throw_errno("mmap", context);
  try {
    guard_ = install_guard(base, guard, context);
  } catch (...) {
    ::munmap(base, total);
    throw;
  }
  base_ = base;
  total_ = total;
}

ThreadStack::~ThreadStack() { release(); }

ThreadStack::ThreadStack(ThreadStack&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)), total_(std::exchange(other.total_, 0)), guard_(other.guard_) {}

ThreadStack& ThreadStack::operator=(ThreadStack&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    total_ = std::exchange(other.total_, 0);
    guard_ = other.guard_;
  }
  return *this;
}

void ThreadStack::release() {
  if (base_ != nullptr) ::munmap(base_, total_);
  base_ = nullptr;
  total_ = 0;
}

bool guard_regions_supported() {
  ThreadStack probe(ThreadStack::kMinUsableBytes, StackGuard::kGuardRegion, "probing MADV_GUARD_INSTALL");
  return probe.guard() == StackGuard::kGuardRegion;
}

int StackThread::start_on(const ThreadStack& stack, std::function<void()> body, pthread_t* thread) {
  pthread_attr_t attr;
  if (int rc = ::pthread_attr_init(&attr); rc != 0) return rc;
  int rc = ::pthread_attr_setstack(&attr, stack.usable_begin(), stack.usable_bytes());
  auto owned = std::make_unique<std::function<void()>>(std::move(body));
  if (rc == 0) rc = ::pthread_create(thread, &attr, run_body, owned.get());
  ::pthread_attr_destroy(&attr);
  if (rc == 0) owned.release();  // the thread owns its body now
  return rc;
}

StackThread::StackThread(std::function<void()> body, const std::string& name, size_t stack_bytes)
    : stack_(stack_bytes, StackGuard::kGuardRegion, name + " stack") {
  if (int rc = start_on(stack_, std::move(body), &thread_); rc != 0) throw SysError("pthread_create", rc, name);
  running_ = true;
}

StackThread::StackThread(ThreadStack stack, pthread_t running)
    : stack_(std::move(stack)), thread_(running), running_(true) {}

StackThread::~StackThread() { join(); }

StackThread::StackThread(StackThread&& other) noexcept
    : stack_(std::move(other.stack_)), thread_(other.thread_), running_(std::exchange(other.running_, false)) {}

StackThread& StackThread::operator=(StackThread&& other) noexcept {
  if (this != &other) {
    join();
    stack_ = std::move(other.stack_);
    thread_ = other.thread_;
    running_ = std::exchange(other.running_, false);
  }
  return *this;
}

void StackThread::join() {
  if (!running_) return;
  ::pthread_join(thread_, nullptr);
  running_ = false;
}

}  // namespace thaw
