#!/usr/bin/env bash
# Durable ingest end to end: publishes Fieldline, starts it on free ports with a fresh data dir, runs
# `fieldline-load ingest` (QoS 1 telemetry, pipelined, PUBACK = durable), which polls the REST API until the last
# point of every device is queryable and prints msg/s, points/s, p50/p99 publish->PUBACK latency.
#
#   bench/ingest.sh                                  # 20 devices x 5,000 messages x 10 values = 1,000,000 points
#   DEVICES=20 MESSAGES=1000 VALUES=10 INFLIGHT=100 bench/ingest.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DEVICES=${DEVICES:-20}
MESSAGES=${MESSAGES:-5000}
VALUES=${VALUES:-10}
INFLIGHT=${INFLIGHT:-100}
WORK=$(mktemp -d /tmp/fl-ingest-bench.XXXXXX)
FIELDLINE_PUB=${FIELDLINE_PUB:-/tmp/fieldline-bench-publish}
LOAD_PUB=${LOAD_PUB:-$WORK/load}

FL_PID=""
cleanup() { stop_pid "$FL_PID"; rm -rf "$WORK"; }
trap cleanup EXIT

publish_fieldline
log "building the load program ..."
dotnet publish "$BENCH_ROOT/bench/Fieldline.Load" -c Release -o "$LOAD_PUB" >"$WORK/load-publish.log" 2>&1 ||
    { cat "$WORK/load-publish.log" >&2; die "building Fieldline.Load failed"; }
start_fieldline
c0=$(cpu_ticks "$FL_PID")
rc=0
"$LOAD_PUB/fieldline-load" ingest --url "http://127.0.0.1:$FL_HTTP" --admin-key "$FL_KEY" --mqtt-port "$FL_MQTT" \
    --devices "$DEVICES" --messages "$MESSAGES" --values-per-message "$VALUES" --inflight "$INFLIGHT" || rc=$?
c1=$(cpu_ticks "$FL_PID")
awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v p=$((DEVICES * MESSAGES * VALUES)) \
    'BEGIN { printf "Fieldline CPU during the run (incl. registration and queries): %.1f s = %.2f us per point\n", d / hz, d / hz * 1e6 / p }'
echo "Fieldline RSS after the run: $(rss_kb "$FL_PID") KB; data dir: $(du -sh "$WORK/fl-data" | cut -f1)"
grep -E 'fail|error|crit' -i "$WORK/fieldline.log" | head -5 || true
exit "$rc"
