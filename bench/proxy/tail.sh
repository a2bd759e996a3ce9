#!/usr/bin/env bash
# The latency tail of HTTP keep-alive through lanai and HAProxy, percentile by
# percentile (µs), in the layout of `bash bench/proxy/run.sh` (unpinned) or,
# with PIN=1, of `PIN=1 bash bench/proxy/run.sh`.
#
#   bash bench/proxy/tail.sh
#   PIN=1 ROUNDS=3 bash bench/proxy/tail.sh
#   LANAI_B=/path/to/other/lanai bash bench/proxy/tail.sh   # a second build too
#
# run.sh reports p99 only; this shows where between p90 and p99.9 two
# proxies part, which tells a few slow requests from a shifted distribution.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. "$root/bench/proxy/common.sh"
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}
LANAI=${LANAI:-$root/target/release/lanai}
LANAI_B=${LANAI_B:-}
for tool in haproxy nginx wrk curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install haproxy nginx-light wrk curl" >&2; exit 1; }
done
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked >/dev/null
if [ -n "${PIN:-}" ]; then on_proxy_core=(taskset -c 0); on_load_core=(taskset -c 1); else on_proxy_core=(); on_load_core=(); fi
start_workdir

BACKEND=18280 PORT=18281
write_backend_conf "$work" "$BACKEND"
"${on_load_core[@]}" nginx -c "$work/backend.conf" -p "$work" & pids+=($!)
http_proxy_cfg "127.0.0.1:$PORT" "$BACKEND" > "$work/proxy.cfg"

# measure NAME COMMAND... -> one table row
measure() {
  local name=$1; shift
  "${on_proxy_core[@]}" "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  wait_for_http "http://127.0.0.1:$PORT/"
  "${on_load_core[@]}" wrk -t2 -c64 -d"${DURATION}s" -s "$root/bench/proxy/percentiles.lua" \
    "http://127.0.0.1:$PORT/" > "$work/wrk.$name"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local rps cells
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk.$name")
  cells=$(awk '$1=="PERCENTILES" {for (i = 2; i <= NF; i++) {split($i, kv, "="); printf " %s |", kv[2]}}' "$work/wrk.$name")
  echo "| $name | $rps |$cells"
}

echo "# Latency tail ($(date -u +%Y-%m-%dT%H:%MZ), lanai $(git -C "$root" rev-parse --short HEAD), ${DURATION} s runs${PIN:+, PIN=1})"
echo
echo "| proxy | req/s | p50 | p90 | p95 | p97 | p98 | p99 | p99.5 | p99.9 |"
echo "|---|---|---|---|---|---|---|---|---|---|"
measure_rounds "$ROUNDS" "$work/proxy.cfg"
