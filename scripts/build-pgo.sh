#!/usr/bin/env bash
# Profile-guided release build of the gateway (docs/perf/README.md, "Round 6"):
#   1. builds an instrumented release binary (target/pgo-gen/);
#   2. trains it: the instrumented gateway in front of one simulated node (profile v6), driven
#      by wrk with every bench body (tip, block, batch, unique) and three bad requests
#      (malformed JSON, an unknown method, an oversized batch), at 64 and 512 connections;
#   3. merges the profile and builds the release binary with it: target/pgo/release/sentinel-proxy.
# The profile stays in target/pgo-data/ and is rebuilt on every run, so it always matches the
# sources being compiled.
#
# Same code, same behaviour, same tests as `cargo build --release`: the profile only tells
# LLVM which branches and functions are hot, so it lays the hot path out together (fewer
# instruction-cache misses) and inlines along it. Measured gain: see BENCHMARKS.md
# ("gateway, plain release build" rows) and docs/perf/README.md.
#
# Needs: wrk (apt-get install -y wrk), curl, and llvm-profdata of the toolchain's own LLVM
# (rustup component add llvm-tools; the script runs that itself when rustup is there).
# Knobs: PGO_TRAIN_SECONDS (per body and connection count, default 3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
secs=${PGO_TRAIN_SECONDS:-3}
gen_dir="$root/target/pgo-gen"
use_dir="$root/target/pgo"
data="$root/target/pgo-data"

log() { printf '[pgo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

profdata() {
  local sysroot host
  sysroot="$(rustc --print sysroot)"
  host="$(rustc -vV | sed -n 's/^host: //p')"
  echo "$sysroot/lib/rustlib/$host/bin/llvm-profdata"
}
if [ ! -x "$(profdata)" ]; then
  log "llvm-profdata missing: rustup component add llvm-tools"
  rustup component add llvm-tools >&2 || { log "cannot install llvm-tools; build with 'cargo build --release' instead"; exit 2; }
fi
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { log "$tool missing: apt-get install -y $tool"; exit 2; }
done

log "1/3 instrumented build (target/pgo-gen)"
RUSTFLAGS="-Cprofile-generate=$data/raw" CARGO_TARGET_DIR="$gen_dir" cargo build --release --locked --bin sentinel-proxy

log "2/3 training run (${secs}s per body and connection count)"
rm -rf "$data"
mkdir -p "$data/raw" "$data/node" "$data/bodies"
bin="$gen_dir/release/sentinel-proxy"
ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r node_port gw_port <<<"$ports"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
# The node's own profile is not wanted: only the gateway's hot path is trained.
LLVM_PROFILE_FILE="$data/node/%p.profraw" "$bin" simulate --port "$node_port" --profile v6 >"$data/node.log" 2>&1 &
pids+=($!)
probe='{"jsonrpc":"2.0","id":1,"method":"node_getBlockNumber"}'
for _ in $(seq 100); do
  curl -sf -o /dev/null -d "$probe" "http://127.0.0.1:$node_port/" && break
  sleep 0.2
done
# The bench's settings (bench/run.sh): the same probe interval, so the same background work.
LLVM_PROFILE_FILE="$data/raw/gateway-%p.profraw" SENTINEL_BACKENDS="node=http://127.0.0.1:$node_port" \
  PROXY_LISTEN="127.0.0.1:$gw_port" LOG_LEVEL=warn HEALTH_CHECK_INTERVAL_MS=1000 "$bin" serve >"$data/gateway.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$gw_port/ready" && break
  sleep 0.2
done
curl -sf -o /dev/null "http://127.0.0.1:$gw_port/ready" || { log "gateway did not become ready"; tail "$data/gateway.log" >&2; exit 1; }
printf '{"jsonrpc":"2.0","id":1,"method":"aztec_getBlock","params":[1' >"$data/bodies/malformed.json"
printf '{"jsonrpc":"2.0","id":1,"method":"eth_notAMethod","params":[]}' >"$data/bodies/unknown.json"
python3 -c 'import json; print(json.dumps([{"jsonrpc":"2.0","id":i,"method":"aztec_getBlockNumber"} for i in range(2000)]))' \
  >"$data/bodies/oversized-batch.json"
for body in bench/bodies/*.json "$data"/bodies/*.json; do
  for conns in 64 512; do
    BENCH_BODY_FILE="$body" wrk -t2 -c"$conns" -d"${secs}s" -s bench/post.lua "http://127.0.0.1:$gw_port/" |
      awk -v b="$(basename "$body" .json)" -v c="$conns" '/Requests\/sec/ {printf "[pgo]   %s c%s: %s req/s\n", b, c, $2}' >&2
  done
done
# A clean exit writes the profile.
kill -INT "$gw_pid"
wait "$gw_pid" || true
"$(profdata)" merge -o "$data/merged.profdata" "$data/raw"

log "3/3 optimised build with the profile (target/pgo)"
RUSTFLAGS="-Cprofile-use=$data/merged.profdata" CARGO_TARGET_DIR="$use_dir" cargo build --release --locked --bin sentinel-proxy
log "done: $use_dir/release/sentinel-proxy"
