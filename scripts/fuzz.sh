#!/usr/bin/env bash
# Fuzzes the parsers: runs every `cargo fuzz` target of fuzz/ (request, answers, stats,
# config) for N seconds each (default 60), prints the executions per target and fails if any
# target crashed (the crashing input is kept in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [seconds-per-target]        (`make fuzz` = 60 s each; CI runs 10 s each)
#
# Needs only the stable toolchain: cargo-fuzz passes nightly-only flags (-Z) to rustc, which
# stable accepts with RUSTC_BOOTSTRAP=1. cargo-fuzz itself is installed (pinned) when missing.
# Environment:
#   FUZZ_SANITIZER   address (default; the ASan runtime ships with stable) or none (~2x faster)
#   FUZZ_TARGET_DIR  where the instrumented build goes (default $CARGO_TARGET_DIR/fuzz, else
#                    target/fuzz); it compiles every dependency once more, with coverage
#   FUZZ_TARGETS     a subset of the targets, space-separated
#   FUZZ_DEV=1       build in the dev profile (no optimisation, debug assertions on): a much
#                    quicker build for a smoke run (CI uses it with FUZZ_SANITIZER=none)
# The generated corpus grows in fuzz/corpus/<target>/ (not committed); fuzz/seeds/<target>/
# holds the committed seeds (real requests, simulator answers, stats documents, configs).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-60}
CARGO_FUZZ_VERSION=0.13.2
SANITIZER=${FUZZ_SANITIZER:-address}
TARGET_DIR=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

TARGETS=${FUZZ_TARGETS:-$(cargo fuzz list)}
OPTS=(--sanitizer "$SANITIZER" --target-dir "$TARGET_DIR")
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    OPTS+=(--dev)
fi

echo "== fuzz build (sanitizer $SANITIZER, target dir $TARGET_DIR)"
start=$(date +%s)
cargo fuzz build "${OPTS[@]}"
echo "fuzz build took $(($(date +%s) - start)) s"

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
rows=()
failed=()
for t in $TARGETS; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzz $t for ${SECONDS_PER_TARGET} s"
    # The first directory receives new inputs; the seeds are only read. A single input taking
    # over 10 s counts as a failure (a hang), as does any panic.
    status=0
    cargo fuzz run "${OPTS[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
        >"$LOGS/$t.log" 2>&1 || status=$?
    tail -n 25 "$LOGS/$t.log" | grep -E '^(#|stat::|==|SUMMARY|Done|thread)' || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log" | tail -n 1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        result="CRASH (exit $status; input in fuzz/artifacts/$t/)"
        failed+=("$t")
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$LOGS/$t.log" | head -n 5 || true
    fi
    rate=$(( ${execs:-0} / (SECONDS_PER_TARGET > 0 ? SECONDS_PER_TARGET : 1) ))
    rows+=("| $t | $SECONDS_PER_TARGET | ${execs:-?} | $rate | $corpus | $result |")
done

echo
echo "| target | seconds | executions | per second | corpus files | result |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found crashes in: ${failed[*]}" >&2
    exit 1
fi
