#!/usr/bin/env bash
# Shared tables (docs/tables.md), one run on one machine:
#  1. Go: get and set ns/op of shm.Table (go test -bench ./shm), one process.
#  2. PHP: Drover\Table's get, set and incr per second against APCu's in
#     the same PHP (scripts/bench/php-tables.php under scripts/shmhost).
#  3. HTTP: GET /item?id=K (K random in 1..1000) answered from a shared
#     table against the same handler with a per-process map, Go
#     (scripts/bench/tablehttp) and PHP (scripts/bench/tables-http.php),
#     drover with 2 workers each, wrk at 64 connections.
# Needs: wrk php php-msgpack php-apcu libatomic1.
# Usage: [ROUNDS=3] scripts/bench/tables.sh [duration per wrk run, default 5s]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dur=${1:-5s}
need wrk wrk
need php php-cli
make build >/dev/null
go build -o bin/shmhost ./scripts/shmhost
go build -o bin/tablehttp ./scripts/bench/tablehttp
start_tmp drtab

echo "# $(machine)"
echo "## Go: shm.Table, one process (go test -bench ./shm)"
go test -run '^$' -bench . -benchmem ./shm | grep -E '^Benchmark'

echo
echo "## PHP $(php -r 'echo PHP_VERSION;'): Drover\\Table against APCu, one process"
php -m | grep -qx apcu || echo "(APCu not installed: apt-get install php-apcu)"
bin/shmhost -table 'cache:1000:value=string(256),hits=int,updated=float' -- \
  php -d apc.enable_cli=1 scripts/bench/php-tables.php 2

echo
echo "## HTTP: GET /item?id=K from a shared table against a per-process map, 2 workers, wrk -t1 -c64 -d$dur, $rounds rounds (median)"
DROVER_EXTRA='tables: {items: {size: 1024, columns: {name: string(32), price: float}}}'
start_drover go-table 18190 "" "$PWD/bin/tablehttp" table
start_drover go-map 18191 "" "$PWD/bin/tablehttp" map
start_drover php-table 18192 exec php "$PWD/scripts/bench/tables-http.php" table
start_drover php-map 18193 exec php "$PWD/scripts/bench/tables-http.php" map
for t in go-table:18190 go-map:18191 php-table:18192 php-map:18193; do
  wait_http "http://127.0.0.1:${t#*:}/item?id=7" "item number 7 0.7" || die "${t%%:*}: /item?id=7 did not answer 'item number 7 0.7'"
done
wrk_script=scripts/bench/tables-item.lua
columns
measure 64 / go-map:18191 go-table:18190
report 64 go-map go-map:18191 go-table:18190
measure 64 / php-map:18193 php-table:18192
report 64 php-map php-map:18193 php-table:18192
