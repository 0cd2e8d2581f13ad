// fuzz_rpc_framing: rpc/message_guard_stream's parser of Cap'n Proto stream
// framing, which every byte a client sends to thawd goes through before
// Cap'n Proto reads it. The same bytes fed whole and fed one at a time must
// end in the same state: both refused (a message over the limit), or both
// between or inside a message.
#include <cstdint>
#include <memory>

#include <kj/async-io.h>

#include "rpc/message_guard_stream.h"

namespace {

struct Loop {
  kj::AsyncIoContext io = kj::setupAsyncIo();
};

// Feeds `data` in pieces of `step` bytes; whether it was refused, and the
// framing state at the end.
std::pair<bool, bool> feed(Loop& loop, const uint8_t* data, size_t size, size_t step) {
  auto pipe = kj::newTwoWayPipe();
  thaw::rpc::MessageGuardStream guard(kj::mv(pipe.ends[0]), loop.io.provider->getTimer(),
                                      {64 * 1024, 1 * kj::SECONDS}, nullptr);
  try {
    for (size_t at = 0; at < size; at += step) guard.feed(data + at, std::min(step, size - at));
  } catch (const kj::Exception& e) {
    if (e.getType() != kj::Exception::Type::DISCONNECTED) __builtin_trap();
    return {true, guard.in_message()};
  }
  return {false, guard.in_message()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Loop loop;
  auto whole = feed(loop, data, size, size == 0 ? 1 : size);
  auto bytewise = feed(loop, data, size, 1);
  if (whole.first != bytewise.first) __builtin_trap();
  if (!whole.first && whole.second != bytewise.second) __builtin_trap();
  return 0;
}
