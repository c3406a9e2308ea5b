# Shared by benches/callgrind.sh and benches/switches.sh (sourced, after
# `work` is set): stops what it starts by pid on exit, starts a static
# nginx backend (and redis-server for redis-* cases) on free loopback
# ports, and writes the case's gateway config to $work/gateway.toml.
# Expects: work, case, perf. Sets: pids, backend, port, admin (free ports
# for the gateway) and the helpers free_port, wait_port.
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
