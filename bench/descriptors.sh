#!/usr/bin/env bash
# The descriptor run (issue 10): 21,000 silent TCP connections against a gateway limited to
# 20,000 descriptors, in front of simulated nodes, on loopback. While they are held it measures
# the descriptors the gateway holds, how many normal clients are served (and how fast), how long
# until the silent ones are closed (the head deadline, REQUEST_TIMEOUT_MS), accept-error log
# lines per second and the connection metrics; it prints the figures as markdown.
#
# Two configurations:
#   default        MAX_CONNECTIONS at its default (10000, below the descriptor limit): past it
#                  every new connection is shed at accept, so descriptors stay free
#   overcommitted  MAX_CONNECTIONS=100000 (above the limit, against the README's advice): the
#                  process runs out of descriptors, as in the incident; shows what the head
#                  deadline and the rate-limited accept-error log do on their own
# Normal clients arrive on new connections while the silent ones are held, so in both they
# compete with them for a connection slot (see the "served while held" row).
#
# Needs python3 and curl. Knobs (environment):
#   DESC_SILENT      silent connections              (default 21000)
#   DESC_NOFILE      the gateway's ulimit -n         (default 20000)
#   DESC_CLIENTS     normal requests per measurement (default 200, 10 at a time, 5 s timeout)
#   DESC_SCENARIOS   subset of "default overcommitted" (default both)
#   DESC_BIN         gateway binary (default: cargo build --release, then
#                    ${CARGO_TARGET_DIR:-target}/release/sentinel-proxy)
#   DESC_OUT         also write the markdown to this file
#   DESC_KEEP=1      keep the temp dir (logs, raw JSON)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
SILENT=${DESC_SILENT:-21000}
NOFILE=${DESC_NOFILE:-20000}
CLIENTS=${DESC_CLIENTS:-200}
SCENARIOS=${DESC_SCENARIOS:-"default overcommitted"}
PER_PROCESS=7000 # silent connections per helper process (each under its own ulimit -n)

for tool in python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "descriptors: $tool is missing" >&2; exit 2; }
done
if [ "$(ulimit -Hn)" -lt $((PER_PROCESS + 100)) ] || [ "$(ulimit -Hn)" -lt "$NOFILE" ]; then
    echo "descriptors: the hard descriptor limit ($(ulimit -Hn)) is below $NOFILE or $((PER_PROCESS + 100))" >&2
    exit 2
fi

if [ -z "${DESC_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release)
    DESC_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/sentinel-proxy"
fi
BIN=$DESC_BIN
[ -x "$BIN" ] || { echo "descriptors: $BIN not found" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentinel-descriptors.XXXXXX")
PIDS=()
log() { printf '[descriptors %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
cleanup() {
    local status=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${DESC_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
metric() { # FILE NAME -> value or "?"
    awk -v n="$2" '$1 == n { print $2; found=1 } END { if (!found) print "?" }' "$1"
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$@"; }
scrape() { # PORT FILE: /metrics, or an empty file when the gateway cannot be reached
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" >"$2" || : >"$2"
}

# Two simulated nodes, shared by both scenarios.
NODES=()
for profile in archiver pruned; do
    port=$(free_port)
    "$BIN" simulate --port "$port" --profile "$profile" >"$WORK/node-$profile.log" 2>&1 &
    PIDS+=($!)
    NODES+=("$profile=http://127.0.0.1:$port")
done
BACKENDS=$(IFS=,; echo "${NODES[*]}")
printf '{"jsonrpc":"2.0","id":1,"method":"aztec_getBlockNumber","params":[]}' >"$WORK/body.json"

run_scenario() {
    local name=$1 max_connections=$2 port gw dir t0 base
    dir="$WORK/$name"
    mkdir -p "$dir"
    port=$(free_port)
    log "$name: gateway on $port (ulimit -n $NOFILE, MAX_CONNECTIONS=$max_connections)"
    (
        ulimit -n "$NOFILE"
        exec env SENTINEL_BACKENDS="$BACKENDS" PROXY_LISTEN="127.0.0.1:$port" MAX_CONNECTIONS="$max_connections" \
            "$BIN" serve
    ) >"$dir/gateway.log" 2>&1 &
    gw=$!
    PIDS+=("$gw")
    for _ in $(seq 300); do
        curl -s --max-time 2 -H 'Content-Type: application/json' --data-binary "@$WORK/body.json" \
            "http://127.0.0.1:$port/" 2>/dev/null | grep -q '"result"' && break
        kill -0 "$gw" 2>/dev/null || { tail "$dir/gateway.log" >&2; exit 1; }
        sleep 0.1
    done
    base=$(fds "$gw")

    # Descriptor count of the gateway every 0.5 s, for the whole scenario.
    (while kill -0 "$gw" 2>/dev/null; do echo "$(date +%s.%N) $(fds "$gw")"; sleep 0.5; done) >"$dir/fds.txt" &
    local sampler=$!
    PIDS+=("$sampler")

    log "$name: opening $SILENT silent connections"
    t0=$(date +%s.%N)
    local procs=$(((SILENT + PER_PROCESS - 1) / PER_PROCESS)) i count left=$SILENT helpers=()
    for ((i = 0; i < procs; i++)); do
        count=$((left < PER_PROCESS ? left : PER_PROCESS))
        left=$((left - count))
        python3 "$BENCH/descriptors.py" silent --port "$port" --count "$count" --source "127.0.0.$((11 + i))" \
            --release-file "$dir/release" --hold-max 180 >"$dir/silent-$i.json" 2>"$dir/silent-$i.err" &
        helpers+=($!)
        PIDS+=($!)
    done
    for ((i = 0; i < procs; i++)); do
        until grep -q '"open"' "$dir/silent-$i.json" 2>/dev/null; do
            kill -0 "${helpers[i]}" 2>/dev/null || { cat "$dir/silent-$i.err" >&2; exit 1; }
            sleep 0.2
        done
    done
    local opened_after
    opened_after=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
    sleep 1

    # While the silent connections are held.
    local held_fds
    held_fds=$(fds "$gw")
    scrape "$port" "$dir/metrics-held.txt"
    log "$name: $held_fds descriptors held; $CLIENTS normal requests"
    python3 "$BENCH/descriptors.py" clients --port "$port" --count "$CLIENTS" --body "$WORK/body.json" \
        >"$dir/clients-held.json"

    # Until the head deadline has closed them (back near the baseline), at most 120 s.
    local closed_at=""
    for _ in $(seq 1200); do
        if [ "$(fds "$gw")" -le $((base + 20)) ]; then
            closed_at=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
            break
        fi
        sleep 0.1
    done
    scrape "$port" "$dir/metrics-after.txt"
    python3 "$BENCH/descriptors.py" clients --port "$port" --count "$CLIENTS" --body "$WORK/body.json" \
        >"$dir/clients-after.json"
    touch "$dir/release"
    for pid in "${helpers[@]}"; do wait "$pid" || true; done
    local t_end
    t_end=$(date +%s.%N)
    kill -TERM "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true

    # Silent-connection results over all helper processes.
    python3 - "$dir" "$procs" >"$dir/silent.json" <<'EOF'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
tot = {"opened": 0, "connected": 0, "failed": 0, "pending": 0, "closed_soon": 0, "closed_later": 0, "still_open": 0, "held_s": []}
for i in range(n):
    r = json.loads(open(f"{d}/silent-{i}.json").read().strip().splitlines()[-1])
    for k in tot:
        tot[k] += r[k]
h = sorted(tot.pop("held_s"))
tot["held_min"] = h[0] if h else None
tot["held_median"] = h[len(h) // 2] if h else None
tot["held_max"] = h[-1] if h else None
print(json.dumps(tot))
EOF
    local peak accept_lines span
    peak=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$dir/fds.txt")
    accept_lines=$(grep -c 'accept failed' "$dir/gateway.log" || true)
    span=$(python3 -c "print(round($t_end - $t0, 1))")
    {
        echo "NAME=$name MAX=$max_connections BASE=$base PEAK=$peak HELD=$held_fds OPENED_AFTER=$opened_after"
        echo "CLOSED_AT=${closed_at:-never} ACCEPT_LINES=$accept_lines SPAN=$span"
    } >"$dir/summary.txt"
    log "$name: done ($(tr '\n' ' ' <"$dir/summary.txt"))"
}

for s in $SCENARIOS; do
    case "$s" in
        default) run_scenario default 10000 ;;
        overcommitted) run_scenario overcommitted 100000 ;;
        *) echo "unknown scenario $s (expected default, overcommitted)" >&2; exit 2 ;;
    esac
done

report() {
    local s dir
    echo "### Descriptor run: $SILENT silent connections, gateway at ulimit -n $NOFILE"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo none)," \
        "$(nproc) cores, loopback, two simulated nodes, REQUEST_TIMEOUT_MS=30000 (the head deadline)," \
        "$CLIENTS normal JSON-RPC requests (aztec_getBlockNumber) per measurement, each on a new" \
        "connection, 10 at a time, 5 s client timeout. \`bench/descriptors.sh\` (\`make descriptors\`)."
    echo
    echo "| | $(for s in $SCENARIOS; do printf '%s | ' "$s"; done)"
    echo "|---|$(for s in $SCENARIOS; do printf -- '---|'; done)"
    row() { # LABEL CMD-per-dir
        local label=$1 cmd=$2
        printf '| %s | ' "$label"
        for s in $SCENARIOS; do
            dir="$WORK/$s"
            # shellcheck disable=SC1090
            source <(tr ' ' '\n' <"$dir/summary.txt")
            printf '%s | ' "$(eval "$cmd")"
        done
        echo
    }
    row "MAX_CONNECTIONS" 'echo $MAX'
    row "silent connections connected: after the connect phase / by the end" \
        'json $dir/silent.json "f\"{opened} ($OPENED_AFTER s) / {connected}\""'
    row "closed at once by the gateway (shed, < 5 s)" 'json $dir/silent.json closed_soon'
    row "gateway descriptors: baseline / held / peak" 'echo "$BASE / $HELD / $PEAK"'
    row "open_connections metric while held" 'metric $dir/metrics-held.txt sentinel_proxy_open_connections'
    row "connections_shed_total" 'metric $dir/metrics-after.txt sentinel_proxy_connections_shed_total'
    row "accept_errors_total" 'metric $dir/metrics-after.txt sentinel_proxy_accept_errors_total'
    row "/metrics reachable while held" '[ -s $dir/metrics-held.txt ] && echo yes || echo no'
    row "**normal clients served while held**" 'json $dir/clients-held.json "f\"{ok} of {sent}\""'
    row "their latency p50 / p99 / max (ms)" 'json $dir/clients-held.json "f\"{p50_ms} / {p99_ms} / {max_ms}\" if ok else \"–\""'
    row "their failures" 'json $dir/clients-held.json "(\", \".join(f\"{k} {v}\" for k, v in {**statuses, **errors}.items() if k != \"200\") or \"none\")"'
    row "silent ones closed by the deadline after (s, min / median / max held)" \
        'json $dir/silent.json "f\"{held_min} / {held_median} / {held_max}\""'
    row "gateway back to baseline descriptors after (s)" 'echo $CLOSED_AT'
    row "silent ones still open at the end / never connected" 'json $dir/silent.json "f\"{still_open} / {pending + failed}\""'
    row "normal clients served afterwards" 'json $dir/clients-after.json "f\"{ok} of {sent}\""'
    row "\`accept failed\` log lines (per second)" \
        'echo "$ACCEPT_LINES in $SPAN s ($(python3 -c "print(round($ACCEPT_LINES / $SPAN, 2))")/s)"'
}
report | tee "${DESC_OUT:-/dev/null}"
