#include "rpc/message_guard_stream.h"

#include <cstring>

#include <kj/exception.h>
#include <kj/debug.h>

namespace thaw::rpc {

namespace {

// Cap'n Proto refuses more segments than this; a table that claims more is
// only kept as far as this, and the reader fails it.
constexpr uint32_t kMaxSegments = 512;

uint32_t u32_at(const kj::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;  // little-endian, as Cap'n Proto and x86 both are
}

}  // namespace

MessageGuardStream::MessageGuardStream(kj::Own<kj::AsyncIoStream> inner, kj::Timer& timer, Limits limits,
                                       ViolationFn on_violation)
    : inner_(kj::mv(inner)), timer_(timer), limits_(limits), on_violation_(std::move(on_violation)),
      deadline_(timer.now()) {}

void MessageGuardStream::violate(Violation kind, const std::string& why) {
  if (on_violation_) on_violation_(kind, why);
  kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "thawd closed the connection", why.c_str()));
}

void MessageGuardStream::header_complete() {
  const uint64_t segments = uint64_t{u32_at(header_)} + 1;
  uint64_t words = 0;
  for (uint64_t i = 0; i < segments && i < kMaxSegments; ++i) words += u32_at(header_ + 4 + 4 * i);
  const uint64_t bytes = words * 8;
  if (bytes > limits_.max_message_bytes) {
    violate(Violation::kOversized, "message of " + std::to_string(bytes) + " bytes over the limit of " +
            std::to_string(limits_.max_message_bytes));
  }
  if (auto* budget = limits_.budget; budget != nullptr && budget->limit_bytes != 0 && bytes != 0) {
    const uint64_t used = budget->used_bytes.fetch_add(bytes) + bytes;
    reserved_ = bytes;
    if (used > budget->limit_bytes) {
      release_reservation();
      violate(Violation::kOverBudget, "message of " + std::to_string(bytes) + " bytes would put messages in flight " +
                                          "across connections at " + std::to_string(used) + " bytes, over the limit of " +
                                          std::to_string(budget->limit_bytes));
    }
  }
  body_left_ = bytes;
  state_ = bytes == 0 ? State::kIdle : State::kBody;
}

void MessageGuardStream::release_reservation() {
  if (reserved_ != 0 && limits_.budget != nullptr) limits_.budget->used_bytes.fetch_sub(reserved_);
  reserved_ = 0;
}

void MessageGuardStream::feed(const kj::byte* bytes, size_t size) {
  while (size > 0) {
    if (state_ == State::kIdle) {
      state_ = State::kHeader;
      header_have_ = 0;
      header_need_ = 8;
      deadline_ = timer_.now() + limits_.message_timeout;
    }
    if (state_ == State::kHeader) {
      const size_t take = std::min(size, header_need_ - header_have_);
      std::memcpy(header_ + header_have_, bytes, take);
      header_have_ += take;
      bytes += take;
      size -= take;
      if (header_have_ < header_need_) continue;
      if (header_need_ == 8) {
        // The first word names the segment count: the rest of the table is
        // 4 bytes per further segment, padded to a whole word.
        const uint64_t segments = uint64_t{u32_at(header_)} + 1;
        const uint64_t table = (4 * (1 + std::min<uint64_t>(segments, kMaxSegments)) + 7) / 8 * 8;
        if (table > header_need_) {
          header_need_ = table;
          continue;
        }
      }
      header_complete();
      continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(size, body_left_));
    body_left_ -= take;
    bytes += take;
    size -= take;
    if (body_left_ == 0) {
      state_ = State::kIdle;
      release_reservation();
    }
  }
}

kj::Promise<size_t> MessageGuardStream::tryRead(void* buffer, size_t min_bytes, size_t max_bytes) {
  auto read = inner_->tryRead(buffer, min_bytes, max_bytes).then([this, buffer](size_t n) {
    feed(static_cast<const kj::byte*>(buffer), n);
    return n;
  });
  if (state_ == State::kIdle) return read;  // between messages a client may stay quiet for as long as it likes
  const auto now = timer_.now();
  const kj::Duration left = deadline_ > now ? deadline_ - now : 0 * kj::NANOSECONDS;
  return read.exclusiveJoin(timer_.afterDelay(left).then([this]() -> size_t {
    violate(Violation::kStalled, "message not complete within " + std::to_string(limits_.message_timeout / kj::MILLISECONDS) + " ms");
  }));
}

}  // namespace thaw::rpc
