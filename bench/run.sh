#!/usr/bin/env bash
# sentinel-proxy benchmark: the gateway against nginx, HAProxy and the bare node, one machine,
# one run. Builds the release binary, starts one simulated Aztec node and the three proxies in
# front of it on free loopback ports, measures them with wrk (interleaved), measures the
# gateway's memory with 1,000 idle keep-alive connections, and writes BENCHMARKS.md.
#
# Needs: wrk, nginx, haproxy, python3, curl (apt-get install -y wrk nginx haproxy).
#
# Knobs (environment):
#   BENCH_DURATION   wrk -d per timed run                 (default 10s; 3s with BENCH_QUICK=1)
#   BENCH_CONNS      connection counts, space-separated   (default "64 512")
#   BENCH_ROUNDS     rounds of the whole matrix, 1 or 2   (default 2; req/s is their mean)
#   BENCH_SLICES     slices of each timed run             (default 5; 1 with BENCH_QUICK=1): a
#                    group's targets take turns slice by slice (5 x 2 s each, not 10 s each one
#                    after the other), so a change of machine speed within the group falls on
#                    every target alike; a target's req/s is the mean of its slices
#   BENCH_QUICK=1    smoke run: 3s timed runs
#   BENCH_SCENARIOS  subset of "tip block batch unique"   (default all four)
#   BENCH_IDLE_CONNS idle keep-alive connections for RSS  (default 1000; 0 skips)
#   BENCH_OUT        markdown output                      (default <repo>/BENCHMARKS.md)
#   BENCH_BUILD      the gateway build measured: pgo (default; scripts/build-pgo.sh, falling
#                    back to release when llvm-tools cannot be installed) or release (plain
#                    `cargo build --release`). With pgo, the batch and unique scenarios also
#                    measure the plain release build (target gwplain) in the same run.
#   BENCH_SKIP_BUILD=1  use the existing target/release (and target/pgo) binaries
#   BENCH_KEEP=1     keep the temp dir (raw wrk outputs, logs, configs)
#   BENCH_STRICT=1   exit 3 when any error was flagged (bench/smoke.sh sets it)
#   BENCH_NOCACHE=0  skip the second gateway (CACHE_VOLATILE_MS=0) in the tip scenario
#   BENCH_PACE_MS    paced runs: each of 64 connections waits this long after every answer, so
#                    every target gets the same offered load (default 5: ~12,000 req/s, below
#                    every target's capacity); 0 skips the paced runs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    DURATION=${BENCH_DURATION:-3s}
    SLICES=${BENCH_SLICES:-1}
else
    DURATION=${BENCH_DURATION:-10s}
    SLICES=${BENCH_SLICES:-5}
fi
# Slices need whole seconds that divide evenly; otherwise one slice of the whole duration.
duration_s=${DURATION%s}
if [[ "$duration_s" =~ ^[0-9]+$ ]] && [[ "$SLICES" =~ ^[1-9][0-9]*$ ]] && [ $((duration_s % SLICES)) = 0 ]; then
    SLICE_DURATION="$((duration_s / SLICES))s"
else
    SLICES=1 SLICE_DURATION=$DURATION
fi
VERIFY_DURATION=1s
CONNS=${BENCH_CONNS:-"64 512"}
ROUNDS=${BENCH_ROUNDS:-2}
SCENARIOS=${BENCH_SCENARIOS:-"tip block batch unique"}
IDLE_CONNS=${BENCH_IDLE_CONNS:-1000}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
WRK_THREADS=2
WRK_TIMEOUT=5s
VERIFY_CONNS=64
NOCACHE=${BENCH_NOCACHE:-1}
PACE_MS=${BENCH_PACE_MS:-5}
PACE_CONNS=64
# Targets per scenario. static is nginx answering a fixed JSON-RPC result itself (`return 200`,
# no node behind it): the fastest answer any server gives on this machine, so its p99 is the
# load generator's own tail at saturation, the floor for the cached scenarios (tip, block),
# where the gateway answers without the node too. gwplain (BENCH_BUILD=pgo only) is the plain
# release build of the gateway beside the profile-guided one. gwnocache is a second gateway
# with CACHE_VOLATILE_MS=0: by default the gateway answers tip reads (getBlockNumber, isReady,
# getChainTips) from a 1 s volatile cache; without it, identical in-flight tip reads are still
# coalesced. It runs in the tip scenario only (in the others its cache setting changes little
# or nothing; "unique" is the scenario that measures the gateway's real per-request
# forwarding cost).
targets_for() {
    local t="direct nginx haproxy gateway"
    case $1 in
        tip) [ "$NOCACHE" = 1 ] && t="$t gwnocache"; t="$t static" ;;
        block) t="$t static" ;;
        batch | unique) [ "$GW_BUILD" = pgo ] && t="$t gwplain" ;;
    esac
    echo "$t"
}

case "$ROUNDS" in 1 | 2) ;; *) echo "BENCH_ROUNDS must be 1 or 2 (got $ROUNDS)" >&2; exit 2 ;; esac
for s in $SCENARIOS; do
    [ -f "$BENCH/bodies/$s.json" ] || { echo "unknown scenario $s (expected tip, block, batch, unique)" >&2; exit 2; }
done

missing=()
for tool in wrk nginx haproxy python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}; install with: apt-get update && apt-get install -y wrk nginx haproxy python3 curl" >&2
    exit 2
fi

# 512 client connections plus the proxies' upstream connections need more than 1024 fds.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sentinel-bench.XXXXXX")
chmod 755 "$WORK"
mkdir -p "$WORK/raw" "$WORK/verify" "$WORK/paced" "$WORK/gw-cwd"
META="$WORK/meta.env"
: >"$META"
PIDS=()

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pid i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# N distinct free loopback ports (all bound at once, so no duplicates), one per line.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

alive() { kill -0 "$1" 2>/dev/null; }

die_with_log() {
    log "$1"
    [ -f "$2" ] && tail -n 40 "$2" >&2
    exit 1
}

# wait_http NAME PID LOGFILE CURL-ARGS... : until the curl answers 200 (30 s at most).
wait_http() {
    local name=$1 pid=$2 logf=$3 code
    shift 3
    for _ in $(seq 300); do
        alive "$pid" || die_with_log "$name exited during start-up" "$logf"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    die_with_log "$name did not answer 200 within 30 s (last status $code)" "$logf"
}

rpc_probe() { # URL -> curl args posting the tip body
    printf '%s\n' -X POST -H 'Content-Type: application/json' --data-binary "@$BENCH/bodies/tip.json" "$1"
}

# Sum of utime+stime clock ticks of the given pids (missing ones count 0).
ticks() {
    local total=0 pid stat rest
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        # fields after "comm": state(3) ... utime(14) stime(15) -> positions 12 and 13 here
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

children() { pgrep -P "$1" 2>/dev/null | tr '\n' ' ' || true; }

proxy_pids() { # target -> pids whose CPU is the proxy's
    case "$1" in
        direct) echo "" ;;
        nginx) echo "$NGINX_PID $(children "$NGINX_PID")" ;;
        haproxy) echo "$HAPROXY_PID $(children "$HAPROXY_PID")" ;;
        gateway) echo "$GW_PID" ;;
        gwnocache) echo "$GW2_PID" ;;
        gwplain) echo "$GW3_PID" ;;
        static) proxy_pids nginx ;;
    esac
}

rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
GW_BUILD=${BENCH_BUILD:-pgo}
case "$GW_BUILD" in pgo | release) ;; *) echo "BENCH_BUILD must be pgo or release (got $GW_BUILD)" >&2; exit 2 ;; esac
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release)
    if [ "$GW_BUILD" = pgo ]; then
        log "profile-guided build (scripts/build-pgo.sh)"
        status=0
        "$ROOT/scripts/build-pgo.sh" || status=$?
        if [ "$status" = 2 ] && [ -z "${BENCH_BUILD:-}" ]; then
            log "no profile-guided build possible here (see above): measuring the plain release build"
            GW_BUILD=release
        elif [ "$status" != 0 ]; then
            exit "$status"
        fi
    fi
fi
# The node (and gwplain) always run the plain release build.
PLAIN_BIN="$ROOT/target/release/sentinel-proxy"
if [ "$GW_BUILD" = pgo ]; then BIN="$ROOT/target/pgo/release/sentinel-proxy"; else BIN=$PLAIN_BIN; fi
for b in "$BIN" "$PLAIN_BIN"; do
    [ -x "$b" ] || {
        echo "bench: $b not found (build failed? with BENCH_SKIP_BUILD=1, build it first: make build, and make pgo or BENCH_BUILD=release)" >&2
        exit 1
    }
done

mapfile -t PORTS < <(free_ports 7)
NODE_PORT=${PORTS[0]} NGINX_PORT=${PORTS[1]} HAPROXY_PORT=${PORTS[2]} GW_PORT=${PORTS[3]} GW2_PORT=${PORTS[4]}
GW3_PORT=${PORTS[5]} STATIC_PORT=${PORTS[6]}
GW2_PID="" GW3_PID=""
NPROC=$(nproc)
declare -A URL=(
    [direct]="http://127.0.0.1:$NODE_PORT/"
    [nginx]="http://127.0.0.1:$NGINX_PORT/"
    [haproxy]="http://127.0.0.1:$HAPROXY_PORT/"
    [gateway]="http://127.0.0.1:$GW_PORT/"
    [gwnocache]="http://127.0.0.1:$GW2_PORT/"
    [gwplain]="http://127.0.0.1:$GW3_PORT/"
    [static]="http://127.0.0.1:$STATIC_PORT/"
)

meta DATE "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
meta LOADAVG_START "$(cut -d' ' -f1-3 /proc/loadavg)"
meta COMMIT "$(cd "$ROOT" && { git rev-parse --short HEAD 2>/dev/null || echo 'none'; })$(cd "$ROOT" && [ -n "$(git status --porcelain 2>/dev/null | head -1)" ] && echo ' (work tree has uncommitted changes)' || true)"
meta NPROC "$NPROC"
meta CLK_TCK "$(getconf CLK_TCK)"
meta DURATION "$DURATION"
meta SLICES "$SLICES"
meta SLICE_DURATION "$SLICE_DURATION"
meta ROUNDS "$ROUNDS"
meta QUICK "$QUICK"
meta VERIFY_DURATION "$VERIFY_DURATION"
meta VERIFY_CONNS "$VERIFY_CONNS"
meta GW_VERSION "$("$BIN" --version 2>&1 | head -1)"
meta GW_BUILD "$GW_BUILD"
for s in $SCENARIOS; do meta "BODY_$s" "$(tr -d '\n' <"$BENCH/bodies/$s.json")"; done

# --- node -------------------------------------------------------------------------------------
log "simulated node (profile v6) on :$NODE_PORT"
(cd "$WORK" && exec "$PLAIN_BIN" simulate --port "$NODE_PORT" --profile v6) >"$WORK/node.log" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
meta NODE_CMD "sentinel-proxy simulate --port PORT --profile v6"
mapfile -t probe < <(rpc_probe "${URL[direct]}")
wait_http node "$NODE_PID" "$WORK/node.log" "${probe[@]}"

# --- nginx ------------------------------------------------------------------------------------
user_line="# (not root: nginx keeps the current user)"
[ "$(id -u)" = 0 ] && user_line="user root;  # the master runs as root here; keep workers as root for the private temp dir"
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] && nofile=65536
sed -e "s|@DIR@|$WORK|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@NODE_PORT@|$NODE_PORT|g" \
    -e "s|@STATIC_PORT@|$STATIC_PORT|g" -e "s|@NOFILE@|$nofile|g" -e "s|@USER_LINE@|$user_line|g" "$BENCH/nginx.conf.tmpl" >"$WORK/nginx.conf"
nginx -t -q -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" 2>"$WORK/nginx-t.log" ||
    die_with_log "nginx config test failed" "$WORK/nginx-t.log"
log "nginx on :$NGINX_PORT"
nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" >"$WORK/nginx.out" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
meta NGINX_CMD "nginx -p TMP -e TMP/nginx-error.log -c TMP/nginx.conf"
mapfile -t probe < <(rpc_probe "${URL[nginx]}")
wait_http nginx "$NGINX_PID" "$WORK/nginx-error.log" "${probe[@]}"
mapfile -t probe < <(rpc_probe "${URL[static]}")
wait_http static "$NGINX_PID" "$WORK/nginx-error.log" "${probe[@]}"

# --- haproxy ----------------------------------------------------------------------------------
sed -e "s|@PORT@|$HAPROXY_PORT|g" -e "s|@NODE_PORT@|$NODE_PORT|g" -e "s|@THREADS@|$NPROC|g" \
    "$BENCH/haproxy.cfg.tmpl" >"$WORK/haproxy.cfg"
haproxy -c -q -f "$WORK/haproxy.cfg" >"$WORK/haproxy-c.log" 2>&1 || die_with_log "haproxy config check failed" "$WORK/haproxy-c.log"
log "haproxy on :$HAPROXY_PORT"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
PIDS+=("$HAPROXY_PID")
meta HAPROXY_CMD "haproxy -db -f TMP/haproxy.cfg"
mapfile -t probe < <(rpc_probe "${URL[haproxy]}")
wait_http haproxy "$HAPROXY_PID" "$WORK/haproxy.log" "${probe[@]}"

# --- gateway ----------------------------------------------------------------------------------
start_gateway() { # name port logfile extra-env... ; sets STARTED_PID (runs $GW_BIN, default $BIN)
    local name=$1 port=$2 logf=$3 bin=${GW_BIN:-$BIN}
    shift 3
    log "$name on :$port"
    (
        cd "$WORK/gw-cwd" # no .env here
        unset RUST_LOG
        export SENTINEL_BACKENDS="node=http://127.0.0.1:$NODE_PORT" PROXY_LISTEN="127.0.0.1:$port" PROXY_PORT="$port" \
            LOG_LEVEL=warn HEALTH_CHECK_INTERVAL_MS=1000
        for kv in "$@"; do export "${kv?}"; done
        exec "$bin" serve
    ) >"$logf" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    wait_http "$name" "$STARTED_PID" "$logf" "http://127.0.0.1:$port/ready"
    mapfile -t probe < <(rpc_probe "http://127.0.0.1:$port/")
    wait_http "$name" "$STARTED_PID" "$logf" "${probe[@]}"
}
start_gateway gateway "$GW_PORT" "$WORK/gateway.log"
GW_PID=$STARTED_PID
meta GW_CMD "SENTINEL_BACKENDS=node=http://127.0.0.1:PORT PROXY_LISTEN=127.0.0.1:PORT LOG_LEVEL=warn HEALTH_CHECK_INTERVAL_MS=1000 sentinel-proxy serve"

# --- gateway memory: idle, then with N idle keep-alive connections ------------------------------
sleep 2 # let the first health passes settle
meta RSS_IDLE_KB "$(rss_kb "$GW_PID" VmRSS)"
log "gateway idle RSS $(rss_kb "$GW_PID" VmRSS) kB"
if [ "$IDLE_CONNS" -gt 0 ]; then
    hold=5
    release="$WORK/idle.release"
    python3 "$BENCH/idle_conns.py" --port "$GW_PORT" --count "$IDLE_CONNS" --release-file "$release" --hold-max 120 \
        >"$WORK/idle.out" 2>"$WORK/idle.err" &
    IDLE_PID=$!
    PIDS+=("$IDLE_PID")
    for _ in $(seq 600); do
        grep -q '^OPEN' "$WORK/idle.out" && break
        alive "$IDLE_PID" || break
        sleep 0.1
    done
    grep -q '^OPEN' "$WORK/idle.out" || die_with_log "idle_conns.py did not open its connections" "$WORK/idle.err"
    sleep 1
    meta RSS_1000_KB "$(rss_kb "$GW_PID" VmRSS)"
    meta GW_FDS_HELD "$(ls "/proc/$GW_PID/fd" | wc -l)"
    sleep $((hold - 1))
    touch "$release"
    wait "$IDLE_PID" || true
    line=$(grep '^OPEN' "$WORK/idle.out")
    held=$(grep '^HELD' "$WORK/idle.out" || true)
    meta IDLE_TARGET "$IDLE_CONNS"
    meta IDLE_HOLD_S "$hold"
    meta IDLE_OPENED "$(sed -n 's/.*opened=\([0-9]*\).*/\1/p' <<<"$line")"
    meta IDLE_ANSWERED "$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' <<<"$line")"
    meta IDLE_FAILED "$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")"
    meta IDLE_STILL_OPEN "$(sed -n 's/.*still_open=\([0-9]*\).*/\1/p' <<<"$held")"
    log "idle connections: $line / $held; RSS $(grep RSS_1000_KB "$META" | cut -d= -f2) kB"
    sleep 1
fi

if [ "$NOCACHE" = 1 ] && [[ " $SCENARIOS " == *" tip "* ]]; then
    start_gateway gwnocache "$GW2_PORT" "$WORK/gateway-nocache.log" CACHE_VOLATILE_MS=0
    GW2_PID=$STARTED_PID
    meta NOCACHE 1
fi
if [ "$GW_BUILD" = pgo ] && [[ " $SCENARIOS " == *" batch "* || " $SCENARIOS " == *" unique "* ]]; then
    GW_BIN=$PLAIN_BIN start_gateway gwplain "$GW3_PORT" "$WORK/gateway-plain.log"
    GW3_PID=$STARTED_PID
fi

# --- verification pass (bodies checked; also warms every target up) ---------------------------
expect_for() { case "$1" in batch) echo 10 ;; *) echo 1 ;; esac; }
log "verification pass: $VERIFY_DURATION per target and scenario at -c$VERIFY_CONNS"
for s in $SCENARIOS; do
    for t in $(targets_for "$s"); do
        BENCH_BODY_FILE="$BENCH/bodies/$s.json" BENCH_VERIFY=1 BENCH_EXPECT_RESULTS=$(expect_for "$s") \
            wrk -t"$WRK_THREADS" -c"$VERIFY_CONNS" -d"$VERIFY_DURATION" --timeout "$WRK_TIMEOUT" --latency \
            -s "$BENCH/post.lua" "${URL[$t]}" >"$WORK/verify/${s}__${t}.txt" 2>&1 || true
        log "  verify $s $t: $(grep '^VERIFY' "$WORK/verify/${s}__${t}.txt" || echo 'no VERIFY line')"
    done
done

# --- timed runs ---------------------------------------------------------------------------------
meta WRK_CMD "wrk -t$WRK_THREADS -cCONNS -d$SLICE_DURATION --timeout $WRK_TIMEOUT --latency -s bench/post.lua URL"
run_one() { # scenario conns target round slice
    local s=$1 c=$2 t=$3 r=$4 k=$5 base pids p0 p1 n0 n1
    base="$WORK/raw/${s}__c${c}__${t}__r${r}__s${k}"
    case $t in gateway | gwnocache | gwplain) curl -s --max-time 5 "${URL[$t]}health" >"$base.health-before.json" || true ;; esac
    pids=$(proxy_pids "$t")
    p0=$(ticks $pids) n0=$(ticks "$NODE_PID")
    BENCH_BODY_FILE="$BENCH/bodies/$s.json" \
        wrk -t"$WRK_THREADS" -c"$c" -d"$SLICE_DURATION" --timeout "$WRK_TIMEOUT" --latency \
        -s "$BENCH/post.lua" "${URL[$t]}" >"$base.txt" 2>&1 || echo "wrk exited with status $?" >>"$base.txt"
    p1=$(ticks $pids) n1=$(ticks "$NODE_PID")
    echo "$p0 $p1 $n0 $n1" >"$base.cpu"
    case $t in gateway | gwnocache | gwplain) curl -s --max-time 5 "${URL[$t]}health" >"$base.health-after.json" || true ;; esac
    log "  $s c$c r$r s$k $(printf '%-9s' "$t") $(awk '/Requests\/sec/ {r = $2} /^ +99%/ {p = $2} /Non-2xx/ {e = e ", NON-2xx " $5} /Socket errors/ {e = e "," $0} END {printf "%s req/s, p99 %s%s", r, p, e}' "$base.txt")"
    sleep 0.3 # let closed connections drain before the next target
}

# The targets rotated by SHIFT places: a group's turns start with a different target each time.
turn_order() { # shift target...
    local shift=$1 i
    shift
    local targets=("$@")
    for i in "${!targets[@]}"; do echo "${targets[$(((i + shift) % ${#targets[@]}))]}"; done
}

DIED=""
check_alive() { # records (once) which process died; the report flags it and keeps what was measured
    local name pid ok=0
    for name in node nginx haproxy gateway gwnocache gwplain; do
        case $name in node) pid=$NODE_PID ;; nginx) pid=$NGINX_PID ;; haproxy) pid=$HAPROXY_PID ;; gateway) pid=$GW_PID ;; gwnocache) pid=$GW2_PID ;; gwplain) pid=$GW3_PID ;; esac
        [ -n "$pid" ] || continue
        if ! alive "$pid" && [[ " $DIED " != *" $name "* ]]; then
            DIED="$DIED $name"
            log "$name (pid $pid) DIED during the timed runs; stopping measurements"
            meta DIED "${DIED# }"
            ok=1
        elif ! alive "$pid"; then
            ok=1
        fi
    done
    return $ok
}

group=0
groups_total=$((ROUNDS * $(wc -w <<<"$SCENARIOS") * $(wc -w <<<"$CONNS")))
log "timed runs: $groups_total groups (scenario x conns x round) of 4-6 targets x $DURATION, in $SLICES turns of $SLICE_DURATION"
# Background load check: CPU the whole machine spent during the timed runs, minus what the
# bench's own processes (node, proxies, and wrk/curl as this shell's children) spent.
sys_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
sys_softirq() { awk '/^cpu / {print $7 + $8}' /proc/stat; } # loopback packet work may land here, not on a process
own_children_ticks() { # user+sys of this shell's waited-for children (wrk, curl), in ticks
    # `times` must run in this shell (a $(...) subshell would report its own, empty, children).
    awk -v hz="$(getconf CLK_TCK)" 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        printf "%d", t * hz }' "$WORK/times.out"
}
bench_ticks() { ticks "$NODE_PID" $(proxy_pids nginx) $(proxy_pids haproxy) "$GW_PID" $GW2_PID $GW3_PID; }
times >"$WORK/times.out"
I0=$(sys_softirq) T0=$(date +%s.%N) S0=$(sys_busy) B0=$(bench_ticks) C0=$(own_children_ticks)
for r in $(seq "$ROUNDS"); do
    for s in $SCENARIOS; do
        for c in $CONNS; do
            # The targets take turns slice by slice; the order rotates by one place per slice
            # and per group so every target takes every position.
            for k in $(seq "$SLICES"); do
                for t in $(turn_order "$((group + k))" $(targets_for "$s")); do
                    check_alive || break 5
                    run_one "$s" "$c" "$t" "$r" "$k"
                done
            done
            group=$((group + 1))
        done
    done
done
check_alive || true
times >"$WORK/times.out"
I1=$(sys_softirq) T1=$(date +%s.%N) S1=$(sys_busy) B1=$(bench_ticks) C1=$(own_children_ticks)
meta LOAD_WALL_S "$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.1f", b - a}')"
meta LOAD_SYS_TICKS "$((S1 - S0))"
meta LOAD_BENCH_TICKS "$((B1 - B0 + C1 - C0))"
meta LOAD_IRQ_TICKS "$((I1 - I0))"
meta LOADAVG_END "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- paced runs: latency at one offered load for every target ---------------------------------
if [ "$PACE_MS" -gt 0 ] && [ -z "$DIED" ]; then
    meta PACE_MS "$PACE_MS"
    meta PACE_CONNS "$PACE_CONNS"
    meta PACE_CMD "BENCH_PACE_MS=$PACE_MS wrk -t$WRK_THREADS -c$PACE_CONNS -d$SLICE_DURATION --timeout $WRK_TIMEOUT --latency -s bench/post.lua URL"
    log "paced runs: -c$PACE_CONNS, $PACE_MS ms between a connection's answer and its next request, $SLICES turns of $SLICE_DURATION"
    # Turns as in the timed runs: a slow minute of this machine falls on every target alike.
    for s in $SCENARIOS; do
        for k in $(seq "$SLICES"); do
            for t in $(turn_order "$k" $(targets_for "$s")); do
                check_alive || break 3
                BENCH_BODY_FILE="$BENCH/bodies/$s.json" BENCH_PACE_MS="$PACE_MS" \
                    wrk -t"$WRK_THREADS" -c"$PACE_CONNS" -d"$SLICE_DURATION" --timeout "$WRK_TIMEOUT" --latency \
                    -s "$BENCH/post.lua" "${URL[$t]}" >"$WORK/paced/${s}__${t}__s${k}.txt" 2>&1 || true
                log "  paced $s s$k $(printf '%-9s' "$t") $(awk '/Requests\/sec/ {r = $2} /^ +50%/ {m = $2} /^ +99%/ {p = $2} END {printf "%s req/s, p50 %s, p99 %s", r, m, p}' "$WORK/paced/${s}__${t}__s${k}.txt")"
                sleep 0.5
            done
        done
    done
fi

if alive "$GW_PID"; then
    meta RSS_END_KB "$(rss_kb "$GW_PID" VmRSS)"
    meta HWM_END_KB "$(rss_kb "$GW_PID" VmHWM)"
fi
meta GW_LOG_LINES "$(wc -l <"$WORK/gateway.log")"
[ -s "$WORK/gateway.log" ] && { log "gateway log (last 10 lines):"; tail -n 10 "$WORK/gateway.log" >&2; }

strict=()
[ "${BENCH_STRICT:-0}" = 1 ] && strict=(--strict)
python3 "$BENCH/report.py" --run-dir "$WORK" --out "$OUT" "${strict[@]}"
