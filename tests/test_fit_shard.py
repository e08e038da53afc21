"""The fit spread over devices and processes: a chunk's frames over 8 devices give one device's coefficients
(8 fake CPU devices here, conftest.py); two `a2e track` processes split a folder without overlap and write
every file."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO, free_port
from PIL import Image

from a2e_jax.face.builtin import builtin_model
from a2e_jax.fit import correspondence as corr_lib
from a2e_jax.fit import solve, synthetic


@pytest.mark.slow
def test_frames_over_eight_devices_fit_as_on_one():
  """On fake CPU devices this hung in jaxlib's batched LAPACK solves (ParallelBatchMap) until each device
  solved its own frames one by one (gauss_newton.solve_frames)."""
  assert jax.local_device_count() >= 8
  model = builtin_model()
  truth = synthetic.clip(model, 16, seed=5, size=256, face_px=(120, 170), max_angle=20.0)
  config = solve.FitConfig(gn_iterations=8, polish_steps=20, photo_steps=10, photo_frames=4, smooth_exp=2.0,
                           smooth_pose=200.0)
  corr = corr_lib.multipie68(model)
  one = solve.fit_clip(model, truth.frames, truth.landmarks, corr, config)
  mesh = jax.sharding.Mesh(np.array(jax.local_devices()[:8]), ("frames",))
  eight = solve.fit_clip(model, truth.frames, truth.landmarks, corr, config, mesh=mesh)
  # Sums over frames (the identity's Schur complement, the albedo) reduce in another order: equal to float
  # rounding carried through the iterations.
  np.testing.assert_allclose(eight.pose[:, :3], one.pose[:, :3], atol=2e-4)  # radians
  np.testing.assert_allclose(eight.pose[:, 3:], one.pose[:, 3:], atol=2e-4, rtol=1e-4)
  np.testing.assert_allclose(eight.exp, one.exp, atol=2e-3)
  np.testing.assert_allclose(eight.id, one.id, atol=2e-3)
  # SH lighting is the least well-conditioned part (nine bands from one crop's shading): measured 2.4e-3.
  np.testing.assert_allclose(eight.gamma, one.gamma, atol=5e-3)
  assert np.abs(one.exp).max() > 0.1  # a fitted clip, not a trivial one


@pytest.mark.slow
def test_two_processes_split_a_folder(tmp_path):
  """Three pictures, two `a2e track` processes joined by jax.distributed: process 0 takes the first two, 1 the
  last (the data pipeline's contiguous blocks), and every output is written once."""
  model = builtin_model()
  folder = tmp_path / "in"
  folder.mkdir()
  for i, seed in enumerate((21, 22, 23)):
    truth = synthetic.clip(model, 1, seed=seed, size=320, face_px=(150, 180), max_angle=10.0, batch=1)
    Image.fromarray(truth.frames[0]).save(folder / f"face{i}.png")
  out = tmp_path / "out"
  port = free_port()
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env.update(PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", A2E_COORDINATOR_ADDRESS=f"localhost:{port}",
             A2E_NUM_PROCESSES="2", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  command = [sys.executable, "-m", "a2e_jax.cli", "track", str(folder), "--out", str(out), "--no-progress"]
  procs = [
    subprocess.Popen(command, env={**env, "A2E_PROCESS_ID": str(i)}, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    for i in range(2)
  ]
  logs = [p.communicate(timeout=900)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]
  assert "tracked 2 file(s)" in logs[0] and "tracked 1 file(s)" in logs[1], logs
  assert sorted(os.listdir(out)) == ["face0.npz", "face1.npz", "face2.npz"]
