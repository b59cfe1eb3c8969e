#!/usr/bin/env bash
# The end-to-end demonstration (the README's main job): a local intake
# playing the Datadog agent, one sidecar, several worker processes sending
# traces through it, and a summary of what arrived.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-8}
REQUESTS=${REQUESTS:-200}

bash ci/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
bin=build/release/src

work=$(mktemp -d /tmp/sidecar-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 tests/intake/intake.py --port-file "$work/port" \
  --record "$work/requests.jsonl" 2>"$work/intake.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
echo "intake listening on http://127.0.0.1:$port"

endpoint="@sidecar-demo-$$"
DD_TRACE_AGENT_URL="http://127.0.0.1:$port" \
  "$bin/sidecar" run --endpoint "$endpoint" --log-level info 2>"$work/sidecar.log" &
pids+=($!)
for _ in $(seq 100); do "$bin/sidecar" status --endpoint "$endpoint" >/dev/null 2>&1 && break; sleep 0.05; done
echo "sidecar: $("$bin/sidecar" ping --endpoint "$endpoint")"

echo "starting $WORKERS workers x $REQUESTS requests"
wpids=()
for i in $(seq 0 $((WORKERS - 1))); do
  "$bin/sidecar_demo_worker" "$endpoint" "$REQUESTS" "$i" &
  wpids+=($!)
done
failed=0
for p in "${wpids[@]}"; do wait "$p" || failed=$((failed + 1)); done

echo
echo "== sidecar stats =="
"$bin/sidecar" stats --endpoint "$endpoint" | /usr/bin/python3 -m json.tool

sleep 2 # one flush interval, so the sidecar delivers to the intake
echo
echo "== what the intake received =="
/usr/bin/python3 tests/intake/traces.py summary --file "$work/requests.jsonl" || true
echo
echo "sent: $((WORKERS * REQUESTS)) traces from $WORKERS workers ($failed workers failed)"
[ "$failed" -eq 0 ]
