# Shared helpers for the bench/*.sh scripts (sourced, not run).
# shellcheck shell=bash

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A free TCP port on 127.0.0.1 (asks the kernel for one, then releases it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Wait until host:port accepts TCP connections (at most $2 seconds).
wait_port() {
    local port=$1 deadline=$((SECONDS + ${2:-30}))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# utime+stime of a process in clock ticks.
cpu_ticks() {
    # Fields after the ')' that ends comm: state is field 3, utime 14, stime 15 (1-based in the full line).
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $(( ${12} + ${13} ))
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Publishes Fieldline (Release) into $FIELDLINE_PUB unless it already holds a build of the same source: the commit and
# the uncommitted changes of src/ are recorded beside the build, so a benchmark never measures a stale one.
publish_fieldline() {
    local source
    source="$(git -C "$BENCH_ROOT" rev-parse HEAD 2>/dev/null)-$(git -C "$BENCH_ROOT" diff HEAD -- src 2>/dev/null | sha256sum | cut -c1-16)"
    if [[ -x "$FIELDLINE_PUB/fieldline" && -z "${REPUBLISH:-}" && "$(cat "$FIELDLINE_PUB/.source" 2>/dev/null)" == "$source" ]]; then
        log "using the Fieldline build in $FIELDLINE_PUB of this source ($source; REPUBLISH=1 to rebuild)"
        return
    fi
    log "publishing Fieldline (Release) to $FIELDLINE_PUB ..."
    dotnet publish "$BENCH_ROOT/src/Fieldline" -c Release -o "$FIELDLINE_PUB" >"$WORK/publish.log" 2>&1 ||
        { cat "$WORK/publish.log" >&2; die "dotnet publish failed"; }
    echo "$source" >"$FIELDLINE_PUB/.source"
}

# Starts Fieldline in the background; sets FL_PID, FL_HTTP, FL_MQTT, FL_COAP, FL_KEY. Extra serve flags from
# $FIELDLINE_EXTRA. Every listener takes a free port (a TCP port free now, which is as good as any for UDP), so that two
# benchmark scripts can run at once.
start_fieldline() {
    FL_HTTP=$(free_port)
    FL_MQTT=$(free_port)
    FL_COAP=$(free_port)
    FL_KEY=${FL_KEY:-bench-admin-key-$RANDOM$RANDOM}
    mkdir -p "$WORK/fl-data"
    "$FIELDLINE_PUB/fieldline" serve --data-dir "$WORK/fl-data" --http-port "$FL_HTTP" --mqtt-port "$FL_MQTT" \
        --mqtt-tls-port "$(free_port)" --coap-port "$FL_COAP" \
        --bind 127.0.0.1 --admin-key "$FL_KEY" ${FIELDLINE_EXTRA:-} >"$WORK/fieldline.log" 2>&1 &
    FL_PID=$!
    local deadline=$((SECONDS + 60))
    until curl -fsS "http://127.0.0.1:$FL_HTTP/ready" >/dev/null 2>&1; do
        kill -0 "$FL_PID" 2>/dev/null || { cat "$WORK/fieldline.log" >&2; die "Fieldline exited"; }
        ((SECONDS < deadline)) || die "Fieldline not ready after 60 s"
        sleep 0.2
    done
    log "Fieldline pid $FL_PID: http $FL_HTTP, mqtt $FL_MQTT"
}

# Starts Debian's mosquitto on a free port; sets MQ_PID, MQ_PORT. Extra config lines from $MOSQUITTO_EXTRA.
# start_mosquitto [NAME] [PERSISTENCE_DIR]: NAME names its config and log in $WORK; with PERSISTENCE_DIR it runs with
# `persistence true` there (mosquitto drops root for its own user, which must be able to write that directory).
start_mosquitto() {
    local name=${1:-mosquitto} persist=${2:-}
    MQ_PORT=$(free_port)
    {
        echo "listener $MQ_PORT 127.0.0.1"
        echo "allow_anonymous true"
        if [[ -n "$persist" ]]; then
            echo "persistence true"
            echo "persistence_location $persist/"
        else
            echo "persistence false"
        fi
        if [[ -n "${MOSQUITTO_EXTRA:-}" ]]; then printf '%b\n' "$MOSQUITTO_EXTRA"; fi
    } >"$WORK/$name.conf"
    if [[ -n "$persist" ]]; then
        mkdir -p "$persist"
        chmod o+x "$WORK"
        if id mosquitto >/dev/null 2>&1; then chown mosquitto: "$persist"; fi
    fi
    /usr/sbin/mosquitto -c "$WORK/$name.conf" >"$WORK/$name.log" 2>&1 &
    MQ_PID=$!
    wait_port "$MQ_PORT" 10 || { cat "$WORK/$name.log" >&2; die "$name did not start"; }
    log "$name pid $MQ_PID: mqtt $MQ_PORT ($(/usr/sbin/mosquitto -h 2>&1 | head -1)${persist:+, persistence in $persist})"
}

stop_pid() {
    local pid=$1
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}
