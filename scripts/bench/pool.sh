#!/usr/bin/env bash
# A dynamic pool under load (docs/benchmarks.md, "A dynamic pool"): a PHP
# handler that sleeps 20 ms a request, one request at a time
# (scripts/bench/sleep.php), wrk -c64 for DUR against a fixed pool of one
# worker, then against worker_num: {min: 1, max: 8, idle_timeout: 5s}.
# Prints the requests/s of each, when the dynamic pool reached each size,
# and how long after the load it was back at one worker.
# Needs: wrk php php-msgpack curl.
# Usage: scripts/bench/pool.sh [duration per run, default 10s]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dur=${1:-10s}
need wrk wrk
need php php-cli
need curl curl
make build >/dev/null
start_tmp drpool
sleeper=$PWD/scripts/bench/sleep.php
export XDG_RUNTIME_DIR=$tmp DROVER_RUNTIME_DIR=$tmp/drover

# serve NAME PORT WORKER_NUM: drover running sleep.php with that worker_num.
serve() {
  port_free "$2"
  cat > "$tmp/$1.yaml" <<YAML
worker_num: $3
worker: {cmd: [php, $sleeper], launch: exec}
log_format: json
listeners: [{address: "tcp://127.0.0.1:$2", protocol: http}]
YAML
  bin/drover start -c "$tmp/$1.yaml" 2>"$tmp/$1.log" & pids+=($!)
  wait_http "http://127.0.0.1:$2/?ms=0" slept || die "$1 does not answer (log: $tmp/$1.log)"
}

# ms_since T0 LOGTIME: milliseconds from T0 (date +%s.%N) to a log line's time.
ms_since() { echo "$(date -d "$2" +%s.%N) $1" | awk '{printf "%d", ($1 - $2) * 1000}'; }

serve fixed1 18190 1
one=$(wrk -t2 -c64 -d"$dur" http://127.0.0.1:18190/ | awk '/Requests\/sec/ {print $2}')
bin/drover stop -c "$tmp/fixed1.yaml" >/dev/null

serve dynamic 18191 "{min: 1, max: 8, idle_timeout: 5s}"
t0=$(date +%s.%N)
out=$(wrk -t2 -c64 -d"$dur" --latency http://127.0.0.1:18191/)
t1=$(date +%s.%N)
dyn=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
sizes=$(grep '"msg":"pool: worker added"' "$tmp/dynamic.log" |
  sed -E 's/.*"size":([0-9]+).*"time":"([^"]+)".*/\1 \2/' |
  while read -r n at; do printf '%s workers at +%sms, ' "$n" "$(ms_since "$t0" "$at")"; done)
# Back at one worker: the log says when the last retired one left.
for _ in $(seq 200); do
  grep -q '"msg":"pool: worker retired".*"size":1,' "$tmp/dynamic.log" &&
    [ "$(grep -c '"msg":"pool: worker retired"' "$tmp/dynamic.log")" -ge 7 ] && break
  sleep 0.1
done
last=$(grep '"msg":"pool: worker retired"' "$tmp/dynamic.log" | tail -1 | sed -E 's/.*"time":"([^"]+)".*/\1/')
bin/drover stop -c "$tmp/dynamic.yaml" >/dev/null

echo "one worker (fixed):        $one requests/s"
echo "dynamic {min 1, max 8}:    $dyn requests/s ($(awk -v a="$dyn" -v b="$one" 'BEGIN {printf "%.1f", a / b}')× one worker) ${errs:-no errors}"
echo "growth:                    ${sizes%, }"
echo "back at 1 worker:          $(ms_since "$t1" "$last") ms after the load stopped (idle_timeout 5s)"
echo "$out" | grep -A4 'Latency Distribution' | tail -4
