// A cgroup v2 for each template worker, where thawd has a subtree of its
// own to make them in, so the kernel holds a worker to its memory and task
// limits (worker_limits.h) and accounts what it uses.
//
// Where the subtree comes from (thawd's `worker_cgroups` setting):
//   "auto" (the default): thawd's own cgroup, when it is delegated to
//     thawd's user: systemd's Delegate= with User= (deploy/thawd.service),
//     which chowns the service's cgroup to that user. thawd then moves
//     itself into a leaf "thawd" beside its workers (cgroup v2 lets only
//     leaves hold processes once controllers are handed down). Never as
//     root: a root thawd owns every cgroup, delegated or not.
//   "off": none.
//   a directory of the cgroup v2 hierarchy: the workers' cgroups are made
//     in it (thawd itself stays where it is); it must exist and be
//     writable, or thawd does not start.
// Each worker gets <subtree>/worker-<template>, with memory.max and
// pids.max where those controllers are available there, and moves itself
// into it as it starts, before it touches guest data.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rpc/daemon/worker_limits.h"

namespace thaw::daemon {

// The path of this process's cgroup in the v2 hierarchy from the text of
// /proc/self/cgroup ("0::/system.slice/thawd.service" -> that path);
// nullopt when it has no v2 line.
std::optional<std::string> unified_cgroup_of(const std::string& proc_self_cgroup);
// Where cgroup2 is mounted, from the text of /proc/self/mountinfo; "" when
// it is not.
std::string cgroup2_mount_point(const std::string& mountinfo);

class WorkerCgroups {
 public:
  // From the setting above. Throws std::runtime_error naming the setting
  // when an explicit directory cannot be used, or when "auto" finds a
  // delegated cgroup and cannot set it up.
  static WorkerCgroups set_up(const std::string& setting);
  WorkerCgroups() = default;  // none

  bool enabled() const { return !subtree_.empty(); }
  const std::string& subtree() const { return subtree_; }
  // One line for the log: where, which controllers, or why none.
  const std::string& summary() const { return summary_; }

  // Makes (or reuses) the cgroup of `template_name`'s worker and writes the
  // limits its controllers take; returns its directory. SysError.
  std::string prepare(const std::string& template_name, const WorkerLimits& limits) const;
  // The limits again (a new policy), to the cgroup made by prepare.
  void update(const std::string& template_name, const WorkerLimits& limits) const;
  // Removes the cgroup once its worker has ended (logged, never thrown).
  void remove(const std::string& template_name) const noexcept;
  std::string dir_for(const std::string& template_name) const { return subtree_ + "/worker-" + template_name; }

 private:
  WorkerCgroups(std::string subtree, std::vector<std::string> controllers, std::string summary)
      : subtree_(std::move(subtree)), controllers_(std::move(controllers)), summary_(std::move(summary)) {}
  void write_limits(const std::string& dir, const WorkerLimits& limits) const;

  std::string subtree_;
  std::vector<std::string> controllers_;  // of memory and pids, those the subtree hands down
  std::string summary_ = "worker cgroups: off";
};

// In the worker: moves this process into `dir`. SysError.
void join_cgroup(const std::string& dir);

}  // namespace thaw::daemon
