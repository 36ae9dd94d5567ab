#!/usr/bin/env bash
# Does the integrity analysis steal throughput from request serving? One simulated archiver with
# a realistic sentinel history (committee 48, 120 epochs ≈ 180k records, ~8 MB of JSON), two
# gateways in front of it: one that analyses once at start, one that re-fetches and re-analyses
# every 500 ms (120× the default rate). wrk measures uncached forwarding (unique params, so no
# cache or coalescing) on each, interleaved, twice. Prints req/s and the ratio.
#
# Needs wrk (apt-get install -y wrk). Knobs: IMPACT_DURATION (default 10s), IMPACT_CONNS (64).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${IMPACT_DURATION:-10s}
CONNS=${IMPACT_CONNS:-64}
BIN="$ROOT/target/release/sentinel-proxy"
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release -q)
TMP=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

NODE=$(port)
"$BIN" simulate --port "$NODE" --profile archiver --committee-size 48 --history-epochs 120 >"$TMP/node.log" 2>&1 & pids+=($!)
# One gateway at a time, so the busy one's analyses never run during the quiet one's measurement.
measure() { # interval_ms -> prints req/s
    local p; p=$(port)
    PROXY_LISTEN=127.0.0.1:$p SENTINEL_BACKENDS="arch=http://127.0.0.1:$NODE" LOG_LEVEL=warn \
    HEALTH_CHECK_INTERVAL_MS=1000 INTEGRITY_CHECK_INTERVAL_MS=$1 EXPECTED_VALIDATORS=48 \
        "$BIN" serve >"$TMP/gw-$p.log" 2>&1 &
    local gw=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/ready" >/dev/null && break; sleep 0.1; done
    for _ in $(seq 100); do
        curl -s "http://127.0.0.1:$p/health" | grep -q '"checked_at":[0-9]' && break; sleep 0.1
    done
    curl -s "http://127.0.0.1:$p/health" | python3 -c 'import json,sys; b=json.load(sys.stdin)["backends"][0]["integrity"]; print("  verdict:", b["status"], b["score"], "depth", b["depth_epochs"], "epochs", file=sys.stderr)'
    BENCH_BODY_FILE="$ROOT/bench/bodies/unique.json" wrk -t2 -c"$CONNS" -d"$DURATION" -s "$ROOT/bench/post.lua" "http://127.0.0.1:$p/" 2>&1 |
        awk '/Requests\/sec/ {print $2}'
    kill "$gw"; wait "$gw" 2>/dev/null || true
}
quiet=0; busy=0
for round in 1 2; do
    q=$(measure 3600000); echo "round $round quiet: $q req/s"
    b=$(measure 500); echo "round $round busy:  $b req/s"
    quiet=$(python3 -c "print($quiet + $q)"); busy=$(python3 -c "print($busy + $b)")
done
python3 - "$quiet" "$busy" <<'PY'
import sys
q, b = float(sys.argv[1]) / 2, float(sys.argv[2]) / 2
print(f"quiet gateway (one analysis at start):  {q:,.0f} req/s")
print(f"busy gateway (analysis every 500 ms):   {b:,.0f} req/s")
print(f"throughput kept during analyses: {b / q:.3f} (loss {100 * (1 - b / q):.1f} %)")
PY
