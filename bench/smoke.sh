#!/usr/bin/env bash
# Quick sanity run of the benchmark harness: 3 s wrk runs at -c64 only, 1 s verification pass,
# 200 idle connections. Writes its markdown to a temp file (BENCHMARKS.md is left alone unless
# BENCH_OUT says otherwise) and exits non-zero when a run failed or any error was seen.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${BENCH_OUT:-$(mktemp "${TMPDIR:-/tmp}/sentinel-bench-smoke.XXXXXX.md")}
BENCH_QUICK=1 BENCH_ROUNDS=${BENCH_ROUNDS:-1} BENCH_CONNS=${BENCH_CONNS:-64} BENCH_IDLE_CONNS=${BENCH_IDLE_CONNS:-200} BENCH_STRICT=1 BENCH_OUT="$out" \
    "$here/run.sh" "$@"
echo "smoke: OK ($out)"
