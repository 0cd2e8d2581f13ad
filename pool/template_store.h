// Templates on disk. template_dir/<name>/ holds the snapshot (state,
// memory, optional working-set) and template.json (spec, policy, cold boot
// time). A template is written whole into <name>.tmp and renamed into
// place, so a crash never leaves a half template under a valid name.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "pool/pool_types.h"
#include "snapshot/snapshot_dir.h"

namespace thaw::pool {

inline constexpr char kTemplateJsonName[] = "template.json";
inline constexpr char kTemplateTmpSuffix[] = ".tmp";

// [a-z0-9][a-z0-9_-]{0,62}
bool is_valid_template_name(const std::string& name);
// BadArgument naming the problem.
void validate_template_name(const std::string& name);
void validate_spec(const TemplateSpec& spec);  // name, kernel path, memory, vCPUs
void validate_policy(const PoolPolicy& policy);

// What template.json holds.
struct TemplateRecord {
  TemplateSpec spec;
  PoolPolicy policy;
  double cold_boot_ms = 0;
};

std::string encode_template_json(const TemplateRecord& record);
// Throws BadArgument for malformed JSON, missing or mistyped fields, or a
// spec/policy that validate_* rejects.
TemplateRecord decode_template_json(const std::string& text);

class TemplateStore {
 public:
  // Creates `root` (and parents) if missing.
  explicit TemplateStore(std::string root);

  const std::string& root() const { return root_; }
  std::string dir_for(const std::string& name) const { return root_ + "/" + name; }
  std::string tmp_dir_for(const std::string& name) const { return dir_for(name) + kTemplateTmpSuffix; }
  bool exists(const std::string& name) const;

  // An empty <name>.tmp to save the snapshot into (a stale one is removed).
  std::string begin(const std::string& name) const;
  // Writes template.json into <name>.tmp, fsyncs it and renames the
  // directory to <name>. Throws if <name> exists.
  void commit(const std::string& name, const TemplateRecord& record) const;
  // Removes <name>.tmp (a failed create).
  void abort(const std::string& name) const noexcept;

  TemplateRecord read_record(const std::string& name) const;
  // Reads <name>'s snapshot and checks it is the machine `record`
  // describes (vCPUs, RAM): a swapped or edited state file could otherwise
  // give clones other RAM than the policy and the memory budget were set
  // for. `verify_memory` also reads the whole memory file against its
  // chunk hashes, for a template found on disk rather than just made.
  // InputError / BadArgument naming the mismatch.
  snapshot::LoadedSnapshot load_snapshot(const std::string& name, const TemplateRecord& record,
                                         bool verify_memory) const;
  // Replaces template.json of an existing template (atomically: a .tmp
  // file renamed over it), e.g. after a policy change.
  void write_record(const std::string& name, const TemplateRecord& record) const;
  // Names of complete templates (a directory with a valid name, a state
  // file and template.json), sorted. Stale <name>.tmp directories left by
  // a crashed create are removed, except those of names in `creating`.
  std::vector<std::string> list(const std::set<std::string>& creating = {}) const;
  // Renames the directory aside, then removes it. Clones that still map
  // its memory file keep the inode alive. NotFound if missing.
  void remove(const std::string& name) const;

 private:
  std::string root_;
};

}  // namespace thaw::pool
