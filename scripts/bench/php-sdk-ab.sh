#!/usr/bin/env bash
# The PHP SDK's own cost per request, this tree against another build's
# (OLD=path of a worktree of it), each with and without the tracing JIT,
# and php-floor.php (the least a PHP worker can do per request), in
# alternating rounds: scripts/bench/php-sdk.php on examples/php/hello.php,
# 8 requests queued, the worker's CPU µs per request. This tree runs twice:
# with drover's PHP extension (bin/php-ext, make php-ext; "native") and
# without it ("new"). Prints every round and the median of each.
#   git worktree add /work/old ab5ffea
#   OLD=/work/old [ROUNDS=7] [N=100000] scripts/bench/php-sdk-ab.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
here=$PWD
old=${OLD:?"OLD=path of the other build's worktree"}
[ -f bin/php-ext/drover.so ] || { echo "bin/php-ext/drover.so is missing: make php-ext" >&2; exit 1; }
jit=(-d opcache.enable_cli=1 -d opcache.jit=tracing -d opcache.jit_buffer_size=64M)
declare -A runs=()
cpu() { sed -n 's/worker CPU: \([0-9.]*\) us.*/\1/p'; }
for r in $(seq "${ROUNDS:-7}"); do
  for j in 0 1; do
    opts=(); [ $j = 1 ] && opts=("${jit[@]}")
    runs[old jit=$j]+=" $(cd "$old" && php "$here/scripts/bench/php-sdk.php" examples/php/hello.php "${N:-100000}" 8 "${opts[@]}" | cpu)"
    runs[new jit=$j]+=" $(php scripts/bench/php-sdk.php examples/php/hello.php "${N:-100000}" 8 "${opts[@]}" | cpu)"
    runs[native jit=$j]+=" $(php scripts/bench/php-sdk.php examples/php/hello.php "${N:-100000}" 8 "${opts[@]}" -d extension="$here/bin/php-ext/drover.so" | cpu)"
    runs[floor jit=$j]+=" $(php scripts/bench/php-sdk.php scripts/bench/php-floor.php "${N:-100000}" 8 "${opts[@]}" | cpu)"
  done
done
# Paired: each round's ratio of two runs made a few seconds apart, which
# the machine's drift moves less than the medians above.
ratio() { # name, key a, key b: the median over rounds of b/a
  local rs med
  # shellcheck disable=SC2086
  rs=$(paste <(printf '%s\n' ${runs[$2]}) <(printf '%s\n' ${runs[$3]}) | awk '{printf "%.2f\n", $2/$1}')
  med=$(sort -n <<<"$rs" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-50s median %s   rounds: %s\n' "$1" "$med" "$(tr '\n' ' ' <<<"$rs")"
}
echo "# $(date -u +%FT%TZ) php $(php -r 'echo PHP_VERSION;'), old = $(git -C "$old" log -1 --format=%h), new = $(git log -1 --format=%h); worker CPU µs per request"
for k in "old jit=0" "new jit=0" "native jit=0" "floor jit=0" "old jit=1" "new jit=1" "native jit=1" "floor jit=1"; do
  # shellcheck disable=SC2086
  med=$(printf '%s\n' ${runs[$k]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-12s median %5s   rounds:%s\n' "$k" "$med" "${runs[$k]}"
done
ratio "native/old, no JIT either" "old jit=0" "native jit=0"
ratio "native/old, the JIT both" "old jit=1" "native jit=1"
ratio "as the examples run them (old no JIT, native JIT)" "old jit=0" "native jit=1"
ratio "new (pure PHP)/old, no JIT either" "old jit=0" "new jit=0"
