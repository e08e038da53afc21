"""Surface points that landmarks measure: a triangle and barycentric weights per landmark.

A landmark detector's point is a place on the skin, not necessarily a vertex of a given mesh, so a
correspondence is a point on a triangle. A vertex landmark (the models' own 68 Multi-PIE indices) is the
special case with one weight 1. Every quantity the fit needs at those points is linear in the model's
bases, so `point_model` folds the weights into a small model of L points once, and the landmark term
never touches the full mesh.

A detector need not treat the points as fixed places on *this* mesh: a network trained on real faces
places its points by its own idea of a face, so on another face model a point may sit off the surface,
slide as the head turns, or move with an expression by more or less than the surface does. A
correspondence can carry that behaviour (learned by fit/find_points.py): an offset of each point in the
head's frame that is linear in a few features of the head's pitch and yaw (`pose_features`), and a
correction to the expression basis at the points.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Correspondence:
  """L surface points of a mesh.

  Attributes:
    triangles: [L] int32 triangle index per point.
    bary: [L,3] float32 barycentric weights of the triangle's corners (sum 1).
    weights: [L] float32 importance of each point in the landmark term.
    name: what the points are ("68", "mediapipe468", ...).
    offsets: [L,3,F] float32 offset of each point from its surface point (model units, head frame) per
      pose feature (`pose_features`), or None for points on the surface.
    exp_delta: [L,3,Ke] float32 added to the expression basis at the points, or None.
  """

  triangles: np.ndarray
  bary: np.ndarray
  weights: np.ndarray
  name: str = "points"
  offsets: np.ndarray | None = None
  exp_delta: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.triangles)

  def vertices(self, triangles_f3) -> np.ndarray:
    """[L,3] vertex indices of each point's triangle."""
    return np.asarray(triangles_f3)[self.triangles]


def from_vertices(vertex_ids, triangles_f3, weights=None, name: str = "vertices") -> Correspondence:
  """Points exactly at vertices `vertex_ids` [L] (each on the first triangle that uses it)."""
  vertex_ids = np.asarray(vertex_ids, np.int64)
  tri = np.asarray(triangles_f3, np.int64)
  flat = tri.ravel()
  order = np.argsort(flat, kind="stable")
  first = np.searchsorted(flat[order], vertex_ids)
  if np.any(first >= len(flat)) or np.any(flat[order][np.minimum(first, len(flat) - 1)] != vertex_ids):
    raise ValueError("a landmark vertex is on no triangle")
  slot = order[first]
  bary = np.zeros((len(vertex_ids), 3), np.float32)
  bary[np.arange(len(vertex_ids)), slot % 3] = 1.0
  weights = np.ones(len(vertex_ids), np.float32) if weights is None else np.asarray(weights, np.float32)
  return Correspondence((slot // 3).astype(np.int32), bary, weights, name)


# Multi-PIE 68: the jaw line (0-16) is a silhouette on a turned head and the least repeatable part of any
# detector's output, so it counts half.
def multipie68(model) -> Correspondence:
  """The model's own 68 landmark vertices."""
  weights = np.ones(68, np.float32)
  weights[:17] = 0.5
  return from_vertices(np.asarray(model.landmarks), model.triangles, weights, name="68")


NUM_POSE_FEATURES = 7


def pose_features(rot_3):
  """[..., F] the features of a head pose that a point's offset is linear in: 1, yaw, pitch and their
  products up to yaw³ (angles [..., 3] in radians, pitch first as in `camera.rotation_matrix`)."""
  pitch, yaw = rot_3[..., 0], rot_3[..., 1]
  one = jnp.ones_like(yaw)
  return jnp.stack([one, yaw, pitch, yaw * yaw, pitch * pitch, yaw * pitch, yaw**3], -1)


@dataclasses.dataclass(frozen=True)
class PointModel:
  """The model at L points: mean [L,3], id_basis [L,3,Ki], exp_basis [L,3,Ke], offsets [L,3,F]."""

  mean: jnp.ndarray
  id_basis: jnp.ndarray
  exp_basis: jnp.ndarray
  offsets: jnp.ndarray

  def arrays(self) -> tuple:
    return self.mean, self.id_basis, self.exp_basis, self.offsets

  def points(self, id_k, exp_tk, rot_t3):
    """[T,L,3] points for identity [Ki], expressions [T,Ke] and head angles [T,3]."""
    return points(self.arrays(), id_k, exp_tk, rot_t3)


def points(arrays, id_k, exp_tk, rot_t3):
  """[T,L,3] PointModel.points on its `arrays()` (a pytree for jitted code)."""
  mean, id_basis, exp_basis, offsets = arrays
  shape = mean + jnp.einsum("k,lck->lc", id_k, id_basis)
  shape = shape + jnp.einsum("tk,lck->tlc", exp_tk, exp_basis)
  return shape + jnp.einsum("tf,lcf->tlc", pose_features(rot_t3), offsets)


def point_model(model, corr: Correspondence) -> PointModel:
  """Folds the barycentric weights into the model's mean and bases (host numpy, once per model)."""
  vid = corr.vertices(model.triangles)
  bary = np.asarray(corr.bary, np.float32)

  def fold(array):
    array = np.asarray(array, np.float32)
    return np.einsum("lk,lk...->l...", bary, array[vid])

  exp_basis = fold(model.exp_basis)
  if corr.exp_delta is not None:
    exp_basis = exp_basis + corr.exp_delta
  offsets = np.zeros((len(corr), 3, NUM_POSE_FEATURES), np.float32)
  if corr.offsets is not None:
    offsets = np.asarray(corr.offsets, np.float32)
  return PointModel(*(jnp.asarray(a) for a in (fold(model.mean), fold(model.id_basis), exp_basis, offsets)))


def surface_points(verts_tn3, triangles_f3, corr: Correspondence):
  """[T,L,3] the points on meshes [T,N,3]."""
  vid = jnp.asarray(corr.vertices(triangles_f3))
  return jnp.einsum("lk,tlkc->tlc", jnp.asarray(corr.bary), verts_tn3[:, vid])
