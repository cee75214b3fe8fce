#!/usr/bin/env bash
# Chaos under load: wrk against examples/hello (2 workers; HANDLER=php:
# examples/php/hello.php, 2 PHP workers) while drover's workers are
# reloaded, killed with SIGKILL and recycled by max_request and max_memory,
# then while the manager is killed with SIGKILL (the master starts a new
# one), and last while the master is: every process of its tree must be
# gone within 2 s, none left behind, and the next drover start with the
# same config must serve.
# Prints, per phase: requests served, non-2xx answers, socket errors, p99;
# for the kills, a line with their figures. Checks that every worker drover
# status lists has served requests; exits 1 when a check fails.
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
  row "$name"
}

# row NAME: the table row of the wrk run in $tmp/wrk.out.
row() {
  awk -v name="$1" '
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
# kill -9 the manager: its workers die with it; the master starts a new
# manager and workers. The line says how long until they served again.
export D tmp
kill_manager() {
  local cfg=$tmp/plain.yaml old new t0 n
  old=$(pids_of "$cfg" manager)
  t0=$(date +%s%N)
  kill -9 "$old"
  for _ in $(seq 400); do
    new=$(pids_of "$cfg" manager) n=$(pids_of "$cfg" worker ready | wc -w)
    if [ -n "$new" ] && [ "$new" != "$old" ] && [ "$n" = 2 ]; then
      echo "manager $old killed: new manager $new with 2 ready workers after $(( ($(date +%s%N) - t0) / 1000000 )) ms" >"$tmp/manager.txt"
      return
    fi
    sleep 0.05
  done
  echo "FAIL: manager $old killed: no new manager with 2 ready workers within 20 s (manager: ${new:-none}, ready workers: $n)" >"$tmp/manager.txt"
}
# pids_of CONFIG ROLE [STATE]: the pids drover status lists for ROLE (in STATE).
pids_of() {
  "$D" status -c "$1" --json 2>/dev/null | python3 -c '
import json, sys
role, state = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
print(" ".join(str(r["pid"]) for r in json.load(sys.stdin) if r["role"] == role and r["pid"] and (not state or r["state"] == state)))' "${@:2}"
}
export -f kill_manager pids_of
phase "SIGKILL the manager" "kill_manager"
cat "$tmp/manager.txt"
grep -q '^FAIL' "$tmp/manager.txt" && failed=1
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

# Last, kill -9 the master under load: every process drover status listed
# (the master, the manager, the workers) is gone within 2 s (a zombie
# counts as gone: it runs nothing and holds no socket; its parent reaps it),
# no process of this build is left running, and drover start with the same
# config serves again (its pid file and control socket are stale now).
start plain ""
tree=$($D status -c "$tmp/plain.yaml" --json | python3 -c 'import json,sys; print(" ".join(str(r["pid"]) for r in json.load(sys.stdin) if r["pid"]))')
master=$(pids_of "$tmp/plain.yaml" master)
# alive PID...: those of the pids whose process still runs (not a zombie).
alive() {
  local p st
  for p; do
    st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || continue
    [ "$st" = Z ] || echo "$p"
  done
}
wrk -t1 -c64 -d"${secs}s" --latency http://127.0.0.1:18100/ >"$tmp/wrk.out" 2>&1 &
wrk_pid=$!
sleep 1
disown "$master" # no "Killed" job notice from bash
t0=$(date +%s%N)
kill -9 "$master"
left=$tree
while [ -n "$left" ] && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 5000 ]; do
  left=$(alive $left)
  [ -z "$left" ] || sleep 0.005
done
gone_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait $wrk_pid || true
row "SIGKILL the master"
# Any process of this build still running: an orphan of the killed tree.
orphans=""
for e in /proc/[0-9]*/exe; do
  case $(readlink "$e" 2>/dev/null) in "$bin/hello" | "$bin/hello (deleted)" | "$bin/drover" | "$bin/drover (deleted)") p=${e#/proc/}; orphans+=" $(alive "${p%/exe}")" ;; esac
done
orphans=$(echo $orphans)
t1=$(date +%s%N)
start plain ""
serve_ms=$(( ($(date +%s%N) - t1) / 1000000 ))
stop plain
n=$(wc -w <<<"$tree")
if [ -z "$left" ] && [ "$gone_ms" -le 2000 ]; then
  echo "SIGKILL the master: its $n processes ($tree) gone in $gone_ms ms (limit 2000 ms)"
else
  echo "FAIL: SIGKILL the master: of its $n processes ($tree), ${left:-none} still running after $gone_ms ms (limit 2000 ms)"
  failed=1
fi
if [ -z "$orphans" ]; then echo "orphans: none"; else echo "FAIL: orphans still running: $orphans"; failed=1; fi
echo "drover start again with the same config: serves after $serve_ms ms"

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
[ "${failed:-0}" = 0 ] || { echo "FAIL: see above"; exit 1; }
