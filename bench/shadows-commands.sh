#!/usr/bin/env bash
# Device shadows and commands with 1,000 devices connected: publishes Fieldline, starts it on free ports with a fresh
# data dir, and runs `fieldline-load`:
#   shadow   every device publishes reported state on device/{id}/shadow/update and waits for update/accepted
#            (closed loop per device, all devices at once): updates/s, p50/p99 of publish -> accepted;
#   commands API callers POST a command to the next device and long-poll GET ?wait=true until succeeded, while every
#            device answers its commands at once: round trips/s, p50/p99 of POST -> succeeded;
#   echo     the reference in the same run: the same 1,000 clients bounce QoS 1 messages off mosquitto
#            (publish to bench/{id}/echo, which the client subscribes to), the cheapest round trip a broker does.
#
#   bench/shadows-commands.sh
#   DEVICES=1000 UPDATES=20 COMMANDS=5000 CONCURRENCY=100 ROUNDS=3 bench/shadows-commands.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DEVICES=${DEVICES:-1000}
UPDATES=${UPDATES:-20}
COMMANDS=${COMMANDS:-5000}
CONCURRENCY=${CONCURRENCY:-100}
ROUNDS=${ROUNDS:-1}
WORK=$(mktemp -d /tmp/fl-shadow-bench.XXXXXX)
FIELDLINE_PUB=${FIELDLINE_PUB:-/tmp/fieldline-bench-publish}
LOAD_PUB=${LOAD_PUB:-$WORK/load}
CLK_TCK=$(getconf CLK_TCK)

FL_PID="" MQ_PID=""
cleanup() { stop_pid "$FL_PID"; stop_pid "$MQ_PID"; rm -rf "$WORK"; }
trap cleanup EXIT

publish_fieldline
log "building the load program ..."
dotnet publish "$BENCH_ROOT/bench/Fieldline.Load" -c Release -o "$LOAD_PUB" >"$WORK/load-publish.log" 2>&1 ||
    { cat "$WORK/load-publish.log" >&2; die "building Fieldline.Load failed"; }

# Each round registers its own DEVICES devices from 127.0.0.1.
FIELDLINE_EXTRA="--max-connections-per-address 0 --max-connect-rate 0 ${FIELDLINE_EXTRA:-}"
start_fieldline
# Round trips of one message each: without TCP_NODELAY mosquitto's answers wait on Nagle and delayed ACKs (40 ms).
MOSQUITTO_EXTRA="set_tcp_nodelay true${MOSQUITTO_EXTRA:+\n$MOSQUITTO_EXTRA}"
start_mosquitto mosquitto
ulimit -n 65536 2>/dev/null || true

RESULTS="$WORK/results"
: >"$RESULTS"
load() {
    local round=$1
    shift
    "$LOAD_PUB/fieldline-load" "$@" --devices "$DEVICES" --clk-tck "$CLK_TCK" --timeout 600 | tee -a /dev/stderr |
        grep '^result ' | sed "s/^result /result round=$round /" >>"$RESULTS"
}

for round in $(seq "$ROUNDS"); do
    log "== round $round of $ROUNDS"
    load "$round" shadow --url "http://127.0.0.1:$FL_HTTP" --admin-key "$FL_KEY" --mqtt-port "$FL_MQTT" \
        --broker-pid "$FL_PID" --name fieldline --updates "$UPDATES"
    load "$round" shadow --echo 1 --mqtt-port "$MQ_PORT" --broker-pid "$MQ_PID" --name mosquitto --updates "$UPDATES"
    load "$round" commands --url "http://127.0.0.1:$FL_HTTP" --admin-key "$FL_KEY" --mqtt-port "$FL_MQTT" \
        --broker-pid "$FL_PID" --name fieldline --commands "$COMMANDS" --concurrency "$CONCURRENCY"
done

# med WORKLOAD BROKER KEY: the median of KEY over the rounds.
med() {
    grep " broker=$2 " "$RESULTS" | grep " workload=$1 " | tr ' ' '\n' | grep "^$3=" | cut -d= -f2 | median
}

echo
echo "== summary: $DEVICES devices connected, median of $ROUNDS round(s); $(nproc) cores, $(/usr/sbin/mosquitto -h 2>&1 | head -1)"
printf '  %-58s %10s %9s %9s %12s   %s\n' "" "per s" "p50 ms" "p99 ms" "broker us/op" "per s, rounds"
# spread WORKLOAD BROKER KEY: "min-max" over the rounds.
spread() {
    grep " broker=$2 " "$RESULTS" | grep " workload=$1 " | tr ' ' '\n' | grep "^$3=" | cut -d= -f2 | sort -g |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf "%.0f-%.0f", lo, hi }'
}
row() {
    printf '  %-58s %10.0f %9.2f %9.2f %12.1f   %s\n' "$1" "$(med "$2" "$3" per_s)" "$(med "$2" "$3" p50_ms)" "$(med "$2" "$3" p99_ms)" \
        "$(med "$2" "$3" broker_us_per_op)" "$(spread "$2" "$3" per_s)"
}
row "Fieldline shadow update (reported -> update/accepted)" shadow fieldline
row "mosquitto QoS 1 echo (publish -> own message back)" echo mosquitto
row "Fieldline command round trip (POST -> GET wait succeeded)" commands fieldline
awk -v f="$(med shadow fieldline per_s)" -v m="$(med echo mosquitto per_s)" \
    'BEGIN { printf "  shadow updates / mosquitto echo round trips: %.2fx\n", f / m }'
echo "Fieldline RSS after the run: $(rss_kb "$FL_PID") KB; data dir: $(du -sh "$WORK/fl-data" | cut -f1)"
grep -E 'fail|error|crit' -i "$WORK/fieldline.log" | head -5 || true
