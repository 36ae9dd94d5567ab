# sentinel-proxy — common tasks. `make test` is what CI runs (.ci/run).
CARGO ?= cargo

.PHONY: build run demo test screenshot bench chaos soak watch fmt lint

build:
	$(CARGO) build --release

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

watch:
	@if command -v cargo-watch >/dev/null 2>&1; then cargo watch -x 'test --all-targets'; \
	else echo "cargo-watch is not installed: run 'cargo install cargo-watch' first"; exit 1; fi

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --all-targets -- -D warnings
