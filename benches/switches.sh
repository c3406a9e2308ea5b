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
# shellcheck source=benches/case-servers.sh
source "$(dirname "$0")/case-servers.sh"
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
