#!/usr/bin/env bash
# Voluntary context switches per request of one `rateguard serve` case,
# run natively (no valgrind): the cost callgrind cannot see, a task woken
# on another thread (the kernel's share, and the wait).
#
#   benches/switches.sh CASE [SECONDS] [THREADS]
#     CASE      a just-perf gateway case: no-policy, memory, redis-lua, ...
#     SECONDS   of measured load (default 10), after 2 s unmeasured
#     THREADS   the gateway's runtimes (server.threads, default 2)
#
# Same set-up as benches/callgrind.sh (static nginx backend, redis-server
# for Redis cases, wrk with 8 connections and one API key), same binary
# (RATEGUARD_PROFILE_BIN, default target/profiling/release/rateguard).
# Prints the gateway's voluntary context switches (all its threads, from
# /proc) over the requests wrk saw completed. A count, not a time: far
# less noisy than throughput on a shared machine, though not exact.
# Everything it starts is stopped by pid on exit.
set -euo pipefail
case=${1:?usage: benches/switches.sh CASE [SECONDS] [THREADS]}
seconds=${2:-10}
threads=${3:-2}
bin=${RATEGUARD_PROFILE_BIN:-target/profiling/release/rateguard}
perf=target/debug/rateguard-perf
work=$(mktemp -d /tmp/rateguard-switches.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never opened" >&2
    return 1
}

backend=$(free_port)
mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path tmp/body; proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fastcgi; uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
  server {
    listen 127.0.0.1:$backend;
    location / { default_type application/json; return 200 '{"ok":true,"backend":"nginx"}'; }
  }
}
EOF
nginx=${RATEGUARD_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off; master_process off;' &
pids+=($!)
wait_port "$backend"

store_args=()
if [[ $case == redis-* ]]; then
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
    pids+=($!)
    wait_port "$rport"
    store_args=(--store-url "redis://127.0.0.1:$rport")
fi
"$perf" --print-config "$case" --upstream "http://127.0.0.1:$backend" "${store_args[@]}" >"$work/gateway.toml"

port=$(free_port)
admin=$(free_port)
RATEGUARD_SERVER_THREADS=$threads RATEGUARD_SERVER_ADMIN_LISTEN="127.0.0.1:$admin" \
    "$bin" serve --config "$work/gateway.toml" --listen "127.0.0.1:$port" 2>"$work/gateway.log" &
gateway=$!
pids+=($gateway)
wait_port "$port"

switches() { cat /proc/"$gateway"/task/*/status | awk '/^voluntary_ctxt_switches/ {n += $2} END {print n}'; }
load() { wrk -t1 -c8 "-d$1s" -H 'x-api-key: perf-client-1' "http://127.0.0.1:$port/api/data"; }
load 2 >/dev/null
before=$(switches)
load "$seconds" >"$work/wrk.txt"
after=$(switches)
if grep -q "Non-2xx" "$work/wrk.txt"; then grep "Non-2xx" "$work/wrk.txt" >&2; fi
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
python3 -c "import sys; s, r = int(sys.argv[1]), int(sys.argv[2]); print(f'$case, $threads runtime(s): {s / r:.3f} voluntary context switches per request ({s} over {r} requests)')" "$((after - before))" "$requests"
