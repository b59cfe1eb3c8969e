#!/usr/bin/env bash
# Runs every benchmark for several rounds and prints one table: metric,
# project, baseline measured in the same round, ratio, target, met.
# Figures are medians over the rounds; the ratio is the median [min-max] of
# the ratios taken inside each round (project and baseline side by side),
# never a ratio of medians from different moments. See docs/performance.md.
#
# Usage: bench/run.sh [--build-dir DIR] [--rounds N] [--json FILE]
#   --build-dir  a configured build (default: build/release, configured and
#                built with the release preset when missing)
#   --rounds     rounds (default 3)
#   --json       also keep the raw JSON lines of every round in FILE
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="$root/build/release"
rounds=3
json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    *) echo "usage: bench/run.sh [--build-dir DIR] [--rounds N] [--json FILE]" >&2; exit 2 ;;
  esac
done

if [ ! -x "$build/bench/bench_transport" ]; then
  (cd "$root" && cmake --preset release >/dev/null &&
     cmake --build --preset release -j2 --target bench_transport bench_flageval bench_codec bench_metrics >/dev/null)
fi

# The sidecar under test delivers nowhere (port 9): its retry warnings are noise.
export DD_TRACE_SIDECAR_LOG_LEVEL="${DD_TRACE_SIDECAR_LOG_LEVEL:-error}"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
for r in $(seq 1 "$rounds"); do
  echo "bench/run.sh: round $r of $rounds" >&2
  for prog in "bench_transport" "bench_flageval 200000" "bench_codec" "bench_metrics"; do
    # shellcheck disable=SC2086
    "$build/bench/"$prog | sed "s/^{/{\"round\":$r,/" >>"$raw"
  done
done
if [ -n "$json" ]; then
  cp "$raw" "$json"
fi

python3 - "$raw" "$rounds" <<'PY'
import json, statistics, sys

rows, order = {}, []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    key = (d["metric"], d["baseline_name"])
    if key not in rows:
        rows[key] = []
        order.append(key)
    rows[key].append(d)

def fig(v, unit):
    if v is None:
        return "-"
    if unit == "actions/s":
        return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"
    if unit.startswith("ns"):
        suffix = " CPU" if "CPU" in unit else ""
        if v >= 1e6:
            return f"{v / 1e6:.2f} ms{suffix}"
        if v >= 1e4:
            return f"{v / 1e3:.1f} us{suffix}"
        return f"{v:.0f} ns{suffix}"
    return f"{v:g} {unit}"

out = [("metric", "project", "baseline (same round)", "ratio median [min-max]",
        "target", "met")]
for key in order:
    ds = rows[key]
    unit = ds[0]["unit"]
    proj = statistics.median(d["project"] for d in ds)
    bases = [d["baseline"] for d in ds if d["baseline"] is not None]
    ratios = [d["ratio"] for d in ds if d["ratio"] is not None]
    base = statistics.median(bases) if bases else None
    if ratios:
        med = statistics.median(ratios)
        ratio = f"{med:.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
    else:
        med, ratio = None, "-"
    d0 = ds[0]
    checks = []
    if d0["ratio_max"]:
        checks.append(med is not None and med <= d0["ratio_max"])
    if d0["ratio_min"]:
        checks.append(med is not None and med >= d0["ratio_min"])
    if d0["value_max"]:
        checks.append(proj <= d0["value_max"])
    if not checks:
        met = "-"
    elif med is None and (d0["ratio_max"] or d0["ratio_min"]):
        met = "no baseline"
    else:
        met = "yes" if all(checks) else "no"
    drops = sum(d.get("dropped", 0) for d in ds)
    name = key[0] + (f" ({drops} dropped)" if drops else "")
    out.append((name, fig(proj, unit), f"{d0['baseline_name']}: {fig(base, unit)}",
                ratio, d0["target"], met))
out.append(("PHP-FPM request overhead, 1 trace + 2 evaluations, p50",
            "not measured by run.sh", "see the FPM leg (ci/fpm-leg.sh)", "-",
            "<= +5 us", "-"))

print(f"| {' | '.join(out[0])} |")
print("|" + "---|" * len(out[0]))
for r in out[1:]:
    print(f"| {' | '.join(r)} |")
print(f"\n{sys.argv[2]} rounds; figures are medians over the rounds.")
PY
