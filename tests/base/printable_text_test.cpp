#include "base/printable_text.h"

#include <gtest/gtest.h>

namespace thaw {
namespace {

TEST(PrintableText, EscapesControlBytesAndEscapeSequences) {
  EXPECT_EQ(printable_text("x86_64"), "x86_64");
  EXPECT_EQ(printable_text("\x1b[2J\x1b]0;owned\x07"), "\\x1b[2J\\x1b]0;owned\\x07");
  EXPECT_EQ(printable_text(std::string_view("a\0b\n", 4)), "a\\x00b\\x0a");
  EXPECT_EQ(printable_text("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(printable_text("\xc3\xa9"), "\\xc3\\xa9");
}

TEST(PrintableText, LongTextIsCut) {
  EXPECT_EQ(printable_text(std::string(10, 'a'), 4), "aaaa...");
  EXPECT_EQ(printable_text("abcd", 4), "abcd");
}

}  // namespace
}  // namespace thaw
