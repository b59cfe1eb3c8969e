#!/usr/bin/env bash
# Fuzzing with clang's libFuzzer + ASan + UBSan (tests/fuzz, docs/wire.md).
#
#   ci/fuzz.sh TARGET MINUTES   a long local run of one target. New inputs
#                               that add coverage are merged into its seed
#                               corpus, tests/fuzz/corpus/TARGET.
#   ci/fuzz.sh --ci [SECONDS]   every target (one per core at a time): its
#                               corpus and regression inputs, then SECONDS
#                               (default 60) of new exploration each. Used
#                               by ci/test.sh.
#   ci/fuzz.sh --list           the targets.
#
# Any crash, leak, timeout or sanitizer report fails the run; the input is
# copied to tests/fuzz/regressions/TARGET/ (CTest then replays it in every
# build) and printed in base64 so that a CI log carries it too.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(frames actions msgpack agent_info agent_url settings shared_state
         rendezvous exposures)
build=build/fuzz

usage() {
  sed -n '2,15p' "$0" >&2
  exit 2
}

configure() {
  local cc
  cc=$(command -v clang-14 || command -v clang || true)
  if [[ -z $cc ]]; then
    echo "ci/fuzz.sh: clang not found (bash ci/deps.sh installs clang-14)" >&2
    exit 1
  fi
  CC=$cc cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DSIDECAR_FUZZ=ON -DSIDECAR_WERROR=ON \
    "-DCMAKE_C_FLAGS=-O1 -g -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
  local all=() target
  for target in "${targets[@]}"; do all+=("fuzz_$target"); done
  nice cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${all[@]}"
}

# run TARGET SECONDS [extra libFuzzer flags...]: replays the corpus and the
# regression inputs, then explores for SECONDS with new inputs kept in
# $build/corpus/TARGET. Returns non-zero on any finding.
run() {
  local t=$1 seconds=$2
  shift 2
  local bin=$build/tests/fuzz_$t seeds=tests/fuzz/corpus/$t
  local regress=tests/fuzz/regressions/$t work=$build/corpus/$t
  local artifacts=$build/artifacts/$t/
  mkdir -p "$work" "$artifacts" "$regress"
  rm -f "$artifacts"* # findings of an earlier run are in $regress already
  local flags=(-rss_limit_mb=2048 -timeout=10 -artifact_prefix="$artifacts"
               -print_final_stats=1)
  if [[ -f tests/fuzz/dict/$t.dict ]]; then
    flags+=(-dict=tests/fuzz/dict/$t.dict)
  fi
  echo "== fuzz_$t: corpus and regression inputs"
  local rc=0
  "$bin" "${flags[@]}" -runs=0 "$seeds" "$regress" || rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "== fuzz_$t: ${seconds}s of new exploration"
    "$bin" "${flags[@]}" -max_total_time="$seconds" "$@" "$work" "$seeds" \
      || rc=$?
  fi
  if [[ $rc -ne 0 ]]; then
    local found=0
    for f in "$artifacts"*; do
      [[ -f $f ]] || continue
      found=1
      cp "$f" "$regress/"
      echo "ci/fuzz.sh: fuzz_$t finding kept as $regress/$(basename "$f"):"
      base64 "$f"
    done
    [[ $found -eq 1 ]] || echo "ci/fuzz.sh: fuzz_$t failed (exit $rc)"
    return 1
  fi
}

case "${1:-}" in
--list)
  printf '%s\n' "${targets[@]}"
  ;;
--ci)
  seconds=${2:-60}
  configure
  # Targets run side by side, one per core (SIDECAR_FUZZ_JOBS), each with
  # its log printed when it ends: 9 targets take 5 x 60 s on 2 cores.
  jobs=${SIDECAR_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
  mkdir -p "$build/logs"
  failed=()
  for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    batch=("${targets[@]:i:jobs}")
    pids=()
    for t in "${batch[@]}"; do
      run "$t" "$seconds" >"$build/logs/$t.log" 2>&1 &
      pids+=($!)
    done
    for k in "${!batch[@]}"; do
      t=${batch[$k]}
      if wait "${pids[$k]}"; then
        grep -E '^== |stat::number_of_executed_units' "$build/logs/$t.log"
      else
        failed+=("$t")
        tail -n 60 "$build/logs/$t.log"
      fi
    done
  done
  if [[ ${#failed[@]} -gt 0 ]]; then
    echo "ci/fuzz.sh: FAILED: ${failed[*]}" >&2
    exit 1
  fi
  echo "ci/fuzz.sh: ${#targets[@]} targets, ${seconds}s each beyond their corpus: no finding"
  ;;
"" | -*)
  usage
  ;;
*)
  t=$1
  minutes=${2:-}
  [[ -n $minutes && " ${targets[*]} " == *" $t "* ]] || usage
  configure
  rc=0
  run "$t" $((minutes * 60)) || rc=$?
  # Keep what adds coverage: merged into the checked-in seed corpus.
  "$build/tests/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$build/corpus/$t" \
    2>&1 | tail -1
  exit $rc
  ;;
esac
