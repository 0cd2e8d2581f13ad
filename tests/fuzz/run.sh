#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [BUILD_DIR]: runs every fuzz_* target of a
# THAW_FUZZ build for SECONDS each, on a scratch copy of its seed corpus
# (tests/fuzz/corpus/<target>/; the repository's copy is never changed), and
# prints the executions per target. Exits 1 on any finding (a crash, a
# sanitizer report, a leak, an uncaught exception, a timeout or OOM) and says
# how to reproduce it.
#
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
#         -DTHAW_FUZZ=ON -DTHAW_BUILD_TESTS=OFF -DTHAW_WERROR=OFF
#   cmake --build build-fuzz -j2 --target thaw_fuzzers
#   tests/fuzz/run.sh 60
# THAW_FUZZ_SEED=N fixes libFuzzer's random seed, so that a short regression
# run (CI's) is the same run every time. THAW_FUZZ_TARGETS="a b" runs only
# fuzz_a and fuzz_b; THAW_FUZZ_RUNS=N stops each target after N executions
# (SECONDS still bounds it): THAW_FUZZ_RUNS=10000000 tests/fuzz/run.sh 86400
# is the long run the README reports. THAW_FUZZ_TIMEOUT=S (default 10) is
# how long one input may run before it counts as a hang: raise it on a
# machine busy with other work, where a starved process looks hung.
set -uo pipefail

seconds=${1:?usage: tests/fuzz/run.sh SECONDS [BUILD_DIR]}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$root/build-fuzz}
bin=$build/tests/fuzz
[[ -d $bin ]] || { echo "no $bin: configure with -DTHAW_FUZZ=ON and build thaw_fuzzers" >&2; exit 2; }

work=$(mktemp -d /tmp/thaw-fuzz.XXXXXX)
findings=$build/fuzz-findings
mkdir -p "$findings"
failed=0
ran=0
printf '%-24s %14s %10s  %s\n' target executions exec/s result
for exe in "$bin"/fuzz_*; do
  [[ -x $exe && -f $exe ]] || continue
  name=$(basename "$exe")
  target=${name#fuzz_}
  if [[ -n ${THAW_FUZZ_TARGETS:-} && " $THAW_FUZZ_TARGETS " != *" $target "* ]]; then continue; fi
  corpus=$work/$target
  mkdir -p "$corpus" "$findings/$target"
  [[ -d $root/tests/fuzz/corpus/$target ]] && cp -r "$root/tests/fuzz/corpus/$target/." "$corpus/"
  log=$work/$target.log
  # One process, -max_total_time; findings land in $findings/$target/.
  "$exe" "$corpus" ${THAW_FUZZ_SEED:+-seed="$THAW_FUZZ_SEED"} ${THAW_FUZZ_RUNS:+-runs="$THAW_FUZZ_RUNS"} -max_total_time="$seconds" -timeout="${THAW_FUZZ_TIMEOUT:-10}" -rss_limit_mb=4096 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$findings/$target/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  ran=$((ran + 1))
  if [[ $rc -ne 0 ]]; then
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    printf '%-24s %14s %10s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "FINDING (exit $rc)"
    grep -m3 -E 'ERROR: |runtime error:|SUMMARY:' "$log" | sed 's/^/    /'
    cp "$log" "$findings/$target/last.log"
    echo "    log: $findings/$target/last.log"
    echo "    reproduce: $exe ${artifact:-<crash-file>}"
  else
    printf '%-24s %14s %10s  %s\n' "$name" "${execs:-?}" "${rate:-?}" ok
  fi
done
rm -rf "$work"
if [[ $ran -eq 0 ]]; then
  echo "no fuzz_* executables in $bin${THAW_FUZZ_TARGETS:+ named by THAW_FUZZ_TARGETS ($THAW_FUZZ_TARGETS)}" >&2
  exit 2
fi
exit $failed
