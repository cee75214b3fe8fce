#!/usr/bin/env bash
# PHP hello-world benchmark, one run on one machine: examples/php/hello.php
# (the SDK's Drover\Http\Worker, which under php-fpm serves PHP's current
# request) run by drover with 2 PHP workers and by nginx + php-fpm (2
# static children, opcache as Debian ships it), with drover's 2 Go workers
# (examples/hello) as the reference, and php-fpm's best case (a bare echo
# script, no SDK); wrk at 8, 64 and 256 connections.
# Prints requests/s, p50, p99, the RSS of all of each server's processes
# and the ratio of each to nginx + php-fpm. Then the bootstrap case: the
# Slim 3 app in examples/php/slim, built once per drover worker but on
# every request under php-fpm, at 64 connections; then the framework cases:
# the Symfony 5.4 app of examples/php/symfony (GET /hello, a controller
# returning JSON) and the Laravel 8 app of examples/php/laravel (GET
# /hello through the web middleware: cookies, session, CSRF; 64 returning
# visitors, each with its session cookie), the same code under both, opcache on under both (drover's workers get
# opcache.enable_cli=1), at 64 connections.
# Needs: wrk nginx php-fpm php php-msgpack; php-slim, Debian's Symfony 5.4
# (php-symfony-framework-bundle php-symfony-runtime php-symfony-dotenv
# php-symfony-yaml) and php-laravel-framework php-sqlite3 for their cases.
# JIT=1 (the default) runs every PHP, drover's workers and php-fpm alike,
# with the tracing JIT as examples/php/hello.yaml does (opcache.jit=tracing,
# opcache.jit_buffer_size=64M; drover's also with opcache.enable_cli=1);
# JIT=0 runs them as Debian ships them (php-fpm: opcache on, JIT off; the
# CLI: opcache off).
# NATIVE=1 (the default) gives drover's PHP workers drover's PHP extension
# when it is built, as the examples do; NATIVE=0 runs the pure-PHP SDK.
# Usage: [ROUNDS=3] [JIT=1] [NATIVE=1] [ONLY=laravel] scripts/bench/php.sh [duration per run, default 10s]
# (ONLY=laravel: the Laravel case alone.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dur=${1:-10s}
need wrk wrk
need nginx nginx-light
need php php-cli
need curl curl
fpm=$(find_fpm)
[ -n "$fpm" ] || die "php-fpm not installed (apt-get install php-fpm)"
grep -qx msgpack <<<"$(php -m)" || die "PHP's msgpack extension not loaded (apt-get install php-msgpack)"
slim=1
[ -f /usr/share/php/Slim/App.php ] || slim=0
symfony=1
[ -f /usr/share/php/Symfony/Bundle/FrameworkBundle/autoload.php ] && [ -f /usr/share/php/Symfony/Component/Runtime/autoload.php ] || symfony=0
laravel=1
[ -f /usr/share/php/Illuminate/Foundation/Application.php ] || laravel=0
only=${ONLY:-}
[ "$only" != laravel ] || slim=0 symfony=0
make build php-ext >/dev/null
start_tmp drphp
# drover's PHP workers load drover's PHP extension (worker/php/ext) as the
# examples do, when it is built (make php-ext needs php-dev); NATIVE=0 runs
# them on the pure-PHP SDK.
if [ "${NATIVE:-1}" = 1 ] && [ -f bin/php-ext/drover.so ]; then
  export DROVER_WORKER_ENV="PHP_INI_SCAN_DIR: ':$PWD/bin/php-ext'"
  echo "# drover's PHP workers: with drover's PHP extension (bin/php-ext; NATIVE=0 runs them without)"
else
  echo "# drover's PHP workers: the pure-PHP SDK (drover's PHP extension $([ "${NATIVE:-1}" = 1 ] && echo 'is not built: make php-ext' || echo 'off: NATIVE=0'))"
fi
measure_rss=1

jit=()
if [ "${JIT:-1}" = 1 ]; then
  jit=(-d opcache.enable_cli=1 -d opcache.jit=tracing -d opcache.jit_buffer_size=64M)
  export FPM_FLAGS="-d opcache.jit=tracing -d opcache.jit_buffer_size=64M"
fi
hello=$PWD/examples/php/hello.php
start_drover drover-php 18090 exec php "${jit[@]}" "$hello"
start_fpm nginx+php-fpm 18091 "$hello"
start_drover drover-go 18092 "" "$PWD/bin/hello"
# php-fpm's best case as well: a bare script that only echoes, without the
# SDK (which php-fpm loads on every request), so that the ratio is not
# flattered by the SDK's cost under php-fpm.
mkdir -p "$tmp/bare"
echo '<?php header("Content-Type: text/plain; charset=utf-8"); echo "Hello, World!";' > "$tmp/bare/index.php"
start_fpm nginx+fpm-bare 18095 "$tmp/bare/index.php"
targets="nginx+php-fpm:18091 nginx+fpm-bare:18095 drover-php:18090 drover-go:18092"
[ -z "$only" ] || targets=""
slim_url=/hello/bench?greeting=Hi
slim_targets="nginx+fpm-slim:18094 drover-slim:18093"
if [ $slim = 1 ]; then
  start_drover drover-slim 18093 exec php "${jit[@]}" "$PWD/examples/php/slim/index.php"
  start_fpm nginx+fpm-slim 18094 "$PWD/examples/php/slim/index.php"
fi
opcache=(-d opcache.enable_cli=1 "${jit[@]}")
fw_url=/hello?name=bench
symfony_targets="nginx+fpm-symfony:18097 drover-symfony:18096"
if [ $symfony = 1 ]; then
  rm -rf examples/php/symfony/var/cache   # built anew from these sources
  start_drover drover-symfony 18096 exec env 'APP_RUNTIME=Drover\Symfony\Runtime' php "${opcache[@]}" "$PWD/examples/php/symfony/public/index.php"
  start_fpm nginx+fpm-symfony 18097 "$PWD/examples/php/symfony/public/index.php"
fi
laravel_targets="nginx+fpm-laravel:18099 drover-laravel:18098"
if [ $laravel = 1 ]; then
  start_drover drover-laravel 18098 exec php "${opcache[@]}" "$PWD/worker/php/laravel-worker.php" "$PWD/examples/php/laravel"
  start_fpm nginx+fpm-laravel 18099 "$PWD/examples/php/laravel/public/index.php"
fi

# Everyone answers, and answers right, before the clock starts.
expect() {
  local name=${1%%:*} url="http://127.0.0.1:${1#*:}$2"
  wait_http "$url" "$3" && return
  # The logs go with $tmp on exit: show their ends.
  tail -n 5 "$tmp"/*.log "$tmp"/fpm-*/fpm.log "$tmp"/fpm-*/nginx.err >&2 2>/dev/null || true
  die "$name: GET $url answered '$(curl -s "$url" | head -c 300)', want '$3'"
}
for t in $targets; do expect "$t" / "Hello, World!"; done
if [ $slim = 1 ]; then for t in $slim_targets; do expect "$t" "$slim_url" "Hi, bench!"; done; fi
if [ $symfony = 1 ]; then for t in $symfony_targets; do expect "$t" "$fw_url" '{"hello":"bench"}'; done; fi
if [ $laravel = 1 ]; then for t in $laravel_targets; do expect "$t" "$fw_url" '{"hello":"bench"}'; done; fi

# Each cell is measured $rounds times and reported by its median (lib.sh).
# RSS: the server's processes summed (drover: master, manager and workers;
# nginx master and workers + the php-fpm master and children) after its run.
echo "# $(machine), php $(php -r 'echo PHP_VERSION;'), wrk -t1 -d$dur, $rounds rounds (median), GET / -> 'Hello, World!'"
columns
for c in ${targets:+8 64 256}; do
  measure $c / $targets
  report $c nginx+php-fpm $targets
done
echo "# latency at 256 connections (each round's p99 over its mean, and their median): a request that waits for a worker should wait about as long as those before it"
tail_ratio 256 $targets

echo
if [ -n "$only" ]; then :
elif [ $slim = 0 ]; then
  echo "# bootstrap: skipped, php-slim not installed (apt-get install php-slim)"
else
  echo "# bootstrap: examples/php/slim (Slim 3, ~20 routes), GET $slim_url -> 'Hi, bench!'"
  columns
  measure 64 "$slim_url" $slim_targets
  report 64 nginx+fpm-slim $slim_targets
fi

echo
if [ -n "$only" ]; then :
elif [ $symfony = 0 ]; then
  echo "# symfony: skipped, Debian's Symfony 5.4 not installed (apt-get install php-symfony-framework-bundle php-symfony-runtime php-symfony-dotenv php-symfony-yaml)"
else
  echo "# symfony: examples/php/symfony (Symfony 5.4, Drover\\Symfony\\Runtime), GET $fw_url -> JSON"
  columns
  measure 64 "$fw_url" $symfony_targets
  report 64 nginx+fpm-symfony $symfony_targets
fi

echo
if [ $laravel = 0 ]; then
  echo "# laravel: skipped, php-laravel-framework not installed (apt-get install php-laravel-framework php-sqlite3)"
else
  echo "# laravel: examples/php/laravel (Laravel 8, laravel-worker.php, web middleware), GET $fw_url -> JSON"
  # 64 returning visitors, each with its session cookie (one per wrk
  # connection), the sessions directory emptied first: docs/benchmarks.md.
  find examples/php/laravel/storage/framework/sessions -type f ! -name .gitignore -delete
  for _ in $(seq 64); do
    curl -sf -o /dev/null -D - "http://127.0.0.1:18099$fw_url" | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\).*/\1/ip' | paste -sd ';' | sed 's/;/; /g'
  done > "$tmp/cookies"
  export BENCH_COOKIES=$tmp/cookies
  wrk_script=scripts/bench/sessions.lua
  columns
  measure 64 "$fw_url" $laravel_targets
  report 64 nginx+fpm-laravel $laravel_targets
  wrk_script=""
fi
