"""Synthetic meshes for tests and benchmarks: a face-sized surface with BFM's vertex and triangle counts."""

import numpy as np

BFM_VERTICES = 35_709
BFM_TRIANGLES = 70_789


def face_like_mesh(num_vertices: int = BFM_VERTICES, num_triangles: int = BFM_TRIANGLES, seed: int = 0):
  """(verts [N,3] float32, triangles [F,3] int32): a face-sized dome with irregular small triangles.

  A Delaunay triangulation of a disc has F = 2N − 2 − B triangles for B points on its (convex) rim, so
  putting B = 2N − 2 − F points on the rim and the rest inside gives both counts exactly. The disc is lifted
  onto a half-ellipsoid 1.5 units wide and 1.9 tall (BFM-like units; a face at Deep3DFaceRecon's camera).
  """
  from scipy.spatial import Delaunay

  rim = 2 * num_vertices - 2 - num_triangles
  if not 3 <= rim < num_vertices:
    raise ValueError(f"no disc triangulation has {num_vertices} vertices and {num_triangles} triangles")
  rng = np.random.default_rng(seed)
  angle = np.linspace(0, 2 * np.pi, rim, endpoint=False)
  radius = np.sqrt(rng.uniform(0, 0.995**2, num_vertices - rim))
  theta = rng.uniform(0, 2 * np.pi, num_vertices - rim)
  uv = np.concatenate([np.stack([np.cos(angle), np.sin(angle)], 1),
                       np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1)])
  triangles = Delaunay(uv).simplices.astype(np.int32)
  if len(triangles) != num_triangles:
    raise AssertionError(f"Delaunay gave {len(triangles)} triangles, expected {num_triangles}")
  height = np.sqrt(np.clip(1 - (uv**2).sum(1), 0, 1))
  nose = 0.25 * np.exp(-((uv[:, 0] / 0.15) ** 2 + ((uv[:, 1] + 0.05) / 0.3) ** 2))
  verts = np.stack([0.75 * uv[:, 0], 0.95 * uv[:, 1], 0.6 * height + nose], 1).astype(np.float32)
  # Counter-clockwise seen from +z (outside), as the face models are.
  a, b, c = uv[triangles[:, 0]], uv[triangles[:, 1]], uv[triangles[:, 2]]
  clockwise = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]) < 0
  triangles[clockwise] = triangles[clockwise][:, ::-1]
  return verts, triangles


def random_poses(num: int, seed: int = 0, max_angle: float = 0.35):
  """(angles [B,3] radians, trans [B,3]) head poses within ±max_angle and a small translation."""
  rng = np.random.default_rng(seed)
  angles = rng.uniform(-max_angle, max_angle, (num, 3)).astype(np.float32)
  trans = (rng.uniform(-0.3, 0.3, (num, 3)) * np.array([1, 1, 2])).astype(np.float32)
  return angles, trans
