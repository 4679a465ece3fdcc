#!/usr/bin/env bash
# Rebuild emulators/localstack-requirements.lock.
#
# usage: emulators/relock-localstack.sh RUNTIME_LOCK [PYTHON3.13]
#   RUNTIME_LOCK  LocalStack's requirements-runtime.txt (from its repository)
#
# Installs localstack-core[runtime]==2026.3.0 (+ service-identity) into a
# throw-away 3.13 venv under the runtime lock's pins, except the AWS SDK pins
# that the wheel fixes itself, and writes the resulting `pip freeze` as the lock.
set -euo pipefail
runtime_lock=${1:?usage: $0 RUNTIME_LOCK [PYTHON3.13]}
py=${2:-$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin/python3.13 2>/dev/null | tail -1)}
[ -x "$py" ] || { echo "need a Python 3.13 interpreter (pass it as the 2nd argument)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -E '^[A-Za-z]' "$runtime_lock" \
  | grep -v -E '^(boto3|botocore|awscli|s3transfer|localstack-core)==' > "$work/constraints.txt"
"$py" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet -c "$work/constraints.txt" \
  'localstack-core[runtime]==2026.3.0' service-identity
"$work/venv/bin/python" -m pip check
{
  sed -n '1,/^$/p' "$here/localstack-requirements.lock"
  # pip freeze leaves out argparse, which kclpy-ext declares.
  { "$work/venv/bin/python" -m pip freeze --all --exclude pip; echo "argparse==1.4.0"; } \
    | sort -f -u
} > "$work/lock"
mv "$work/lock" "$here/localstack-requirements.lock"
echo "wrote $here/localstack-requirements.lock"
