#!/usr/bin/env bash
# A Cloud TPU VM pod slice: the same training command on every host, joined by jax.distributed (JAX finds
# the hosts itself). Run from your workstation:
#   TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh configs/tpu_pod.py /mnt/runs/pod [--config.KEY=VALUE ...]
# Requirements: the repository checked out at $REPO_DIR (default ~/a2e_jax) on every host with its venv
# (`launch/tpu_pod.sh --setup` creates both from $REPO_URL), the dataset under config.data.data_dir on every
# host, and WORKDIR on storage all hosts share (a Filestore/NFS mount, or a gcsfuse-mounted bucket), since
# every host writes its shards of each checkpoint. Preemption of a spot/queued slice sends SIGTERM: the run
# saves and exits; run the same command again to resume.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME (and ZONE, optionally PROJECT)}"
: "${ZONE:?set ZONE}"
repo_dir=${REPO_DIR:-'~/a2e_jax'}
gcloud_ssh=(gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all)
[[ -n ${PROJECT:-} ]] && gcloud_ssh+=(--project "$PROJECT")

if [[ ${1:-} == --setup ]]; then
  : "${REPO_URL:?set REPO_URL to clone from}"
  "${gcloud_ssh[@]}" --command "git clone $REPO_URL $repo_dir 2>/dev/null || git -C $repo_dir pull;
    cd $repo_dir && python3 -m venv .venv && .venv/bin/pip install -q -e . 'jax[tpu]'"
  exit 0
fi

usage="usage: launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]   (or --setup)"
config=${1:?$usage}
workdir=${2:?$usage}
shift 2
quoted=$(printf ' %q' "$@")
# A2E_DISTRIBUTED=auto: every host calls jax.distributed.initialize(), which finds the slice's hosts.
"${gcloud_ssh[@]}" --command "cd $repo_dir && A2E_DISTRIBUTED=auto .venv/bin/python launch/train.py \
  --config $config --workdir $workdir$quoted"
