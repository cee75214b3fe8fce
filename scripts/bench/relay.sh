#!/usr/bin/env bash
# Large bodies through a process hop: the ceiling (issue 17). Measures
# scripts/bench/relay (a stripped-down master in each of its modes, with
# examples/hello's Go SDK workers and with its own minimal "raw" worker),
# drover itself and single-process net/http, on GET /64k (a 64 KiB answer)
# and POST /echo (1 MiB sent back), at 8 and 64 connections, with wrk in
# interleaved rounds. For each run it records req/s and CPU time: the
# server's process tree (utime + stime of every process, from /proc) and
# the whole machine's (non-idle time in /proc/stat, wrk and the kernel's
# softirq work included), each divided by the requests served. Prints, per
# cell, the median of each column and the req/s ratio to net/http (of the
# medians, and per round).
# Usage: [ROUNDS=5] [CASES="64k echo"] [CONNS="8 64"] [MODES="copy bounce splice"]
#        [WORKERS="hello raw"] [DROVER=1] [RELAY_FLAGS=...] scripts/bench/relay.sh [duration per run, default 3s]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dur=${1:-3s}
rounds=${ROUNDS:-5}
cases=${CASES:-64k echo}
conns=${CONNS:-8 64}
modes=${MODES:-copy bounce splice}
workers=${WORKERS:-hello raw}
need wrk "wrk"
make build >/dev/null
go build -o bin/nethttp ./scripts/bench/nethttp
go build -o bin/relay ./scripts/bench/relay
start_tmp drrelay

port_free 18081
bin/nethttp -addr 127.0.0.1:18081 & pids+=($!)
roots[net/http]=$!
targets="net/http:18081"
if [ "${DROVER:-1}" = 1 ]; then
  start_drover drover 18080 "" "$PWD/bin/hello"
  targets+=" drover:18080"
fi
port=18090
for wk in $workers; do
  cmd=$PWD/bin/hello
  [ "$wk" = raw ] && cmd=raw
  for m in $modes; do
    port_free $port
    # shellcheck disable=SC2086
    bin/relay -addr 127.0.0.1:$port -mode "$m" -worker "$cmd" ${RELAY_FLAGS:-} 2>"$tmp/relay-$m-$wk.log" & pids+=($!)
    roots[$m/$wk]=$!
    targets+=" $m/$wk:$port"
    port=$((port + 1))
  done
done
for t in $targets; do wait_http "http://127.0.0.1:${t#*:}/" || die "${t%%:*} does not answer"; done

head -c $((1 << 20)) /dev/urandom > "$tmp/body.bin"
cat > "$tmp/post.lua" <<LUA
local f = assert(io.open("$tmp/body.bin", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
for t in $targets; do
  u="http://127.0.0.1:${t#*:}"
  [ "$(curl -sf "$u/64k" | wc -c)" = 65536 ] || die "${t%%:*}: GET /64k is not 64 KiB"
  curl -sf -H 'Expect:' --data-binary "@$tmp/body.bin" -H 'Content-Type: application/octet-stream' "$u/echo" |
    cmp -s - "$tmp/body.bin" || die "${t%%:*}: POST /echo does not send the body back"
done

hz=$(getconf CLK_TCK)
# tree_ticks PID...: utime + stime of the processes in the trees, in ticks.
tree_ticks() {
  local p s
  for p in $(descendants "$@"); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    awk '{print $12 + $13}' <<<"$s"
  done | awk '{s += $1} END {print s + 0}'
}
# busy_ticks: the machine's non-idle time (user nice system irq softirq steal).
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

declare -A res=()
echo "# $(machine), $(uname -r), wrk -t1 -d$dur, $rounds rounds, medians; CPU in µs per request (server tree / whole machine)"
printf "%-6s %5s %-14s %9s %7s %9s %9s   %s\n" case conns server "req/s" ratio "srv µs" "all µs" "ratio per round"
for cs in $cases; do
  path=/64k script=""
  [ "$cs" = echo ] && path=/echo script="-s $tmp/post.lua"
  for c in $conns; do
    res=()
    for round in $(seq "$rounds"); do
      for t in $targets; do
        name=${t%%:*}
        t0=$(tree_ticks ${roots[$name]}) b0=$(busy_ticks)
        # shellcheck disable=SC2086
        out=$(wrk -t1 -c"$c" -d"$dur" $script "http://127.0.0.1:${t#*:}$path")
        t1=$(tree_ticks ${roots[$name]}) b1=$(busy_ticks)
        n=$(awk '/requests in/{print $1}' <<<"$out")
        r=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
        errs=$(awk '/Non-2xx|Socket errors/{printf "%s; ", $0}' <<<"$out")
        [ -z "$errs" ] || echo "# $name $cs c=$c round $round: $errs"
        res[$name]+="$r $(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$hz" 'BEGIN{printf "%.1f", (b-a)/hz/n*1e6}') $(awk -v a="$b0" -v b="$b1" -v n="$n" -v hz="$hz" 'BEGIN{printf "%.1f", (b-a)/hz/n*1e6}') $round"$'\n'
      done
    done
    med() { sed '/^$/d' <<<"${res[$1]}" | sort -n -k"$2,$2" | awk -v k="$2" '{v[NR]=$k} END{print v[int((NR+1)/2)]}'; }
    base=$(med net/http 1)
    for t in $targets; do
      name=${t%%:*}
      per=""
      while read -r r _ _ round; do
        [ -n "$r" ] || continue
        b=$(awk -v rd="$round" '$4==rd{print $1}' <<<"${res[net/http]}")
        per+="$(awk -v a="$r" -v b="$b" 'BEGIN{printf "%.2f", a/b}') "
      done <<<"${res[$name]}"
      r=$(med "$name" 1)
      printf "%-6s %5d %-14s %9.0f %7.2f %9s %9s   %s\n" "$cs" "$c" "$name" "$r" "$(awk -v a="$r" -v b="$base" 'BEGIN{print a/b}')" \
        "$(med "$name" 2)" "$(med "$name" 3)" "$per"
    done
  done
done
for wk in $workers; do for m in $modes; do kill -TERM "${roots[$m/$wk]}" 2>/dev/null || true; done; done
sleep 0.3
for wk in $workers; do for m in $modes; do echo "# $m/$wk: $(grep -h "requests;" "$tmp/relay-$m-$wk.log")"; done; done
