#!/usr/bin/env bash
# Builds drover's PHP extension (worker/php/ext) into bin/php-ext/drover.so
# and writes bin/php-ext/drover.ini, which loads it: a worker whose
# environment has PHP_INI_SCAN_DIR=:path/to/bin/php-ext (the examples' do)
# runs the PHP SDK's per-request path in C. Without the extension the SDK
# runs in plain PHP, so a machine without PHP's headers only misses the
# speed-up: this says so and exits 0, unless REQUIRE=1 (make test on CI).
#   scripts/php-ext.sh            (make php-ext)
set -euo pipefail
cd "$(dirname "$0")/.."
src=worker/php/ext
out=bin/php-ext
if ! command -v phpize >/dev/null 2>&1 || ! command -v php-config >/dev/null 2>&1; then
  msg="drover's PHP extension is not built: phpize is missing (apt-get install php-dev; bash .ci/run installs it). PHP workers run the pure-PHP SDK, which is slower per request (docs/php.md, \"The native extension\")"
  if [ "${REQUIRE:-0}" = 1 ]; then echo "$msg" >&2; exit 1; fi
  echo "$msg" >&2
  exit 0
fi
# Rebuilt when a source is newer than the module, or PHP's API changed.
api=$(php-config --extension-dir)
if [ -f "$out/drover.so" ] && [ "$(cat "$out/.php-api" 2>/dev/null)" = "$api" ] \
  && [ -z "$(find "$src" -newer "$out/drover.so" -type f)" ]; then
  exit 0
fi
rm -rf "$out/build"
mkdir -p "$out/build"
cp "$src/config.m4" "$src/drover.c" "$out/build/"
(
  cd "$out/build"
  phpize >/dev/null 2>&1
  ./configure --enable-drover >/dev/null
  make -s >/dev/null 2>make.err || { cat make.err >&2; exit 1; }
  # Compiler warnings are errors for us: a warning here is a bug in drover.c.
  if grep -q 'warning:' make.err; then cat make.err >&2; exit 1; fi
)
# A new file, not written over the old: workers running have it mapped.
cp "$out/build/modules/drover.so" "$out/drover.so.new"
mv -f "$out/drover.so.new" "$out/drover.so"
echo "extension=$PWD/$out/drover.so" >"$out/drover.ini"
echo "$api" >"$out/.php-api"
echo "built $out/drover.so (PHP $(php-config --version)); PHP workers load it with PHP_INI_SCAN_DIR=:$PWD/$out"
