"""Analytic antialiasing of silhouette edges, which also gives gradients at silhouettes.

A hard rasterizer's image changes in jumps as an edge sweeps over pixel centres, so its gradient with
respect to vertex positions ignores the silhouette. Following the idea of nvdiffrast's `antialias` (Laine et
al. 2020, "Modular Primitives for High-Performance Differentiable Rendering"): for every pair of
horizontally or vertically adjacent pixels a, b where a shows triangle t (nearer than whatever b shows) and
a silhouette edge of t crosses the segment between the pixel centres at fraction f from a, t is taken to
cover [a, a+f] of that segment. If f > ½ the edge reaches into b's pixel and b's colour moves towards a's
by f − ½; if f < ½, a's own pixel is partly uncovered and a's colour moves towards b's by ½ − f. f comes
from t's edge function at the two centres — an affine function of the pixel with vertex-dependent
coefficients — so the image is continuous in the vertex positions and the gradient reaches them.

A silhouette edge is a mesh boundary edge or one whose neighbouring triangle faces the other way in this
frame (`edge_neighbours` finds the neighbours once per mesh).
"""

import jax
import jax.numpy as jnp
import numpy as np

from a2e_jax.render.rasterize import Fragments


def edge_neighbours(triangles_f3) -> np.ndarray:
  """[F,3] int32: the triangle across edge k (corners k+1, k+2) of each triangle, −1 on the boundary."""
  triangles_f3 = np.asarray(triangles_f3, np.int64)
  num = len(triangles_f3)
  a = triangles_f3[:, [1, 2, 0]].ravel()
  b = triangles_f3[:, [2, 0, 1]].ravel()
  key = np.minimum(a, b) * (triangles_f3.max() + 1) + np.maximum(a, b)
  order = np.argsort(key, kind="stable")
  sorted_key = key[order]
  out = np.full(3 * num, -1, np.int64)
  # Edges shared by two triangles are adjacent once sorted; an edge of 3+ triangles pairs the first two.
  same = sorted_key[1:] == sorted_key[:-1]
  first, second = order[:-1][same], order[1:][same]
  out[first] = second // 3
  out[second] = first // 3
  return out.reshape(num, 3).astype(np.int32)


def antialias(image_bhwc, frags: Fragments, screen_bn3, triangles_f3, neighbours_f3, *, perspective=True):
  """[B,H,W,C] image with its silhouette edges blended (see module doc); differentiable in image and screen.

  Args:
    image_bhwc: the shaded image, background included.
    frags: the rasterizer's output for `screen_bn3`.
    screen_bn3: [B,N,3] screen vertices as given to the rasterizer (gradients flow to them).
    triangles_f3: [F,3] triangles.
    neighbours_f3: [F,3] from `edge_neighbours(triangles_f3)` (computed once per mesh, outside jit).
    perspective: as for the rasterizer.
  """
  triangles_f3 = jnp.asarray(triangles_f3, jnp.int32)
  neighbours_f3 = jnp.asarray(neighbours_f3, jnp.int32)
  verts = screen_bn3 if perspective else screen_bn3.at[..., 2].set(1.0)
  corners = jax.vmap(lambda v: v[triangles_f3])(verts)  # [B,F,3,3]
  facing = jnp.sign(jnp.linalg.det(corners))  # [B,F]; det of rows (X, Y, W): the screen orientation
  depth = jnp.where(frags.mask, frags.depth, jnp.inf)
  delta = jnp.zeros_like(image_bhwc)
  for axis in (1, 2):
    for forward in (True, False):
      delta = delta + _pair_deltas(image_bhwc, frags.tri_id, depth, corners, facing, neighbours_f3, axis,
                                   forward)
  return image_bhwc + delta


def _pair_deltas(image, tri_id, depth, corners, facing, neighbours, axis, forward):
  """Colour changes from occluder pixels a to their neighbours b one step along `axis` (forward or back)."""
  count = image.shape[axis]

  def cut(x, start):
    return jax.lax.slice_in_dim(x, start, start + count - 1, axis=axis)

  a_start, b_start = (0, 1) if forward else (1, 0)
  id_a, id_b = cut(tri_id, a_start), cut(tri_id, b_start)
  near = (id_a >= 0) & (id_a != id_b) & (cut(depth, a_start) <= cut(depth, b_start))
  t = jnp.maximum(id_a, 0)
  frame = jnp.arange(tri_id.shape[0])[:, None, None]
  tri_corners = corners[frame, t]  # [B,h,w,3,3]
  sign = facing[frame, t]
  grid = (1,) + tri_id.shape[1:]
  rows = jnp.broadcast_to(jnp.arange(grid[1], dtype=jnp.float32)[:, None] + 0.5, grid)
  cols = jnp.broadcast_to(jnp.arange(grid[2], dtype=jnp.float32)[None, :] + 0.5, grid)
  pa = (cut(cols, a_start), cut(rows, a_start))
  step = 1.0 if forward else -1.0
  pb = (pa[0] + step, pa[1]) if axis == 2 else (pa[0], pa[1] + step)

  best_f = jnp.full(id_a.shape, 2.0)
  for k in range(3):
    u, v = tri_corners[..., (k + 1) % 3, :], tri_corners[..., (k + 2) % 3, :]
    e_a = sign * _edge(u, v, *pa)
    e_b = sign * _edge(u, v, *pb)
    other = neighbours[t, k]
    silhouette = (other < 0) | (facing[frame, jnp.maximum(other, 0)] != sign)
    crosses = silhouette & (e_a >= 0) & (e_b <= 0) & (e_a > e_b)
    f = e_a / jnp.where(crosses, e_a - e_b, 1.0)
    best_f = jnp.where(crosses & (f < best_f), f, best_f)
  active = near & (best_f <= 1.0)
  f = jnp.where(active, best_f, 0.5)[..., None]
  color_a, color_b = cut(image, a_start), cut(image, b_start)
  into_b = jnp.maximum(f - 0.5, 0.0) * (color_a - color_b)
  into_a = jnp.maximum(0.5 - f, 0.0) * (color_b - color_a)
  pad = [(0, 0)] * image.ndim
  pad_a, pad_b = list(pad), list(pad)
  pad_a[axis] = (a_start, b_start)
  pad_b[axis] = (b_start, a_start)
  return jnp.pad(into_a, pad_a) + jnp.pad(into_b, pad_b)


def _edge(u, v, px, py):
  """Homogeneous edge function of the edge u→v at pixel (px, py): (U × V)·(px, py, 1), affine in the pixel."""
  xu, yu, wu = u[..., 0], u[..., 1], u[..., 2]
  xv, yv, wv = v[..., 0], v[..., 1], v[..., 2]
  return (xu - px * wu) * (yv - py * wv) - (xv - px * wv) * (yu - py * wu)
