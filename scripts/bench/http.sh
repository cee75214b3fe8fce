#!/usr/bin/env bash
# HTTP hello-world benchmark, one run on one machine: drover (2 Go workers,
# examples/hello), a single-process Go net/http server, nginx + php-fpm
# (2 static children), gunicorn (2 sync workers) and uWSGI (2 processes
# behind its HTTP router), each measured with wrk at 8, 64 and 256
# connections. Prints requests/s, p50 and p99 and the ratio of each to
# net/http. Needs: wrk nginx php-fpm (Debian: apt-get install wrk
# nginx-light php-fpm); gunicorn and uWSGI are measured when installed
# (apt-get install gunicorn uwsgi-core uwsgi-plugin-python3).
# OLD=DIR also measures the drover and hello built in DIR (e.g. a previous
# commit's bin/, built with `git worktree add /tmp/old COMMIT && make -C
# /tmp/old build`) as "drover-old", in the same rounds: a redesign is
# compared with the build before it side by side.
# Large bodies (CASES=big runs only these, against drover, net/http and
# drover-old): a 64 KiB answer (GET /64k) and a 1 MiB POST echoed back
# (POST /echo, the body made by a wrk Lua script), at 8 and 64 connections.
# ADMIN=1 also measures "drover+metrics": the same drover with its admin
# listener on (the data plane counts every request for /metrics) and
# /metrics scraped every second during the runs, in the same rounds.
# CONNS="64" measures the hello world at those connection counts only
# (default "8 64 256"); PEERS=0 leaves nginx + php-fpm, gunicorn and
# uWSGI out.
# The access log's cost (CASES=access runs only this): drover as above
# beside the same drover writing a JSON access log to a file (in
# ACCESS_DIR, default the temp dir; /dev/shm leaves the disk out), hello
# world at 64 connections; with ADMIN=1 also "drover+both": the access log
# and the admin listener (/metrics scraped every second) together.
# Usage: [ROUNDS=3] [OLD=DIR] [ADMIN=1] [CONNS=…] [PEERS=0] [CASES=all|hello|big|access] scripts/bench/http.sh [duration per run, default 10s]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dur=${1:-10s}
cases=${CASES:-all}
case $cases in all | hello | big | access) ;; *) die "CASES must be all, hello, big or access" ;; esac
if [ "$cases" = access ]; then
  need wrk wrk
  make build >/dev/null
  start_tmp drhttp
  start_drover drover 18094 "" "$PWD/bin/hello"
  alog=$(mktemp -d "${ACCESS_DIR:-$tmp}/access.XXXX")/access.log
  DROVER_EXTRA="access_log: {path: $alog, format: json}" start_drover drover+access 18095 "" "$PWD/bin/hello"
  targets="drover:18094 drover+access:18095"
  blog=""
  if [ -n "${ADMIN:-}" ]; then
    port_free 18196
    blog=$(dirname "$alog")/both.log
    DROVER_EXTRA="access_log: {path: $blog, format: json}
admin: {address: tcp://127.0.0.1:18196}" start_drover drover+both 18096 "" "$PWD/bin/hello"
    targets="$targets drover+both:18096"
    (while sleep 1; do curl -sf -o /dev/null http://127.0.0.1:18196/metrics || true; done) & pids+=($!)
  fi
  for t in $targets; do wait_http "http://127.0.0.1:${t#*:}/"; done
  echo "# $(machine), wrk -t1 -d$dur, $rounds rounds (median), GET / -> 'Hello, World!', JSON access log to a file"
  columns
  measure 64 / $targets
  report 64 drover $targets
  for l in "$alog:18095" ${blog:+"$blog:18096"}; do
    dropped=$(grep -o 'dropped_total=[0-9]*' "$tmp/drover-${l##*:}.log" | tail -1 | cut -d= -f2 || true)
    echo "# access log (${l%:*}): $(wc -l < "${l%:*}") lines, $(du -h "${l%:*}" | cut -f1); ${dropped:-0} lines dropped"
  done
  rm -rf "$(dirname "$alog")"
  exit 0
fi
hello=0 big=0
[ "$cases" = big ] || hello=1
[ "$cases" = hello ] || big=1
need wrk "wrk nginx-light php-fpm"
fpm=""
if [ $hello = 1 ] && [ "${PEERS:-1}" != 0 ]; then
  need nginx "wrk nginx-light php-fpm"
  fpm=$(find_fpm)
fi
make build >/dev/null
go build -o bin/nethttp ./scripts/bench/nethttp
start_tmp drhttp

# drover with examples/hello's handler.
start_drover drover 18080 "" "$PWD/bin/hello"
port_free 18081
bin/nethttp -addr 127.0.0.1:18081 & pids+=($!)
roots[net/http]=$!
targets="net/http:18081 drover:18080"
if [ -n "${OLD:-}" ]; then
  DROVER=$OLD/drover start_drover drover-old 18085 "" "$OLD/hello"
  targets="$targets drover-old:18085"
fi
if [ -n "${ADMIN:-}" ]; then
  port_free 18186
  DROVER_EXTRA="admin: {address: tcp://127.0.0.1:18186}" start_drover drover+metrics 18086 "" "$PWD/bin/hello"
  targets="$targets drover+metrics:18086"
  (while sleep 1; do curl -sf -o /dev/null http://127.0.0.1:18186/metrics || true; done) & pids+=($!)
fi

# The peers below answer the hello world only.
drover_targets=$targets
# nginx + php-fpm with a one-line script (php.sh runs the SDK under it).
if [ -n "$fpm" ]; then
  mkdir -p "$tmp/www"
  echo '<?php header("Content-Type: text/plain; charset=utf-8"); echo "Hello, World!";' > "$tmp/www/index.php"
  start_fpm nginx+php-fpm 18082 "$tmp/www/index.php"
  targets="$targets nginx+php-fpm:18082"
fi

# The Python peers, each the same hello world under WSGI.
if [ $hello = 0 ] || [ "${PEERS:-1}" = 0 ]; then
  :
elif command -v gunicorn >/dev/null; then
  start_gunicorn gunicorn 18083
  targets="$targets gunicorn:18083"
else
  echo "# gunicorn not installed (apt-get install gunicorn): not measured"
fi
if [ $hello = 0 ] || [ "${PEERS:-1}" = 0 ]; then
  :
elif command -v uwsgi >/dev/null && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; then
  start_uwsgi uwsgi 18084
  targets="$targets uwsgi:18084"
else
  echo "# uWSGI not installed (apt-get install uwsgi-core uwsgi-plugin-python3): not measured"
fi

# Everyone answers before the clock starts.
for t in $targets; do wait_http "http://127.0.0.1:${t#*:}/" || true; done

# Each cell is measured $rounds times and reported by its median (lib.sh).
if [ $hello = 1 ]; then
  echo "# $(machine), wrk -t1 -d$dur, $rounds rounds (median), GET / -> 'Hello, World!'"
  columns
  for c in ${CONNS:-8 64 256}; do
    measure $c / $targets
    report $c net/http $targets
  done
fi
[ $big = 1 ] || exit 0

# serving CHECK WHY: big_targets becomes those of drover_targets whose
# server passes CHECK (a command given its base URL); each other one is
# named with WHY and left out (an older build's hello may lack a route).
serving() {
  local t
  big_targets=""
  for t in $drover_targets; do
    if $1 "http://127.0.0.1:${t#*:}"; then
      big_targets+=" $t"
    else
      echo "# ${t%%:*}: $2: not measured"
    fi
  done
}
# The 1 MiB body, and the wrk script that POSTs it.
head -c $((1 << 20)) /dev/urandom > "$tmp/body.bin"
cat > "$tmp/post.lua" <<LUA
local f = assert(io.open("$tmp/body.bin", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
get64k() { [ "$(curl -sf "$1/64k" | wc -c)" = 65536 ]; }
echo1m() { curl -sf --data-binary "@$tmp/body.bin" -H 'Content-Type: application/octet-stream' "$1/echo" | cmp -s - "$tmp/body.bin"; }

echo "# $(machine), wrk -t1 -d$dur, $rounds rounds (median), GET /64k -> 64 KiB"
serving get64k "its hello has no GET /64k answering 64 KiB"
columns
for c in 8 64; do
  measure $c /64k $big_targets
  report $c net/http $big_targets
done
echo "# $(machine), wrk -t1 -d$dur, $rounds rounds (median), POST /echo 1 MiB -> the same 1 MiB"
serving echo1m "its hello has no POST /echo sending the body back"
wrk_script=$tmp/post.lua
columns
for c in 8 64; do
  measure $c /echo $big_targets
  report $c net/http $big_targets
done
