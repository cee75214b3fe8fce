#!/usr/bin/env bash
# Runs the client-side hostile-client attacks (body tricklers, non-readers,
# header tricklers, idle connections) against a running HTTP server for a
# bounded time and prints what it saw: plain GET latency during the attack
# and how the server closed each kind of attacker. Point it at your own
# instance (docs/operations.md, "Limits and hostile clients").
# Usage: scripts/attack.sh [flags] host:port
#   e.g. scripts/attack.sh -duration 90s -big '/download?size=8M' 127.0.0.1:9501
#   (scripts/attack.sh -h lists the flags)
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/attack ./scripts/attack
exec bin/attack "$@"
