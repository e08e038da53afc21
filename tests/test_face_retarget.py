"""Retargeting between expression spaces: a known linear map is recovered; name-only maps need no models."""

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from test_face_formats import grid_model

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.face.model import MorphableModel
from a2e_jax.face.retarget import channel_map, closest_points, fit_retarget


def subdivided(model: MorphableModel) -> MorphableModel:
  """Each triangle split in four at its edge midpoints; old vertices keep their indices (and landmarks)."""
  mean, basis = np.asarray(model.mean, np.float64), np.asarray(model.exp_basis, np.float64)
  tri = np.asarray(model.triangles)
  edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
  unique, inverse = np.unique(edges, axis=0, return_inverse=True)
  mid = len(mean) + inverse.reshape(3, -1).T  # [F,3] midpoint index of edges 01, 12, 20
  new_mean = np.concatenate([mean, mean[unique].mean(axis=1)])
  new_basis = np.concatenate([basis, basis[unique].mean(axis=1)])
  a, b, c = tri.T
  ab, bc, ca = mid.T
  corners = ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))
  new_tri = np.concatenate([np.stack(t, axis=1) for t in corners])
  return MorphableModel(mean=new_mean, id_basis=np.zeros((len(new_mean), 3, 0)), exp_basis=new_basis,
                        triangles=new_tri, landmarks=model.landmarks, regions={},
                        channel_names=model.channel_names, name="fine")


def test_recovers_a_known_linear_map_across_meshes_and_poses():
  k = 8
  source = grid_model(k, tuple(f"s{i}" for i in range(k)), n=20, name="source")
  fine = subdivided(source)
  rng = np.random.default_rng(3)
  g = np.eye(k) + 0.3 * rng.normal(size=(k, k))  # target basis = source basis @ g, so M = inv(g)
  rotation = Rotation.from_euler("xyz", [0.2, -0.4, 0.1]).as_matrix()
  scale, shift = 1.7, np.array([0.3, -2.0, 5.0])
  target = MorphableModel(
    mean=(scale * fine.mean @ rotation.T + shift).astype(np.float32), id_basis=fine.id_basis,
    exp_basis=(scale * np.einsum("ed,ndk->nek", rotation, fine.exp_basis) @ g).astype(np.float32),
    triangles=fine.triangles, landmarks=fine.landmarks, regions={},
    channel_names=tuple(f"t{i}" for i in range(k)), name="target",
  )
  matrix = fit_retarget(source, target, reg=1e-9)
  assert matrix.shape == (k, k)
  np.testing.assert_allclose(matrix, np.linalg.inv(g), atol=2e-3)
  # And back: the inverse map.
  np.testing.assert_allclose(fit_retarget(target, source, reg=1e-9), g, atol=2e-3)


def test_closest_points_against_brute_force():
  model = grid_model(1, ("a",), n=15)
  mean, tri = np.asarray(model.mean, np.float64), np.asarray(model.triangles)
  rng = np.random.default_rng(0)
  points = rng.uniform([-0.7, -0.9, -0.1], [0.7, 0.9, 0.5], size=(200, 3))
  _, bary, dist = closest_points(mean, tri, points)
  # Brute force: the minimum over dense samples of every triangle.
  w = np.array([(i, j, 40 - i - j) for i in range(41) for j in range(41 - i)]) / 40.0
  samples = np.einsum("sj,fjd->fsd", w, mean[tri]).reshape(-1, 3)
  brute, _ = cKDTree(samples).query(points)
  assert np.all(dist <= brute + 1e-9) and np.all(dist >= brute - 0.02)
  assert np.allclose(bary.sum(axis=1), 1) and bary.min() >= 0


def test_channel_map_without_models():
  to_arkit = channel_map(channels.ICT_CHANNELS, channels.ARKIT_BLENDSHAPES)
  np.testing.assert_array_equal(to_arkit, channels.ict_to_arkit_matrix())
  perm = channel_map(("a", "b", "c"), ("c", "a", "b"))
  np.testing.assert_array_equal(perm @ np.array([1.0, 2.0, 3.0]), [3.0, 1.0, 2.0])
  with pytest.raises(UserError, match="BFM's 64 expression coefficients.*--bfm"):
    channel_map(channels.BFM_CHANNELS, channels.ICT_CHANNELS, purpose="the arkit-csv format")


def test_channel_map_composes_name_maps_with_the_fit():
  bfm_like = grid_model(64, channels.BFM_CHANNELS, name="bfm")
  ict_like = grid_model(53, channels.ICT_CHANNELS, name="ict")
  to_arkit = channel_map(channels.BFM_CHANNELS, channels.ARKIT_BLENDSHAPES, bfm_like, ict_like)
  expected = channels.ict_to_arkit_matrix() @ fit_retarget(bfm_like, ict_like)
  np.testing.assert_allclose(to_arkit, expected, rtol=1e-6, atol=1e-9)
