#!/usr/bin/env bash
# Large bodies through a process hop: the ceiling (issue 17). Measures
# scripts/bench/relay (a stripped-down master in each of its modes, with
# examples/hello's Go SDK workers and with its own minimal "raw" worker;
# shm, a prototype, with the raw worker only; with OLD=DIR, the worker
# "old" is DIR/hello, an older build's, to compare SDKs side by side),
# drover itself and single-process net/http, on GET /64k (a 64 KiB answer)
# and POST /echo (1 MiB sent back), at 8 and 64 connections, with wrk in
# interleaved rounds. For each run it records req/s and CPU time: the
# server's process tree (utime + stime of every process, from /proc) and
# the whole machine's (non-idle time in /proc/stat, wrk and the kernel's
# softirq work included), each divided by the requests served; and the
# master's alone (the root process of the tree: relay, drover's master,
# net/http) and wrk's. "other" is the machine's CPU time that was neither
# the server's nor wrk's (other users of the machine: a run with much of it
# is suspect). Prints, per cell, the median of each column and the req/s
# ratio to net/http (of the medians, and per round).
# Usage: [ROUNDS=5] [CASES="64k echo"] [CONNS="8 64"] [MODES="copy bounce splice shm"]
#        [WORKERS="hello raw"] [VARIANTS="mode/worker[/flag,...] ..."] [WITH_DROVER=1] [OLD=DIR]
#        [OLD_DROVER=DIR (also "drover-old": DIR/drover serving DIR/hello, an older build's bin/)]
#        [RELAY_FLAGS=...] scripts/bench/relay.sh [duration per run, default 3s]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dur=${1:-3s}
rounds=${ROUNDS:-5}
cases=${CASES:-64k echo}
conns=${CONNS:-8 64}
modes=${MODES:-copy bounce splice shm}
workers=${WORKERS:-hello raw}
need wrk "wrk"
make build >/dev/null
go build -o bin/nethttp ./scripts/bench/nethttp
go build -o bin/relay ./scripts/bench/relay
start_tmp drrelay

port_free 18181
bin/nethttp -addr 127.0.0.1:18181 & pids+=($!)
roots[net/http]=$!
targets="net/http:18181"
if [ "${WITH_DROVER:-1}" = 1 ]; then
  start_drover drover 18180 "" "$PWD/bin/hello"
  targets+=" drover:18180"
fi
if [ -n "${OLD_DROVER:-}" ]; then
  DROVER=$OLD_DROVER/drover start_drover drover-old 18182 "" "$OLD_DROVER/hello"
  targets+=" drover-old:18182"
fi
# The relays: VARIANTS lists them as mode/worker[/flag,flag...], e.g.
# "copy/hello copy/hello/-bodyframe=1048576,-noflow"; by default every
# mode of MODES with every worker of WORKERS (shm with raw only).
variants=${VARIANTS:-}
if [ -z "$variants" ]; then
  for wk in $workers; do
    for m in $modes; do
      [ "$m" = shm ] && [ "$wk" != raw ] && continue # the prototype has no SDK side
      variants+=" $m/$wk"
    done
  done
fi
port=18190
relays=""
for v in $variants; do
  IFS=/ read -r m wk flags <<<"$v"
  case $wk in
  hello) cmd=$PWD/bin/hello ;;
  raw) cmd=raw ;;
  old) cmd=${OLD:?OLD=DIR names the folder of an older build\'s hello}/hello ;;
  *) die "$v: the worker is hello, raw or old" ;;
  esac
  port_free $port
  # shellcheck disable=SC2086
  bin/relay -addr 127.0.0.1:$port -mode "$m" -worker "$cmd" ${RELAY_FLAGS:-} ${flags//,/ } 2>"$tmp/relay-$port.log" & pids+=($!)
  roots[$v]=$!
  targets+=" $v:$port"
  relays+=" $v:$port"
  port=$((port + 1))
done
for t in $targets; do wait_http "http://127.0.0.1:${t#*:}/" || { tail -n 5 "$tmp"/*.log >&2; die "${t%%:*} does not answer"; }; done

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
# own_ticks PID: utime + stime of the process alone.
own_ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; awk '{print $12 + $13}' <<<"$s"; }
us() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$hz" 'BEGIN{printf "%.1f", (b-a)/hz/n*1e6}'; }

declare -A res=()
echo "# $(machine), $(uname -r), wrk -t1 -d$dur, $rounds rounds, medians; CPU in µs per request (server tree / whole machine)"
printf "%-6s %5s %-24s %8s %6s %8s %8s %8s %8s %7s   %s\n" case conns server "req/s" ratio "srv µs" "master" "wrk" "all µs" "other" "ratio per round"
for cs in $cases; do
  path=/64k script=""
  [ "$cs" = echo ] && path=/echo script="-s $tmp/post.lua"
  for c in $conns; do
    res=()
    for round in $(seq "$rounds"); do
      for t in $targets; do
        name=${t%%:*}
        root=${roots[$name]%% *}
        t0=$(tree_ticks ${roots[$name]}) m0=$(own_ticks "$root") b0=$(busy_ticks)
        # shellcheck disable=SC2086
        out=$(wrk -t1 -c"$c" -d"$dur" $script "http://127.0.0.1:${t#*:}$path"; times)
        t1=$(tree_ticks ${roots[$name]}) m1=$(own_ticks "$root") b1=$(busy_ticks)
        n=$(awk '/requests in/{print $1}' <<<"$out")
        r=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
        # times: "0m1.030s 0m0.500s" for the children (wrk), its last line.
        wsec=$(tail -1 <<<"$out" | awk '{s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] } print s}')
        errs=$(awk '/Non-2xx|Socket errors/{printf "%s; ", $0}' <<<"$out")
        [ -z "$errs" ] || echo "# $name $cs c=$c round $round: $errs"
        srv=$(us "$t0" "$t1" "$n") all=$(us "$b0" "$b1" "$n")
        wrk_us=$(awk -v s="$wsec" -v n="$n" 'BEGIN{printf "%.1f", s/n*1e6}')
        res[$name]+="$r $srv $(us "$m0" "$m1" "$n") $wrk_us $all $(awk -v a="$all" -v s="$srv" -v w="$wrk_us" 'BEGIN{printf "%.1f", a-s-w}') $round"$'\n'
      done
    done
    med() { sed '/^$/d' <<<"${res[$1]}" | sort -n -k"$2,$2" | awk -v k="$2" '{v[NR]=$k} END{print v[int((NR+1)/2)]}'; }
    base=$(med net/http 1)
    for t in $targets; do
      name=${t%%:*}
      per=""
      while read -r r _ _ _ _ _ round; do
        [ -n "$r" ] || continue
        b=$(awk -v rd="$round" '$7==rd{print $1}' <<<"${res[net/http]}")
        per+="$(awk -v a="$r" -v b="$b" 'BEGIN{printf "%.2f", a/b}') "
      done <<<"${res[$name]}"
      r=$(med "$name" 1)
      printf "%-6s %5d %-24s %8.0f %6.2f %8s %8s %8s %8s %7s   %s\n" "$cs" "$c" "$name" "$r" "$(awk -v a="$r" -v b="$base" 'BEGIN{print a/b}')" \
        "$(med "$name" 2)" "$(med "$name" 3)" "$(med "$name" 4)" "$(med "$name" 5)" "$(med "$name" 6)" "$per"
    done
  done
done
for r in $relays; do kill -TERM "${roots[${r%:*}]}" 2>/dev/null || true; done
sleep 0.3
for r in $relays; do echo "# ${r%:*}: $(grep -h "requests;" "$tmp/relay-${r##*:}.log")"; done
