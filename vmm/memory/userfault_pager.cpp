#include "vmm/memory/userfault_pager.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include <spdlog/spdlog.h>

#include "base/eventfd.h"
#include "base/errors.h"

namespace thaw::vmm {

namespace {
constexpr uint64_t kPage = 4096;
}

UserfaultPager::UserfaultPager(GuestMemory& memory, const std::string& source_path, bool record_pages)
    : base_(memory.host_base()), size_(memory.size()), recording_(record_pages) {
  if (memory.backing() != GuestMemory::Backing::kAnonymous) {
    throw std::logic_error("userfaultfd paging needs anonymous guest memory");
  }
  source_ = UniqueFd(::open(source_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!source_) throw_errno("open", "memory file " + source_path);
  uffd_ = UniqueFd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!uffd_) throw_errno("userfaultfd", "needs root or vm.unprivileged_userfaultfd=1");
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(uffd_.get(), UFFDIO_API, &api) != 0) throw_errno("UFFDIO_API");
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uint64_t>(base_);
  reg.range.len = size_;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) throw_errno("UFFDIO_REGISTER", "guest RAM");
  stop_event_ = make_eventfd("stopping the userfault pager");
  thread_ = StackThread([this] { serve(); }, "userfault pager");
}

UserfaultPager::~UserfaultPager() {
  signal_eventfd(stop_event_.get());
  if (thread_.joinable()) thread_.join();
}

void UserfaultPager::start_recording() { recording_.store(true, std::memory_order_release); }

std::vector<uint64_t> UserfaultPager::recorded_pages() const {
  std::lock_guard lock(recorded_mutex_);
  std::sort(recorded_.begin(), recorded_.end());
  recorded_.erase(std::unique(recorded_.begin(), recorded_.end()), recorded_.end());
  return recorded_;
}

void UserfaultPager::serve() {
  std::vector<uint8_t> page(kPage);
  pollfd fds[2] = {{uffd_.get(), POLLIN, 0}, {stop_event_.get(), POLLIN, 0}};
  while (true) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("userfault pager: poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents & POLLIN) return;
    uffd_msg msg{};
    ssize_t n = ::read(uffd_.get(), &msg, sizeof msg);
    if (n != sizeof msg) continue;  // EAGAIN: another wake-up took it
    if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
    uint64_t offset = (msg.arg.pagefault.address - reinterpret_cast<uint64_t>(base_)) & ~(kPage - 1);
    // A short read (file shorter than RAM) leaves the rest zero, as RAM starts.
    std::fill(page.begin(), page.end(), 0);
    if (::pread(source_.get(), page.data(), kPage, static_cast<off_t>(offset)) < 0) {
      spdlog::error("userfault pager: pread at {:#x} failed: {}", offset, std::strerror(errno));
    }
    uffdio_copy copy{};
    copy.dst = reinterpret_cast<uint64_t>(base_) + offset;
    copy.src = reinterpret_cast<uint64_t>(page.data());
    copy.len = kPage;
    // EEXIST: another thread's fault already filled the page; that is fine.
    if (::ioctl(uffd_.get(), UFFDIO_COPY, &copy) != 0 && errno != EEXIST) {
      spdlog::error("userfault pager: UFFDIO_COPY at {:#x} failed: {}", offset, std::strerror(errno));
      continue;
    }
    pages_served_.fetch_add(1, std::memory_order_relaxed);
    if (recording_.load(std::memory_order_acquire)) {
      std::lock_guard lock(recorded_mutex_);
      recorded_.push_back(offset);
    }
  }
}

}  // namespace thaw::vmm
