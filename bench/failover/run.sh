#!/usr/bin/env bash
# Failover gap benchmark: keepalived<->keepalived, lanai<->lanai and mixed pairs,
# v2 advert_int 1 and v3 advert_int 0.1, hard kill and graceful stop.
# Needs root, iproute2 and keepalived. Prints a markdown table (see
# bench/RESULTS.md). Method: tests/vrrp_bench.rs. Pass --release to measure an
# optimised lanai (the state machine is not CPU bound; debug is the default).
# Env: BENCH_RUNS, BENCH_CASES (see tests/vrrp_bench.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo test "$@" --test vrrp_bench -- --ignored --nocapture --test-threads 1
