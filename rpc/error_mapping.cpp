#include "rpc/error_mapping.h"

#include <string_view>

#include "pool/pool_types.h"

namespace thaw::rpc {

namespace {

kj::Exception make(kj::Exception::Type type, const std::string& message) {
  return kj::Exception(type, __FILE__, __LINE__, kj::heapString(message.data(), message.size()));
}

}  // namespace

void throw_bad_argument(const std::string& message) { throw make(kj::Exception::Type::FAILED, message); }

kj::Exception exception_to_kj(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const kj::Exception& e) {
    return e;
  } catch (const pool::BadArgument& e) {
    return make(kj::Exception::Type::FAILED, e.what());
  } catch (const pool::NotFound& e) {
    return make(kj::Exception::Type::FAILED, e.what());
  } catch (const pool::Overloaded& e) {
    return make(kj::Exception::Type::OVERLOADED, e.what());
  } catch (const pool::GuestGone& e) {
    return make(kj::Exception::Type::DISCONNECTED, e.what());
  } catch (const std::exception& e) {
    return make(kj::Exception::Type::FAILED, std::string("internal error: ") + e.what());
  } catch (...) {
    return make(kj::Exception::Type::FAILED, "internal error: unknown exception");
  }
}

ErrorKind error_kind(const kj::Exception& e) {
  switch (e.getType()) {
    case kj::Exception::Type::FAILED: return ErrorKind::kFailed;
    case kj::Exception::Type::OVERLOADED: return ErrorKind::kOverloaded;
    case kj::Exception::Type::DISCONNECTED: return ErrorKind::kDisconnected;
    default: return ErrorKind::kOther;
  }
}

std::string error_message(const kj::Exception& e) {
  std::string_view text(e.getDescription().cStr(), e.getDescription().size());
  constexpr std::string_view kPrefix = "remote exception: ";
  if (text.substr(0, kPrefix.size()) == kPrefix) text.remove_prefix(kPrefix.size());
  return std::string(text);
}

}  // namespace thaw::rpc
