#!/usr/bin/env bash
# User-space instructions per proxied HTTP request, lanai against HAProxy,
# counted by valgrind's callgrind: unlike req/s on this shared 2-core machine
# (which swings by 10-20 % from run to run), the count repeats to within a
# fraction of a percent, so small changes to the request path show.
#
#   bash bench/proxy/instructions.sh
#   LANAI_B=/path/to/other/lanai bash bench/proxy/instructions.sh   # a second build too
#   CACHE=1 CONNS=64 bash bench/proxy/instructions.sh   # also the simulated L1
#       cache misses per request (instruction, data read, data write)
#
# Each proxy (one thread, the same configuration as bench/proxy/run.sh, an
# nginx backend) runs under callgrind twice: SHORT and LONG seconds of
# `wrk -t1 -c16` keep-alive load. Instructions per request = (instructions
# of the long run - the short run) / (requests of the long run - the short
# run), which cancels start-up and shutdown. Kernel work (syscalls, TCP) is
# not counted: the syscalls per request are the same for both (2 recv + 2
# send, checked with `perf stat -e 'syscalls:sys_enter_*'`).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. "$root/bench/proxy/common.sh"
SHORT=${SHORT:-5}
LONG=${LONG:-15}
LANAI=${LANAI:-$root/target/release/lanai}
LANAI_B=${LANAI_B:-}
CONNS=${CONNS:-16}
# Callgrind's cache simulation (32 KiB L1s): with the kernel's code run
# between every two system calls, the instruction-cache misses of the code a
# request walks through cost more than its instruction count says.
if [ -n "${CACHE:-}" ]; then cache_sim=(--cache-sim=yes); else cache_sim=(); fi
for tool in haproxy nginx wrk curl valgrind callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install haproxy nginx-light wrk curl valgrind" >&2; exit 1; }
done
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked >/dev/null
work=$(mktemp -d)
pids=()
cleanup() { [ "$BASHPID" = "$main_pid" ] || return 0; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
main_pid=$BASHPID

BACKEND=18180 PORT=18181
write_backend_conf "$work" "$BACKEND"
nginx -c "$work/backend.conf" -p "$work" & pids+=($!)
http_proxy_cfg "127.0.0.1:$PORT" "$BACKEND" > "$work/proxy.cfg"

# run NAME SECONDS COMMAND... -> "instructions requests"
run() {
  local name=$1 secs=$2; shift 2
  local out="$work/cg.$name.$secs"
  valgrind --tool=callgrind "${cache_sim[@]}" --callgrind-out-file="$out" "$@" >"$work/$name.log" 2>&1 &
  local vp=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.3; done
  wrk -t1 -c"$CONNS" -d"${secs}s" "http://127.0.0.1:$PORT/" > "$work/wrk.out" 2>&1
  local requests; requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  kill -TERM "$vp"; wait "$vp" 2>/dev/null || true
  # Events in callgrind's order: Ir [Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw].
  local events; events=$(awk '/^(summary|totals):/ && !n {print $2, $5, $6, $7; n=1}' "$out"*)
  echo "$requests $events"
}

per_request() { # NAME COMMAND...
  local name=$1; shift
  local short long
  short=$(run "$name" "$SHORT" "$@")
  long=$(run "$name" "$LONG" "$@")
  python3 - "$name" "$short" "$long" "${CACHE:-}" <<'PY'
import sys
name, short, long, cache = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
n = int(long[0]) - int(short[0])
per = [(int(b) - int(a)) / n for a, b in zip(short[1:], long[1:])]
cells = [f"{per[0]:,.0f}"] + ([f"{v:,.0f}" for v in per[1:4]] if cache else [])
print(f"| {name} | {' | '.join(cells)} | {n} |")
PY
}

echo "# User-space instructions per request ($(date -u +%Y-%m-%dT%H:%MZ), lanai $(git -C "$root" rev-parse --short HEAD))"
echo
if [ -n "${CACHE:-}" ]; then
  echo "| proxy | instructions per request | L1 i-cache misses | L1 d-cache read misses | write misses | requests counted |"
  echo "|---|---|---|---|---|---|"
else
  echo "| proxy | instructions per request | requests counted |"
  echo "|---|---|---|"
fi
per_request haproxy haproxy -db -f "$work/proxy.cfg"
LANAI_LOG=warn per_request lanai "$LANAI" proxy -f "$work/proxy.cfg"
if [ -n "$LANAI_B" ]; then
  LANAI_LOG=warn per_request lanai-b "$LANAI_B" proxy -f "$work/proxy.cfg"
fi
