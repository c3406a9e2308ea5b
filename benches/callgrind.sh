#!/usr/bin/env bash
# Instructions per request of one `rateguard serve` case under callgrind:
# repeatable where wall-clock figures are not (a shared, noisy machine).
#
#   benches/callgrind.sh CASE [SECONDS] [THREADS]
#     CASE      a just-perf gateway case: no-policy, memory, redis-lua, ...
#     SECONDS   of measured load (default 20; ~1-2k requests/s under
#               valgrind), after 3 s unmeasured
#     THREADS   the gateway's runtimes (server.threads, default 1)
#
# Needs a release build with line tables (same optimisations as `just perf`):
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     cargo build --release -p rateguard --target-dir target/profiling
#   cargo build -p rateguard-benches --bin rateguard-perf
# Starts a static nginx backend (and redis-server for Redis cases) on free
# loopback ports, the gateway under valgrind with the case's config
# (`rateguard-perf --print-config`), zeroes the counters after the warm-up,
# loads it with wrk (8 connections, one API key), dumps, and prints
# instructions per request (the dump's total over the requests wrk saw
# completed; the few in flight at the end are the error), allocator calls
# per request and the top functions (self and inclusive). Outside the measured window the gateway
# is idle; its idle-connection tick (every 25-50 ms per connection) is in
# the window: a few hundred instructions per request at these rates.
# Output: target/callgrind/<case>-t<threads>.out (+ .txt summaries).
# Everything it starts is stopped by pid on exit.
set -euo pipefail
case=${1:?usage: benches/callgrind.sh CASE [SECONDS] [THREADS]}
seconds=${2:-20}
threads=${3:-1}
bin=${RATEGUARD_PROFILE_BIN:-target/profiling/release/rateguard}
perf=target/debug/rateguard-perf
out=target/callgrind
mkdir -p "$out"
work=$(mktemp -d /tmp/rateguard-callgrind.XXXXXX)
# shellcheck source=benches/case-servers.sh
source "$(dirname "$0")/case-servers.sh"
dump="$out/$case-t$threads.out"
rm -f "$dump"
RATEGUARD_SERVER_THREADS=$threads RATEGUARD_SERVER_ADMIN_LISTEN="127.0.0.1:$admin" \
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$bin" serve --config "$work/gateway.toml" --listen "127.0.0.1:$port" 2>"$work/valgrind.log" &
gateway=$!
pids+=($gateway)
wait_port "$port"

load() { wrk -t1 -c8 "-d$1s" -H 'x-api-key: perf-client-1' "http://127.0.0.1:$port/api/data"; }
load 3 >/dev/null
callgrind_control -z "$gateway" >/dev/null
load "$seconds" >"$work/wrk.txt"
callgrind_control -d "$gateway" >/dev/null
sleep 1
part=$(ls -t "$work"/callgrind.out.* | head -1)
cp "$part" "$dump"
if grep -q "Non-2xx" "$work/wrk.txt"; then grep "Non-2xx" "$work/wrk.txt" >&2; fi
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
echo "$case, $threads runtime(s): $((total / requests)) instructions per request ($total over $requests requests)"
# Allocator calls per request, from the dump's call counts (exact where
# the instruction share of malloc is not: a count of allocations).
python3 - "$dump" "$requests" <<'PY'
import re, sys
names, counts, callee = {}, {}, None
for line in open(sys.argv[1], errors="replace"):
    if line.startswith(("fn=", "cfn=")):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("cfn="):
                callee = names.get(m.group(1))
    elif line.startswith("calls=") and callee:
        counts[callee] = counts.get(callee, 0) + int(line.split()[0][6:])
requests = int(sys.argv[2])
print(", ".join(f"{counts.get(f, 0) / requests:.1f} {f}" for f in ("malloc", "realloc", "free")), "calls per request")
PY
# callgrind_annotate splits a function by the source file of its inlined
# lines; sum them by function name, per request (the start-up chain that
# carries the whole total is left out of the inclusive view).
top() {
    callgrind_annotate --auto=no --threshold=100 "--inclusive=$1" "$dump" 2>/dev/null |
        python3 -c "$by_function" "$requests" "$2"
}
by_function=$(cat <<'PY'
import collections, re, sys
requests, keep = int(sys.argv[1]), int(sys.argv[2])
line_re = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[[^\]]*\])?$")
total, sums = None, collections.Counter()
for line in sys.stdin:
    m = line_re.match(line)
    if not m:
        continue
    ir, what = int(m.group(1).replace(",", "")), m.group(2)
    if what == "PROGRAM TOTALS":
        total = ir
    elif ir < 0.99 * total:
        sums[re.split(r"(?<!:):(?!:)", what, maxsplit=1)[-1]] += ir
print("instructions/request  share  function")
for fn, ir in sums.most_common(keep):
    print(f"{ir / requests:20.0f}  {100 * ir / total:5.1f}%  {fn[:160]}")
PY
)
top no 40 >"$dump.self.txt"
top yes 80 >"$dump.inclusive.txt"
echo "top self: $dump.self.txt; top inclusive: $dump.inclusive.txt"
