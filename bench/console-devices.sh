#!/usr/bin/env bash
# The console's devices page with many devices in the registry: publishes Fieldline, starts it on free ports with a
# fresh data dir, puts DEVICES devices in the registry (see below), signs in to the console as a browser
# would (the sign-in form's antiforgery token, then the cookie), and times full page loads with curl:
#   first page of /devices, a page deep into the list (?after=), a type filter, a status filter, the search (id start
#   or name part), sorting by name and by last seen, and the second page of a sort (its cursor from the first).
#
#   bench/console-devices.sh
#   DEVICES=100000 LOADS=20 bench/console-devices.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DEVICES=${DEVICES:-100000}
LOADS=${LOADS:-20}
WORK=$(mktemp -d /tmp/fl-console-bench.XXXXXX)
FIELDLINE_PUB=${FIELDLINE_PUB:-/tmp/fieldline-bench-publish}

FL_PID=""
cleanup() { stop_pid "$FL_PID"; rm -rf "$WORK"; }
trap cleanup EXIT

publish_fieldline
start_fieldline
BASE="http://127.0.0.1:$FL_HTTP"

# 100,000 REST registrations from curl processes take tens of minutes on two cores (process start-up, not
# Fieldline), so the devices go into the registry directly, one transaction, as the API would write them; the
# first 100 through the API, so that both paths are in the table.
log "registering $DEVICES devices ..."
started=$SECONDS
for i in $(seq 0 99); do
    curl -fsS -o /dev/null -X POST "$BASE/api/v1/devices" -H "X-Api-Key: $FL_KEY" -H "Content-Type: application/json" \
        -d "{\"device_id\":\"api-$(printf %03d "$i")\",\"name\":\"Device $i\",\"type\":\"sensor\"}"
done
python3 - "$WORK/fl-data/fieldline.db" "$DEVICES" <<'PY'
import hashlib, os, sqlite3, sys, time
db, count = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1000)
types = ("sensor", "actuator", "gateway")
places = ("Boiler", "Pump", "Hall", "Roof", "Line", "Dock", "Lab")
# Names in several places, a tenth online, and half of them seen at some time in the last day: sorting has work to do.
with sqlite3.connect(db, timeout=30) as c:
    c.executemany(
        "INSERT INTO devices (device_id, name, type, status, last_seen, registered_at, metadata, token_hash) VALUES (?, ?, ?, ?, ?, ?, '{}', ?)",
        ((f"dev-{i:06d}", f"{places[i % 7]} {(i * 7919) % count}", types[i % 3], "online" if i % 10 == 0 else "offline",
          now - (i * 7717) % 86_400_000 if i % 2 == 0 else None, now, hashlib.sha256(os.urandom(32)).digest()) for i in range(count)))
PY
log "registered in $((SECONDS - started)) s"

# Sign in as a browser does: the form's antiforgery token and cookie, then the console's cookie.
JAR="$WORK/cookies"
form=$(curl -fsS -c "$JAR" "$BASE/sign-in")
token=$(printf '%s' "$form" | grep -o 'name="__RequestVerificationToken" value="[^"]*"' | sed 's/.*value="//; s/"$//')
curl -fsS -o /dev/null -b "$JAR" -c "$JAR" -X POST "$BASE/sign-in" \
    --data-urlencode "_handler=sign-in" --data-urlencode "__RequestVerificationToken=$token" --data-urlencode "Input.Key=$FL_KEY"
grep -q fieldline-console "$JAR" || die "console sign-in failed"

# time_page NAME PATH: LOADS loads of the page; prints median and worst total time (ms) and the rows shown.
time_page() {
    local name=$1 path=$2 times=() rows
    rows=$(curl -fsS -b "$JAR" "$BASE$path" | grep -c '<tr data-device=' || true)
    for _ in $(seq "$LOADS"); do
        times+=("$(curl -fsS -o /dev/null -b "$JAR" -w '%{time_total}' "$BASE$path")")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk -v name="$name" -v rows="$rows" '
        { t[NR] = $1 * 1000 } END {
            n = NR; med = (n % 2) ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
            printf "  %-44s %8.1f %8.1f %6d\n", name, med, t[n], rows }'
}

echo
echo "== console devices page, $DEVICES devices registered, $LOADS loads each; $(nproc) cores"
printf '  %-44s %8s %8s %6s\n' "" "p50 ms" "max ms" "rows"
time_page "/devices (first page)" "/devices"
time_page "/devices?after=dev-090000 (deep page)" "/devices?after=dev-090000"
time_page "/devices?type=gateway" "/devices?type=gateway"
time_page "/devices?status=online (a tenth)" "/devices?status=online"
time_page "/devices?q=dev-0999 (search: id start)" "/devices?q=dev-0999"
time_page "/devices?q=pump%2012 (search: name part)" "/devices?q=pump%2012"
time_page "/devices?sort=name" "/devices?sort=name"
time_page "/devices?sort=-last_seen" "/devices?sort=-last_seen"
next=$(curl -fsS -b "$JAR" "$BASE/devices?sort=-last_seen" | grep -o 'class="next" href="[^"]*"' | sed 's/.*href="//; s/"$//; s/&amp;/\&/g')
[ -n "$next" ] || die "no next page link on /devices?sort=-last_seen"
time_page "/devices?sort=-last_seen, second page" "$next"
time_page "/devices?status=online&sort=name" "/devices?status=online&sort=name"
echo "Fieldline RSS: $(rss_kb "$FL_PID") KB; data dir: $(du -sh "$WORK/fl-data" | cut -f1)"
