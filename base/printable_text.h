// Text from untrusted input (a snapshot's strings, a guest's output, a
// file's name) made safe for a terminal or a log line: control bytes,
// escape sequences and non-ASCII bytes become \xNN, and long text is cut.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace thaw {

// `text` with every byte outside printable ASCII (0x20..0x7e) and the
// backslash written as \xNN, at most `max_bytes` input bytes, then "...".
std::string printable_text(std::string_view text, size_t max_bytes = 128);

}  // namespace thaw
