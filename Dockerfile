# syntax=docker/dockerfile:1
# Distroless image of sentinel-proxy (README.md#deployment): docker build -t sentinel-proxy .
# Linted in CI by hadolint (scripts/lint-deploy.sh); no container engine runs there, so the
# image itself is not built in CI.

# The toolchain is pinned to a minor release; bookworm's glibc matches distroless/cc-debian12.
FROM rust:1.95-bookworm AS build
# The image ships the profile-guided build (scripts/build-pgo.sh; what `make bench` measures as
# "gateway"): its training run needs wrk, curl and python3, and rustup's llvm-tools. It takes
# about three times as long as a plain build; `--build-arg PGO=0` builds the plain
# `cargo build --release` instead.
ARG PGO=1
# Debian's packages of the pinned release; their versions follow the base image.
# hadolint ignore=DL3008
RUN if [ "$PGO" = 1 ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends wrk curl python3 \
        && rm -rf /var/lib/apt/lists/* \
        && rustup component add llvm-tools; \
    fi
WORKDIR /src
# Only what the build reads: the manifest and lock file, the build settings (.cargo: mimalloc's
# on-demand commit), the sources, the bench target the manifest declares (Cargo checks that it
# exists), and for the profile-guided build its script and the bench's request bodies.
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY benches ./benches
COPY scripts/build-pgo.sh ./scripts/
COPY bench/post.lua ./bench/
COPY bench/bodies ./bench/bodies
# BuildKit cache mounts keep the registry and compiled dependencies between builds; the binary
# is copied out because the target directory is not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ "$PGO" = 1 ]; then \
        ./scripts/build-pgo.sh && cp target/pgo/release/sentinel-proxy /sentinel-proxy; \
    else \
        cargo build --release --locked --bin sentinel-proxy && cp target/release/sentinel-proxy /sentinel-proxy; \
    fi

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
