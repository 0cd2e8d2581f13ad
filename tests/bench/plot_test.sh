#!/usr/bin/env bash
# ctest: bench/plot.sh draws a PNG from a main-job result and from a
# benchmark's rows with a QEMU row, and refuses bad input with exit 2 and
# the file's name. Exit 77 (skipped) where gnuplot or python3 is missing.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
plot=$root/bench/plot.sh
for tool in gnuplot python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (deploy/setup.sh --bench)"; exit 77; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }

"$plot" "$root/tests/bench/main_job_result.json" "$work/main.png" || fail "main job result not drawn"
is_png "$work/main.png" || fail "main.png is not a PNG"

cat >"$work/restore.json" <<'JSON'
{"benchmark": "restore", "rows": {
  "thaw: restore -> guest answered": {"min_ms": 2.29, "median_ms": 2.52, "p99_ms": 3.14, "runs": 30},
  "QEMU -incoming -> guest answered": {"min_ms": 50.1, "median_ms": 56.8, "p99_ms": 70.2, "runs": 30}}}
JSON
out=$("$plot" "$work/restore.json" "$work/restore.png") || fail "rows not drawn"
is_png "$work/restore.png" || fail "restore.png is not a PNG"
[[ $out == *"2 rows"* ]] || fail "expected 2 rows: $out"

expect_refused() {  # FILE NEEDLE
  local msg rc
  msg=$("$plot" "$1" "$work/bad.png" 2>&1); rc=$?
  [ "$rc" -eq 2 ] || fail "$1: exit $rc, expected 2 ($msg)"
  [[ $msg == *"$2"* ]] || fail "$1: message lacks '$2': $msg"
  [ ! -e "$work/bad.png" ] || fail "$1: a PNG was left behind"
}
expect_refused "$work/missing.json" "missing.json: no such file"
echo 'not json' >"$work/text.json"
expect_refused "$work/text.json" "text.json is not a JSON result"
echo '{"rows": {"x": {"min_ms": "fast"}}}' >"$work/empty.json"
expect_refused "$work/empty.json" "has no rows with min_ms, median_ms and p99_ms"
"$plot" >/dev/null 2>&1 && fail "no arguments must be refused"
echo "PASS"
