// A connection's byte stream as thawd's RPC reads it, with two limits on
// what an unauthenticated peer can make thawd hold: a Cap'n Proto message
// may declare at most `max_message_bytes`, and once its first byte has
// arrived the whole message must arrive within `message_timeout`. A peer
// that declares a huge message, or starts one and stalls, is disconnected
// instead of pinning a buffer. Streams may share an InFlightBudget: the
// declared sizes of all their partly received messages together stay
// under its limit, so many peers cannot pin what one may not. It follows
// the stream framing (segment
// count, segment sizes, padding, segments) to know where messages start;
// writes pass through.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include <kj/async-io.h>
#include <kj/timer.h>

namespace thaw::rpc {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"  // kj's interface; owned through kj::Own, which deletes the real type
class MessageGuardStream final : public kj::AsyncIoStream {
 public:
  // Shared by the streams of one listener (which outlives them): bytes of
  // messages begun and not yet complete, by their declared size.
  struct InFlightBudget {
    uint64_t limit_bytes = 0;  // 0: no limit
    std::atomic<uint64_t> used_bytes{0};
  };
  struct Limits {
    uint64_t max_message_bytes = 2u << 20;
    kj::Duration message_timeout = 10 * kj::SECONDS;
    InFlightBudget* budget = nullptr;  // none: no limit across streams
  };
  enum class Violation { kOversized, kStalled, kOverBudget };
  using ViolationFn = std::function<void(Violation, const std::string& why)>;
  // `on_violation` gets which limit and a short reason ("message of N bytes
  // over the limit of M") before the stream fails its read with DISCONNECTED.
  MessageGuardStream(kj::Own<kj::AsyncIoStream> inner, kj::Timer& timer, Limits limits, ViolationFn on_violation);
  ~MessageGuardStream() noexcept(false) { release_reservation(); }

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override;
  kj::Promise<void> write(const void* buffer, size_t size) override { return inner_->write(buffer, size); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void abortRead() override { inner_->abortRead(); }
  kj::Maybe<int> getFd() const override { return inner_->getFd(); }

  // The framing as seen so far: true while a message is partly received.
  bool in_message() const { return state_ != State::kIdle; }

  // Feeds received bytes through the framing parser; throws DISCONNECTED
  // (after on_violation) for a message over the size limit. Public for
  // the unit test.
  void feed(const kj::byte* bytes, size_t size);

 private:
  enum class State { kIdle, kHeader, kBody };
  [[noreturn]] void violate(Violation kind, const std::string& why);
  void header_complete();
  void release_reservation();

  kj::Own<kj::AsyncIoStream> inner_;
  kj::Timer& timer_;
  Limits limits_;
  ViolationFn on_violation_;
  State state_ = State::kIdle;
  kj::TimePoint deadline_;
  // The segment table: its bytes so far (4 per entry, padded to 8).
  kj::byte header_[8 * 257] = {};
  size_t header_have_ = 0, header_need_ = 8;
  uint64_t body_left_ = 0;
  uint64_t reserved_ = 0;  // this stream's share of limits_.budget
};
#pragma GCC diagnostic pop

}  // namespace thaw::rpc
