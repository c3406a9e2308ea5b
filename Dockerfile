# syntax=docker/dockerfile:1
# The `rateguard` image: one binary for `serve` (a gateway replica) and
# `mock-backend` (the demo backend). Used by compose/docker-compose.yml.
#
#   docker build -t rateguard:local .
#
# Stages: chef (build tools) -> planner (dependency recipe) -> builder
# (dependencies cached in their own layer, then the workspace) -> runtime.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
# cargo-chef turns the manifests into a recipe, so dependencies build in a
# layer that only changes when Cargo.toml/Cargo.lock change.
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json --bin rateguard

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json --bin rateguard
COPY . .
RUN cargo build --release --bin rateguard \
    && install -m 0755 target/release/rateguard /usr/local/bin/rateguard

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# curl for the healthchecks; ca-certificates for `rediss://` store URLs,
# whose servers are verified against the system roots unless
# store.tls_ca_file names a CA (rustls is linked, no OpenSSL).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin rateguard
COPY --from=builder /usr/local/bin/rateguard /usr/local/bin/rateguard
# The binary reads `.env` from its working directory; this one has none.
WORKDIR /
USER rateguard:rateguard
# Public port (server.listen) and admin port (server.admin_listen: /healthz, /metrics).
EXPOSE 8080 9090
ENV RATEGUARD_CONFIG=/etc/rateguard/rateguard.toml
# Admin port 9090 = server.admin_listen in compose/rateguard*.toml.
HEALTHCHECK --interval=5s --timeout=2s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
# SIGTERM makes `rateguard serve` stop accepting and drain in-flight requests.
STOPSIGNAL SIGTERM
ENTRYPOINT ["rateguard"]
CMD ["serve"]
