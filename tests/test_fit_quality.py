"""The fit's diagnostic measures (fit/quality.py) on cases with known answers."""

import dataclasses
import types

import numpy as np
import pytest

from a2e_jax.face.builtin import builtin_model
from a2e_jax.fit import correspondence as corr_lib
from a2e_jax.fit import quality, solve
from a2e_jax.render import camera as cam_lib


@pytest.fixture(scope="module")
def clip():
  """(model, a Truth-like clip of 4 frames: random identity, expression and pose; no pictures): its 68
  landmark pixels projected by hand (x' = R X + t, u = cx + f x'/(d − z'), v = cy − f y'/(d − z'))."""
  model = builtin_model()
  rng = np.random.default_rng(3)
  ident = rng.normal(size=model.num_id).astype(np.float32)
  exp = rng.uniform(0, 0.5, (4, model.num_exp)).astype(np.float32)
  angles = np.deg2rad(rng.uniform(-25, 25, (4, 3))) * np.array([1, 1, 0.3])
  pose = np.concatenate([angles, rng.normal(0, 0.1, (4, 3)) - [0, 0, 3]], 1).astype(np.float32)
  camera = cam_lib.deep3d_camera(512, 512)
  verts = np.asarray(model.vertices(ident, exp), np.float64)[:, np.asarray(model.landmarks)]
  rot = np.asarray(cam_lib.rotation_matrix(pose[:, :3]), np.float64)
  posed = np.einsum("tij,tlj->tli", rot, verts) + pose[:, None, 3:]
  w = camera.distance - posed[..., 2]
  pixels = np.stack(
    [camera.cx + camera.focal * posed[..., 0] / w, camera.cy - camera.focal * posed[..., 1] / w], -1
  )
  return model, types.SimpleNamespace(id=ident, exp=exp, pose=pose, landmarks=pixels)


def test_landmarker_residuals_are_the_points_offset_from_the_true_places(clip):
  model, truth = clip
  corr = corr_lib.multipie68(model)
  iod = np.asarray(solve.inter_ocular(truth.landmarks))
  shift = np.array([0.05, -0.02])
  points = truth.landmarks + shift * iod[:, None, None]
  residuals = quality.landmarker_residuals(model, corr, truth, points, (512, 512))
  assert residuals.shape == (4, 68, 2)
  np.testing.assert_allclose(residuals, np.broadcast_to(shift, residuals.shape), atol=2e-4)


def test_bias_and_noise_separate_what_repeats_from_what_does_not():
  bias = np.array([0.03, -0.04])  # length 0.05
  sign = np.array([1.0, -1.0] * 10)[:, None, None]
  residuals = np.broadcast_to(bias, (20, 6, 2)) + sign * np.array([0.0, 0.02])
  out = quality.bias_and_noise(residuals, {"all": np.arange(6), "two": np.array([1, 4])})
  assert out["all"]["bias"] == pytest.approx(0.05)
  assert out["all"]["noise"] == pytest.approx(0.02)
  # Each frame's error is |bias ± noise|: half the frames 0.03,-0.02 → 0.036, half 0.03,-0.06 → 0.067.
  assert out["two"]["error"] == pytest.approx(np.median([np.hypot(0.03, 0.02), np.hypot(0.03, 0.06)]))


def test_size_and_depth_of_a_fit(clip):
  model, truth = clip
  fit = solve.FitResult(truth.id, None, truth.exp, truth.pose, None, np.zeros(4), (512, 512))
  exact = quality.size_and_depth(model, fit, truth)
  assert exact["face_size"] == pytest.approx(1.0)
  assert exact["depth_ratio"] == pytest.approx(1.0)
  assert exact["identity_mm_rescaled"] == pytest.approx(0.0, abs=1e-4)
  camera = cam_lib.deep3d_camera(512, 512)
  nearer = truth.pose.copy()
  nearer[:, 5] += 0.05 * (camera.distance - truth.pose[:, 5])  # 5 % nearer the camera
  other = dataclasses.replace(fit, id=np.zeros_like(truth.id), pose=nearer)
  out = quality.size_and_depth(model, other, truth)
  assert out["depth_ratio"] == pytest.approx(0.95, abs=1e-5)
  # The best rescaling can only lower the vertex error, and the mean face differs in size from this one.
  assert out["identity_mm_rescaled"] <= quality.identity_error_mm(model, other.id, truth.id)
  assert out["face_size"] != pytest.approx(1.0, abs=1e-3)
