#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60s each): the frame decoder
# and payload codecs, the HTTP parser (differential against net/http),
# the stream splitters, the config parser, the master's handling of
# what a worker writes, and the shared tables' handling of a region a
# worker wrote garbage into. Findings land in the
# package's testdata/fuzz/ and fail `make test` until fixed.
# Usage: scripts/fuzz.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
for pkg in ./ipc ./reactor ./internal/config ./master/plane ./worker ./shm; do
  for f in $(go test -list 'Fuzz.*' "$pkg" | grep ^Fuzz); do
    echo "== $pkg $f ($t)"
    go test -run XXX -fuzz "^$f\$" -fuzztime "$t" "$pkg"
  done
done
