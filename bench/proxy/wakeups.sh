#!/usr/bin/env bash
# Wake-ups a proxy causes on the other CPU, per proxied HTTP request, lanai
# against HAProxy, counted by the kernel (perf's ipi:ipi_send_cpu
# tracepoint, which fires in the sender's context).
#
#   bash bench/proxy/wakeups.sh
#   ROUNDS=5 DURATION=5 bash bench/proxy/wakeups.sh
#   LANAI_B=/path/to/other/lanai bash bench/proxy/wakeups.sh   # a second build too
#
# Layout as `PIN=1 bash bench/proxy/run.sh`: the proxy alone on CPU 0, wrk
# (-t2 -c64) and the nginx backend on CPU 1. Every send to a peer that sleeps
# in epoll_wait on CPU 1 makes the kernel wake it with an inter-processor
# interrupt, and the peer then pays a context switch; sends that follow
# while it is awake cost neither. So IPIs per request show how well a proxy
# groups its sends, and CPU 1 time per request what that costs wrk and the
# backend (both CPUs are saturated in this layout, so both limit req/s).
# CPU 1's system calls and epoll_waits per request count the same cost in
# work done rather than time, which this VM's speed swings do not move:
# a peer woken for each send returns to epoll_wait for each.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. "$root/bench/proxy/common.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
LANAI=${LANAI:-$root/target/release/lanai}
LANAI_B=${LANAI_B:-}
for tool in haproxy nginx wrk perf curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install haproxy nginx-light wrk linux-perf curl" >&2; exit 1; }
done
grep -q "ipi:ipi_send_cpu" <(perf list 2>/dev/null) || { echo "this kernel has no ipi:ipi_send_cpu tracepoint" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked >/dev/null
start_workdir

BACKEND=18280 PORT=18281
write_backend_conf "$work" "$BACKEND"
taskset -c 1 nginx -c "$work/backend.conf" -p "$work" & pids+=($!)
http_proxy_cfg "127.0.0.1:$PORT" "$BACKEND" > "$work/proxy.cfg"

busy_cpu1() { awk '$1=="cpu1" {print $2+$3+$4+$7+$8}' /proc/stat; }

# measure NAME COMMAND... -> one table row
measure() {
  local name=$1; shift
  taskset -c 0 "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  wait_for_http "http://127.0.0.1:$PORT/"
  local c1; c1=$(busy_cpu1)
  perf stat -x, -e ipi:ipi_send_cpu,sched:sched_switch -p "$pid" -o "$work/perf.$name" -- sleep $((DURATION + 1)) &
  local perf_pid=$!
  perf stat -x, -a -C 1 -e raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait -o "$work/perf1.$name" -- sleep $((DURATION + 1)) &
  local perf1_pid=$!
  sleep 0.3
  taskset -c 1 wrk -t2 -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/" > "$work/wrk.$name"
  wait "$perf_pid" "$perf1_pid"
  local c1b; c1b=$(busy_cpu1)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local n rps p99 ipi sw
  n=$(awk '/requests in/ {print $1}' "$work/wrk.$name")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.$name")
  p99=$(awk '$1=="99%" {print $2}' "$work/wrk.$name")
  ipi=$(awk -F, '$3=="ipi:ipi_send_cpu" {print $1}' "$work/perf.$name")
  sw=$(awk -F, '$3=="sched:sched_switch" {print $1}' "$work/perf.$name")
  local calls1 epolls1
  calls1=$(awk -F, '$3=="raw_syscalls:sys_enter" {print $1}' "$work/perf1.$name")
  epolls1=$(awk -F, '$3=="syscalls:sys_enter_epoll_wait" {print $1}' "$work/perf1.$name")
  local hz; hz=$(getconf CLK_TCK)
  python3 -c "print(f'| $name | {$rps:,.0f} | $p99 | {$ipi / $n:.3f} | {$sw / $n:.3f} | {($c1b - $c1) * 1e6 / $hz / $n:.1f} | {$calls1 / $n:.2f} | {$epolls1 / $n:.2f} |')"
}

echo "# Wake-ups per request ($(date -u +%Y-%m-%dT%H:%MZ), lanai $(git -C "$root" rev-parse --short HEAD), ${DURATION} s runs)"
echo
echo "| proxy | req/s | p99 | IPIs sent per request | proxy context switches per request | CPU 1 (wrk + backend) µs per request | CPU 1 system calls per request | of which epoll_wait |"
echo "|---|---|---|---|---|---|---|---|"
measure_rounds "$ROUNDS" "$work/proxy.cfg"
