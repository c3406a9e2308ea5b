#!/usr/bin/env bash
# Instructions per request of one `rateguard serve` case under callgrind:
# repeatable where wall-clock figures are not (a shared, noisy machine).
#
#   benches/callgrind.sh CASE [REQUESTS] [THREADS]
#     CASE      a just-perf gateway case: no-policy, memory, redis-lua, ...
#     REQUESTS  measured requests (default 20000), after 2000 unmeasured
#     THREADS   the gateway's runtimes (server.threads, default 1)
#
# Needs a release build with line tables (same optimisations as `just perf`):
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     cargo build --release -p rateguard --target-dir target/profiling
#   cargo build -p rateguard-benches --bin rateguard-perf
# Starts a static nginx backend (and redis-server for Redis cases) on free
# loopback ports, the gateway under valgrind with the case's config
# (`rateguard-perf --print-config`), zeroes the counters after the warm-up,
# sends REQUESTS with wrk (8 connections, one API key), dumps, and prints
# instructions per request and the top functions (self and inclusive).
# Output: target/callgrind/<case>-t<threads>.out (+ .txt summaries).
# Everything it starts is stopped by pid on exit.
set -euo pipefail
case=${1:?usage: benches/callgrind.sh CASE [REQUESTS] [THREADS]}
requests=${2:-20000}
threads=${3:-1}
bin=${RATEGUARD_PROFILE_BIN:-target/profiling/release/rateguard}
perf=target/debug/rateguard-perf
out=target/callgrind
mkdir -p "$out"
work=$(mktemp -d /tmp/rateguard-callgrind.XXXXXX)
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
dump="$out/$case-t$threads.out"
rm -f "$dump"
RATEGUARD_SERVER_THREADS=$threads RATEGUARD_SERVER_ADMIN_LISTEN="127.0.0.1:$admin" \
    valgrind --tool=callgrind --read-inline-info=yes --callgrind-out-file="$work/callgrind.out" \
    "$bin" serve --config "$work/gateway.toml" --listen "127.0.0.1:$port" 2>"$work/valgrind.log" &
gateway=$!
pids+=($gateway)
wait_port "$port"

cat >"$work/count.lua" <<'EOF'
-- Stops each thread after args[1] responses; one API key on every request.
local seen = 0
function init(args)
  limit = tonumber(args[1])
  wrk.headers["x-api-key"] = "perf-client-1"
end
function response(status)
  seen = seen + 1
  if status > 399 then io.write("status " .. status .. "\n") end
  if seen >= limit then wrk.thread:stop() end
end
EOF
wrk -t1 -c8 -d600s -s "$work/count.lua" "http://127.0.0.1:$port/api/data" -- 2000 >/dev/null
callgrind_control -z "$gateway" >/dev/null
wrk -t1 -c8 -d600s -s "$work/count.lua" "http://127.0.0.1:$port/api/data" -- "$requests" >"$work/wrk.txt"
callgrind_control -d "$gateway" >/dev/null
sleep 1
part=$(ls -t "$work"/callgrind.out.* | head -1)
cp "$part" "$dump"
if grep -q "^status" "$work/wrk.txt"; then echo "some responses were >= 400:" >&2; grep "^status" "$work/wrk.txt" | sort | uniq -c >&2; fi
total=$(grep -m1 "^summary:" "$dump" | awk '{print $2}')
echo "$case, $threads runtime(s): $((total / requests)) instructions per request ($total over $requests requests)"
callgrind_annotate --inclusive=no "$dump" 2>/dev/null | head -45 >"$dump.self.txt"
callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | head -70 >"$dump.inclusive.txt"
echo "top self: $dump.self.txt; top inclusive: $dump.inclusive.txt"
