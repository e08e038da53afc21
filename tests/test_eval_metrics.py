"""Evaluation metrics against straightforward float64 loops, and their fixed points."""

import numpy as np
from model_helpers import random_face_model

from a2e_jax.eval import metrics


def _lve_loop(pred, true):
  per_frame = []
  for t in range(pred.shape[0]):
    per_frame.append(max(float(np.sum((pred[t, v] - true[t, v]) ** 2)) for v in range(pred.shape[1])))
  return np.array(per_frame)


def _fdd_loop(pred, true, template):
  def motion_std(vertices):
    stds = []
    for v in range(vertices.shape[1]):
      squared = [float(np.sum((vertices[t, v] - template[v]) ** 2)) for t in range(vertices.shape[0])]
      stds.append(np.std(squared))
    return np.mean(stds)

  return motion_std(true) - motion_std(pred)


def test_lip_vertex_error():
  rng = np.random.default_rng(0)
  pred, true = rng.normal(size=(2, 9, 7, 3))
  np.testing.assert_allclose(metrics.lve_frames(pred, true), _lve_loop(pred, true), rtol=1e-12)
  assert np.all(metrics.lve_frames(true, true) == 0)
  offset = np.array([0.3, -0.4, 1.2])
  np.testing.assert_allclose(metrics.lve_frames(true + offset, true), np.sum(offset**2), rtol=1e-12)


def test_fdd():
  rng = np.random.default_rng(1)
  pred, true = rng.normal(size=(2, 11, 6, 3))
  template = rng.normal(size=(6, 3))
  np.testing.assert_allclose(metrics.fdd(pred, true, template), _fdd_loop(pred, true, template), rtol=1e-10)
  assert metrics.fdd(true, true, template) == 0.0
  # A still prediction has no dynamics: FDD is the truth's whole motion std (positive).
  still = np.broadcast_to(template, true.shape)
  assert metrics.fdd(still, true, template) > 0


def test_region_vertices_match_the_face_model():
  face = random_face_model(10)
  coeffs = np.random.default_rng(2).normal(size=(4, 10))
  index = np.array([3, 7, 11])
  full = np.asarray(face.vertices(None, coeffs.astype(np.float32)))
  np.testing.assert_allclose(metrics.region_vertices(face, index, coeffs), full[:, index], atol=1e-5)


def test_blink_events_and_precision_recall():
  control = np.zeros(50)
  control[5:8] = 1.0
  control[20:23] = 0.9
  pred = np.zeros(50)
  pred[6:9] = 0.8  # overlaps the first control blink
  pred[40:42] = 1.0  # a blink nobody asked for
  assert metrics.blink_events(control) == [(5, 8), (20, 23)]
  counts = metrics.blink_counts(pred, control)
  assert counts == {"pred_events": 2, "pred_matched": 1, "control_events": 2, "control_matched": 1}
  assert metrics.precision_recall(counts) == (0.5, 0.5)
  # Within the tolerance a late blink still counts; beyond it it does not.
  late = np.zeros(50)
  late[9:11] = 1.0
  assert metrics.blink_counts(late, control, tolerance=2)["pred_matched"] == 1
  assert metrics.blink_counts(late, control, tolerance=1)["pred_matched"] == 0
  assert metrics.precision_recall(metrics.blink_counts(np.zeros(5), np.zeros(5))) == (1.0, 1.0)


def test_identity_metrics():
  rng = np.random.default_rng(3)
  true = rng.uniform(0, 1, size=(30, 5))
  beta0 = np.median(true, 0) + 0.1
  out = metrics.identity(true, true, beta0)
  assert out["identity_error"] == 0.0
  np.testing.assert_allclose(out["identity_beta0_offset"], 0.1)
  np.testing.assert_allclose(metrics.identity(true + 0.2, true, beta0)["identity_error"], 0.2)
  delta = rng.normal(size=5)
  np.testing.assert_allclose(metrics.identity_transfer(true, true + delta, beta0, beta0 + delta), 1.0)
  np.testing.assert_allclose(metrics.identity_transfer(true, true, beta0, beta0 + delta), 0.0, atol=1e-12)
