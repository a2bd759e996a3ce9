# Shared by bench/proxy/run.sh and bench/proxy/instructions.sh, so that both
# measure the proxies in front of the same backend with the same configuration.

# write_backend_conf DIR PORT: nginx, one worker, a 22-byte answer on / and
# the files of DIR/www (the 1 GiB download of the TCP test) under /big.
write_backend_conf() {
  local dir=$1 port=$2
  mkdir -p "$dir/www"
  cat > "$dir/backend.conf" <<NGX
daemon off; master_process off; worker_processes 1; pid $dir/backend.pid;
error_log $dir/backend.err; events { worker_connections 16384; }
http { access_log off; keepalive_requests 1000000; sendfile on;
  server { listen 127.0.0.1:$port; root $dir/www;
    location = / { return 200 'hello from the backend\n'; }
    location /big { } } }
NGX
}

# http_proxy_cfg BIND BACKEND_PORT [FRONTEND_LINES]: the haproxy.cfg every
# proxy runs (one thread, keep-alive to the server), HTTP frontend on BIND.
http_proxy_cfg() {
  local bind=$1 backend=$2 extra=${3:-}
  cat <<CFG
global
    maxconn 9000
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend web
    bind $bind
${extra:+$extra
}    default_backend app
backend app
    server s1 127.0.0.1:$backend
CFG
}

# measure_rounds ROUNDS CFG: runs the calling script's `measure NAME COMMAND...`
# for HAProxy, lanai ($LANAI) and, when LANAI_B is set, a second lanai build,
# ROUNDS times in turn, so that the machine's drifts hit all of them alike.
measure_rounds() {
  local rounds=$1 cfg=$2
  for _ in $(seq "$rounds"); do
    measure haproxy haproxy -db -f "$cfg"
    LANAI_LOG=warn measure lanai "$LANAI" proxy -f "$cfg"
    if [ -n "${LANAI_B:-}" ]; then
      LANAI_LOG=warn measure lanai-b "$LANAI_B" proxy -f "$cfg"
    fi
  done
}

# start_workdir: a temporary directory in $work; on exit every process whose
# pid the script adds to $pids is killed and the directory removed.
start_workdir() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# wait_for_http URL: until URL answers, 10 s at most (the run that follows
# shows the errors if it never does).
wait_for_http() {
  for _ in $(seq 50); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done
  return 0
}
