#!/usr/bin/env bash
# Broker load benchmark: Fieldline's broker against Debian's mosquitto in the same run, driven by the same load
# generator (bench/Fieldline.Load: raw-socket MQTT clients, one process, writes batched), brokers alternated.
#
#   fanin        FANIN_PUBS publishers (one topic each) -> 1 wildcard subscriber, QoS 0, 1 and 2
#   fanout       1 publisher -> FANOUT_SUBS subscribers of its topic, QoS 0, 1 and 2 (deliveries/s in all, publisher's rate)
#   durable      a persistent subscriber (session expiry 1 h) goes offline; 1 publisher sends DURABLE_MESSAGES QoS 1
#                messages for it (rate = acknowledged/s), then it resumes its session and drains them (received/s).
#                mosquitto runs a second instance with `persistence true`; Fieldline uses its MQTT state store when
#                the host has one (the script says whether it does).
#   durable-ack  Fieldline only: QoS 1 fan-in whose PUBACK waits for a durable write, against its QoS 0 fan-in:
#                registered devices publishing telemetry (PUBACK after the telemetry store's write), and a persistent
#                subscriber (PUBACK after the state store's write, once the host uses one).
#
#   bench/broker-throughput.sh                                    # everything, 1 round (about 3 minutes)
#   WORKLOADS="fanout" QOS_LEVELS="1" ROUNDS=3 bench/broker-throughput.sh
#
# Environment (defaults in brackets):
#   WORKLOADS ["fanin fanout durable durable-ack"], QOS_LEVELS ["0 1 2"], BROKERS ["fieldline mosquitto"]: the first
#   broker goes first in odd rounds; ROUNDS [1]; MQTT_VERSION [5] (4 = 3.1.1); INFLIGHT [100]: QoS 1/2 messages a
#   publisher keeps unacknowledged; PAYLOAD_SIZE [100] bytes of telemetry JSON; RUN_TIMEOUT [120] s per run;
#   WARMUP [1]: first a round at 1/WARMUP_DIVISOR [4] of the counts that is not counted (0 skips it);
#   FANIN_PUBS [10]; FANIN_MESSAGES_QOS0 [1000000], FANIN_MESSAGES_QOS1 [200000], FANIN_MESSAGES_QOS2 [100000] in all;
#   FANOUT_SUBS [100]; FANOUT_MESSAGES_QOS0 [10000], FANOUT_MESSAGES_QOS1 [5000], FANOUT_MESSAGES_QOS2 [3000] published
#   (times FANOUT_SUBS deliveries); DURABLE_MESSAGES [50000]; DURABLE_ACK_MESSAGES [200000];
#   FIELDLINE_PUB (publish dir, reused if present; REPUBLISH=1 rebuilds), LOAD_PUB (load generator build dir);
#   MOSQUITTO_EXTRA [max_queued_messages 0, max_inflight_messages 256]: extra mosquitto.conf lines. mosquitto's
#   defaults would drop QoS 1/2 messages beyond 1,000 queued for a subscriber (an offline one in the durable
#   workload, a slow one in fan-in) and allow 20 unacknowledged messages each way (it tells MQTT 5 publishers
#   Receive Maximum 20); 256 is Fieldline's outbound window (Mqtt:MaximumInflightPerClient), and its inbound one is
#   1,024, so both brokers run with the same INFLIGHT-message publisher window.
# Fieldline runs on its defaults except Mqtt:MaximumQueuedMessagesPerSession, raised to DURABLE_MESSAGES when that is
# above its 10,000, so that the offline session can hold the durable workload's messages (mosquitto: the unlimited
# max_queued_messages above).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

WORKLOADS=${WORKLOADS:-"fanin fanout durable durable-ack"}
QOS_LEVELS=${QOS_LEVELS:-"0 1 2"}
BROKERS=${BROKERS:-"fieldline mosquitto"}
ROUNDS=${ROUNDS:-1}
MQTT_VERSION=${MQTT_VERSION:-5}
INFLIGHT=${INFLIGHT:-100}
PAYLOAD_SIZE=${PAYLOAD_SIZE:-100}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
WARMUP=${WARMUP:-1}
WARMUP_DIVISOR=${WARMUP_DIVISOR:-4}
FANIN_PUBS=${FANIN_PUBS:-10}
FANIN_MESSAGES_QOS0=${FANIN_MESSAGES_QOS0:-1000000}
FANIN_MESSAGES_QOS1=${FANIN_MESSAGES_QOS1:-200000}
FANIN_MESSAGES_QOS2=${FANIN_MESSAGES_QOS2:-100000}
FANOUT_SUBS=${FANOUT_SUBS:-100}
FANOUT_MESSAGES_QOS0=${FANOUT_MESSAGES_QOS0:-10000}
FANOUT_MESSAGES_QOS1=${FANOUT_MESSAGES_QOS1:-5000}
FANOUT_MESSAGES_QOS2=${FANOUT_MESSAGES_QOS2:-3000}
DURABLE_MESSAGES=${DURABLE_MESSAGES:-50000}
DURABLE_ACK_MESSAGES=${DURABLE_ACK_MESSAGES:-200000}
MOSQUITTO_EXTRA=${MOSQUITTO_EXTRA-"max_queued_messages 0\nmax_inflight_messages 256"}
WORK=$(mktemp -d /tmp/fl-broker-bench.XXXXXX)
FIELDLINE_PUB=${FIELDLINE_PUB:-/tmp/fieldline-bench-publish}
LOAD_PUB=${LOAD_PUB:-$WORK/load}
CLK_TCK=$(getconf CLK_TCK)
ulimit -n 65536 2>/dev/null || true

FL_PID="" MQ_PID="" MQD_PID=""
cleanup() {
    stop_pid "$FL_PID"
    stop_pid "$MQ_PID"
    stop_pid "$MQD_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

RESULTS="$WORK/results.txt"
: >"$RESULTS"
FAILED=()

# load BROKER ROUND COMMAND ARGS...: runs the load generator against BROKER, shows its report, records its result
# lines prefixed with the round. A failed run is reported and recorded as incomplete; the benchmark goes on.
load() {
    local broker=$1 round=$2 command=$3
    shift 3
    local -a target
    case $broker in
        fieldline) target=(--mqtt-port "$FL_MQTT" --broker-pid "$FL_PID" --user '$admin' --password "$FL_KEY") ;;
        mosquitto) target=(--mqtt-port "$MQ_PORT" --broker-pid "$MQ_PID") ;;
        mosquitto-durable) target=(--mqtt-port "$MQD_PORT" --broker-pid "$MQD_PID") ;;
    esac
    local out="$WORK/run.out" rc=0
    "$LOAD_PUB/fieldline-load" "$command" "${target[@]}" --name "${broker%-durable}" --clk-tck "$CLK_TCK" \
        --mqtt-version "$MQTT_VERSION" --inflight "$INFLIGHT" --payload-size "$PAYLOAD_SIZE" --timeout "$RUN_TIMEOUT" \
        "$@" >"$out" 2>&1 || rc=$?
    grep -v '^result ' "$out" || true
    if ((rc != 0)) && ! grep -q '^result ' "$out"; then
        log "  run failed (exit $rc)"
        FAILED+=("round $round: $broker $command $*")
    fi
    grep '^result ' "$out" | sed "s/^result /round=$round /" >>"$RESULTS" || true
}

# value KEY FILTER...: the KEY of the result lines matching every FILTER (key=value), one per line.
value() {
    local key=$1
    shift
    awk -v key="$key" -v filters="$*" '
        BEGIN { n = split(filters, f, " ") }
        {
            delete kv
            for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
            ok = 1
            for (j = 1; j <= n; j++) { split(f[j], p, "="); if (kv[p[1]] != p[2]) ok = 0 }
            if (ok && (key in kv)) print kv[key]
        }' "$RESULTS"
}

# med KEY FILTER...: median over rounds ("-" when there is none).
med() {
    local v
    v=$(value "$@" | grep -v -i nan | median)
    [[ $v == nan ]] && v="-"
    echo "$v"
}

# spread KEY FILTER...: "min-max" over rounds, when more than one.
spread() {
    local values
    values=$(value "$@" | grep -v -i nan | sort -g)
    (($(echo "$values" | grep -c .) > 1)) || return 0
    awk "$AWK_FMT"' NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", fmt(lo), fmt(hi) }' <<<"$values"
}

# awk functions: fmt() prints a rate with thousands separators and a small figure with two decimals.
AWK_FMT='function commas(x,   s, r) { s = sprintf("%.0f", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } return s r }
function fmt(x) { return x == "-" ? "-" : x >= 100 ? commas(x) : sprintf("%.2f", x) }'

# row LABEL KEY FILTER...: Fieldline, mosquitto and Fieldline/mosquitto for one figure.
row() {
    local label=$1 key=$2
    shift 2
    local f m fs ms
    f=$(med "$key" broker=fieldline "$@")
    m=$(med "$key" broker=mosquitto "$@")
    fs=$(spread "$key" broker=fieldline "$@")
    ms=$(spread "$key" broker=mosquitto "$@")
    awk -v l="$label" -v f="$f" -v m="$m" -v fs="$fs" -v ms="$ms" "$AWK_FMT"'
        BEGIN { r = (f != "-" && m != "-" && m > 0) ? sprintf("%.2fx", f / m) : "-"
                printf "  %-44s %12s %12s %8s%s\n", l, fmt(f), fmt(m), r, (fs != "" ? "   (fieldline " fs ", mosquitto " ms ")" : "") }'
}

log "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), CLK_TCK=$CLK_TCK, load average $(cut -d' ' -f1-3 /proc/loadavg)"
publish_fieldline
log "building the load generator (Release) ..."
dotnet publish "$BENCH_ROOT/bench/Fieldline.Load" -c Release -o "$LOAD_PUB" >"$WORK/load-publish.log" 2>&1 ||
    { cat "$WORK/load-publish.log" >&2; die "building Fieldline.Load failed"; }

if ((DURABLE_MESSAGES > 10000)); then
    export FIELDLINE__Mqtt__MaximumQueuedMessagesPerSession=$DURABLE_MESSAGES
fi
FL_STORE=none
if [[ $BROKERS == *fieldline* ]]; then
    start_fieldline
    # The host opens the broker's SQLite state store as broker.db in the data directory and logs what it loaded.
    if [[ -f "$WORK/fl-data/broker.db" ]] || grep -q "MQTT state loaded" "$WORK/fieldline.log"; then
        FL_STORE=sqlite
    fi
fi
if [[ $BROKERS == *mosquitto* ]]; then
    start_mosquitto mosquitto
    if [[ " $WORKLOADS " == *" durable "* ]]; then
        mq_port=$MQ_PORT mq_pid=$MQ_PID
        start_mosquitto mosquitto-durable "$WORK/mosquitto-durable"
        MQD_PORT=$MQ_PORT MQD_PID=$MQ_PID MQ_PORT=$mq_port MQ_PID=$mq_pid
    fi
fi

if [[ $FL_STORE == sqlite ]]; then
    STORE_NOTE="Fieldline: SQLite state store in use (broker.db): a QoS 1 message queued for a persistent session is acknowledged after its write is durable"
else
    STORE_NOTE="Fieldline: NO state store in use (the host does not open one yet): persistent sessions are kept in memory only and PUBACK does not wait for a durable write"
fi
MQ_NOTE="mosquitto: persistence true is a periodic snapshot (autosave_interval, default 30 min, and at shutdown), not a write before PUBACK"
echo "workloads: $WORKLOADS; QoS $QOS_LEVELS; rounds $ROUNDS; MQTT $MQTT_VERSION; publisher window $INFLIGHT; payload $PAYLOAD_SIZE bytes"
echo "mosquitto.conf extra: $(printf '%b' "$MOSQUITTO_EXTRA" | paste -sd, -)"

# run_round ROUND DIVISOR: every workload once against each broker, with the message counts divided by DIVISOR.
run_round() {
    local round=$1 div=$2 order=$BROKERS workload qos broker n_var
    ((round % 2 == 0)) && order=$(echo "$BROKERS" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }')
    echo
    echo "== round $round (order: $order)"
    for workload in $WORKLOADS; do
        case $workload in
            fanin | fanout)
                for qos in $QOS_LEVELS; do
                    for broker in $order; do
                        if [[ $workload == fanin ]]; then
                            n_var=FANIN_MESSAGES_QOS$qos
                            load "$broker" "$round" fanin --publishers "$FANIN_PUBS" --messages $((${!n_var} / div)) --qos "$qos"
                        else
                            n_var=FANOUT_MESSAGES_QOS$qos
                            load "$broker" "$round" fanout --subscribers "$FANOUT_SUBS" --messages $((${!n_var} / div)) --qos "$qos"
                        fi
                    done
                done
                ;;
            durable)
                echo "-- $STORE_NOTE"
                echo "-- $MQ_NOTE"
                for broker in $order; do
                    if [[ $broker == fieldline ]]; then
                        load fieldline "$round" durable --messages $((DURABLE_MESSAGES / div)) --store "$FL_STORE"
                    else
                        load mosquitto-durable "$round" durable --messages $((DURABLE_MESSAGES / div)) --store snapshot
                    fi
                done
                ;;
            durable-ack)
                [[ $BROKERS == *fieldline* ]] || continue
                echo "-- $STORE_NOTE"
                # The QoS 0 and plain QoS 1 fan-in it is compared with: this round's, or one run now.
                for qos in 0 1; do
                    if [[ -z $(value delivered_per_s round="$round" workload=fanin broker=fieldline qos=$qos) ]]; then
                        n_var=FANIN_MESSAGES_QOS$qos
                        load fieldline "$round" fanin --publishers "$FANIN_PUBS" --messages $((${!n_var} / div)) --qos "$qos"
                    fi
                done
                for qos in 0 1; do
                    load fieldline "$round" fanin --publishers "$FANIN_PUBS" --messages $((DURABLE_ACK_MESSAGES / div)) --qos "$qos" \
                        --devices-url "http://127.0.0.1:$FL_HTTP" --admin-key "$FL_KEY" --label fanin-telemetry
                done
                load fieldline "$round" fanin --publishers "$FANIN_PUBS" --messages $((DURABLE_ACK_MESSAGES / div)) --qos 1 \
                    --persistent-subscriber 1 --label "fanin-persistent-$FL_STORE"
                ;;
            *) die "unknown workload '$workload'" ;;
        esac
    done
}

if ((WARMUP)); then
    # The same round at a quarter of the counts, not counted: Fieldline's JIT compiles its hot paths to their
    # optimized tier and the stores open their statements, so the first measured run is not the one that pays.
    # A twentieth was too little: profiles of the measured runs still showed a quarter of the broker's samples in
    # the tiered-compilation thread and hot methods at their instrumented tier, and the QoS 0 fan-in varied 3x.
    log "warm-up round (not counted; output in \$WORK/warmup.log) ..."
    measured=$RESULTS
    RESULTS="$WORK/warmup.txt"
    run_round 0 "$WARMUP_DIVISOR" >"$WORK/warmup.log" 2>&1
    RESULTS=$measured
fi
for ((round = 1; round <= ROUNDS; round++)); do
    run_round "$round" 1
done

echo
echo "== summary: median of $ROUNDS round(s), (min-max) when more than one; ratio = Fieldline / mosquitto"
printf '  %-44s %12s %12s %8s\n' "" fieldline mosquitto ratio
for workload in fanin fanout; do
    [[ " $WORKLOADS " == *" $workload "* ]] || continue
    for qos in $QOS_LEVELS; do
        if [[ $workload == fanin ]]; then
            title="fan-in $FANIN_PUBS->1 QoS $qos"
            row "$title: delivered msg/s" delivered_per_s workload=fanin qos="$qos"
            row "$title: publishers' msg/s" publish_per_s workload=fanin qos="$qos"
            row "$title: broker CPU us/msg" broker_cpu_us workload=fanin qos="$qos"
        else
            title="fan-out 1->$FANOUT_SUBS QoS $qos"
            row "$title: deliveries/s" delivered_per_s workload=fanout qos="$qos"
            row "$title: publisher's msg/s" publish_per_s workload=fanout qos="$qos"
            row "$title: broker CPU us/delivery" broker_cpu_us workload=fanout qos="$qos"
        fi
    done
done
if [[ " $WORKLOADS " == *" durable "* ]]; then
    row "durable QoS 1: publish, acknowledged msg/s" delivered_per_s workload=durable-publish
    row "durable QoS 1: drain on resume, msg/s" delivered_per_s workload=durable-drain
    row "durable: broker CPU us/msg publishing" broker_cpu_us workload=durable-publish
    row "durable: broker CPU us/msg draining" broker_cpu_us workload=durable-drain
    echo "  ($STORE_NOTE;"
    echo "   $MQ_NOTE)"
fi
if [[ " $WORKLOADS " == *" durable-ack "* && $BROKERS == *fieldline* ]]; then
    echo
    echo "== durable acknowledgement on Fieldline: QoS 1 fan-in whose PUBACK waits for a durable write vs QoS 0 fan-in (target >= 50%)"
    base=$(med delivered_per_s broker=fieldline workload=fanin qos=0)
    ack_row() {
        local label=$1 v s
        shift
        v=$(med delivered_per_s broker=fieldline "$@")
        s=$(spread delivered_per_s broker=fieldline "$@")
        awk -v l="$label" -v v="$v" -v b="$base" -v s="$s" "$AWK_FMT"'
            BEGIN { r = (v != "-" && b != "-" && b > 0) ? sprintf("%.0f%%", 100 * v / b) : "-"
                    printf "  %-86s %10s msg/s %6s%s\n", l, fmt(v), r, (s != "" ? "   (" s ")" : "") }'
    }
    ack_row "QoS 0 fan-in, operator clients on plain topics (the 100% baseline)" workload=fanin qos=0
    ack_row "QoS 1 fan-in, operator clients on plain topics, no durable write (QoS 1's own cost)" workload=fanin qos=1
    ack_row "QoS 0 fan-in, devices publishing telemetry (stored, no PUBACK)" workload=fanin-telemetry qos=0
    ack_row "QoS 1 fan-in, devices publishing telemetry: PUBACK after the telemetry store's write" workload=fanin-telemetry qos=1
    if [[ $FL_STORE == sqlite ]]; then
        ack_row "QoS 1 fan-in to a persistent subscriber: PUBACK after the state store's write" workload=fanin-persistent-sqlite qos=1
    else
        ack_row "QoS 1 fan-in to a persistent subscriber: NO state store, PUBACK not durable" workload=fanin-persistent-none qos=1
    fi
fi
if grep -q 'complete=0' "$RESULTS"; then
    echo
    echo "runs that did not complete (losses, refusals or errors):"
    grep 'complete=0' "$RESULTS" | sed 's/^/  /'
fi
for failure in "${FAILED[@]}"; do echo "  FAILED: $failure"; done
awk '/lost=/ { for (i = 1; i <= NF; i++) if ($i ~ /^lost=/) { split($i, p, "="); if (p[2] + 0 > 0) { print "  LOST: " $0; break } } }' "$RESULTS"
