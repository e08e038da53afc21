"""The cluster launchers, run here with stand-ins for the cluster's commands: `launch/tpu_pod.sh` with a
`gcloud` that runs the worker command locally, `launch/slurm_gpu.sbatch` with an `srun` that execs its task.
Both train the small stand-in model of train_standin.py, get SIGTERM mid-run, and resume."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

from a2e_jax.train import checkpoint, summary

pytestmark = pytest.mark.slow  # launches training processes: the full suite only

STANDIN = str(REPO / "tests" / "train_standin.py")
ARGS = ["--config.train.steps=40", "--config.checkpoint.every=3", "--config.eval.every=6"]
SLOW = "--config.standin.step_seconds=0.3"

FAKE_GCLOUD = """#!/usr/bin/env bash
# gcloud compute tpus tpu-vm ssh NAME --zone Z --worker=W --command CMD: CMD on this machine (one worker)
while (($#)); do [[ $1 == --command ]] && { cmd=$2; shift; }; shift; done
exec bash -c "$cmd"
"""
FAKE_SRUN = """#!/usr/bin/env bash
# srun [--options] COMMAND...: one task, this process becomes it (SLURM signals the task itself)
while [[ $1 == --* ]]; do shift; done
echo $$ >"$SRUN_PID_FILE"
exec "$@"
"""


def _tool(folder, name, text):
  folder.mkdir(exist_ok=True)
  path = folder / name
  path.write_text(text)
  path.chmod(0o755)


def _env(tmp_path, **extra):
  path = os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
  return dict(os.environ, PYTHONPATH=path, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
              HOME=str(tmp_path), **extra)


def _wait(predicate, what, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    time.sleep(0.2)
  pytest.fail(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  return True


def _has_checkpoint(workdir) -> bool:
  return (workdir / "checkpoints").is_dir() and any(n.isdigit() for n in os.listdir(workdir / "checkpoints"))


def test_tpu_pod_runs_detached_logs_per_worker_and_stops_with_a_checkpoint(tmp_path):
  _tool(tmp_path / "bin", "gcloud", FAKE_GCLOUD)
  workdir = tmp_path / "run"
  env = _env(tmp_path, TPU_NAME="fake", ZONE="z", REPO_DIR=str(REPO),
             PYTHON=f"env -u A2E_DISTRIBUTED {sys.executable}")  # one local "worker": no cluster to join

  def pod(*args, timeout=60):
    out = subprocess.run(["bash", "launch/tpu_pod.sh", *args], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout

  started = time.time()
  assert "started (pid" in pod(STANDIN, str(workdir), *ARGS, SLOW)
  assert time.time() - started < 30  # returned while the run goes on in the background
  pid = int((tmp_path / ".a2e_train.pid").read_text())
  log = workdir / "logs" / f"worker_{os.uname().nodename}.log"
  _wait(lambda: max(summary.read_metrics(workdir), default=0) >= 4 and _has_checkpoint(workdir), "step 4")
  assert _alive(pid) and log.exists()
  assert "SIGTERM sent" in pod("stop")
  _wait(lambda: not _alive(pid), "the run to stop", timeout=120)
  text = log.read_text()
  assert "preempted at step" in text, text
  stopped = int(text.split("preempted at step ")[1].split(";")[0])
  assert stopped < 40 and stopped in checkpoint.Checkpointer(workdir).all_steps()
  assert "preempted at step" in pod("logs", str(workdir), "50")

  pod(STANDIN, str(workdir), *ARGS)  # the same command resumes
  pid = int((tmp_path / ".a2e_train.pid").read_text())
  _wait(lambda: not _alive(pid), "the resumed run to finish")
  assert f"resuming at step {stopped}" in log.read_text()
  assert max(summary.read_metrics(workdir)) == 40


def test_slurm_job_saves_on_sigterm_and_its_requeue_resumes(tmp_path):
  _tool(tmp_path / "bin", "srun", FAKE_SRUN)
  workdir = tmp_path / "run"
  pid_file = tmp_path / "task.pid"
  env = _env(tmp_path, SLURM_JOB_ID="7", SLURM_NTASKS="1", SLURM_SUBMIT_DIR=str(REPO), PYTHON=sys.executable,
             SRUN_PID_FILE=str(pid_file))
  command = ["bash", "launch/slurm_gpu.sbatch", STANDIN, str(workdir), *ARGS]
  job = subprocess.Popen([*command, SLOW], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
  _wait(lambda: job.poll() is None and pid_file.exists() and _has_checkpoint(workdir)
        and max(summary.read_metrics(workdir), default=0) >= 4, "step 4")
  os.kill(int(pid_file.read_text()), signal.SIGTERM)  # what --signal=TERM@120 delivers to the task
  output = job.communicate(timeout=120)[0]
  assert job.returncode == 0, output  # a clean exit: --requeue brings the job back
  assert "preempted at step" in output
  requeued = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert requeued.returncode == 0, requeued.stdout + requeued.stderr
  assert "resuming at step" in requeued.stdout + requeued.stderr
  assert max(summary.read_metrics(workdir)) == 40
