#!/usr/bin/env bash
# N training processes on this machine, CPU only, each with its own fake devices: the multi-host code path
# (jax.distributed, per-process input shards, collective checkpoints) without a cluster.
#   launch/multiprocess_cpu.sh N CONFIG WORKDIR [--config.KEY=VALUE ...]
#   launch/multiprocess_cpu.sh 2 configs/synthetic.py:tiny /tmp/a2e_mp
# Environment: A2E_CPU_DEVICES (fake devices per process, default 4), A2E_PORT (coordinator port, default
# a free one), PYTHON (default .venv/bin/python). Process 0 prints the progress; the others log to
# WORKDIR/logs/process_<i>.log. If one process fails the others are stopped; SIGTERM/SIGINT is passed on
# to all of them (they save a checkpoint and exit).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: launch/multiprocess_cpu.sh N CONFIG WORKDIR [--config.KEY=VALUE ...]"
num=${1:?$usage}
config=${2:?$usage}
workdir=${3:?$usage}
shift 3
python=${PYTHON:-.venv/bin/python}
[[ -x $python ]] || python=python3
port=${A2E_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}
mkdir -p "$workdir/logs"

all_pids=()
for ((i = 0; i < num; i++)); do
  log=/dev/stdout
  ((i > 0)) && log="$workdir/logs/process_$i.log"
  XLA_FLAGS="--xla_force_host_platform_device_count=${A2E_CPU_DEVICES:-4}" JAX_PLATFORMS=cpu \
    A2E_COORDINATOR_ADDRESS="localhost:$port" A2E_NUM_PROCESSES="$num" A2E_PROCESS_ID="$i" \
    "$python" launch/train.py --config "$config" --workdir "$workdir" "$@" >"$log" 2>&1 &
  all_pids+=($!)
done

forward() { kill -TERM "${all_pids[@]}" 2>/dev/null || true; }
trap forward TERM INT

status=0
running=("${all_pids[@]}")
while ((${#running[@]} > 0)); do
  sleep 0.5 &
  wait $! || true  # a short wait that the trap can interrupt
  still=()
  for pid in "${running[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      still+=("$pid")
      continue
    fi
    rc=0
    wait "$pid" || rc=$?
    if ((rc != 0 && status == 0)); then
      status=$rc
      echo "launch/multiprocess_cpu.sh: a process exited with status $rc; stopping the others" >&2
      forward
    fi
  done
  running=("${still[@]+"${still[@]}"}")
done
exit "$status"
