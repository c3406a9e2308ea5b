# RateGuard recipes: the same commands locally and in CI (.ci/run calls `just test`).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Everything CI checks: formatting, lints (warnings are errors), all tests.
test: fmt-check clippy test-all

# Formatting check (no changes made).
fmt-check:
    cargo fmt --all -- --check

# Clippy over every crate and target; warnings fail.
clippy:
    cargo clippy --workspace --all-targets -- -D warnings

# All unit, integration and doc tests.
test-all:
    cargo test --workspace

# Criterion benches of the bucket math and the stores; writes target/criterion/summary.html (linked from the lab report).
bench *ARGS:
    cargo bench -p rateguard-benches {{ARGS}}
    cargo run --release -q -p rateguard-report -- bench-summary target/criterion "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr), $(rustc --version), Redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2)"

# The gateway against nginx proxy_pass with wrk (~3 min): no policy, every store, redis-lua with a two-limit policy, a deny-heavy hot key; writes results/perf-<time>.{md,json}. `just perf --help` lists the options (--cases, --rounds, --seconds, --idle N).
perf *ARGS:
    command -v wrk >/dev/null && command -v redis-server >/dev/null && (command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]) || bash .ci/install-deps
    cargo build --release -q -p rateguard
    cargo build -q -p rateguard-benches --bin rateguard-perf
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; target/debug/rateguard-perf {{ARGS}}

# Mutation testing with cargo-mutants (minutes; not part of `just test`): rateguard-core must keep 0 surviving mutants, then the gateway's identity, policy, plan and response modules, and the runtime's RateLimit header values and reload sections table (unit tests). Exclusions, each with its reason: .cargo/mutants.toml. Reports in target/mutants/.
mutants *ARGS:
    command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
    mkdir -p target/mutants
    cargo mutants --package rateguard-core --output target/mutants/core {{ARGS}}
    cargo mutants --package rateguard-gateway --file crates/rateguard-gateway/src/identity.rs --file crates/rateguard-gateway/src/policy.rs --file crates/rateguard-gateway/src/plan.rs --file crates/rateguard-gateway/src/response.rs --output target/mutants/gateway {{ARGS}} -- --lib
    cargo mutants --package rateguard-runtime --file crates/rateguard-runtime/src/headers.rs --file crates/rateguard-runtime/src/reload/sections.rs --output target/mutants/runtime {{ARGS}} -- --lib

# Install the system packages the tests and the lab need (Debian; needs root).
deps:
    bash .ci/install-deps

# Start the compose deployment: nginx :8080, gateways, backends, Redis (COMPOSE_PROFILES=cluster: Redis Cluster).
up *ARGS:
    docker compose -f compose/docker-compose.yml up --build -d {{ARGS}}

# Stop and remove the compose deployment (either profile).
down:
    docker compose -f compose/docker-compose.yml --profile redis --profile cluster down --remove-orphans

# Run N gateway replicas in the running deployment; nginx re-resolves and uses them.
scale N:
    GATEWAY_REPLICAS={{N}} docker compose -f compose/docker-compose.yml up -d --no-build --no-recreate

# Render report.html again from a run's summary.json (default: results/latest).
report SUMMARY="results/latest/summary.json":
    cargo run -q -p rateguard-report -- {{SUMMARY}}

# The lab (~15 min): redis, a Redis Cluster, nginx over 3 gateway replicas and 2 backends, every store × scenario; writes results/<run-id>/report.html. `just loadtest --help` lists the options.
loadtest *ARGS:
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && (command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]) || bash .ci/install-deps
    cargo build --release -q -p rateguard -p rateguard-lab
    target/release/rateguard-lab run {{ARGS}}

# Send a burst of concurrent requests (one API key) to a running gateway: who allowed / throttled each.
burst URL *ARGS:
    cargo run --release -q -p rateguard-lab -- burst {{URL}} {{ARGS}}

# Send sequential requests to a running gateway: which replica and backend answered each.
distribution URL *ARGS:
    cargo run --release -q -p rateguard-lab -- distribution {{URL}} {{ARGS}}

# Bring up nginx :8080 over 3 gateway replicas sharing redis-server (no Docker) and keep it up until Ctrl-C; prints the URLs. `just demo --help` lists the options (--store, --replicas, --port, --config, --on-error).
demo *ARGS:
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && (command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]) || bash .ci/install-deps
    cargo build --release -q -p rateguard -p rateguard-lab
    target/release/rateguard-lab up {{ARGS}}
