// Template names, template.json and the directory layout: no KVM needed.
#include "pool/template_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "snapshot/snapshot_dir.h"
#include "tests/temp_dir.h"

namespace thaw::pool {
namespace {

namespace fs = std::filesystem;

using ::thaw::testing::TempDir;

void touch(const fs::path& p, const std::string& text = "x") {
  std::ofstream(p) << text;
}

TEST(TemplateName, AcceptsTheDocumentedAlphabet) {
  for (std::string ok : {"a", "0", "web", "py-3_11", "a0-_"}) EXPECT_TRUE(is_valid_template_name(ok)) << ok;
  EXPECT_TRUE(is_valid_template_name(std::string(63, 'x')));
}

TEST(TemplateName, RejectsEverythingElse) {
  for (std::string bad : {"", "-a", "_a", "A", "web.1", "a/b", "..", ".", "a b", "caf\xc3\xa9", "a.tmp", "a\n"}) {
    EXPECT_FALSE(is_valid_template_name(bad)) << bad;
    EXPECT_THROW(validate_template_name(bad), BadArgument) << bad;
  }
  EXPECT_FALSE(is_valid_template_name(std::string(64, 'x')));
}

TEST(TemplateSpec, ValidationNamesTheProblem) {
  TempDir dir;
  std::string kernel = dir.path() + "/kernel";
  touch(kernel);
  TemplateSpec spec{"web", kernel, "", "console=ttyS0", 128, 1};
  EXPECT_NO_THROW(validate_spec(spec));
  auto expect_bad = [&](TemplateSpec s, const std::string& needle) {
    try {
      validate_spec(s);
      ADD_FAILURE() << "accepted; wanted an error naming " << needle;
    } catch (const BadArgument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto s = spec;
  s.kernel = dir.path() + "/missing";
  expect_bad(s, "does not exist");
  s = spec;
  s.kernel = dir.path();
  expect_bad(s, "not a regular file");
  s = spec;
  s.initrd = dir.path() + "/no-initrd";
  expect_bad(s, "initrd");
  s = spec;
  s.mem_mib = 1;
  expect_bad(s, "memory");
  s = spec;
  s.vcpus = 0;
  expect_bad(s, "vCPUs");
  s = spec;
  s.name = "Bad";
  expect_bad(s, "not valid");
  s = spec;
  s.cmdline = std::string(5000, 'x');
  expect_bad(s, "command line");
}

TEST(PoolPolicyValidation, MinAboveMaxIsRejected) {
  EXPECT_NO_THROW(validate_policy(PoolPolicy{0, 0, 0}));
  EXPECT_NO_THROW(validate_policy(PoolPolicy{2, 16, 4096}));
  EXPECT_THROW(validate_policy(PoolPolicy{3, 2, 4096}), BadArgument);
  EXPECT_THROW(validate_policy(PoolPolicy{0, 100000, 4096}), BadArgument);
}

TEST(TemplateJson, RoundTrips) {
  TemplateRecord r;
  r.spec = {"py-3", "/k/vmlinux", "/k/initrd", "console=ttyS0 quiet \"x\"", 512, 2};
  r.policy = {1, 9, 777};
  r.cold_boot_ms = 12.5;
  auto back = decode_template_json(encode_template_json(r));
  EXPECT_EQ(back.spec.name, r.spec.name);
  EXPECT_EQ(back.spec.kernel, r.spec.kernel);
  EXPECT_EQ(back.spec.initrd, r.spec.initrd);
  EXPECT_EQ(back.spec.cmdline, r.spec.cmdline);
  EXPECT_EQ(back.spec.mem_mib, 512u);
  EXPECT_EQ(back.spec.vcpus, 2u);
  EXPECT_EQ(back.policy.min_warm, 1u);
  EXPECT_EQ(back.policy.max_warm, 9u);
  EXPECT_EQ(back.policy.memory_budget_mib, 777u);
  EXPECT_DOUBLE_EQ(back.cold_boot_ms, 12.5);
}

TEST(TemplateJson, ProgramFieldsRoundTripAndOldRecordsLoad) {
  TemplateRecord r;
  r.spec = {"bb", "/k/thaw-mini.elf", "", "console=ttyS0 thaw.quiet=1", 64, 1};
  r.spec.program = "/bin/busybox";
  r.spec.args = {"sha256sum", "-"};
  r.spec.env = {"A=1"};
  r.spec.files_dir = "/srv/fn";
  EXPECT_EQ(decode_template_json(encode_template_json(r)).spec, r.spec);
  // A kernel template's record has no program keys, as records written
  // before program templates: they load as kernel templates.
  TemplateRecord old;
  old.spec = {"old", "/k", "", "", 128, 1};
  std::string text = encode_template_json(old);
  EXPECT_EQ(text.find("program"), std::string::npos) << text;
  auto back = decode_template_json(text);
  EXPECT_FALSE(back.spec.is_program());
  EXPECT_EQ(back.spec, old.spec);
}

TEST(TemplateJson, TheLinuxGuestRoundTripsAndAnUnknownOneIsRefused) {
  TemplateRecord r;
  r.spec = {"lx", "/k/bzImage", "", "loglevel=7", 64, 1};
  r.spec.guest = GuestKind::kLinux;
  r.spec.program = "/usr/bin/python3";
  r.spec.files_dir = "/srv/rootfs";
  std::string text = encode_template_json(r);
  EXPECT_NE(text.find("\"guest\": \"linux\""), std::string::npos) << text;
  EXPECT_EQ(decode_template_json(text).spec, r.spec);
  auto pos = text.find("\"linux\"");
  text.replace(pos, 7, "\"bsd\"");
  try {
    decode_template_json(text);
    FAIL() << "an unknown guest was accepted";
  } catch (const BadArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown guest 'bsd'"), std::string::npos) << e.what();
  }
}

TEST(TemplateSpec, ALinuxTemplateNeedsAProgram) {
  TempDir dir;
  std::string kernel = dir / "bzImage";
  std::ofstream(kernel) << "x";
  TemplateSpec spec{"lx", kernel, "", "", 64, 1};
  spec.guest = GuestKind::kLinux;
  try {
    validate_spec(spec);
    FAIL() << "accepted";
  } catch (const BadArgument& e) {
    EXPECT_NE(std::string(e.what()).find("a Linux template needs a program"), std::string::npos) << e.what();
  }
}

TEST(TemplateJson, RejectsMalformedInput) {
  TemplateRecord r;
  r.spec = {"ok", "/k", "", "", 128, 1};
  std::string good = encode_template_json(r);
  EXPECT_NO_THROW(decode_template_json(good));
  for (std::string bad : {std::string("{"), std::string("[]"), std::string("{\"version\": 1}"),
                          std::string("{\"version\": 2, \"spec\": {}, \"policy\": {}}")}) {
    EXPECT_THROW(decode_template_json(bad), BadArgument) << bad;
  }
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  EXPECT_THROW(decode_template_json(replace("\"ok\"", "\"../etc\"")), BadArgument);
  EXPECT_THROW(decode_template_json(replace("\"mem_mib\": 128", "\"mem_mib\": \"128\"")), BadArgument);
  EXPECT_THROW(decode_template_json(replace("\"vcpus\": 1", "\"vcpus\": -1")), BadArgument);
  EXPECT_THROW(decode_template_json(replace("\"min_warm\": 2", "\"min_warm\": 20")), BadArgument);
}

TEST(TemplateStore, CommitIsARenameAndListSkipsIncompleteTemplates) {
  TempDir root;
  TemplateStore store(root.path() + "/templates");
  std::string tmp = store.begin("web");
  EXPECT_EQ(tmp, store.root() + "/web.tmp");
  EXPECT_FALSE(store.exists("web"));
  touch(fs::path(tmp) / snapshot::kStateFileName);
  TemplateRecord record;
  record.spec = {"web", "/k", "", "", 64, 1};
  store.commit("web", record);
  EXPECT_TRUE(store.exists("web"));
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(store.read_record("web").spec.mem_mib, 64u);

  // Left by a crash: a half-written template, a directory without
  // template.json, and a delete that did not finish.
  fs::create_directories(store.root() + "/db.tmp");
  fs::create_directories(store.root() + "/nojson");
  touch(fs::path(store.root()) / "nojson" / snapshot::kStateFileName);
  fs::create_directories(store.root() + "/.deleted-old-1-2");
  fs::create_directories(store.root() + "/Not-A-Name");
  EXPECT_EQ(store.list({"db"}), std::vector<std::string>{"web"});
  EXPECT_TRUE(fs::exists(store.root() + "/db.tmp")) << "a create in progress keeps its directory";
  EXPECT_EQ(store.list(), std::vector<std::string>{"web"});
  EXPECT_FALSE(fs::exists(store.root() + "/db.tmp"));
  EXPECT_FALSE(fs::exists(store.root() + "/.deleted-old-1-2"));

  record.policy.max_warm = 3;
  store.write_record("web", record);
  EXPECT_EQ(store.read_record("web").policy.max_warm, 3u);

  // A second commit under the same name is refused.
  store.begin("web");
  EXPECT_THROW(store.commit("web", record), BadArgument);
  store.abort("web");
  EXPECT_FALSE(fs::exists(store.root() + "/web.tmp"));

  store.remove("web");
  EXPECT_FALSE(store.exists("web"));
  EXPECT_TRUE(store.list().empty());
  EXPECT_THROW(store.remove("web"), NotFound);
}

TEST(TemplateStore, ReadRecordChecksTheNameMatchesTheDirectory) {
  TempDir root;
  TemplateStore store(root.path());
  fs::create_directories(store.dir_for("a"));
  TemplateRecord record;
  record.spec = {"b", "/k", "", "", 64, 1};
  touch(fs::path(store.dir_for("a")) / kTemplateJsonName, encode_template_json(record));
  EXPECT_THROW(store.read_record("a"), BadArgument);
  EXPECT_THROW(store.read_record("missing"), NotFound);
}

}  // namespace
}  // namespace thaw::pool
