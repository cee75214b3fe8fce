#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60s each): the frame decoder
# and payload codecs, the HTTP parser (differential against net/http),
# the stream splitters, the config parser, the master's handling of
# what a worker writes, and the shared tables' handling of a region a
# worker wrote garbage into. Findings land in the
# package's testdata/fuzz/ and fail `make test` until fixed. Then, when
# drover's PHP extension is built (make php-ext), its frame reader and
# msgpack decoder against the pure-PHP SDK's and php-msgpack's
# (worker/php/tests/Runtime/NativeTest.php, DROVER_FUZZ_N inputs; a
# finding fails with the input in hex).
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
if [ -f bin/php-ext/drover.so ] && command -v phpunit >/dev/null; then
  echo "== worker/php NativeTest (DROVER_FUZZ_N=${FUZZ_N:-1000000})"
  (cd worker/php && PHP_INI_SCAN_DIR=":$PWD/../../bin/php-ext" DROVER_TEST_NATIVE=1 DROVER_FUZZ_N="${FUZZ_N:-1000000}" phpunit --filter NativeTest)
fi
