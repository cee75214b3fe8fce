#!/usr/bin/env bash
# Echo benchmark: drover (2 echo workers, length protocol) against a
# single-process Go echo server, same machine, same run. 64-byte packets;
# latency with 1 connection, throughput with 64. Usage: scripts/bench/echo.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-10s}
make build >/dev/null
go build -o bin/loadgen ./scripts/bench/loadgen
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
XDG_RUNTIME_DIR=$tmp bin/drover start -c "$tmp/echo.yaml" 2>"$tmp/drover.log" & pids+=($!)
bin/loadgen -serve 127.0.0.1:19601 >/dev/null & pids+=($!)
# Wait for both to accept (the ready line, then a connect).
for i in $(seq 100); do grep -q "drover ready" "$tmp/drover.log" && break; sleep 0.1; done
echo "# $(date -u +%FT%TZ) $(nproc) cores, go $(go env GOVERSION), duration $dur per row"
for c in 1 64; do
  bin/loadgen -addr 127.0.0.1:19501 -c $c -d "$dur" -label drover
  bin/loadgen -addr 127.0.0.1:19601 -c $c -d "$dur" -label go-single-process
done
