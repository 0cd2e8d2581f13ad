// Program templates on the wire, without KVM or a daemon: the TemplateSpec's
// program fields survive to_schema/from_schema (and a kernel template's
// message leaves them unset), and check_spec names every bad program field.
#include <gtest/gtest.h>

#include <capnp/message.h>

#include "rpc/convert.h"
#include "rpc/error_mapping.h"
#include "rpc/validation.h"

namespace thaw::rpc {
namespace {

pool::TemplateSpec program_spec() {
  pool::TemplateSpec spec;
  spec.name = "bb";
  spec.kernel = "/k/thaw-mini.elf";
  spec.cmdline = "console=ttyS0 thaw.quiet=1";
  spec.mem_mib = 64;
  spec.program = "/bin/busybox";
  spec.args = {"sha256sum", "-c", ""};
  spec.env = {"A=1", "B=two words"};
  spec.files_dir = "/srv/fn";
  return spec;
}

pool::TemplateSpec round_trip(const pool::TemplateSpec& in) {
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<schema::TemplateSpec>();
  to_schema(in, builder);
  return from_schema(builder.asReader());
}

// The message of `check_spec(spec)`, or "" when it passes.
std::string spec_error(const pool::TemplateSpec& spec) {
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&] { check_spec(spec, Limits{}); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::FAILED);
    return error_message(*e);
  }
  return {};
}

TEST(ProgramSpecSchema, ProgramFieldsRoundTrip) {
  auto spec = program_spec();
  EXPECT_EQ(round_trip(spec), spec);
  spec.args.clear();
  spec.env.clear();
  spec.files_dir.clear();
  EXPECT_EQ(round_trip(spec), spec);
}

TEST(ProgramSpecSchema, AKernelTemplateLeavesTheProgramFieldsUnset) {
  pool::TemplateSpec spec{"mini", "/k/thaw-mini.elf", "", "thaw.after=agent", 32, 1};
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<schema::TemplateSpec>();
  to_schema(spec, builder);
  auto reader = builder.asReader();
  EXPECT_FALSE(reader.hasProgram());
  EXPECT_FALSE(reader.hasArgs());
  EXPECT_FALSE(reader.hasEnv());
  EXPECT_FALSE(reader.hasFilesDir());
  auto back = from_schema(reader);
  EXPECT_EQ(back, spec);
  EXPECT_FALSE(back.is_program());
}

TEST(ProgramSpecSchema, TheLinuxGuestRoundTripsAndOlderMessagesAreMini) {
  auto spec = program_spec();
  spec.guest = pool::GuestKind::kLinux;
  EXPECT_EQ(round_trip(spec), spec);
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<schema::TemplateSpec>();
  to_schema(program_spec(), builder);
  EXPECT_EQ(builder.getGuest(), schema::Guest::MINI);
  EXPECT_EQ(from_schema(builder.asReader()).guest, pool::GuestKind::kMini);
  // A guest a newer client knows and this daemon does not is refused by name.
  builder.setGuest(static_cast<schema::Guest>(7));
  try {
    from_schema(builder.asReader());
    FAIL() << "an unknown guest was accepted";
  } catch (const pool::BadArgument& e) {
    EXPECT_NE(std::string(e.what()).find("spec.guest: unknown guest 7"), std::string::npos) << e.what();
  }
}

TEST(ProgramSpecValidation, ALinuxTemplateNeedsAProgram) {
  pool::TemplateSpec spec{"lx", "/k/bzImage", "", "", 64, 1};
  spec.guest = pool::GuestKind::kLinux;
  EXPECT_NE(spec_error(spec).find("spec.program: a Linux template"), std::string::npos) << spec_error(spec);
  spec.program = "/bin/busybox";
  EXPECT_EQ(spec_error(spec), "");
}

TEST(ProgramSpecValidation, GoodSpecsPass) {
  EXPECT_EQ(spec_error(program_spec()), "");
  pool::TemplateSpec kernel{"mini", "/k/thaw-mini.elf", "", "", 32, 1};
  EXPECT_EQ(spec_error(kernel), "");
}

TEST(ProgramSpecValidation, EveryBadProgramFieldIsNamed) {
  struct Case {
    const char* what;
    void (*change)(pool::TemplateSpec&);
    const char* needle;
  };
  const Case cases[] = {
      {"relative program", [](pool::TemplateSpec& s) { s.program = "bin/busybox"; }, "spec.program"},
      {"relative files", [](pool::TemplateSpec& s) { s.files_dir = "fn"; }, "spec.filesDir"},
      {"initrd", [](pool::TemplateSpec& s) { s.initrd = "/k/initrd"; }, "spec.initrd"},
      {"too many args", [](pool::TemplateSpec& s) { s.args.assign(257, "x"); }, "spec.args: 257 entries"},
      {"long arg", [](pool::TemplateSpec& s) { s.args = {std::string(4097, 'a')}; }, "spec.args[0]: 4097 bytes"},
      {"NUL in env", [](pool::TemplateSpec& s) { s.env = {std::string("A=\0b", 4)}; }, "spec.env[0]: contains a NUL"},
      {"env without =", [](pool::TemplateSpec& s) { s.env = {"A=1", "NOVALUE"}; }, "spec.env[1]"},
      {"env without key", [](pool::TemplateSpec& s) { s.env = {"=1"}; }, "is not K=V"},
      {"args without program",
       [](pool::TemplateSpec& s) {
         s.program.clear();
         s.files_dir.clear();
         s.env.clear();
       },
       "need spec.program"},
  };
  for (const auto& c : cases) {
    auto spec = program_spec();
    c.change(spec);
    auto error = spec_error(spec);
    EXPECT_NE(error.find(c.needle), std::string::npos) << c.what << ": " << error;
  }
}

}  // namespace
}  // namespace thaw::rpc
