#!/usr/bin/env bash
# Runs every test of Fieldline on a fresh Debian machine with the .NET 10 SDK.
# Installs what the tests need, builds once, runs each test project, and ends with one line:
#   tests: N passed, M failed, K skipped
set -uo pipefail
cd "$(dirname "$0")/.."

# --- what the tests need from Debian ---------------------------------------------------------
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
packages=(mosquitto mosquitto-clients libcoap3-bin chromium)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Node.js for the MQTT.js interoperability tests; a node already installed (with its npm) is used as it is.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The mosquitto package starts a system broker on 1883; the tests use ports from the OS, and the
# benchmark starts its own, so a running system broker is harmless but not needed.

# MQTT.js at the version package-lock.json pins. Should this fail, MqttJsTests fail and say MQTT.js is missing.
mqttjs=tests/Fieldline.Mqtt.Tests/Interop/mqttjs
mkdir -p artifacts
if ! (cd "$mqttjs" && npm ci --no-audit --no-fund) >artifacts/npm-ci.log 2>&1; then
  echo "npm ci in $mqttjs failed:"; tail -20 artifacts/npm-ci.log
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results="$(pwd)/artifacts/test-results"
rm -rf "$results"; mkdir -p "$results"

passed=0; failed=0; skipped=0

# --- style: dotnet format is a test like any other -------------------------------------------
if ! dotnet build Fieldline.sln -c Release -nologo -v q >"$results/build.log" 2>&1; then
  echo "build failed:"; grep -E "error" "$results/build.log" | head -50
  echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1
fi
if dotnet format Fieldline.sln --verify-no-changes --no-restore >"$results/format.log" 2>&1; then
  passed=$((passed + 1)); echo "dotnet format --verify-no-changes: passed"
else
  failed=$((failed + 1)); echo "dotnet format --verify-no-changes: FAILED"; head -40 "$results/format.log"
fi

# --- test projects ---------------------------------------------------------------------------
for project in tests/*/*.csproj; do
  name="$(basename "$project" .csproj)"
  echo "== $name"
  dotnet test "$project" -c Release --no-build --nologo \
    --logger "trx;LogFileName=$name.trx" --results-directory "$results" \
    --blame-hang-timeout 5m 2>&1 | grep -vE "^\s*$" | tail -n 25
  trx="$results/$name.trx"
  if [ -f "$trx" ]; then
    counters="$(grep -o '<Counters [^>]*>' "$trx" | head -1)"
    p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); p=${p:-0}
    f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=${f:-0}
    t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters"); t=${t:-0}
    e=$(sed -n 's/.* error="\([0-9]*\)".*/\1/p' <<<"$counters"); e=${e:-0}
    s=$((t - p - f - e)); ((s < 0)) && s=0
    passed=$((passed + p)); failed=$((failed + f + e)); skipped=$((skipped + s))
  else
    echo "$name produced no results"; failed=$((failed + 1))
  fi
done

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
