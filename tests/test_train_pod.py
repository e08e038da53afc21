"""A simulated pod: 2 processes x 4 fake CPU devices train on a (data 2, fsdp 2, model 2) mesh, checkpoint,
get killed, and the run resumes on 1 process x 8 devices and on 1 device, reaching the parameters of an
uninterrupted run within float tolerance."""

import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import REPO, free_port

from a2e_jax.core import run_dir
from a2e_jax.train import checkpoint, summary

STANDIN = str(REPO / "tests" / "train_standin.py")
ARGS = ["--config.train.steps=12", "--config.checkpoint.every=4", "--config.eval.every=0",
        "--config.summary.tensorboard=False"]
POD_MESH = ["--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.mesh.model=2"]


def _train(workdir, devices: int, *extra, process=None):
  """launch/train.py in a subprocess with `devices` fake CPU devices; `process` = (id, count, port)."""
  env = {k: v for k, v in os.environ.items() if not k.startswith("A2E_")}
  env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO)]))
  if process is not None:
    index, count, port = process
    env.update(A2E_COORDINATOR_ADDRESS=f"localhost:{port}", A2E_NUM_PROCESSES=str(count),
               A2E_PROCESS_ID=str(index))
  command = [sys.executable, str(REPO / "launch" / "train.py"), "--config", STANDIN,
             "--workdir", str(workdir), *ARGS, *extra]
  return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def _finish(process) -> str:
  output = process.communicate(timeout=600)[0]
  assert process.returncode == 0, output[-3000:]
  return output


def _params(workdir):
  return jax.tree.map(np.asarray, run_dir.restore_params(str(workdir), "latest"))


@pytest.mark.slow
def test_pod_run_killed_resumes_on_one_process_and_on_one_device(tmp_path):
  pod, reference = tmp_path / "pod", tmp_path / "reference"
  port = free_port()
  slow = "--config.standin.step_seconds=0.5"
  workers = [_train(pod, 4, slow, *POD_MESH, process=(i, 2, port)) for i in range(2)]
  uninterrupted = _train(reference, 8, *POD_MESH)
  deadline = time.time() + 400
  while not (pod / "checkpoints" / "4").is_dir():
    assert all(w.poll() is None for w in workers), workers[0].communicate()[0][-3000:]
    assert time.time() < deadline, "no checkpoint at step 4"
    time.sleep(0.1)
  for worker in workers:  # the pod is lost: no chance to save
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=60)
  assert max(checkpoint.Checkpointer(pod).all_steps()) < 12
  _finish(uninterrupted)

  resumed = {}
  for name, devices, mesh in (("eight", 8, POD_MESH), ("one", 1, [])):
    shutil.copytree(pod, tmp_path / name)
    resumed[name] = _train(tmp_path / name, devices, *mesh)
  for name, process in resumed.items():
    output = _finish(process)
    assert "resuming at step" in output, output
    assert max(summary.read_metrics(tmp_path / name)) == 12

  expect = _params(reference)
  for name in resumed:
    got = _params(tmp_path / name)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expect)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
