#!/usr/bin/env bash
# Side-by-side proxy benchmark on this machine: lanai proxy, HAProxy (Debian
# package) and nginx as a reverse proxy, each with ONE worker thread, in front
# of the same nginx backend, driven by wrk. Everything listens on 127.0.0.1.
#
#   bash bench/proxy/run.sh            # writes bench/out/proxy-<date>.md
#   DURATION=20 bash bench/proxy/run.sh
#   PARTS="http idle" bash bench/proxy/run.sh   # only some sections (http tcp tls idle)
#   ROUNDS=3 bash bench/proxy/run.sh   # repeat the HTTP runs (one row each, then medians)
#   ROUNDS=30 DURATION=2 bash bench/proxy/run.sh   # many short rounds: the
#       machine's speed swings within seconds, so short interleaved rounds
#       pair each proxy with HAProxy's run more closely
#   LANAI_B=/path/to/other/lanai bash bench/proxy/run.sh   # also run a second
#       lanai build ("lanai-b" rows), side by side with the first
#   PIN=1 bash bench/proxy/run.sh      # proxies on CPU 0, wrk and the backend on
#       CPU 1: no proxy competes with the load generator for its core
#   QUOTA=40 bash bench/proxy/run.sh   # as PIN=1, and each proxy may use only
#       40 % of its core (a CPU cgroup of its own): then the proxy, not wrk or
#       the backend, is what limits req/s, so req/s compare the proxies' capacity
#
# Measures: HTTP keep-alive req/s and p99 latency (wrk, 64 connections),
# TCP bulk throughput (mode tcp relay of a 1 GiB download), RSS with IDLE
# (default 10000) idle client connections, and TLS handshakes/s (wrk over https
# with "Connection: close", so every request is a new handshake).
#
# These machines cap open files at 20 000 (hard limit, not raisable here)
# and HAProxy and lanai size theirs at two descriptors per `maxconn`, so
# `maxconn 10500` for IDLE=10000 idle connections takes `no strict-limits`
# (both then warn and stay at 20 000, which 10 000 client sockets fit in).
# LANAI_B must therefore be a build that knows `strict-limits` (2026-12-07 or later).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. "$root/bench/proxy/common.sh"
DURATION=${DURATION:-10}
IDLE=${IDLE:-10000}
CONNS=${CONNS:-64}
PARTS=${PARTS:-http tcp tls idle}
LANAI_B=${LANAI_B:-}
# PIN=1: the proxies get core 0 to themselves; wrk and the backend share core 1.
QUOTA=${QUOTA:-}
if [ -n "$QUOTA" ]; then PIN=1; fi
if [ -n "${PIN:-}" ]; then on_proxy_core=(taskset -c 0); on_load_core=(taskset -c 1); else on_proxy_core=(); on_load_core=(); fi
part() { case " $PARTS " in *" $1 "*) return 0;; esac; return 1; }
for tool in haproxy nginx wrk curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install haproxy nginx-light wrk curl openssl" >&2; exit 1; }
done
LANAI=${LANAI:-$root/target/release/lanai}
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked >/dev/null
work=$(mktemp -d)
pids=()
cpu_cgroups=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"
  for dir in "${cpu_cgroups[@]}"; do rmdir "$dir" 2>/dev/null || true; done
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"   # 10k idle connections need ~10k descriptors

BACKEND=18080 HA=18081 LA=18082 NG=18083 LB=18084 HA_TCP=18091 LA_TCP=18092 LB_TCP=18094 HA_TLS=18101 LA_TLS=18102 LB_TLS=18104
# ---- the backend: nginx, 1 worker, small response, keep-alive
write_backend_conf "$work" "$BACKEND"
if part tcp; then head -c 1073741824 /dev/zero > "$work/www/big"; fi
"${on_load_core[@]}" nginx -c "$work/backend.conf" -p "$work" & pids+=($!)

# ---- the three proxies
{
  http_proxy_cfg 127.0.0.1:PORT_HTTP "$BACKEND" "    bind 127.0.0.1:PORT_TLS ssl crt $work/cert.pem"
  cat <<CFG
listen bulk
    mode tcp
    bind 127.0.0.1:PORT_TCP
    server s1 127.0.0.1:$BACKEND
CFG
} | sed 's/^    maxconn 9000$/    maxconn 10500\n    no strict-limits/' > "$work/proxy.cfg"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
  -keyout "$work/key.pem" -out "$work/crt.pem" 2>/dev/null
cat "$work/crt.pem" "$work/key.pem" > "$work/cert.pem"
sed -e "s/PORT_HTTP/$HA/" -e "s/PORT_TCP/$HA_TCP/" -e "s/PORT_TLS/$HA_TLS/" "$work/proxy.cfg" > "$work/haproxy.cfg"
sed -e "s/PORT_HTTP/$LA/" -e "s/PORT_TCP/$LA_TCP/" -e "s/PORT_TLS/$LA_TLS/" "$work/proxy.cfg" > "$work/lanai.cfg"
"${on_proxy_core[@]}" haproxy -db -f "$work/haproxy.cfg" 2>"$work/haproxy.err" & HA_PID=$!; pids+=($HA_PID)
LANAI_LOG=warn "${on_proxy_core[@]}" "$LANAI" proxy -f "$work/lanai.cfg" 2>"$work/lanai.err" & LA_PID=$!; pids+=($LA_PID)
names_http="haproxy lanai nginx"; names_l4="haproxy lanai"
if [ -n "$LANAI_B" ]; then
  sed -e "s/PORT_HTTP/$LB/" -e "s/PORT_TCP/$LB_TCP/" -e "s/PORT_TLS/$LB_TLS/" "$work/proxy.cfg" > "$work/lanai-b.cfg"
  LANAI_LOG=warn "${on_proxy_core[@]}" "$LANAI_B" proxy -f "$work/lanai-b.cfg" 2>"$work/lanai-b.err" & LB_PID=$!; pids+=($LB_PID)
  names_http="haproxy lanai lanai-b nginx"; names_l4="haproxy lanai lanai-b"
fi
cat > "$work/ngproxy.conf" <<NGX
daemon off; master_process off; worker_processes 1; pid $work/ngproxy.pid; worker_rlimit_nofile 19000;
error_log $work/ngproxy.err; events { worker_connections 20000; }
http { access_log off; keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$BACKEND; keepalive 128; }
  server { listen 127.0.0.1:$NG; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGX
"${on_proxy_core[@]}" nginx -c "$work/ngproxy.conf" -p "$work" & NG_PID=$!; pids+=($NG_PID)
sleep 1
# QUOTA: every proxy process in a CPU cgroup of its own, QUOTA % of a core
# (period 10 ms, so that throttling delays a request by milliseconds at most).
limit_cpu() { # NAME PID
  local dir
  if [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then # cgroup v1
    dir=/sys/fs/cgroup/cpu/lanai-bench-$$-$1; mkdir "$dir"; cpu_cgroups+=("$dir")
    echo 10000 > "$dir/cpu.cfs_period_us"; echo $((QUOTA * 100)) > "$dir/cpu.cfs_quota_us"
  else # cgroup v2
    echo +cpu > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    dir=/sys/fs/cgroup/lanai-bench-$$-$1; mkdir "$dir"; cpu_cgroups+=("$dir")
    echo "$((QUOTA * 100)) 10000" > "$dir/cpu.max"
  fi
  echo "$2" > "$dir/cgroup.procs"
}
if [ -n "$QUOTA" ]; then
  limit_cpu haproxy "$HA_PID"; limit_cpu lanai "$LA_PID"; limit_cpu nginx "$NG_PID"
  if [ -n "$LANAI_B" ]; then limit_cpu lanai-b "$LB_PID"; fi
fi

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time (user+system, clock ticks) a process has used: CPU per request is
# far less sensitive to other load on the machine than requests per second.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
wrk_run() { # url extra-args...
  local url=$1; shift
  "${on_load_core[@]}" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" > "$work/wrk.out" 2>&1 || true
  local rps p99 total
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  total=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {print $2}' "$work/wrk.out")
  local errs; errs=$(awk '/Non-2xx|Socket errors/ {print}' "$work/wrk.out" | tr '\n' ' ')
  echo "$rps|$p99|${errs:-none}|${total:-0}"
}

out=$root/bench/out; mkdir -p "$out"
report=$out/proxy-$(date -u +%Y%m%dT%H%M%SZ).md
{
echo "# Proxy benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo). $(haproxy -v | head -1 | cut -d' ' -f1-3), nginx $(nginx -v 2>&1 | cut -d/ -f2), lanai $(git -C "$root" rev-parse --short HEAD)${LANAI_B:+, lanai-b = $LANAI_B}."
echo "Command: \`bash bench/proxy/run.sh\` (DURATION=$DURATION s per run, wrk -t2 -c$CONNS${PIN:+, PIN=1: proxies on CPU 0, wrk and backend on CPU 1}${QUOTA:+, QUOTA=$QUOTA: each proxy limited to $QUOTA % of its core})."
echo
if part http; then
echo "## HTTP keep-alive, small response"
echo
echo "| proxy | req/s | p99 | CPU per request (µs) | errors |"
echo "|---|---|---|---|---|"
for round in $(seq "${ROUNDS:-1}"); do
for name in $names_http; do
  case $name in haproxy) port=$HA; pid=$HA_PID;; lanai) port=$LA; pid=$LA_PID;; lanai-b) port=$LB; pid=$LB_PID;; nginx) port=$NG; pid=$NG_PID;; esac
  wrk -t1 -c8 -d2s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true   # warm-up
  t0=$(cpu_ticks "$pid")
  IFS='|' read -r rps p99 errs total < <(wrk_run "http://127.0.0.1:$port/")
  t1=$(cpu_ticks "$pid")
  cpu=$(( total > 0 ? (t1 - t0) * 1000000 / HZ / total : 0 ))
  echo "| $name | $rps | $p99 | $cpu | $errs |"
  echo "$round $name $rps $p99 $cpu" >> "$work/http-rounds"
done
done
echo
if [ "${ROUNDS:-1}" -gt 1 ]; then
  # The proxies share two cores with wrk and the backend, so single runs swing
  # by 10-20 %: the medians of interleaved rounds are what to compare.
  echo "Medians of the ${ROUNDS} rounds above (p99 in ms). The machine's speed drifts"
  echo "between rounds, so the last column compares each proxy with HAProxy's run"
  echo "of the same round (median, and the range over the rounds), with a 95 %"
  echo "bootstrap interval for that median (so many short rounds, e.g."
  echo "ROUNDS=30 DURATION=2, give a tighter one than a few long ones), and the"
  echo "rounds in which the proxy's p99 was at or below HAProxy's:"
  echo
  echo "| proxy | req/s | p99 | CPU per request (µs) | req/s ÷ HAProxy's, same round | 95 % interval | p99 ≤ HAProxy's |"
  echo "|---|---|---|---|---|---|---|"
  python3 - "$work/http-rounds" $names_http <<'PY'
import random, statistics, sys
def ms(s):  # wrk prints 850.00us, 3.28ms or 1.02s
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * scale
    return float(s)
rows = [f for f in (l.split() for l in open(sys.argv[1])) if len(f) == 5]
by = {}  # name -> round -> (req/s, p99 ms, cpu)
for rnd, name, rps, p99, cpu in rows:
    by.setdefault(name, {})[rnd] = (float(rps), ms(p99), float(cpu))
base = by.get("haproxy", {})
for name in sys.argv[2:]:
    runs = by.get(name, {})
    med = lambda i: statistics.median(v[i] for v in runs.values())
    ratios = sorted(v[0] / base[r][0] for r, v in runs.items() if r in base and base[r][0] > 0)
    spread = f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})" if ratios else "-"
    # Medians of 2000 resamples of the rounds (seeded: the same rounds give
    # the same interval), their 2.5th and 97.5th percentiles.
    rng = random.Random(1)
    boots = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000)) if ratios else []
    interval = f"{boots[50]:.2f}-{boots[1949]:.2f}" if boots else "-"
    p99_ok = sum(1 for r, v in runs.items() if r in base and v[1] <= base[r][1])
    print(f"| {name} | {med(0):.0f} | {med(1):.2f} | {med(2):.0f} | {spread} | {interval} | {p99_ok}/{len(runs)} |")
PY
  echo
fi
fi
if part tcp; then
echo "## TCP bulk throughput (mode tcp, 1 GiB download through the relay)"
echo
echo "| proxy | MB/s |"
echo "|---|---|"
for name in $names_l4; do
  case $name in haproxy) port=$HA_TCP;; lanai) port=$LA_TCP;; lanai-b) port=$LB_TCP;; esac
  best=0
  for _ in 1 2 3; do
    speed=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/big")
    best=$(python3 -c "print(max($best, $speed))")
  done
  echo "| $name | $(python3 -c "print(round($best/1e6))") |"
done
echo
fi
if part tls; then
echo "## TLS handshakes (https, Connection: close: one full handshake per request)"
echo
echo "| proxy | handshakes/s | p99 |"
echo "|---|---|---|"
for name in $names_l4; do
  case $name in haproxy) port=$HA_TLS;; lanai) port=$LA_TLS;; lanai-b) port=$LB_TLS;; esac
  IFS='|' read -r rps p99 errs _ < <(wrk_run "https://127.0.0.1:$port/" -H "Connection: close")
  echo "| $name | $rps | $p99 |"
done
echo
fi
if part idle; then
echo "## Memory with $IDLE idle client connections"
echo
# Descriptors open with the idle connections: that they were accepted, not
# left in the listen queue (where they would cost the proxy nothing).
echo "| proxy | RSS before (MiB) | RSS with $IDLE idle (MiB) | per connection (KiB) | descriptors open |"
echo "|---|---|---|---|---|"
for name in $names_l4; do
  case $name in haproxy) port=$HA; pid=$HA_PID;; lanai) port=$LA; pid=$LA_PID;; lanai-b) port=$LB; pid=$LB_PID;; esac
  before=$(rss_kb "$pid")
  coproc IDLE_CLIENT { python3 "$root/bench/proxy/idle_conns.py" "$port" "$IDLE"; }
  read -r _ <&"${IDLE_CLIENT[0]}"
  sleep 2
  after=$(rss_kb "$pid")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  eval "exec ${IDLE_CLIENT[1]}>&-"
  wait "$IDLE_CLIENT_PID" 2>/dev/null || true
  echo "| $name | $((before/1024)) | $((after/1024)) | $(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { printf "%.2f", (a-b)/n }') | $fds |"
  sleep 1
done
fi
} | tee "$report"
echo "report: $report" >&2
