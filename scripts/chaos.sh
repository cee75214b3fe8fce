#!/usr/bin/env bash
# Chaos under load: wrk against examples/hello (2 workers; HANDLER=php:
# examples/php/hello.php, 2 PHP workers) while drover's workers are
# reloaded, killed with SIGKILL and recycled by max_request and max_memory.
# Prints, per phase: requests served, non-2xx answers, socket errors, p99.
# Then checks that every worker drover status lists has served requests.
# Needs: wrk (apt-get install wrk; php-cli php-msgpack for HANDLER=php).
# BIN=DIR runs the drover and hello built in DIR instead of building this
# tree (to compare a previous commit's build in the same session).
# Usage: [HANDLER=go|php] [BIN=DIR] scripts/chaos.sh [seconds per phase, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin=${BIN:-$PWD/bin}
case ${HANDLER:-go} in
  go) cmd="[$bin/hello]" ;;
  php) cmd="[php, $PWD/examples/php/hello.php]
  launch: exec" ;;
  *) echo "HANDLER must be go or php"; exit 1 ;;
esac
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
[ -n "${BIN:-}" ] || make build >/dev/null
tmp=$(mktemp -d /tmp/drchaos.XXXX)
export XDG_RUNTIME_DIR=$tmp DROVER_RUNTIME_DIR=$tmp/drover # root ignores XDG_RUNTIME_DIR
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME TOP_YAML [WORKER_YAML]: an instance of the hello handler on
# port 18100, with extra top-level and worker-level settings.
start() {
  cat > "$tmp/$1.yaml" <<YAML
worker_num: 2
worker:
  cmd: $cmd
${3:-}
listeners:
  - address: tcp://127.0.0.1:18100
    protocol: http
$2
YAML
  "$bin/drover" start -c "$tmp/$1.yaml" 2>"$tmp/$1.log" & pids+=($!)
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18100/ >/dev/null 2>&1 && return; sleep 0.1; done
  echo "drover did not start:"; cat "$tmp/$1.log"; exit 1
}
stop() { "$bin/drover" stop -c "$tmp/$1.yaml" >/dev/null; }

# phase NAME ACTION [SECONDS]: wrk for SECONDS (default $secs) while
# ACTION runs; one table row.
phase() {
  local name=$1 action=$2 dur=${3:-$secs}
  wrk -t1 -c64 -d"${dur}s" --latency http://127.0.0.1:18100/ >"$tmp/wrk.out" &
  local wrk_pid=$!
  sleep 1
  bash -c "$action" >>"$tmp/actions.log" 2>&1 || echo "phase $name: action failed (see below)" >&2
  wait $wrk_pid
  awk -v name="$name" '
    /requests in/ {req=$1}
    /Non-2xx/ {non2xx=$NF}
    /Socket errors/ {gsub(",", ""); sock=$4+$6+$8+$10}
    $1=="99%" {p99=$2}
    END {printf "%-22s %10s %8d %14d %10s\n", name, req, non2xx, sock, p99}' "$tmp/wrk.out"
}

D="$bin/drover"
printf "%-22s %10s %8s %14s %10s\n" phase requests non-2xx socket-errors p99
start plain ""
phase "steady" "true"
phase "5 reloads" "for i in 1 2 3 4 5; do $D reload -c $tmp/plain.yaml; sleep $((secs / 6)); done"
phase "SIGKILL a worker x3" "for i in 1 2 3; do p=\$($D status -c $tmp/plain.yaml --json | python3 -c 'import json,sys; print([r[\"pid\"] for r in json.load(sys.stdin) if r[\"role\"]==\"worker\" and r[\"pid\"]][0])'); kill -9 \$p; sleep $((secs / 4)); done"
phase "after the kills" "true"
$D status -c "$tmp/plain.yaml" --json > "$tmp/status.json"
stop plain
start recycle "max_request: 1000"
phase "max_request 1000, 2x" "true" $((2 * secs))
recycled=$(grep -c '"successor ready' "$tmp/recycle.log" || grep -c 'successor ready' "$tmp/recycle.log" || true)
stop recycle
echo "max_request replacements during that phase: $recycled"
# A limit below hello's own RSS (about 15 MiB in Go, 23 MiB in PHP): every
# worker exceeds it, so the master replaces one each check, under load (a
# PHP worker asks for its successor itself, after its first request).
start memory "" "  max_memory: 10M"
phase "max_memory 10M" "true"
mem=$(grep 'successor ready' "$tmp/memory.log" | grep -cE 'max_memory exceeded|asked to be replaced' || true)
stop memory
echo "max_memory replacements during that phase: $mem"

# Every worker listed after the chaos has served requests since it started.
python3 - "$tmp/status.json" <<'PY'
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["role"] == "worker"]
idle = [r for r in rows if r.get("requests", 0) == 0]
for r in rows:
    print(f"worker {r['id']} pid {r['pid']}: {r.get('requests', 0)} requests, restarts {r.get('restarts', 0)}, last exit: {r.get('last_exit', '')}")
if idle:
    print("FAIL: workers that served nothing:", [r["pid"] for r in idle]); sys.exit(1)
print("every worker served requests")
PY
