#!/usr/bin/env bash
# Benchmarks of the background exporter (not tests: run by hand, one at a time on a quiet machine).
#
#   scripts/bench-background.sh [rss|latency|criterion|all]   (default: rss latency)
#
# - rss:       RSS with the agent down for 60 s at 100k spans/s (benches/enqueue_rss.rs); fails if
#              the growth passes queue_max_bytes + 16 MiB.
# - latency:   p50/p90/p99/p99.9/max of single enqueue calls with the agent stalled, 1 and 8 threads,
#              fork detection by getpid and by the atfork epoch (benches/enqueue_latency.rs).
# - criterion: benches/enqueue.rs (enqueue cost, full queue, throughput into a loopback sink).
set -euo pipefail
cd "$(dirname "$0")/.."
what=("${@:-rss latency}")
# shellcheck disable=SC2206
what=(${what[*]})
[[ " ${what[*]} " == *" all "* ]] && what=(rss latency criterion)
for w in "${what[@]}"; do
    case "$w" in
        rss) cargo bench -p data-pipeline --bench enqueue_rss -- --seconds "${SECONDS_DOWN:-60}" ;;
        latency) cargo bench -p data-pipeline --bench enqueue_latency -- --samples "${SAMPLES:-200000}" ;;
        criterion) cargo bench -p data-pipeline --bench enqueue ;;
        *) echo "unknown: $w (rss|latency|criterion|all)" >&2; exit 2 ;;
    esac
done
