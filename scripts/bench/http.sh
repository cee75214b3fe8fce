#!/usr/bin/env bash
# HTTP hello-world benchmark, one run on one machine: drover (2 Go workers,
# examples/hello), a single-process Go net/http server, and nginx + php-fpm
# (2 static children), each measured with wrk at 8, 64 and 256 connections.
# Prints requests/s, p50 and p99 and the ratio of each to net/http.
# Needs: wrk nginx php-fpm (Debian: apt-get install wrk nginx-light php-fpm).
# Usage: [ROUNDS=3] scripts/bench/http.sh [duration per run, default 10s]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dur=${1:-10s}
for bin in wrk nginx; do need $bin "wrk nginx-light php-fpm"; done
fpm=$(find_fpm)
make build >/dev/null
go build -o bin/nethttp ./scripts/bench/nethttp
start_tmp drhttp

# drover with examples/hello's handler.
start_drover drover 18080 "" "$PWD/bin/hello"
port_free 18081
bin/nethttp -addr 127.0.0.1:18081 & pids+=($!)

# nginx + php-fpm with a one-line script (php.sh runs the SDK under it).
targets="net/http:18081 drover:18080"
if [ -n "$fpm" ]; then
  mkdir -p "$tmp/www"
  echo '<?php header("Content-Type: text/plain; charset=utf-8"); echo "Hello, World!";' > "$tmp/www/index.php"
  start_fpm nginx+php-fpm 18082 "$tmp/www/index.php"
  targets="$targets nginx+php-fpm:18082"
fi

# Everyone answers before the clock starts.
for t in $targets; do wait_http "http://127.0.0.1:${t#*:}/" || true; done

# Each cell is measured $rounds times and reported by its median (lib.sh).
echo "# $(machine), wrk -t1 -d$dur, $rounds rounds (median), GET / -> 'Hello, World!'"
columns
for c in 8 64 256; do
  measure $c / $targets
  report $c net/http $targets
done
