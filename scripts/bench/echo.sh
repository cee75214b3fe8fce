#!/usr/bin/env bash
# Echo benchmark, one run on one machine: drover (2 Go echo workers, length
# protocol) against a single-process Go echo server (goroutine per
# connection) and the reactor alone in one process (the master's event loop
# without the worker hop). 64-byte packets; latency with 1 connection,
# throughput with 64. Prints one line per row and the ratios to the Go server.
# Usage: scripts/bench/echo.sh [duration per row, default 10s]
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-10s}
make build >/dev/null
go build -o bin/loadgen ./scripts/bench/loadgen
go build -o bin/rxecho ./scripts/bench/rxecho
tmp=$(mktemp -d /tmp/drbench.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
cat > "$tmp/echo.yaml" <<YAML
worker_num: 2
worker:
  cmd: [$PWD/bin/echo]
listeners:
  - address: tcp://127.0.0.1:19501
    protocol: length
    package_body_offset: 4
YAML
XDG_RUNTIME_DIR=$tmp DROVER_RUNTIME_DIR=$tmp/drover bin/drover start -c "$tmp/echo.yaml" 2>"$tmp/drover.log" & pids+=($!)
bin/loadgen -serve 127.0.0.1:19601 >/dev/null & pids+=($!)
bin/rxecho -addr 127.0.0.1:19701 >/dev/null & pids+=($!)
for i in $(seq 100); do grep -q "drover ready" "$tmp/drover.log" && break; sleep 0.1; done
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(go env GOVERSION), $dur per row, 64-byte packets"
for c in 1 64; do
  for t in go-single-process:19601 drover:19501 reactor-only:19701; do
    bin/loadgen -addr 127.0.0.1:${t#*:} -c $c -d "$dur" -label ${t%%:*}
  done
done | tee "$tmp/rows"
awk '$1=="go-single-process"{split($4,a,"=");base[$2]=a[2]} $1=="drover"{split($4,a,"=");d[$2]=a[2]}
  END{for(c in d) printf "drover / go-single-process req/s at %s: %.2f\n", c, d[c]/base[c]}' "$tmp/rows"
