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
# Usage: [ROUNDS=3] [OLD=DIR] scripts/bench/http.sh [duration per run, default 10s]
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
targets="net/http:18081 drover:18080"
if [ -n "${OLD:-}" ]; then
  DROVER=$OLD/drover start_drover drover-old 18085 "" "$OLD/hello"
  targets="$targets drover-old:18085"
fi

# nginx + php-fpm with a one-line script (php.sh runs the SDK under it).
if [ -n "$fpm" ]; then
  mkdir -p "$tmp/www"
  echo '<?php header("Content-Type: text/plain; charset=utf-8"); echo "Hello, World!";' > "$tmp/www/index.php"
  start_fpm nginx+php-fpm 18082 "$tmp/www/index.php"
  targets="$targets nginx+php-fpm:18082"
fi

# The Python peers, each the same hello world under WSGI.
if command -v gunicorn >/dev/null; then
  start_gunicorn gunicorn 18083
  targets="$targets gunicorn:18083"
else
  echo "# gunicorn not installed (apt-get install gunicorn): not measured"
fi
if command -v uwsgi >/dev/null && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; then
  start_uwsgi uwsgi 18084
  targets="$targets uwsgi:18084"
else
  echo "# uWSGI not installed (apt-get install uwsgi-core uwsgi-plugin-python3): not measured"
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
