# syntax=docker/dockerfile:1
# Distroless image of sentinel-proxy (README.md#deployment): docker build -t sentinel-proxy .
# Linted in CI by hadolint (scripts/lint-deploy.sh); no container engine runs there, so the
# image itself is not built in CI.

# The toolchain is pinned to a minor release; bookworm's glibc matches distroless/cc-debian12.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what `cargo build` reads: the manifest and lock file, the sources, and the bench target
# the manifest declares (Cargo checks that it exists).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# BuildKit cache mounts keep the registry and compiled dependencies between builds; the binary
# is copied out because the target directory is not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sentinel-proxy \
    && cp target/release/sentinel-proxy /sentinel-proxy

# glibc and nothing else (no shell, no package manager). TLS roots are compiled into the binary,
# so the image needs no CA bundle of its own.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /sentinel-proxy /usr/local/bin/sentinel-proxy
EXPOSE 8080
# distroless's `nonroot` user, numerically: Kubernetes' runAsNonRoot can only verify a numeric
# user. The process writes no files, so a read-only root filesystem works as is.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sentinel-proxy"]
CMD ["serve"]
