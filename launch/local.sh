#!/usr/bin/env bash
# One process using every local device (CPU, the GPUs of this machine, or a single TPU VM).
#   launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
#   launch/local.sh configs/synthetic.py:tiny /tmp/a2e_tiny --config.train.steps=20
# Rerun the same command to resume. PYTHON overrides the interpreter (default: .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]"
config=${1:?$usage}
workdir=${2:?$usage}
shift 2
python=${PYTHON:-.venv/bin/python}
[[ -x $python ]] || python=python3
exec "$python" launch/train.py --config "$config" --workdir "$workdir" "$@"
