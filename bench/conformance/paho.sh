#!/usr/bin/env bash
# Runs the Eclipse Paho interoperability client tests (MQTT 3.1.1 client_test.py and 5.0 client_test5.py) against
# mosquitto (the reference) and against Fieldline, each on a free port of 127.0.0.1, and prints the results side by
# side. The two brokers are tested at the same time; the suites one after the other.
#
# Usage: bench/conformance/paho.sh PAHO_CHECKOUT [options]
#   PAHO_CHECKOUT          a clone of github.com/eclipse/paho.mqtt.testing (the tests are not part of this repo)
#   --fieldline-port P     test a Fieldline (or other broker) already listening on 127.0.0.1:P instead of starting one
#   --mosquitto-port P     likewise for the reference broker
#   --suite 3.1.1|5.0      run one suite only (repeatable; default both)
#   --test NAME            run only this test (repeatable)
#   --timeout S            seconds one test may take before it counts as TIMEOUT (default 60)
#   --trace                record every MQTT packet of each test (<suite>.<test>.trace next to its output)
#   --show-output          print the output of every test that did not pass
#
# Fieldline is built (Release) from this repo and started as
#   dotnet fieldline.dll serve --allow-anonymous --max-keep-alive 60 --anonymous-deny-subscribe test/nosubscribe \
#       --mqtt-port P --http-port Q --data-dir D --bind 127.0.0.1
# because the tests connect without credentials, test_server_keep_alive expects a broker whose keep-alive limit is
# 60 s, and test_subscribe_failure one that refuses subscriptions to test/nosubscribe (the suite's own broker is
# configured so). mosquitto gets the same configuration: max_keepalive 60 and an ACL file (readwrite #, deny
# test/nosubscribe). Set FIELDLINE_DLL to use another build. Work files (logs, each
# test's output) go to $WORK (default a new temp dir), which is kept.
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
RUNNER="$BENCH_ROOT/bench/conformance/paho_runner.py"

[[ $# -ge 1 && $1 != -* ]] || die "usage: $0 PAHO_CHECKOUT [--fieldline-port P] [--mosquitto-port P] [--suite 3.1.1|5.0] [--test NAME] [--timeout S] [--trace] [--show-output]"
PAHO=$(cd "$1" && pwd)
shift
[[ -f "$PAHO/interoperability/client_test.py" && -f "$PAHO/interoperability/client_test5.py" ]] ||
    die "$PAHO is not a paho.mqtt.testing checkout (no interoperability/client_test.py)"

FL_PORT="" MQ_PORT_GIVEN="" SUITES=() RUNNER_ARGS=(--timeout 60)
while [[ $# -gt 0 ]]; do
    case $1 in
        --fieldline-port) FL_PORT=$2; shift 2 ;;
        --mosquitto-port) MQ_PORT_GIVEN=$2; shift 2 ;;
        --suite) SUITES+=("$2"); shift 2 ;;
        --test) RUNNER_ARGS+=(--test "$2"); shift 2 ;;
        --timeout) RUNNER_ARGS+=(--timeout "$2"); shift 2 ;;
        --trace | --show-output) RUNNER_ARGS+=("$1"); shift ;;
        *) die "unknown option $1" ;;
    esac
done
((${#SUITES[@]})) || SUITES=(3.1.1 5.0)

WORK=${WORK:-$(mktemp -d /tmp/paho-conformance.XXXXXX)}
mkdir -p "$WORK"
MQ_PID="" FL_PID=""
cleanup() {
    stop_pid "$MQ_PID"
    stop_pid "$FL_PID"
}
trap cleanup EXIT

command -v python3 >/dev/null || die "python3 is needed"

# Reference broker.
if [[ -n $MQ_PORT_GIVEN ]]; then
    MQ_PORT=$MQ_PORT_GIVEN
else
    if [[ ! -x /usr/sbin/mosquitto ]]; then
        log "installing mosquitto (Debian package) ..."
        apt-get update >/dev/null && apt-get install -y mosquitto >/dev/null || die "could not install mosquitto"
    fi
    printf 'topic readwrite #\ntopic deny test/nosubscribe\n' >"$WORK/paho.acl"
    chmod o+r "$WORK/paho.acl"
    chmod o+x "$WORK"
    MOSQUITTO_EXTRA="max_keepalive 60\nacl_file $WORK/paho.acl" start_mosquitto
fi
MQ_NAME=$(/usr/sbin/mosquitto -h 2>/dev/null | head -1 | sed 's/ version / /' || true)
MQ_NAME=${MQ_NAME:-mosquitto}

# Fieldline.
if [[ -z $FL_PORT ]]; then
    DLL=${FIELDLINE_DLL:-$BENCH_ROOT/src/Fieldline/bin/Release/net10.0/fieldline.dll}
    if [[ -z ${FIELDLINE_DLL:-} ]]; then
        log "building Fieldline (Release) ..."
        dotnet build "$BENCH_ROOT/src/Fieldline" -c Release >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "dotnet build failed"; }
    fi
    [[ -f $DLL ]] || die "no Fieldline build at $DLL"
    FL_PORT=$(free_port)
    FL_HTTP=$(free_port)
    mkdir -p "$WORK/fl-data"
    dotnet "$DLL" serve --allow-anonymous --max-keep-alive 60 --anonymous-deny-subscribe test/nosubscribe --mqtt-port "$FL_PORT" --http-port "$FL_HTTP" --data-dir "$WORK/fl-data" \
        --bind 127.0.0.1 --admin-key "paho-conformance-$RANDOM$RANDOM$RANDOM" >"$WORK/fieldline.log" 2>&1 &
    FL_PID=$!
    deadline=$((SECONDS + 60))
    until curl -fsS "http://127.0.0.1:$FL_HTTP/ready" >/dev/null 2>&1; do
        if ! kill -0 "$FL_PID" 2>/dev/null; then
            cat "$WORK/fieldline.log" >&2
            die "Fieldline exited (does this build have 'serve --allow-anonymous'? the Paho tests need anonymous access)"
        fi
        ((SECONDS < deadline)) || die "Fieldline not ready after 60 s"
        sleep 0.2
    done
    log "Fieldline pid $FL_PID: mqtt $FL_PORT, http $FL_HTTP"
else
    wait_port "$FL_PORT" 5 || die "nothing listens on 127.0.0.1:$FL_PORT"
fi

# One broker's suites, one after the other; output in $WORK/<broker>.<suite>.out.
run_suites() {
    local broker=$1 port=$2 suite
    for suite in "${SUITES[@]}"; do
        python3 "$RUNNER" "$PAHO" --suite "$suite" --port "$port" --log-dir "$WORK/$broker-$suite" "${RUNNER_ARGS[@]}" \
            >"$WORK/$broker.$suite.out" 2>&1 || true
    done
}

log "running ${SUITES[*]} against $MQ_NAME (port $MQ_PORT) and Fieldline (port $FL_PORT); output in $WORK"
run_suites mosquitto "$MQ_PORT" &
mq_runs=$!
run_suites fieldline "$FL_PORT" &
fl_runs=$!
wait "$mq_runs" "$fl_runs"

verdicts() { grep -E '^(PASS|FAIL|ERROR|TIMEOUT) ' "$1" | awk '{ print $2, $1 }' || true; }
summary() { sed -n 's/.*: \([0-9]* of [0-9]*\) passed.*/\1 passed/p' "$1"; }

for suite in "${SUITES[@]}"; do
    mq_out="$WORK/mosquitto.$suite.out" fl_out="$WORK/fieldline.$suite.out"
    printf '\nMQTT %s\n%-52s %-10s %s\n' "$suite" "test" "mosquitto" "fieldline"
    join -a1 -a2 -e '-' -o 0,1.2,2.2 <(verdicts "$mq_out" | sort) <(verdicts "$fl_out" | sort) |
        awk '{ printf "%-52s %-10s %s\n", $1, $2, $3 }'
    # A suite that could not run prints its reason instead of verdicts.
    grep -h '^paho_runner:' "$mq_out" "$fl_out" >&2 || true
done

printf '\n%-22s %-24s %s\n' "suite" "$MQ_NAME" "fieldline"
for suite in "${SUITES[@]}"; do
    printf '%-22s %-24s %s\n' "MQTT $suite" "$(summary "$WORK/mosquitto.$suite.out")" "$(summary "$WORK/fieldline.$suite.out")"
done
printf '(each test'"'"'s output: %s/<broker>-<suite>/)\n' "$WORK"
