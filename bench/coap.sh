#!/usr/bin/env bash
# CoAP requests per second: 100 clients, each its own UDP socket, each sending Confirmable requests one after the
# other. Publishes Fieldline, starts it on free ports with a fresh data dir, starts libcoap's coap-server-notls, and
# runs `fieldline-load coap` against both in the same run:
#   fieldline  every client is a registered device POSTing telemetry (5 metrics) to /api/v1/{token}/telemetry; each
#              2.04 follows the durable write of its points, so requests/s x 5 is the durable telemetry rate;
#   libcoap    the reference: the same clients GET coap-server-notls's /time (a short text answer, nothing stored).
#
#   bench/coap.sh
#   CLIENTS=100 SECONDS_PER_RUN=10 ROUNDS=3 bench/coap.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CLIENTS=${CLIENTS:-100}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
VALUES=${VALUES:-5}
ROUNDS=${ROUNDS:-1}
WORK=$(mktemp -d /tmp/fl-coap-bench.XXXXXX)
FIELDLINE_PUB=${FIELDLINE_PUB:-/tmp/fieldline-bench-publish}
LOAD_PUB=${LOAD_PUB:-$WORK/load}
CLK_TCK=$(getconf CLK_TCK)
command -v coap-server-notls >/dev/null || die "coap-server-notls is missing (apt-get install libcoap3-bin)"

FL_PID="" REF_PID=""
cleanup() { stop_pid "$FL_PID"; stop_pid "$REF_PID"; rm -rf "$WORK"; }
trap cleanup EXIT

publish_fieldline
log "building the load program ..."
dotnet publish "$BENCH_ROOT/bench/Fieldline.Load" -c Release -o "$LOAD_PUB" >"$WORK/load-publish.log" 2>&1 ||
    { cat "$WORK/load-publish.log" >&2; die "building Fieldline.Load failed"; }

start_fieldline
REF_PORT=$(free_port)
coap-server-notls -A 127.0.0.1 -p "$REF_PORT" >"$WORK/coap-server.log" 2>&1 &
REF_PID=$!
log "coap-server-notls pid $REF_PID: udp $REF_PORT ($(dpkg-query -W -f '${Version}' libcoap3-bin 2>/dev/null || echo unknown))"

RESULTS="$WORK/results"
: >"$RESULTS"
load() {
    local round=$1
    shift
    "$LOAD_PUB/fieldline-load" coap "$@" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --clk-tck "$CLK_TCK" | tee -a /dev/stderr |
        grep '^result ' | sed "s/^result /result round=$round /" >>"$RESULTS"
}

for round in $(seq "$ROUNDS"); do
    log "== round $round of $ROUNDS"
    load "$round" --coap-port "$FL_COAP" --url "http://127.0.0.1:$FL_HTTP" --admin-key "$FL_KEY" --prefix "coap-r$round" \
        --values "$VALUES" --server-pid "$FL_PID" --name fieldline
    load "$round" --coap-port "$REF_PORT" --path time --server-pid "$REF_PID" --name libcoap
done

med() { grep " server=$1 " "$RESULTS" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2 | median; }
spread() {
    grep " server=$1 " "$RESULTS" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2 | sort -g |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf "%.0f-%.0f", lo, hi }'
}
row() {
    printf '  %-56s %9.0f %9.2f %9.2f %13.1f   %s\n' "$1" "$(med "$2" per_s)" "$(med "$2" p50_ms)" "$(med "$2" p99_ms)" \
        "$(med "$2" server_us_per_req)" "$(spread "$2" per_s)"
}

echo
echo "== summary: $CLIENTS clients, CON requests one at a time each, ${SECONDS_PER_RUN} s per run, median of $ROUNDS round(s); $(nproc) cores"
printf '  %-56s %9s %9s %9s %13s   %s\n' "" "req/s" "p50 ms" "p99 ms" "server us/req" "req/s, rounds"
row "Fieldline telemetry POST ($VALUES metrics, 2.04 after the write)" fieldline
row "libcoap coap-server-notls GET /time (reference)" libcoap
awk -v f="$(med fieldline per_s)" -v r="$(med libcoap per_s)" -v p="$(med fieldline points_per_s)" \
    'BEGIN { printf "  Fieldline / libcoap: %.2fx; durable telemetry over CoAP: %.0f points/s\n", f / r, p }'
echo "Fieldline RSS after the run: $(rss_kb "$FL_PID") KB; data dir: $(du -sh "$WORK/fl-data" | cut -f1)"
grep -E 'fail|error|crit' -i "$WORK/fieldline.log" | head -5 || true
