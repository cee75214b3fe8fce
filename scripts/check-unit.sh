#!/usr/bin/env bash
# Checks the systemd unit deploy/systemd/drover.service (and drover.socket):
#  1. docs/operations.md shows the same unit;
#  2. systemd-analyze verify accepts both (ExecStart pointed at bin/drover);
#  3. drover starts, upgrades and stops the way the unit runs it (Type=
#     notify: READY=1, the new MAINPID=, STOPPING=1 on a notify socket),
#     in the clean environment systemd gives a service, with its runtime
#     directory made the way systemd makes RuntimeDirectory=: mode 0755
#     (systemd's default) and the unit's RuntimeDirectoryMode. The
#     directory is a temporary one named by DROVER_RUNTIME_DIR instead of
#     /run/drover. Needs python3 (the notify socket).
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
	cp deploy/systemd/drover.socket "$work/drover.socket"
	systemd-analyze verify "$work/drover.service" "$work/drover.socket"
	echo "check-unit: systemd-analyze verify: ok"
else
	echo "check-unit: systemd-analyze is not installed; skipped the verify step"
fi

# 3. Start, upgrade and stop as the unit does, with systemd's notify socket
#    played by a small python3 listener (systemd is not pid 1 here): Type=
#    notify waits for READY=1, ExecReload must end with the new master's
#    MAINPID=, and the stop (KillMode=mixed: SIGTERM to the main process)
#    with STOPPING=1 and the master's exit.
execline() { local_unit | sed -n "s/^$1=//p"; }
mode=$(sed -n 's/^RuntimeDirectoryMode=//p' "$unit")
notify_listener() { # $1 socket path, $2 file that gets one message per line
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
while True:
    out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
' "$1" "$2" &
	started+=("$!")
	disown "$!" # killed by cleanup without a "Killed" line
	for _ in $(seq 100); do [ -S "$1" ] && return; sleep 0.1; done
	echo "check-unit: the notify listener did not start" >&2; exit 1
}
# wait_msg FILE PATTERN: waits (30 s at most) for a notification matching PATTERN.
wait_msg() {
	for _ in $(seq 300); do grep -q -- "$2" "$1" && return; sleep 0.1; done
	echo "check-unit: no notification matching '$2' in 30s; got:" >&2; cat "$1" >&2; exit 1
}
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
for m in 0755 ${mode:-0755}; do
	rt=$work/run-$m
	mkdir -m "$m" "$rt"
	cat > "$work/drover.yaml" <<YAML
worker_num: 1
worker: {cmd: [$PWD/bin/echo]}
listeners: [{address: "tcp://127.0.0.1:0", protocol: length, package_length_type: N, package_body_offset: 4}]
YAML
	msgs=$work/notify-$m.log
	: > "$msgs"
	notify_listener "$work/notify-$m" "$msgs"
	svc=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DROVER_RUNTIME_DIR="$rt" NOTIFY_SOCKET="$work/notify-$m")
	# shellcheck disable=SC2046
	"${svc[@]}" $(execline ExecStart) 2> "$work/stderr-$m" &
	pid=$!
	started+=("$pid")
	wait_msg "$msgs" "READY=1 MAINPID=$pid "
	# shellcheck disable=SC2046
	"${svc[@]}" $(execline ExecReload) > /dev/null
	wait_msg "$msgs" "READY=1 MAINPID=[0-9]* "
	newpid=$(grep -o 'MAINPID=[0-9]*' "$msgs" | tail -1 | cut -d= -f2)
	if [ "$newpid" = "$pid" ] || ! gone "$pid"; then
		echo "check-unit: after ExecReload the main pid is $newpid (was $pid, which is still alive: $(gone "$pid" && echo no || echo yes))" >&2
		exit 1
	fi
	started+=("$newpid")
	if grep -q STOPPING "$msgs"; then
		echo "check-unit: STOPPING=1 during an upgrade would stop the service:" >&2; cat "$msgs" >&2; exit 1
	fi
	kill -TERM "$newpid"
	wait_msg "$msgs" "STOPPING=1"
	for _ in $(seq 300); do gone "$newpid" && break; sleep 0.1; done
	if ! gone "$newpid"; then
		echo "check-unit: the master $newpid outlived SIGTERM by 30s" >&2
		exit 1
	fi
	echo "check-unit: started (READY=1), upgraded (MAINPID $pid -> $newpid) and stopped (STOPPING=1) in a runtime directory of mode $m: ok"
done
