#!/usr/bin/env bash
# N training processes on this machine, CPU only, each with its own fake devices: the multi-host code path
# (jax.distributed, per-process input shards, collective checkpoints) without a cluster.
#   launch/multiprocess_cpu.sh N CONFIG WORKDIR [--config.KEY=VALUE ...]
#   launch/multiprocess_cpu.sh 2 configs/synthetic.py:tiny /tmp/a2e_mp
# Environment: A2E_CPU_DEVICES (fake devices per process, default 4), A2E_PORT (coordinator port, default
# a free one), PYTHON (default .venv/bin/python). Process 0 prints the progress; the others log to
# WORKDIR/logs/process_<i>.log; WORKDIR/logs/pids lists their process ids. SIGTERM/SIGINT is passed on to
# all of them (they agree on a step, save a checkpoint and exit). If one process dies, its peers cannot
# save (saves are collective) and would wait a minute for its heartbeat: the launcher names the dead one in
# one line, stops the others (SIGTERM, SIGKILL after $A2E_STOP_SECONDS, default 3) and exits with its
# status; rerunning the command resumes from the last checkpoint.
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

# Each process runs under a small subshell that waits for it: the launcher waits for the subshells, so a
# process killed by a signal is reported once, by the launcher, instead of by bash's job-status notice.
waiters=()
all_pids=()
for ((i = 0; i < num; i++)); do
  log=/dev/stdout
  ((i > 0)) && log="$workdir/logs/process_$i.log"
  rm -f "$workdir/logs/.pid_$i"
  (
    XLA_FLAGS="--xla_force_host_platform_device_count=${A2E_CPU_DEVICES:-4}" JAX_PLATFORMS=cpu \
      A2E_COORDINATOR_ADDRESS="localhost:$port" A2E_NUM_PROCESSES="$num" A2E_PROCESS_ID="$i" \
      "$python" launch/train.py --config "$config" --workdir "$workdir" "$@" >"$log" 2>&1 &
    echo $! >"$workdir/logs/.pid_$i"
    wait $!
  ) 2>/dev/null &
  waiters+=($!)
done
for ((i = 0; i < num; i++)); do
  until [[ -s $workdir/logs/.pid_$i ]]; do sleep 0.05; done
  all_pids+=("$(<"$workdir/logs/.pid_$i")")
  rm -f "$workdir/logs/.pid_$i"
done
printf '%s\n' "${all_pids[@]}" >"$workdir/logs/pids"

forward() { kill -TERM "${all_pids[@]}" 2>/dev/null || true; }
trap forward TERM INT

# Stops every process still running: SIGTERM, then SIGKILL for those left after A2E_STOP_SECONDS.
stop_all() {
  forward
  local deadline=$((SECONDS + ${A2E_STOP_SECONDS:-3})) pid alive
  while ((SECONDS < deadline)); do
    alive=0
    for pid in "${all_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.2
  done
  kill -KILL "${all_pids[@]}" 2>/dev/null || true
}

describe() {  # an exit status in words
  if (($1 > 128)); then echo "was killed by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"
  else echo "exited with status $1"; fi
}

status=0
running=("${!waiters[@]}")
while ((${#running[@]} > 0)); do
  sleep 0.5 &
  wait $! || true  # a short wait that the trap can interrupt
  still=()
  declare -A ended=()
  for i in "${running[@]}"; do
    if kill -0 "${waiters[i]}" 2>/dev/null; then
      still+=("$i")
      continue
    fi
    rc=0
    wait "${waiters[i]}" || rc=$?
    ended[$i]=$rc
  done
  # Of the processes found ended in one poll, name one that failed on its own: a survivor aborts (SIGABRT,
  # 134) as soon as JAX's coordination service loses its peer, often within the same poll.
  culprit=
  for i in "${!ended[@]}"; do
    rc=${ended[$i]}
    ((rc == 0)) && continue
    if [[ -z $culprit ]] || ((${ended[$culprit]} == 134 && rc != 134)); then culprit=$i; fi
  done
  if [[ -n $culprit ]] && ((status == 0)); then
    i=$culprit
    rc=${ended[$i]}
    status=$rc
    log="stdout above"
    ((i > 0)) && log="$workdir/logs/process_$i.log"
    hint="rerun the same command to resume from the last checkpoint"
    ((rc == 2)) && hint="its error line says what to fix"
    echo "launch/multiprocess_cpu.sh: process $i (pid ${all_pids[i]}) $(describe "$rc"); stopped the others;" \
      "its log: $log; $hint" >&2
    stop_all
  fi
  unset ended
  running=("${still[@]+"${still[@]}"}")
done
exit "$status"
