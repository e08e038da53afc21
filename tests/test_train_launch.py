"""Launching: multi-process detection, the two-process CPU launcher against one process, and `a2e train`."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from a2e_jax.core.errors import UserError
from a2e_jax.train import distributed, summary

pytestmark = pytest.mark.slow  # launches training processes: the full suite only

STANDIN = str(REPO / "tests" / "train_standin.py")


@pytest.mark.parametrize("env, kind", [
  ({}, "single"),
  ({"A2E_COORDINATOR_ADDRESS": "h:1", "A2E_NUM_PROCESSES": "2", "A2E_PROCESS_ID": "1"}, "explicit"),
  ({"A2E_COORDINATOR_ADDRESS": "h:1", "A2E_NUM_PROCESSES": "1", "A2E_PROCESS_ID": "0"}, "single"),
  ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, "slurm"),
  ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, "single"),
  ({"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3"}, "tpu"),
  ({"TPU_WORKER_HOSTNAMES": "t0"}, "single"),
  ({"A2E_DISTRIBUTED": "auto"}, "auto"),
])  # fmt: skip
def test_detects_how_many_processes_and_from_where(env, kind):
  assert distributed.detect(env=env)[0] == kind


def test_explicit_settings_are_complete_and_in_range():
  kind, kwargs = distributed.detect("localhost:9", 2, 0, env={})
  assert kind == "explicit"
  assert kwargs == dict(coordinator_address="localhost:9", num_processes=2, process_id=0)
  with pytest.raises(UserError, match="needs all of"):
    distributed.detect("localhost:9", 2, None, env={})
  with pytest.raises(UserError, match=r"process id 2 must be in \[0, 2\)"):
    distributed.detect("localhost:9", 2, 2, env={})


def _env(**extra):
  path = os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
  return dict(os.environ, PYTHONPATH=path, **extra)


def test_two_process_launcher_matches_one_process(tmp_path):
  """`launch/multiprocess_cpu.sh 2` (2 x 4 CPU devices) against `launch/local.sh` (1 x 8) on the same global
  batches: per-step losses, eval losses, and both processes' input states in the checkpoint."""
  args = [STANDIN, "--config.train.steps=6", "--config.eval.every=3", "--config.checkpoint.every=3"]
  launcher = ["bash", "launch/multiprocess_cpu.sh", "2", args[0], str(tmp_path / "two"), *args[1:]]
  two = subprocess.Popen(launcher, cwd=REPO, env=_env(A2E_CPU_DEVICES="4"), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
  one = subprocess.run(["bash", "launch/local.sh", args[0], str(tmp_path / "one"), *args[1:]], cwd=REPO,
                       env=_env(), capture_output=True, text=True, timeout=300)
  two_output = two.communicate(timeout=300)[0]
  assert one.returncode == 0, one.stdout + one.stderr
  assert two.returncode == 0, two_output + _logs(tmp_path / "two")
  assert "(2 processes)" in two_output and "(1 process)" in one.stdout + one.stderr
  for split in ("train", "eval"):
    a, b = summary.read_metrics(tmp_path / "one", split), summary.read_metrics(tmp_path / "two", split)
    assert sorted(a) == sorted(b) == ([1, 2, 3, 4, 5, 6] if split == "train" else [3, 6])
    for step in a:
      np.testing.assert_allclose([b[step][k] for k in sorted(a[step])], [a[step][k] for k in sorted(a[step])],
                                 rtol=2e-5, atol=1e-7, err_msg=f"{split} step {step}")
  data = sorted(os.listdir(tmp_path / "two" / "checkpoints" / "6" / "data"))
  assert [n for n in data if n.endswith(".json")] == ["process_0-of-2.json", "process_1-of-2.json"]


def _logs(workdir):
  folder = workdir / "logs"
  return "".join((folder / n).read_text() for n in sorted(os.listdir(folder))) if folder.exists() else ""


def _a2e_train(workdir, *overrides):
  command = [sys.executable, "-m", "a2e_jax.cli", "train", "--config", "configs/synthetic.py:tiny",
             "--workdir", str(workdir), *overrides]
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_a2e_train_reports_bad_overrides_in_one_line(tmp_path):
  result = _a2e_train(tmp_path, "--config.train.nosuchkey=1")
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "nosuchkey" in lines[0], result.stderr


@pytest.fixture(scope="module")
def a2enet_run(tmp_path_factory):
  """A 3-step run of the real model and losses through `a2e train` (random batches of the schema's shapes)."""
  workdir = tmp_path_factory.mktemp("a2enet")
  # No evaluation: the loss in eval mode is tested with the losses (tests/test_losses.py), and another
  # compilation of A2ENet would double this run's time.
  result = _a2e_train(workdir, "--config.input=random", "--config.train.steps=3", "--config.eval.every=0")
  return workdir, result


def test_a2e_train_trains_a2enet_tiny(a2enet_run):
  workdir, result = a2enet_run
  assert result.returncode == 0, result.stdout + result.stderr
  assert "done at step 3" in result.stdout
  train = summary.read_metrics(workdir)
  assert sorted(train) == [1, 2, 3]
  for name in ("coeff_self", "coeff_cross", "audio_self", "content_equal", "emotion_ce", "loss"):
    assert np.isfinite(train[3][name]), name
  assert sorted(os.listdir(workdir / "checkpoints")) == ["3"]


def test_generating_from_a_run_builds_no_checkpoint_manager(a2enet_run, tmp_path, monkeypatch):
  """Inference reads a run's parameters without the trainer's Orbax CheckpointManager (core/run_dir.py)."""
  import orbax.checkpoint as ocp
  import soundfile
  from infer_helpers import speechlike

  from a2e_jax import cli

  workdir, result = a2enet_run
  assert result.returncode == 0, result.stdout + result.stderr

  def refuse(*args, **kwargs):
    raise AssertionError("inference built an Orbax CheckpointManager")

  monkeypatch.setattr(ocp.CheckpointManager, "__init__", refuse)
  audio = tmp_path / "hello.wav"
  soundfile.write(audio, speechlike(1.0), 16000)
  out = tmp_path / "out"
  args = ["generate", "--audio", audio, "--checkpoint", workdir, "--out", out, "--export", "npz"]
  assert cli.main([str(a) for a in args]) == 0
  assert (out / "hello.npz").is_file()


def test_a_dead_process_ends_the_job_in_seconds_with_one_line_and_it_resumes(tmp_path):
  """SIGKILL one of two processes mid-run: the launcher names it and stops the other (which would wait a
  minute for the dead one's heartbeat) within 10 s; the same command then resumes and finishes."""
  import signal
  import time

  workdir = tmp_path / "run"
  args = [STANDIN, "--config.train.steps=400", "--config.eval.every=0", "--config.checkpoint.every=2",
          "--config.standin.step_seconds=0.2"]
  launcher = ["bash", "launch/multiprocess_cpu.sh", "2", args[0], str(workdir), *args[1:]]
  job = subprocess.Popen(launcher, cwd=REPO, env=_env(A2E_CPU_DEVICES="4"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 240
  while not (workdir / "checkpoints" / "2" / "commit_success.txt").exists():
    assert job.poll() is None and time.monotonic() < deadline, job.communicate()[1] + _logs(workdir)
    time.sleep(0.2)
  pids = (workdir / "logs" / "pids").read_text().split()
  os.kill(int(pids[1]), signal.SIGKILL)
  killed = time.monotonic()
  stderr = job.communicate(timeout=60)[1]
  assert time.monotonic() - killed < 10
  assert job.returncode == 128 + signal.SIGKILL
  lines = stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"launch/multiprocess_cpu.sh: process 1 (pid {pids[1]}) was "
                                                 "killed by SIGKILL; stopped the others"), stderr
  assert "Traceback" not in stderr
  again = [*launcher[:5], "--config.train.steps=6", *args[2:4]]
  resumed = subprocess.run(again, cwd=REPO,
                           env=_env(A2E_CPU_DEVICES="4"), capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr + _logs(workdir)
  assert "resuming at step" in resumed.stdout and sorted(summary.read_metrics(workdir))[-1] == 6
