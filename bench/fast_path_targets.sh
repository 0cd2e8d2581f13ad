#!/usr/bin/env bash
# bench/fast_path_targets.sh OUT_DIR [BUILD_DIR]: measures the restore fast
# path's targets (issue 12) side by side in one run and says which are met:
#   1. thaw_bench_restore --runs 30 (restore, answered, reset, QEMU ratio
#      where qemu-system-x86_64 is installed: deploy/setup.sh --bench);
#   2. thaw_bench_density --clones 1000 (fill rate, host memory, acquire p99),
#      once in one worker process and once spread over several
#      (--clones-per-worker, THAW_TARGETS_CLONES_PER_WORKER, default 250);
#   3. thaw_bench_fault_fanout (no target: what a page fault and a reset's
#      madvise cost a worker that holds 1,000 VMs, the next step's evidence)
#      and thaw_bench_vm_create --hold 1000 (no target: what 1,000 empty VMs,
#      a pool's VM shells, hold in host memory and kernel tasks);
#   4. thaw_bench_targets on the restore result with each density result.
# Each step's output goes to OUT_DIR/<step>.txt and its JSON beside it;
# OUT_DIR/targets.json holds the verdicts, targets_sharded.json the same
# with the spread pool's density. Needs /dev/kvm and ~1 GiB of free
# memory; BUILD_DIR defaults to build-release (the README's Release build).
# THAW_TARGETS_RUNS and THAW_TARGETS_CLONES shrink a smoke run (the density
# goals then read "not measured": they are for 1,000 clones).
# Exit status: 0 measured (met or not), 1 a benchmark failed, 2 bad arguments.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
out=$1
build=${2:-build-release}
bin=$build/bench
for tool in thaw_bench_restore thaw_bench_density thaw_bench_fault_fanout thaw_bench_vm_create thaw_bench_targets; do
  [ -x "$bin/$tool" ] || { echo "fast_path_targets.sh: no $bin/$tool: build $build first" >&2; exit 2; }
done
[ -e /dev/kvm ] || { echo "fast_path_targets.sh: no /dev/kvm on this host: nothing to measure" >&2; exit 2; }
mkdir -p "$out"

step() {  # step NAME COMMAND...: runs it, keeps its output, says how long it took
  local name=$1; shift
  echo "fast_path_targets.sh: $name: $*" >&2
  local start=$SECONDS
  if ! "$@" >"$out/$name.txt" 2>"$out/$name.log"; then
    echo "fast_path_targets.sh: $name failed; its output is in $out/$name.txt and $out/$name.log" >&2
    exit 1
  fi
  echo "fast_path_targets.sh: $name done in $((SECONDS - start)) s" >&2
}

step restore "$bin/thaw_bench_restore" --runs "${THAW_TARGETS_RUNS:-30}" --json "$out/restore.json"
step density "$bin/thaw_bench_density" --clones "${THAW_TARGETS_CLONES:-1000}" --json "$out/density.json"
step density_sharded "$bin/thaw_bench_density" --clones "${THAW_TARGETS_CLONES:-1000}" \
  --clones-per-worker "${THAW_TARGETS_CLONES_PER_WORKER:-250}" --json "$out/density_sharded.json"
step fault_fanout "$bin/thaw_bench_fault_fanout" --json "$out/fault_fanout.json"
step vm_create "$bin/thaw_bench_vm_create" --hold 1000 --json "$out/vm_create.json"
"$bin/thaw_bench_targets" --restore "$out/restore.json" --density "$out/density.json" --json "$out/targets.json" |
  tee "$out/targets.txt"
echo "With the pool spread over worker processes (--clones-per-worker ${THAW_TARGETS_CLONES_PER_WORKER:-250}):" |
  tee "$out/targets_sharded.txt"
"$bin/thaw_bench_targets" --restore "$out/restore.json" --density "$out/density_sharded.json" \
  --json "$out/targets_sharded.json" | tee -a "$out/targets_sharded.txt"
