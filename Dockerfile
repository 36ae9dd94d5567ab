# Distroless image of sentinel-proxy (README.md#deployment). Build: docker build -t sentinel-proxy .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/sentinel-proxy /sentinel-proxy

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /sentinel-proxy /usr/local/bin/sentinel-proxy
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/sentinel-proxy"]
CMD ["serve"]
