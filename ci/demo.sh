#!/usr/bin/env bash
# The end-to-end demonstration (the README's main job): a local intake
# playing the Datadog agent; an application master that initializes the
# runtime and forks workers; the sidecar the first of them starts
# (subprocess mode); and a summary of what the intake received.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-8}
REQUESTS=${REQUESTS:-200}

bash ci/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc 2>/dev/null || echo 2)" \
  --target sidecar_cli sidecar_demo >/dev/null
bin=$PWD/build/release/src

work=$(mktemp -d /tmp/sidecar-demo.XXXXXX)
intake_pid=""
cleanup() {
  # The sidecar would exit by itself after its idle timeout; the demo does
  # not wait for that.
  for ep in "$work"/*.sock; do
    [ -S "$ep" ] || continue
    pid=$("$bin/sidecar" stats --endpoint "$ep" 2>/dev/null |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  [ -n "$intake_pid" ] && kill "$intake_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 tests/intake/intake.py --port-file "$work/port" \
  --record "$work/requests.jsonl" --quiet 2>"$work/intake.log" &
intake_pid=$!
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
echo "intake (the agent) listening on http://127.0.0.1:$port"

export DD_TRACE_AGENT_URL="http://127.0.0.1:$port"
export DD_TRACE_SIDECAR_CONNECTION_MODE=${DD_TRACE_SIDECAR_CONNECTION_MODE:-auto}
export DD_TRACE_SIDECAR_PATH="$bin/sidecar"
export DD_TRACE_SIDECAR_ENDPOINT_DIR="$work"
echo "application: 1 master + $WORKERS workers x $REQUESTS requests" \
  "(1 trace + 3 flag evaluations each)"
"$bin/sidecar-demo" "$WORKERS" "$REQUESTS"

for ep in "$work"/*.sock; do
  [ -S "$ep" ] || continue
  echo
  echo "== the sidecar ($ep) =="
  "$bin/sidecar" ping --endpoint "$ep" || true
  "$bin/sidecar" stats --endpoint "$ep" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
d = s["delivery"]
print("connections accepted %d, actions %s" % (s["connections"]["accepted"], s["actions"]))
for dest in ("traces", "flagevaluations", "exposures"):
    x = d[dest]
    drops = {k: v["payloads"] for k, v in x["drops"].items() if v["payloads"]}
    print("%-16s submitted %5d delivered %5d buffered %d drops %s" % (dest,
        x["submitted"]["payloads"], x["delivered"]["payloads"],
        x["buffered"]["payloads"], drops or "none"))
' || true
done

sleep 1.5 # one flush interval, so the last traces reach the intake
echo
echo "== what the intake received =="
/usr/bin/python3 tests/intake/summary.py "$work/requests.jsonl" \
  --expect-traces $((WORKERS * REQUESTS)) \
  --expect-evaluations $((WORKERS * REQUESTS * 3))
echo "sent: $((WORKERS * REQUESTS)) traces and $((WORKERS * REQUESTS * 3))" \
  "flag evaluations: all received, each exactly once"
