#!/usr/bin/env bash
# HTTP hello-world benchmark, one run on one machine: drover (2 Go workers,
# examples/hello), a single-process Go net/http server, and nginx + php-fpm
# (2 static children), each measured with wrk at 8, 64 and 256 connections.
# Prints requests/s, p50 and p99 and the ratio of each to net/http.
# Needs: wrk nginx php-fpm (Debian: apt-get install wrk nginx-light php-fpm).
# Usage: [ROUNDS=3] scripts/bench/http.sh [duration per run, default 10s]
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-10s}
rounds=${ROUNDS:-3}
for bin in wrk nginx; do command -v $bin >/dev/null || { echo "$bin not installed (apt-get install wrk nginx-light php-fpm)"; exit 1; }; done
fpm=$(command -v php-fpm || ls /usr/sbin/php-fpm* 2>/dev/null | head -1 || true)
make build >/dev/null
go build -o bin/nethttp ./scripts/bench/nethttp
tmp=$(mktemp -d /tmp/drhttp.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# drover with examples/hello's handler.
cat > "$tmp/hello.yaml" <<YAML
worker_num: 2
worker:
  cmd: [$PWD/bin/hello]
listeners:
  - address: tcp://127.0.0.1:18080
    protocol: http
YAML
XDG_RUNTIME_DIR=$tmp bin/drover start -c "$tmp/hello.yaml" 2>"$tmp/drover.log" & pids+=($!)
bin/nethttp -addr 127.0.0.1:18081 & pids+=($!)

# nginx + php-fpm, 2 children, both as the current user.
targets="net/http:18081 drover:18080"
if [ -n "$fpm" ]; then
  mkdir -p "$tmp/www"
  echo '<?php header("Content-Type: text/plain; charset=utf-8"); echo "Hello, World!";' > "$tmp/www/index.php"
  cat > "$tmp/fpm.conf" <<FPM
[global]
error_log = $tmp/fpm.log
daemonize = no
[www]
listen = $tmp/fpm.sock
pm = static
pm.max_children = 2
FPM
  cat > "$tmp/nginx.conf" <<NGX
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp; fastcgi_temp_path $tmp; proxy_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server {
    listen 127.0.0.1:18082;
    root $tmp/www;
    location / {
      fastcgi_pass unix:$tmp/fpm.sock;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $tmp/www/index.php;
    }
  }
}
NGX
  root_flag=""; [ "$(id -u)" = 0 ] && root_flag="-R"
  "$fpm" $root_flag -y "$tmp/fpm.conf" & pids+=($!)
  nginx -c "$tmp/nginx.conf" -g "user $(id -un);" & pids+=($!)
  targets="$targets nginx+php-fpm:18082"
fi

# Everyone answers before the clock starts.
for t in $targets; do
  for i in $(seq 100); do curl -sf "http://127.0.0.1:${t#*:}/" >/dev/null 2>&1 && break; sleep 0.1; done
done

# Each cell is measured $rounds times, the servers taking turns within a
# round, and reported by its median: on a shared 2-core VM one 10 s run of
# the same server varies by ±10 %, more than the effects measured.
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(go env GOVERSION), wrk -t1 -d$dur, $rounds rounds (median), GET / -> 'Hello, World!'"
printf "%-16s %6s %12s %10s %10s %12s   %s\n" server conns "req/s" p50 p99 "req/s ratio" "ratio per round"
for c in 8 64 256; do
  declare -A runs=()
  for round in $(seq "$rounds"); do
    for t in $targets; do
      name=${t%%:*} port=${t#*:}
      out=$(wrk -t1 -c$c -d"$dur" --latency "http://127.0.0.1:$port/")
      r=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
      p50=$(awk '$1=="50%"{print $2}' <<<"$out")
      p99=$(awk '$1=="99%"{print $2}' <<<"$out")
      errs=$(awk '/Non-2xx|Socket errors/{printf "%s; ", $0}' <<<"$out")
      runs[$name]+="$r $p50 $p99 $round ${errs// /_}"$'\n'
    done
  done
  base_med=""
  declare -A base_round=()
  while read -r r _ _ round _; do [ -n "$round" ] && base_round[$round]=$r; done <<<"${runs["net/http"]}"
  for t in $targets; do
    name=${t%%:*}
    # The median run by req/s (rounds is odd; with an even count, the upper one).
    read -r r p50 p99 _ errs < <(sort -n -k1,1 <<<"${runs[$name]}" | sed '/^$/d' | sed -n "$(( (rounds + 2) / 2 ))p")
    [ "$name" = net/http ] && base_med=$r
    ratio=$(awk -v a="$r" -v b="$base_med" 'BEGIN{printf "%.2f", a/b}')
    per=""
    while read -r rr _ _ round _; do
      [ -n "$rr" ] && per+="$(awk -v a="$rr" -v b="${base_round[$round]}" 'BEGIN{printf "%.2f", a/b}') "
    done <<<"${runs[$name]}"
    printf "%-16s %6d %12s %10s %10s %12s   %s%s\n" "$name" "$c" "$r" "$p50" "$p99" "$ratio" "$per" "${errs//_/ }"
  done
  unset runs base_round
done
