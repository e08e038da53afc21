"""Mapping expression coefficients between face models: BFM's 64 PCA coefficients <-> ICT/ARKit channels.

SadTalker and PIRenderer consume BFM expression coefficients, while the built-in face and the ICT model
speak the 53 ARKit-named channels. `fit_retarget` finds the linear map M [Kt,Ks] with which the target
model reproduces the source model's expression displacements:

  1. a similarity transform (scale, rotation, translation) aligns the source's 68 neutral landmarks with
     the target's, and a thin-plate spline through the landmarks warps the source onto the target;
  2. every target face vertex is matched to the closest point of the aligned source surface (barycentric
     on the nearest triangle), and pairs farther apart than `max_distance` are dropped;
  3. ridge regression: M = argmin ||B_t M - D_s||^2 + reg ||diag(|B_t|) M||^2, with B_t [3V,Kt] the target's
     basis at the matched vertices, |B_t| its column norms and D_s [3V,Ks] the source's (rotated and
     scaled) basis interpolated there.

`channel_map` is what exporters call: a permutation or the ICT<->ARKit matrices when only names differ,
`fit_retarget` when the spaces differ.
"""

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError


def fit_retarget(source_model, target_model, reg: float = 1e-3, max_distance: float | None = None):
  """[Kt, Ks] float32 matrix M with target coefficients = M @ source coefficients.

  Args:
    source_model, target_model: MorphableModels with 68 landmarks and a "face" region (all vertices when
      the region is missing or empty).
    reg: ridge weight on the target's basis columns scaled to unit norm (over the matched vertices).
    max_distance: drop target vertices farther than this from the aligned source surface (model units);
      default 10% of the target's jaw width (landmarks 0-16).
  """
  src = source_model.to_numpy()
  tgt = target_model.to_numpy()
  scale, rotation, src_centre, tgt_centre = _similarity(src.mean[src.landmarks], tgt.mean[tgt.landmarks])
  src_points = scale * (src.mean.astype(np.float64) - src_centre) @ rotation.T + tgt_centre
  # A thin-plate-spline warp then puts every landmark exactly on its target, so that two faces of
  # different shape meet where their features are (it halves the matching distances from ICT to the
  # built-in face); the bases are only rotated and scaled, the warp serves the correspondence.
  lm_src, lm_tgt = src_points[src.landmarks], tgt.mean[tgt.landmarks].astype(np.float64)
  src_points = src_points + RBFInterpolator(lm_src, lm_tgt - lm_src, kernel="thin_plate_spline")(src_points)

  tgt_vertices = _face(tgt)
  src_triangles = src.triangles[np.all(np.isin(src.triangles, _face(src)), axis=1)]
  tri, bary, dist = closest_points(src_points, src_triangles, tgt.mean[tgt_vertices].astype(np.float64))
  if max_distance is None:
    max_distance = 0.1 * np.linalg.norm(tgt.mean[tgt.landmarks[16]] - tgt.mean[tgt.landmarks[0]])
  keep = dist <= max_distance
  if keep.sum() < tgt.num_exp:
    raise UserError(f"cannot retarget {src.name!r} -> {tgt.name!r}: only {int(keep.sum())} target vertices "
                    f"lie within {max_distance:.3g} of the aligned source face; are the landmarks right?")
  tri, bary, tgt_vertices = tri[keep], bary[keep], tgt_vertices[keep]

  corners = src_triangles[tri]  # [V,3]
  src_basis = np.einsum("vc,vcdk->vdk", bary, src.exp_basis[corners].astype(np.float64))
  src_basis = scale * np.einsum("ed,vdk->vek", rotation, src_basis)
  a = tgt.exp_basis[tgt_vertices].astype(np.float64).reshape(-1, tgt.num_exp)
  y = src_basis.reshape(-1, src.num_exp)
  # Ridge on unit-norm columns, so that channels with a small footprint (eye gaze) shrink no more than
  # large ones; channels that do not move the matched vertices at all get zero rows.
  norms = np.linalg.norm(a, axis=0)
  norms = np.where(norms > 1e-12 * max(norms.max(), 1e-30), norms, np.inf)
  unit = a / norms
  solution = np.linalg.solve(unit.T @ unit + reg * np.eye(tgt.num_exp), unit.T @ y)
  return (solution / norms[:, None]).astype(np.float32)


def channel_map(source_names, target_names, source_model=None, target_model=None, purpose="this export"):
  """[Kt, Ks] float64 matrix taking coefficients named `source_names` to `target_names`.

  Names that only differ in order or in the ICT/ARKit spelling need no models; different expression
  spaces need `source_model` (speaking `source_names`) and `target_model` (speaking `target_names`).
  """
  source_names, target_names = tuple(source_names), tuple(target_names)
  direct = _name_map(source_names, target_names)
  if direct is not None:
    return direct
  if source_model is None or target_model is None:
    raise UserError(
      f"the coefficients are in the space of {_describe(source_names)} but {purpose} needs "
      f"{_describe(target_names)}; give the face models of both spaces to retarget (a2e export: --model for "
      "the ARKit-channel model, --bfm BFM_model_front.mat for BFM)")
  into_source = _name_map(source_names, source_model.channel_names)
  out_of_target = _name_map(target_model.channel_names, target_names)
  for matrix, model, names in ((into_source, source_model, source_names),
                               (out_of_target, target_model, target_names)):
    if matrix is None:
      raise UserError(f"face model {model.name!r} has channels {_describe(model.channel_names)}, "
                      f"expected {_describe(names)}")
  return out_of_target @ fit_retarget(source_model, target_model).astype(np.float64) @ into_source


def closest_points(vertices, triangles, points, candidates: int = 4):
  """Approximate closest points of `points` [P,3] on a triangle mesh.

  Searches the triangles around the `candidates` nearest mesh vertices; each point is projected onto the
  triangle's plane and its barycentrics clamped into the triangle.
  Returns (triangle index [P], barycentrics [P,3], distance [P]).
  """
  vertices = np.asarray(vertices, np.float64)
  triangles = np.asarray(triangles, np.int64)
  points = np.asarray(points, np.float64)
  used = np.unique(triangles)  # search only vertices that have triangles
  tree = cKDTree(vertices[used])
  incident = _incident_triangles(len(vertices), triangles)[used]  # [U, max degree], -1 padded
  # Blocks of points keep the [P, candidates, 3, 3] corner array small.
  parts = [_closest_in_block(vertices, triangles, tree, incident, points[i:i + 4096], candidates)
           for i in range(0, len(points), 4096)]
  return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def _closest_in_block(vertices, triangles, tree, incident, points, candidates):
  _, nearest = tree.query(points, k=candidates)
  cand = incident[nearest.reshape(len(points), -1)].reshape(len(points), -1)  # [P, C]
  corners = vertices[triangles[np.maximum(cand, 0)]]  # [P,C,3,3]
  bary, degenerate = _clamped_barycentrics(corners, points[:, None, :])
  valid = (cand >= 0) & ~degenerate
  closest = np.einsum("pcj,pcjd->pcd", bary, corners)
  dist = np.linalg.norm(closest - points[:, None, :], axis=-1)
  dist = np.where(valid, dist, np.inf)
  best = np.argmin(dist, axis=1)
  rows = np.arange(len(points))
  return cand[rows, best], bary[rows, best], dist[rows, best]


def _clamped_barycentrics(corners, p):
  """Barycentrics [...,3] of p's projection on each triangle's plane, clamped into the triangle, and a
  mask of degenerate (zero-area) triangles, whose barycentrics are meaningless."""
  a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
  v0, v1, v2 = b - a, c - a, p - a
  d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
  d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
  denom = d00 * d11 - d01 * d01
  degenerate = denom <= 1e-12 * np.maximum(d00 * d11, 1e-300)
  denom = np.where(degenerate, 1.0, denom)
  v = (d11 * d20 - d01 * d21) / denom
  w = (d00 * d21 - d01 * d20) / denom
  bary = np.clip(np.stack([1 - v - w, v, w], axis=-1), 0.0, None)
  bary = bary / np.maximum(bary.sum(-1, keepdims=True), 1e-12)
  return np.where(degenerate[..., None], 1.0 / 3.0, bary), degenerate


def _incident_triangles(num_vertices: int, triangles) -> np.ndarray:
  """[N, max degree] indices of the triangles around each vertex, padded with -1."""
  vertex = triangles.reshape(-1)
  tri = np.repeat(np.arange(len(triangles)), 3)
  order = np.argsort(vertex, kind="stable")
  vertex, tri = vertex[order], tri[order]
  counts = np.bincount(vertex, minlength=num_vertices)
  slot = np.arange(len(vertex)) - np.repeat(np.cumsum(counts) - counts, counts)
  table = np.full((num_vertices, max(int(counts.max()), 1)), -1, np.int64)
  table[vertex, slot] = tri
  return table


def _similarity(source, target):
  """(scale, rotation [3,3], source centroid, target centroid) with target ≈ s R (source - cs) + ct."""
  source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
  cs, ct = source.mean(0), target.mean(0)
  xs, xt = source - cs, target - ct
  scale = np.sqrt((xt**2).sum() / (xs**2).sum())
  rotation, _ = Rotation.align_vectors(xt, xs)
  return scale, rotation.as_matrix(), cs, ct


def _face(model) -> np.ndarray:
  face = np.asarray(model.regions.get("face", ()), np.int64)
  return face if face.size else np.arange(model.num_vertices)


def _name_map(source_names, target_names):
  """[Kt,Ks] map when the names differ only in order or ICT/ARKit spelling, else None."""
  source_names, target_names = tuple(source_names), tuple(target_names)
  if set(source_names) == set(target_names):
    return np.eye(len(source_names))[[source_names.index(n) for n in target_names]]
  ict, arkit = channels.ICT_CHANNELS, channels.ARKIT_BLENDSHAPES
  if source_names == ict and target_names == arkit:
    return channels.ict_to_arkit_matrix().astype(np.float64)
  if source_names == arkit and target_names == ict:
    return channels.arkit_to_ict_matrix().astype(np.float64)
  return None


def _describe(names) -> str:
  names = tuple(names)
  if names == tuple(f"exp{i:02d}" for i in range(64)):
    return "BFM's 64 expression coefficients"
  if names == channels.ICT_CHANNELS:
    return "the 53 ICT/ARKit channels"
  if names == channels.ARKIT_BLENDSHAPES:
    return "ARKit's 52 blendshapes"
  return f"{len(names)} channels ({', '.join(names[:3])}, ...)"
