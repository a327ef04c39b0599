#!/usr/bin/env bash
# Memory per idle MQTT connection: broker VmRSS with N idle connections (raw TCP, MQTT 3.1.1 CONNECT, keep-alive 0,
# CONNACK checked) minus VmRSS with none (after a warm-up connection and a settle pause), for Fieldline (as $admin)
# and for Debian's mosquitto.
#
#   bench/idle-connections.sh            # CONNECTIONS=5000 SETTLE=3
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CONNECTIONS=${CONNECTIONS:-5000}
SETTLE=${SETTLE:-3}
WORK=$(mktemp -d /tmp/fl-idle-bench.XXXXXX)
FIELDLINE_PUB=${FIELDLINE_PUB:-/tmp/fieldline-bench-publish}
LOAD_PUB=${LOAD_PUB:-$WORK/load}
ulimit -n $((CONNECTIONS * 2 + 1024)) || die "cannot raise ulimit -n"

FL_PID="" MQ_PID=""
cleanup() { stop_pid "$FL_PID"; stop_pid "$MQ_PID"; rm -rf "$WORK"; }
trap cleanup EXIT

publish_fieldline
dotnet publish "$BENCH_ROOT/bench/Fieldline.Load" -c Release -o "$LOAD_PUB" >"$WORK/load-publish.log" 2>&1 ||
    { cat "$WORK/load-publish.log" >&2; die "building Fieldline.Load failed"; }
MOSQUITTO_EXTRA="max_connections -1"
# All connections come from 127.0.0.1 as fast as they can be opened: lift the per-address and rate limits.
FIELDLINE_EXTRA="--max-connections-per-address 0 --max-connect-rate 0"
start_fieldline
start_mosquitto

"$LOAD_PUB/fieldline-load" idle --name fieldline --mqtt-port "$FL_MQTT" --pid "$FL_PID" --connections "$CONNECTIONS" \
    --user '$admin' --password "$FL_KEY" --settle "$SETTLE"
"$LOAD_PUB/fieldline-load" idle --name mosquitto --mqtt-port "$MQ_PORT" --pid "$MQ_PID" --connections "$CONNECTIONS" \
    --settle "$SETTLE"
