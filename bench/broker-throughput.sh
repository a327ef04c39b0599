#!/usr/bin/env bash
# Broker fan-in throughput: PUBS publisher processes (mosquitto_pub -l) -> 1 subscriber (mosquitto_sub -C),
# Fieldline's broker (operator login) against Debian's mosquitto, same clients, same run, brokers alternated.
#
#   bench/broker-throughput.sh                       # 3 rounds, QoS 0 (1,000,000 msgs) and QoS 1 (4 x 62,500)
#   ROUNDS=1 QOS0_TOTAL=200000 QOS1_PER_PUB=20000 bench/broker-throughput.sh    # quick run
#
# Environment: ROUNDS (3), PUBS (4), QOS0_TOTAL (1000000), QOS1_PER_PUB (62500, at most 65535: mosquitto_pub -l
# stops there at QoS 1), QOS_LEVELS ("0 1"), BROKERS ("fieldline mosquitto"), SUB_TIMEOUT seconds per run (180),
# FIELDLINE_PUB (publish dir, reused if present; REPUBLISH=1 rebuilds), MOSQUITTO_EXTRA (extra mosquitto.conf lines,
# default "max_queued_messages 0": with its default of 1000 mosquitto drops QoS 1 messages queued for a subscriber
# that is slower than 4 publishers, so the subscriber never reaches its count; MOSQUITTO_EXTRA= shows that).
# Fieldline runs on its defaults: a QoS 1 subscriber that falls behind holds its publishers back
# (Mqtt:QueueHighWaterMark) instead of dropping from its queue.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
PUBS=${PUBS:-4}
QOS0_TOTAL=${QOS0_TOTAL:-1000000}
QOS1_PER_PUB=${QOS1_PER_PUB:-62500}
QOS_LEVELS=${QOS_LEVELS:-"0 1"}
BROKERS=${BROKERS:-"fieldline mosquitto"}
SUB_TIMEOUT=${SUB_TIMEOUT:-180}
WORK=$(mktemp -d /tmp/fl-broker-bench.XXXXXX)
FIELDLINE_PUB=${FIELDLINE_PUB:-/tmp/fieldline-bench-publish}
CLK_TCK=$(getconf CLK_TCK)
MOSQUITTO_EXTRA=${MOSQUITTO_EXTRA-max_queued_messages 0}
((QOS1_PER_PUB <= 65535)) || die "QOS1_PER_PUB must be <= 65535 (mosquitto_pub -l limit at QoS 1)"

FL_PID="" MQ_PID=""
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    stop_pid "$FL_PID"
    stop_pid "$MQ_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

# ~100-byte JSON lines, one file per message count.
payload_file() {
    local n=$1 f="$WORK/lines-$1.txt"
    if [[ ! -f "$f" ]]; then
        awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++)
            printf "{\"seq\":%08d,\"ts\":1732550000000,\"device\":\"bench-device\",\"values\":{\"temperature\":21.5,\"humidity\":40}}\n", i }' >"$f"
    fi
    echo "$f"
}

per_pub() { if [[ $1 == 0 ]]; then echo $((QOS0_TOTAL / PUBS)); else echo "$QOS1_PER_PUB"; fi; }

RESULTS="$WORK/results.txt"
: >"$RESULTS"

# run_one BROKER QOS ROUND: prints and records "broker qos round msgs received seconds rate cpu_us_per_msg".
run_one() {
    local broker=$1 qos=$2 round=$3 port pid
    local -a auth=()
    if [[ $broker == fieldline ]]; then
        port=$FL_MQTT pid=$FL_PID auth=(-u '$admin' -P "$FL_KEY")
    else
        port=$MQ_PORT pid=$MQ_PID
    fi
    local n total file
    n=$(per_pub "$qos")
    total=$((n * PUBS))
    file=$(payload_file "$n")

    # Subscription readiness: a retained probe is delivered right after the SUBACK, so its arrival proves the
    # subscription is active. The subscriber therefore expects total + 1 messages.
    mosquitto_pub -h 127.0.0.1 -p "$port" -i "bench-probe-$$" "${auth[@]}" -q 1 -r -t bench/probe -m probe
    local out="$WORK/sub.out"
    : >"$out"
    timeout "$SUB_TIMEOUT" mosquitto_sub -h 127.0.0.1 -p "$port" -i "bench-sub-$$" "${auth[@]}" -q "$qos" \
        -t 'bench/#' -C $((total + 1)) >"$out" 2>"$WORK/sub.err" &
    local sub=$!
    local deadline=$((SECONDS + 15))
    until [[ -s "$out" ]]; do
        kill -0 "$sub" 2>/dev/null || { cat "$WORK/sub.err" >&2; die "$broker: subscriber exited early"; }
        ((SECONDS < deadline)) || die "$broker: retained probe not received within 15 s"
        sleep 0.01
    done

    local c0 c1 t0 t1 i
    local -a pubs=()
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s%N)
    for ((i = 1; i <= PUBS; i++)); do
        mosquitto_pub -h 127.0.0.1 -p "$port" -i "bench-pub-$$-$i" "${auth[@]}" -q "$qos" -t "bench/$i" -l \
            <"$file" 2>"$WORK/pub-$i.err" &
        pubs+=($!)
    done
    local sub_rc=0
    wait "$sub" || sub_rc=$?
    t1=$(date +%s%N)
    c1=$(cpu_ticks "$pid")
    local pub_fail=0
    for i in "${pubs[@]}"; do wait "$i" || pub_fail=$((pub_fail + 1)); done
    mosquitto_pub -h 127.0.0.1 -p "$port" -i "bench-probe-$$" "${auth[@]}" -q 1 -r -n -t bench/probe

    local lines received seconds rate cpu
    lines=$(wc -l <"$out")
    received=$((lines - 1))
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    rate=$(awk -v m="$received" -v s="$seconds" 'BEGIN { printf "%.0f", m / s }')
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v m="$received" 'BEGIN { printf "%.2f", d / hz * 1e6 / m }')
    local note=""
    ((sub_rc == 0)) || note+=" subscriber-exit=$sub_rc(124=timeout)"
    ((pub_fail == 0)) || note+=" failed-publishers=$pub_fail"
    ((received == total)) || note+=" LOST=$((total - received))"
    printf '%-9s qos%s round %d: %8d/%d msgs in %7.3f s = %7d msg/s, broker CPU %6.2f us/msg%s\n' \
        "$broker" "$qos" "$round" "$received" "$total" "$seconds" "$rate" "$cpu" "$note"
    echo "$broker $qos $round $total $received $seconds $rate $cpu" >>"$RESULTS"
}

log "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), CLK_TCK=$CLK_TCK"
publish_fieldline
[[ $BROKERS == *fieldline* ]] && start_fieldline
[[ $BROKERS == *mosquitto* ]] && start_mosquitto
echo "rounds=$ROUNDS publishers=$PUBS qos0_total=$QOS0_TOTAL qos1_total=$((QOS1_PER_PUB * PUBS))"

for ((round = 1; round <= ROUNDS; round++)); do
    order=$BROKERS
    # Alternate which broker goes first in each round.
    ((round % 2 == 0)) && order=$(echo "$BROKERS" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }')
    for qos in $QOS_LEVELS; do
        for broker in $order; do
            run_one "$broker" "$qos" "$round"
        done
    done
done

echo
echo "medians over $ROUNDS round(s):"
for qos in $QOS_LEVELS; do
    declare -A med_rate=() med_cpu=()
    for broker in $BROKERS; do
        med_rate[$broker]=$(awk -v b="$broker" -v q="$qos" '$1 == b && $2 == q { print $7 }' "$RESULTS" | median)
        med_cpu[$broker]=$(awk -v b="$broker" -v q="$qos" '$1 == b && $2 == q { print $8 }' "$RESULTS" | median)
        lost=$(awk -v b="$broker" -v q="$qos" '$1 == b && $2 == q { l += $4 - $5 } END { print l + 0 }' "$RESULTS")
        printf '  qos%s %-9s %8.0f msg/s  %6.2f us CPU/msg  lost %d\n' "$qos" "$broker" "${med_rate[$broker]}" "${med_cpu[$broker]}" "$lost"
    done
    if [[ -n "${med_rate[fieldline]:-}" && -n "${med_rate[mosquitto]:-}" ]]; then
        awk -v f="${med_rate[fieldline]}" -v m="${med_rate[mosquitto]}" -v fc="${med_cpu[fieldline]}" -v mc="${med_cpu[mosquitto]}" \
            -v q="$qos" 'BEGIN { printf "  qos%s Fieldline/Mosquitto: throughput %.2fx, CPU per message %.2fx\n", q, f / m, fc / mc }'
    fi
    unset med_rate med_cpu
done
