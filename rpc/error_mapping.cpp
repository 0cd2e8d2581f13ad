#include "rpc/error_mapping.h"

#include <string_view>

#include "pool/pool_types.h"
#include "base/errors.h"

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
  } catch (const InputError& e) {
    return make(kj::Exception::Type::FAILED, e.what());
  } catch (const SysError& e) {
    // The host refused (no /dev/kvm, out of fds, a full disk): not the
    // caller's mistake, and the client must be able to tell.
    return make(kj::Exception::Type::FAILED, std::string(kHostErrorPrefix) + e.what());
  } catch (const std::exception& e) {
    return make(kj::Exception::Type::FAILED, std::string(kInternalErrorPrefix) + e.what());
  } catch (...) {
    return make(kj::Exception::Type::FAILED, std::string(kInternalErrorPrefix) + "unknown exception");
  }
}

ErrorKind error_kind(const kj::Exception& e) {
  switch (e.getType()) {
    case kj::Exception::Type::FAILED: {
      auto text = error_message(e);
      for (std::string_view prefix : {kHostErrorPrefix, kInternalErrorPrefix}) {
        if (text.compare(0, prefix.size(), prefix) == 0) return ErrorKind::kHostError;
      }
      return ErrorKind::kFailed;
    }
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
