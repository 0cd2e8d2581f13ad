#!/usr/bin/env bash
# bench/plot.sh RESULT.json OUT.png: draws cold boot versus warm restore from
# a benchmark's --json file, on a log time axis with a min-median-p99 bar per
# row: the main job's (thaw-main-job --json: cold boot, restore, warm
# acquire, invoke, release, reset) or any benchmark's "rows" (min_ms,
# median_ms, p99_ms each). Rows whose name says QEMU are drawn in their own
# colour beside thaw's. Needs gnuplot and python3 (deploy/setup.sh --bench).
# Exit status: 0 drawn, 1 gnuplot failed, 2 bad arguments or input.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -eq 2 ] || usage
result=$1
out=$2
[ -f "$result" ] || { echo "plot.sh: $result: no such file" >&2; exit 2; }
for tool in gnuplot python3; do
  command -v "$tool" >/dev/null || { echo "plot.sh: $tool is not installed (deploy/setup.sh --bench)" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One line per row: index, "label", min, median, p99, is-QEMU (0/1).
if ! python3 - "$result" >"$work/rows" <<'PY'; then
import json, sys

path = sys.argv[1]
try:
    with open(path) as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"plot.sh: {path} is not a JSON result: {e}")
if not isinstance(doc, dict):
    sys.exit(f"plot.sh: {path}: expected a JSON object")

MAIN_JOB = [("cold boot (whole process)", "cold_boot_whole_process"),
            ("restore (thawd)", "restore_in_thawd"),
            ("warm acquire (RPC)", "acquire"),
            ("invoke (RPC + vsock)", "invoke_hash_64k"),
            ("invoke (RPC + vsock)", "invoke_run_64b"),
            ("release (RPC)", "release"),
            ("reset in place (thawd)", "reset_in_thawd")]
rows = [(label, doc[key]) for label, key in MAIN_JOB if isinstance(doc.get(key), dict)]
if not rows and isinstance(doc.get("rows"), dict):
    rows = list(doc["rows"].items())

def figure(row, key):
    value = row.get(key)
    if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(key)
    return max(float(value), 1e-4)  # a log axis has no zero

printed = 0
for label, row in rows:
    try:
        lo, mid, hi = (figure(row, k) for k in ("min_ms", "median_ms", "p99_ms"))
    except (ValueError, AttributeError):
        continue
    name = str(label).replace('"', "'")
    print(f'{printed} "{name}" {lo} {mid} {hi} {1 if "qemu" in name.lower() else 0}')
    printed += 1
if printed == 0:
    sys.exit(f"plot.sh: {path} has no rows with min_ms, median_ms and p99_ms")
PY
  exit 2
fi

# The QEMU series only where the result has QEMU rows.
qemu_series=""
if awk '$NF == 1 { found = 1 } END { exit !found }' "$work/rows"; then
  qemu_series="\"\" using 1:(\$6 == 1 ? \$4 : 1/0):3:5 with yerrorbars pointtype 5 linecolor rgb \"#d62728\" title \"QEMU\", "
fi
# Wide enough for every row's name, which hangs below the axis.
rows=$(wc -l <"$work/rows")
width=$((rows * 75 + 300 > 1000 ? rows * 75 + 300 : 1000))
title=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("benchmark") or ("main job, " + d.get("guest", "mini") + " guest"))' "$result")
if ! gnuplot >"$work/gnuplot.log" 2>&1 <<GP; then
set terminal pngcairo size $width,640 font ",10" noenhanced
set output "$out"
set title "thaw: $title (min - median - p99)"
set logscale y 10
set ylabel "milliseconds (log scale)"
set grid ytics mytics
set xtics rotate by -35 left nomirror
set bmargin 14
set rmargin 24
set xrange [-0.6:*]
set offsets 0, 0.6, 0, 0
set key top right
set style fill solid 0.3
plot "$work/rows" using 1:(\$6 == 0 ? \$4 : 1/0):3:5:xtic(2) with yerrorbars pointtype 7 linecolor rgb "#1f77b4" title "thaw", \
     $qemu_series"" using 1:4:(sprintf("%.3g", \$4)) with labels offset 2.5,0 font ",8" notitle
GP
  cat "$work/gnuplot.log" >&2
  echo "plot.sh: gnuplot could not draw $out" >&2
  exit 1
fi
echo "plot.sh: wrote $out ($rows rows from $result)"
