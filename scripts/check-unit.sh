#!/usr/bin/env bash
# Checks the systemd unit deploy/systemd/drover.service:
#  1. docs/operations.md shows the same unit;
#  2. systemd-analyze verify accepts it (ExecStart pointed at bin/drover);
#  3. drover starts and stops the way the unit runs it, in the clean
#     environment systemd gives a service, with its runtime directory made
#     the way systemd makes RuntimeDirectory=: mode 0755 (systemd's
#     default) and the unit's RuntimeDirectoryMode. The directory is a
#     temporary one named by DROVER_RUNTIME_DIR instead of /run/drover.
# Run by make test (after make build).
set -euo pipefail
cd "$(dirname "$0")/.."
unit=deploy/systemd/drover.service
drover=$PWD/bin/drover
[ -x "$drover" ] && [ -x bin/echo ] || { echo "check-unit: run make build first" >&2; exit 1; }
work=$(mktemp -d /tmp/drunit.XXXXXX)
started=()
cleanup() {
	for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# 1. The unit in the docs is this one (from [Unit] on).
sed -n '/^\[Unit\]/,$p' "$unit" > "$work/file.service"
awk '/^```ini$/{f=1; next} /^```$/{f=0} f' docs/operations.md | sed -n '/^\[Unit\]/,$p' > "$work/doc.service"
if ! diff -u "$work/doc.service" "$work/file.service"; then
	echo "check-unit: the unit in docs/operations.md differs from $unit" >&2
	exit 1
fi

# 2. systemd's own check.
local_unit() { sed "s#/usr/local/bin/drover#$drover#g; s#/etc/drover/drover.yaml#$work/drover.yaml#g" "$unit"; }
if command -v systemd-analyze >/dev/null; then
	local_unit > "$work/drover.service"
	systemd-analyze verify "$work/drover.service"
	echo "check-unit: systemd-analyze verify: ok"
else
	echo "check-unit: systemd-analyze is not installed; skipped the verify step"
fi

# 3. Start and stop as the unit does.
execline() { local_unit | sed -n "s/^$1=//p"; }
mode=$(sed -n 's/^RuntimeDirectoryMode=//p' "$unit")
for m in 0755 ${mode:-0755}; do
	rt=$work/run-$m
	mkdir -m "$m" "$rt"
	cat > "$work/drover.yaml" <<YAML
worker_num: 1
worker: {cmd: [$PWD/bin/echo]}
pid_file: $rt/drover.pid
listeners: [{address: "tcp://127.0.0.1:0", protocol: length, package_length_type: N, package_body_offset: 4}]
YAML
	svc=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DROVER_RUNTIME_DIR="$rt")
	# shellcheck disable=SC2046
	"${svc[@]}" $(execline ExecStart)
	pid=$(cat "$rt/drover.pid")
	started+=("$pid")
	kill -0 "$pid"
	# shellcheck disable=SC2046
	"${svc[@]}" $(execline ExecStop)
	# A zombie counts as gone: whoever is pid 1 here may not reap it.
	if [ -e "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
		echo "check-unit: the master $pid outlived ExecStop" >&2
		exit 1
	fi
	echo "check-unit: started and stopped in a runtime directory of mode $m: ok"
done
