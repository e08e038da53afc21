#!/usr/bin/env bash
# A Cloud TPU VM pod slice: the same training command on every host, joined by jax.distributed (JAX finds
# the hosts itself). Run from your workstation:
#   TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh configs/tpu_pod.py /mnt/runs/pod [--config.KEY=VALUE ...]
#   launch/tpu_pod.sh logs WORKDIR [LINES]   the last lines of every worker's log
#   launch/tpu_pod.sh stop                   SIGTERM to the run on every worker: it saves and exits
#   launch/tpu_pod.sh --setup                clone $REPO_URL to $REPO_DIR and create its venv with jax[tpu]
# The run starts detached on every worker (setsid nohup), so a dropped ssh connection does not kill it;
# each worker logs to WORKDIR/logs/worker_<hostname>.log (~/a2e_logs/ when WORKDIR is a URL) and keeps
# its run's pid in ~/.a2e_train.pid.
# Requirements: the repository checked out at $REPO_DIR (default ~/a2e_jax) on every host with its venv,
# the dataset under config.data.data_dir on every host, and WORKDIR on storage all hosts share (a
# Filestore/NFS mount, a gcsfuse-mounted bucket, or a gs:// URL), since every host writes its shards of
# each checkpoint. Preemption of a spot/queued slice sends SIGTERM: the run saves and exits; run the same
# command again to resume. PYTHON overrides the interpreter on the workers (default .venv/bin/python).
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME (and ZONE, optionally PROJECT)}"
: "${ZONE:?set ZONE}"
repo_dir=${REPO_DIR:-'~/a2e_jax'}
python=${PYTHON:-.venv/bin/python}
pid_file='~/.a2e_train.pid'
ssh_to() {  # ssh_to WORKER COMMAND: run COMMAND on worker WORKER ("all" for every worker)
  local args=(gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker="$1")
  [[ -n ${PROJECT:-} ]] && args+=(--project "$PROJECT")
  "${args[@]}" --command "$2"
}
log_dir() {  # where the workers' logs go: beside the run, or in each worker's home for a gs:// WORKDIR
  if [[ $1 == *://* ]]; then echo '~/a2e_logs'; else echo "$1/logs"; fi
}
usage="usage: launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...] | logs WORKDIR [LINES] | stop | --setup"

case ${1:-} in
  --setup)
    : "${REPO_URL:?set REPO_URL to clone from}"
    ssh_to all "git clone $REPO_URL $repo_dir 2>/dev/null || git -C $repo_dir pull;
      cd $repo_dir && python3 -m venv .venv && .venv/bin/pip install -q -e '.[tpu]'"
    ;;
  logs)
    workdir=${2:?$usage}
    ssh_to all "cd $repo_dir && tail -n ${3:-20} $(log_dir "$workdir")/worker_\$(hostname).log"
    ;;
  stop)
    ssh_to all "if [[ -f $pid_file ]]; then kill -TERM \$(cat $pid_file) 2>/dev/null && echo \"\$(hostname): SIGTERM sent\" || echo \"\$(hostname): not running\"; rm -f $pid_file; fi"
    ;;
  ''|-*)
    echo "$usage" >&2
    exit 2
    ;;
  *)
    config=$1
    workdir=${2:?$usage}
    shift 2
    quoted=$(printf ' %q' "$@")
    logs=$(log_dir "$workdir")
    # A2E_DISTRIBUTED=auto: every host calls jax.distributed.initialize(), which finds the slice's hosts.
    ssh_to all "cd $repo_dir && mkdir -p $logs || exit 1; log=$logs/worker_\$(hostname).log;
      A2E_DISTRIBUTED=auto setsid nohup $python launch/train.py --config $config --workdir $workdir$quoted \
      >>\$log 2>&1 </dev/null & echo \$! >$pid_file;
      echo \"\$(hostname): started (pid \$(cat $pid_file)), log \$log\""
    echo "detached on every worker; follow with: launch/tpu_pod.sh logs $workdir   stop with: launch/tpu_pod.sh stop"
    ;;
esac
