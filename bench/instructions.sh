#!/usr/bin/env bash
# Instructions (and, with CACHE_SIM=1, simulated cache misses and branch mispredictions) per
# forwarded request, counted by callgrind: the figure docs/perf/README.md's rounds 3 and 4 use.
# Unlike CPU time on a shared VM it repeats to within about 1 %; it covers user space only.
#
#   bench/instructions.sh [gateway|nginx] [SCENARIO] [CONNECTIONS]
#
# SCENARIO is a body in bench/bodies/ (default unique); CONNECTIONS wrk's -c (default 16).
# Needs valgrind, wrk and (for nginx) nginx; uses target/release/sentinel-proxy as built, for
# the simulated node and, with `gateway`, the gateway (GATEWAY_BIN overrides it). The gateway's
# count is its worker threads' only (the monitor's probes are left out); nginx runs one worker.
# Prints e.g. "gateway unique: 8672 requests, Ir 35263/req".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:-gateway} SC=${2:-unique} C=${3:-16}
BIN=${GATEWAY_BIN:-$ROOT/target/release/sentinel-proxy}
NODE_BIN=$ROOT/target/release/sentinel-proxy
W=$(mktemp -d); trap 'kill $PIDS 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
NODE_PORT=19945 PORT=19991
VG=(valgrind --tool=callgrind --separate-threads=yes --dump-instr=no --callgrind-out-file="$W/cg.out")
[ "${CACHE_SIM:-0}" = 1 ] && VG+=(--cache-sim=yes --branch-sim=yes)
"$NODE_BIN" simulate --port $NODE_PORT --profile v6 >"$W/node.log" 2>&1 & PIDS=$!
case $TARGET in
  gateway)
    (cd "$W" && SENTINEL_BACKENDS=node=http://127.0.0.1:$NODE_PORT PROXY_LISTEN=127.0.0.1:$PORT \
      PROXY_PORT=$PORT HEALTH_CHECK_INTERVAL_MS=1000 LOG_LEVEL=warn exec "${VG[@]}" "$BIN" serve \
      >"$W/target.log" 2>&1) & TPID=$!
    PICK=serve_on_this_thread ;;
  nginx)
    sed -e "s|@DIR@|$W|g" -e "s|@PORT@|$PORT|g" -e "s|@NODE_PORT@|$NODE_PORT|g" -e "s|@NOFILE@|4096|g" \
      -e "s|@USER_LINE@|$([ "$(id -u)" = 0 ] && echo 'user root;')|g" -e "s|master_process on;|master_process off;|" \
      -e "s|worker_processes auto;|worker_processes 1;|" "$ROOT/bench/nginx.conf.tmpl" >"$W/nginx.conf"
    "${VG[@]}" nginx -c "$W/nginx.conf" >"$W/target.log" 2>&1 & TPID=$!
    PICK=. ;;  # one process, one thread: all of it
  *) echo "usage: $0 [gateway|nginx] [SCENARIO] [CONNECTIONS]" >&2; exit 2 ;;
esac
PIDS="$PIDS $TPID"
for _ in $(seq 120); do
  curl -s -o /dev/null -m1 -X POST -d '{"jsonrpc":"2.0","id":1,"method":"aztec_getBlockNumber"}' \
    http://127.0.0.1:$PORT/ && break
  sleep 0.5
done
load() { BENCH_BODY_FILE="$ROOT/bench/bodies/$SC.json" wrk -t1 -c"$C" -d"$1" -s "$ROOT/bench/post.lua" "http://127.0.0.1:$PORT/" 2>&1; }
load 3s >/dev/null                      # warm-up: connections, pools, caches
callgrind_control -z "$TPID" >/dev/null 2>&1
out=$(load 10s)
callgrind_control -d "$TPID" >/dev/null 2>&1
n=$(echo "$out" | awk '/requests in/ {print $1}')
files=$(grep -l "$PICK" "$W"/cg.out* || true)
python3 - "$TARGET $SC" "$n" $files <<'PY'
import sys
label, n, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
events, total = None, None
for f in files:
    for line in open(f):
        if line.startswith('events:'):
            events = line.split()[1:]
        elif line.startswith(('totals:', 'summary:')):
            v = [int(x) for x in line.split()[1:]]
            total = v if total is None else [a + b for a, b in zip(total, v)]
            break
if not total or not n:
    sys.exit(f"{label}: no requests counted")
print(f"{label}: {n} requests, " + ', '.join(f"{e} {t / n:.0f}/req" for e, t in zip(events, total) if t))
PY
