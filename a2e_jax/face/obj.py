"""A Wavefront OBJ reader for face-model meshes: positions, UVs and polygons (fanned into triangles).

Vertex order is kept exactly as in the file (blendshape OBJs are matched by index). The numbers are
converted by numpy in one call per block rather than per line, so a 26k-vertex OBJ reads in tens of ms.
Supported: `v x y z [...]`, `vt u v [...]`, `f a[/t[/n]] ...` with 1-based indices; other records
(vn, mtllib, usemtl, g, s, o, comments) are ignored.
"""

import dataclasses

import numpy as np

from a2e_jax.core.errors import UserError
from a2e_jax.face.model import require_finite


@dataclasses.dataclass
class ObjMesh:
  """vertices [N,3] float64; uvs [U,2] or None; triangles [F,3] and uv_triangles [F,3] (or None) 0-based;
  triangle_polygon [F] index of the OBJ face each triangle comes from."""

  vertices: np.ndarray
  uvs: np.ndarray | None
  triangles: np.ndarray
  uv_triangles: np.ndarray | None
  triangle_polygon: np.ndarray


def read_obj_vertices(path: str) -> np.ndarray:
  """Just the [N,3] float64 vertex positions (for blendshape files that share a topology)."""
  return _vertices(path, _lines(path))


def read_obj(path: str) -> ObjMesh:
  """Positions, UVs and triangulated polygons of an OBJ file."""
  lines = _lines(path)
  vertices = _vertices(path, lines)
  uv_lines = [line[3:] for line in lines if line.startswith("vt ")]
  uvs = _numbers(path, "vt", uv_lines, 2) if uv_lines else None
  face_lines = [line[2:].split() for line in lines if line.startswith("f ")]
  if not face_lines:
    raise UserError(f"{path}: no faces ('f' lines); the OBJ file is truncated or not a mesh")
  corners_v, corners_t, polygon = [], [], []
  for index, tokens in enumerate(face_lines):
    if len(tokens) < 3:
      raise UserError(f"{path}: face {index} has {len(tokens)} corners; the file is truncated or malformed")
    fields = [token.split("/") for token in tokens]
    try:
      v = [int(f[0]) for f in fields]
      t = [int(f[1]) if len(f) > 1 and f[1] else 0 for f in fields]
    except ValueError:
      raise UserError(f"{path}: face {index} has a malformed index ({' '.join(tokens)})") from None
    for k in range(1, len(v) - 1):  # a fan: (0, k, k+1)
      corners_v.append((v[0], v[k], v[k + 1]))
      corners_t.append((t[0], t[k], t[k + 1]))
      polygon.append(index)
  triangles = np.asarray(corners_v, np.int64) - 1
  uv_triangles = np.asarray(corners_t, np.int64) - 1
  if triangles.min() < 0 or triangles.max() >= len(vertices):
    raise UserError(f"{path}: faces use vertex indices outside 1..{len(vertices)} (relative indices are not "
                    "supported); the file is truncated or malformed")
  if uvs is None or uv_triangles.min() < 0 or uv_triangles.max() >= len(uvs):
    uv_triangles = None
  return ObjMesh(vertices, uvs if uv_triangles is not None else None, triangles.astype(np.int32),
                 None if uv_triangles is None else uv_triangles.astype(np.int32),
                 np.asarray(polygon, np.int32))


def _lines(path: str) -> list[str]:
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return f.read().splitlines()
  except OSError as e:
    raise UserError(f"{path}: cannot read the OBJ file ({e.strerror})") from None


def _vertices(path: str, lines: list[str]) -> np.ndarray:
  vertex_lines = [line[2:] for line in lines if line.startswith("v ")]
  if not vertex_lines:
    raise UserError(f"{path}: no vertices ('v' lines); the OBJ file is empty, truncated or not a mesh")
  vertices = _numbers(path, "v", vertex_lines, 3)
  require_finite(vertices, lambda at, number: f"{path}: vertex {at[0] + 1}, coordinate {'xyz'[at[1]]}: "
                                              f"{number:g} is not finite; the mesh is damaged")
  return vertices


def _numbers(path: str, record: str, lines: list[str], width: int) -> np.ndarray:
  """[len(lines), width] float64 from the first `width` numbers of each line."""
  try:
    flat = np.array(" ".join(lines).split(), np.float64)
    if flat.size == width * len(lines):
      return flat.reshape(-1, width)
    # Some lines carry extra values (w, vertex colours) or too few (a cut-off last line).
    rows = [line.split() for line in lines]
    short = next((i for i, r in enumerate(rows) if len(r) < width), None)
    if short is not None:
      raise UserError(f"{path}: '{record}' record {short} has {len(rows[short])} numbers, expected {width}; "
                      "the file is truncated or malformed")
    return np.array([r[:width] for r in rows], np.float64)
  except ValueError:
    raise UserError(f"{path}: a '{record}' record holds a non-number; the file is truncated or "
                    "malformed") from None
