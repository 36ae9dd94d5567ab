# sentinel-proxy — common tasks. `make test` is what CI runs (.ci/run).
CARGO ?= cargo

.PHONY: build pgo run demo test screenshot bench chaos soak descriptors fuzz watch fmt lint

build:
	$(CARGO) build --release

# Profile-guided release build: target/pgo/release/sentinel-proxy (needs wrk and rustup's
# llvm-tools; ~10 min). Same code, hot path laid out by a training run (scripts/build-pgo.sh).
pgo:
	./scripts/build-pgo.sh

# With SENTINEL_BACKENDS set, serve them; otherwise run the built-in demo fleet.
run:
	@if [ -n "$$SENTINEL_BACKENDS" ]; then $(CARGO) run --release -- serve; else $(CARGO) run --release -- demo; fi

demo:
	$(CARGO) run --release -- demo

# Unit, integration (real sockets, simulated nodes, real Redis) and browser tests.
test:
	./scripts/test-deps.sh
	$(CARGO) test --all-targets
	$(CARGO) test --doc

# Regenerates the README's screenshot docs/dashboard.png on purpose (`make test` only writes
# target/artifacts/). Commit the new image if it looks right.
screenshot:
	./scripts/test-deps.sh
	UPDATE_SCREENSHOT=1 $(CARGO) test --test dashboard screenshot_of_a_realistic_fleet

bench:
	./bench/run.sh

# Chaos against the release gateway: ~200 clients, nodes killed, hung, garbled, lagged and
# re-rolled; each run rewrites its own section of RELIABILITY.md (`cargo test --test chaos` is
# the short CI version). CHAOS_SECS / SOAK_SECS change the length.
CHAOS_SECS ?= 60
SOAK_SECS ?= 600

chaos:
	$(CARGO) build --release --bin sentinel-proxy --example chaos
	$(CARGO) run --release --example chaos -- chaos $(CHAOS_SECS)

soak:
	$(CARGO) build --release --bin sentinel-proxy --example chaos
	$(CARGO) run --release --example chaos -- soak $(SOAK_SECS)

# 21,000 silent connections against a gateway at ulimit -n 20000: descriptors held versus
# normal clients served (markdown on stdout).
descriptors:
	./bench/descriptors.sh

# Every fuzz target (fuzz/) for FUZZ_SECONDS each; fails on a crash. Stable toolchain is enough.
FUZZ_SECONDS ?= 60
fuzz:
	./scripts/fuzz.sh $(FUZZ_SECONDS)

watch:
	@if command -v cargo-watch >/dev/null 2>&1; then cargo watch -x 'test --all-targets'; \
	else echo "cargo-watch is not installed: run 'cargo install cargo-watch' first"; exit 1; fi

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --all-targets -- -D warnings
