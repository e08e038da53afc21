"""A triangle rasterizer in pure JAX: visibility by z-buffer, then differentiable barycentrics.

Input: screen vertices [B,N,3] from `camera.project` — homogeneous pixel coordinates (X, Y, W) with the pixel
at (X/W, Y/W) and view depth W, or with `perspective=False` plain (x_px, y_px, depth) — and triangles [F,3].
Output (`Fragments`): per pixel the visible triangle id (−1 for background), perspective-correct
barycentrics and depth. Pixels are sampled at their centres (c + ½, r + ½); see camera.py for the axes.

How visibility is found (no gradients; everything has fixed shapes and runs under `jit` on any backend):
- Coverage of a pixel p by a triangle uses homogeneous edge functions (Olano & Greer 1997): with vertices
  V_k = (X_k, Y_k, W_k) moved so that p is the origin, c_k = X'_a Y'_b − X'_b Y'_a for the edge (a, b)
  opposite vertex k. p is covered when every c_k has the sign of the triangle's determinant; then
  b_k = c_k / Σc are the perspective-correct barycentrics and the depth is Σ b_k W_k. This needs no
  division by W, so triangles that cross the camera plane are drawn exactly, clipped per pixel at the near
  plane (depth ≥ near); triangles wholly nearer than `near` are culled.
- Fill rule: each edge function is evaluated from the edge's two vertices in ascending vertex-index order
  and negated as needed, so both triangles sharing an edge compute the same value with opposite signs; a
  pixel centre exactly on an edge belongs to the triangle whose inward edge normal n has n_x > 0, or
  n_x = 0 and n_y > 0 (the top-left rule in y-down pixel coordinates). Shared edges are never drawn twice
  nor dropped.
- Small triangles (the common case: a 35k-vertex face at 256² has ~1 px triangles) are tested on a fixed
  `footprint`×`footprint` block of pixels at their bounding box corner, all at once. The rest (larger
  triangles, close-ups, triangles bigger than the image, triangles crossing the camera plane) are cut into
  `tile`×`tile` blocks covering their bounding box (the whole image when crossing the camera plane); the
  blocks form a work list processed `chunk` candidates at a time in a loop, so memory stays bounded and
  exact for any triangle size.
- Z-buffer: a scatter-min of depths into [B·H·W], then a scatter-min of triangle ids among candidates that
  equal the winning depth (so exact depth ties go to the lowest triangle id, as OpenGL's GL_LESS does for
  primitives drawn in order). No [H·W·F] intermediate exists.

Gradients: `rasterize` recomputes barycentrics and depth of the visible triangle at each pixel with the
same formula from the (differentiable) vertices; see `antialias.py` for silhouette gradients.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_NO_ID = np.iinfo(np.int32).max


class Fragments(NamedTuple):
  """Per-pixel rasterizer output.

  Attributes:
    tri_id: [B,H,W] int32 visible triangle, −1 where no triangle covers the pixel centre.
    bary: [B,H,W,3] float32 perspective-correct barycentrics of the visible triangle (0 on background).
    depth: [B,H,W] float32 view depth W (or the interpolated depth with perspective=False; 0 on background).
  """

  tri_id: jnp.ndarray
  bary: jnp.ndarray
  depth: jnp.ndarray

  @property
  def mask(self):
    """[B,H,W] bool, True where a triangle is visible."""
    return self.tri_id >= 0


def rasterize(screen_bn3, triangles_f3, height: int, width: int, *, perspective: bool = True,
              near: float = 0.1, footprint: int | None = None, tile: int | None = None,
              chunk: int = 1 << 17, group: int | None = None) -> Fragments:
  """Rasterizes a batch of meshes that share one triangle list.

  Args:
    screen_bn3: [B,N,3] float32 screen vertices (see module doc); differentiable.
    triangles_f3: [F,3] int32 vertex indices.
    height, width: image size.
    perspective: whether screen_bn3 is homogeneous (X, Y, W) or (x_px, y_px, depth).
    near: smallest view depth drawn (perspective only).
    footprint: side of the pixel block tested for every triangle at once (default: 2 up to 320 px, 4 above).
    tile: side of the blocks that larger triangles are cut into (default 4).
    chunk: pixel candidates per step of the large-triangle loop (bounds memory).
    group: frames rasterized together (see `visible_triangles`; default 2 up to 320 px, 1 above).
  Returns:
    Fragments.
  """
  small_image = max(height, width) <= 320
  footprint = footprint or (2 if small_image else 4)
  tile = tile or 4
  group = group or (2 if small_image else 1)
  screen_bn3 = jnp.asarray(screen_bn3, jnp.float32)
  triangles_f3 = jnp.asarray(triangles_f3, jnp.int32)
  tri_id = visible_triangles(jax.lax.stop_gradient(screen_bn3), triangles_f3, height, width,
                             perspective=perspective, near=near, footprint=footprint, tile=tile, chunk=chunk,
                             group=group)
  bary, depth = barycentrics(screen_bn3, triangles_f3, tri_id, perspective=perspective)
  return Fragments(tri_id, bary, depth)


def interpolate(attr_bnc, frags: Fragments, triangles_f3):
  """[B,H,W,C]: vertex attributes [B,N,C] (or shared [N,C]) interpolated at each pixel (0 on background)."""
  triangles_f3 = jnp.asarray(triangles_f3, jnp.int32)
  vid_bhw3 = triangles_f3[jnp.maximum(frags.tri_id, 0)]
  if attr_bnc.ndim == 2:
    corner = attr_bnc[vid_bhw3]
  else:
    corner = jax.vmap(lambda a, i: a[i])(attr_bnc, vid_bhw3)
  return jnp.einsum("bhwk,bhwkc->bhwc", frags.bary, corner)


def pixel_centres(height: int, width: int):
  """([H,1], [1,W]) float32 pixel-centre coordinates y and x."""
  return (jnp.arange(height, dtype=jnp.float32)[:, None] + 0.5,
          jnp.arange(width, dtype=jnp.float32)[None, :] + 0.5)


def barycentrics(screen_bn3, triangles_f3, tri_id_bhw, *, perspective: bool = True):
  """Differentiable ([B,H,W,3] barycentrics, [B,H,W] depth) of triangle `tri_id_bhw` at each pixel centre."""
  batch, height, width = tri_id_bhw.shape
  num = screen_bn3.shape[1]
  triangles_f3 = jnp.asarray(triangles_f3, jnp.int32)
  mask = tri_id_bhw >= 0
  # One row gather from the flattened [B·N,3] vertices (a batched gather is much slower on CPU).
  frame_offset = (jnp.arange(batch, dtype=jnp.int32) * num)[:, None, None, None]
  corner = screen_bn3.reshape(-1, 3)[triangles_f3[jnp.maximum(tri_id_bhw, 0)] + frame_offset]  # [B,H,W,3,3]
  py, px = pixel_centres(height, width)
  xp, yp, depth_k = [], [], []
  for k in range(3):
    x, y, w = corner[..., k, 0], corner[..., k, 1], corner[..., k, 2]
    depth_k.append(w)
    if not perspective:
      w = 1.0
    xp.append(x - px * w)
    yp.append(y - py * w)
  c = [xp[(k + 1) % 3] * yp[(k + 2) % 3] - xp[(k + 2) % 3] * yp[(k + 1) % 3] for k in range(3)]
  inv_total = 1.0 / jnp.where(mask, c[0] + c[1] + c[2], 1.0)
  bary = [jnp.where(mask, ck * inv_total, 0.0) for ck in c]
  depth = bary[0] * depth_k[0] + bary[1] * depth_k[1] + bary[2] * depth_k[2]
  return jnp.stack(bary, -1), depth


@functools.partial(jax.jit, static_argnames=("height", "width", "perspective", "near", "footprint", "tile",
                                             "chunk", "group"))
def visible_triangles(screen_bn3, triangles_f3, height, width, *, perspective=True, near=0.1, footprint=2,
                      tile=4, chunk=1 << 17, group=2):
  """[B,H,W] int32 id of the triangle visible at each pixel centre, −1 for background (no gradients).

  Frames are rasterized `group` at a time in a loop: a few frames' z-buffers and candidates stay in cache,
  which is faster on CPU than one pass over the whole batch, and memory stays bounded for any batch size.
  """
  batch = screen_bn3.shape[0]
  group = max(1, min(group, batch))
  steps = -(-batch // group)
  padded = jnp.pad(screen_bn3, ((0, steps * group - batch), (0, 0), (0, 0)))
  kwargs = dict(height=height, width=width, perspective=perspective, near=near, footprint=footprint,
                tile=tile, chunk=chunk)
  groups = padded.reshape(steps, group, *padded.shape[1:])
  ids = jax.lax.map(lambda a: _visible(*a, triangles_f3, **kwargs), (groups, jnp.arange(steps)))
  return ids.reshape(steps * group, height, width)[:batch]


def _visible(screen_bn3, index, triangles_f3, height, width, perspective, near, footprint, tile, chunk):
  """`visible_triangles` for one group of frames (`index`: the group's, ≥ 0)."""
  batch, num_tri = screen_bn3.shape[0], triangles_f3.shape[0]
  pixels = height * width
  if batch * pixels >= 2**31 - 1:
    raise ValueError(f"{batch} frames of {height}x{width} overflow int32 pixel indices; use a smaller group")
  setup = functools.partial(_triangle_setup, height=height, width=width, perspective=perspective, near=near)
  cover = functools.partial(_cover, perspective=perspective, near=near)
  expand = lambda a: a[..., None, None]  # noqa: E731
  # Triangle-major corners [F,3,B,3]: one row gather fetches every frame's copy of a vertex.
  vertex_major = jnp.transpose(screen_bn3, (1, 0, 2))
  dump = batch * pixels  # masked candidates go to this extra slot

  # Small triangles: a footprint×footprint block of pixel candidates each, all at once.
  dy, dx = jnp.meshgrid(jnp.arange(footprint), jnp.arange(footprint), indexing="ij")

  def small_triangles(vertex_major):
    edges, box, valid = setup(vertex_major[triangles_f3], triangles_f3[:, None, :])  # [F,B]
    r0, c0, r1, c1 = box
    rows, cols = expand(r0) + dy, expand(c0) + dx
    ok = expand(valid & (jnp.maximum(r1 - r0, c1 - c0) < footprint))
    ok &= (rows <= expand(r1)) & (cols <= expand(c1))
    return jnp.where(ok, cover(jax.tree.map(expand, edges), rows, cols), jnp.inf), jnp.stack(box), valid

  depth, box, valid = _materialize(small_triangles, index, vertex_major)
  r0, c0, r1, c1 = box
  rows, cols = expand(r0) + dy, expand(c0) + dx
  frame = jnp.arange(batch, dtype=jnp.int32)[None, :]
  pix = jnp.where(depth < jnp.inf, expand(frame * pixels) + rows * width + cols, dump).ravel()
  ids = jnp.broadcast_to(jnp.arange(num_tri, dtype=jnp.int32)[:, None, None, None], depth.shape).ravel()
  depth = depth.ravel()
  zbuf = jnp.full((dump + 1,), jnp.inf, jnp.float32).at[pix].min(depth)
  idbuf = jnp.full((dump + 1,), _NO_ID, jnp.int32).at[pix].min(jnp.where(depth == zbuf[pix], ids, _NO_ID))

  # Larger triangles: tile×tile blocks over their bounding boxes, one work list of (triangle, frame, block).
  tiles_x = ((c1 - c0) // tile + 1).ravel()
  large = valid & (jnp.maximum(r1 - r0, c1 - c0) >= footprint)
  count = jnp.where(large.ravel(), tiles_x * ((r1 - r0) // tile + 1).ravel(), 0)
  ends = jnp.cumsum(count)
  total = ends[-1]
  per_step = max(1, chunk // (tile * tile))
  ty, tx = jnp.meshgrid(jnp.arange(tile), jnp.arange(tile), indexing="ij")
  flat_box = box.reshape(4, -1)

  def work_items(i):
    """Per work item of step i: triangle, frame, the block's first row/col, the box's last row/col."""
    item = i * per_step + jnp.arange(per_step, dtype=jnp.int32)
    m = jnp.minimum(jnp.searchsorted(ends, item, side="right", method="scan"), ends.shape[0] - 1)
    k = item - (ends[m] - count[m])
    row0 = flat_box[0, m] + (k // tiles_x[m]) * tile
    col0 = flat_box[1, m] + (k % tiles_x[m]) * tile
    # Items past the end get an empty box.
    last_row = jnp.where(item < total, flat_box[2, m], -1)
    return m // batch, m % batch, row0, col0, last_row, flat_box[3, m]

  def candidates(vertex_major, tri, frm, row0, col0, last_row, last_col):
    """(depth, flat pixel) [P,tile,tile] of each item's block."""
    rows, cols = expand(row0) + ty, expand(col0) + tx
    item_corners = vertex_major[triangles_f3[tri], frm[:, None]][:, :, None, :]  # [P,3,1,3]
    edges, _, _ = setup(item_corners, triangles_f3[tri][:, None, :])
    in_box = (rows <= expand(last_row)) & (cols <= expand(last_col))
    depth = jnp.where(in_box, cover(jax.tree.map(lambda a: expand(a[:, 0]), edges), rows, cols), jnp.inf)
    return depth, jnp.where(depth < jnp.inf, expand(frm * pixels) + rows * width + cols, dump)

  def step(i, bufs):
    items = _materialize(work_items, total, i)
    depth, pix = _materialize(candidates, total, vertex_major, *items)
    ids = jnp.broadcast_to(expand(items[0]), depth.shape).ravel()
    return _zbuffer_merge(*bufs, pix.ravel(), depth.ravel(), ids)

  steps = (total + per_step - 1) // per_step
  zbuf, idbuf = jax.lax.fori_loop(0, steps, step, (zbuf, idbuf))
  tri_id = idbuf[:dump].reshape(batch, height, width)
  return jnp.where(tri_id == _NO_ID, -1, tri_id)


def _materialize(fn, token, *args):
  """fn(*args), computed once into memory; `token` is a traced integer that is never negative.

  XLA:CPU fuses cheap-looking elementwise work into each of its consumers, recomputing the per-triangle
  setup for every pixel candidate and every use (optimization_barrier is expanded before fusion there). The
  outputs of a conditional are always materialized. The predicate is true, but XLA cannot know that; the
  other branch only makes zeros, so the heavy code is compiled once.
  """
  shapes = jax.eval_shape(fn, *args)
  return jax.lax.cond(token >= 0, fn, lambda *_: jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes),
                      *args)


def _zbuffer_merge(zbuf, idbuf, pix, depth, ids):
  """Adds candidates (flat pixel, depth, triangle id) to the z-buffer; exact and order-independent.

  Touches only the candidates' pixels (no pass over the whole buffer), so a step of the large-triangle
  loop costs what its candidates cost.
  """
  old_z = zbuf[pix]
  zbuf = zbuf.at[pix].min(depth)
  new_z = zbuf[pix]
  # Where the depth improved, the old id is stale; every candidate there writes the same reset value.
  idbuf = idbuf.at[jnp.where(new_z < old_z, pix, zbuf.shape[0])].set(_NO_ID, mode="drop")
  idbuf = idbuf.at[pix].min(jnp.where(depth == new_z, ids, _NO_ID))
  return zbuf, idbuf


def _cover(edges, rows, cols, *, perspective, near):
  """Depth of pixel candidates, +inf where not covered; `edges` (from _triangle_setup) broadcast against them.

  Written so that the one division is the last step: XLA:CPU materializes a divide that has several users
  and then recomputes everything else once per user.
  """
  px = cols.astype(jnp.float32) + 0.5
  py = rows.astype(jnp.float32) + 0.5
  inside = True
  num = den = 0.0
  for k in range(3):
    xu, yu, wu, xv, yv, wv = edges["ends"][k]
    # The canonical edge function: identical bits for both triangles that share this edge.
    canon = (xu - px * wu) * (yv - py * wv) - (xv - px * wv) * (yu - py * wu)
    e = edges["sign"][k] * canon
    inside &= (e > 0) | ((canon == 0) & edges["tie"][k])
    num = num + e * edges["depth"][k]
    den = den + e
  # Covered means every e ≥ 0 and not all zero (the triangle is not degenerate), so den > 0.
  if perspective:
    inside &= num >= near * den
  return jnp.where(inside, num / den, jnp.inf)


def _triangle_setup(corners, vids, *, height, width, perspective, near):
  """Edge data, pixel box and validity of triangles.

  Args:
    corners: [T,3,B,3] screen coordinates of each triangle's corners (T triangles, B frames).
    vids: [T,1,3] vertex indices of the corners (they fix each edge's canonical direction).
  Returns:
    edges: dict of [T,B] arrays — "ends": per edge k (corner k+1 → k+2) its endpoints in ascending
      vertex-index order (xu, yu, wu, xv, yv, wv); "sign": ±1 making the edge function positive inside;
      "tie": whether a pixel centre exactly on the edge is inside; "depth": per corner.
    box: (r0, c0, r1, c1) [T,B] int32 pixel-centre bounding box, clipped to the image.
    valid: [T,B] bool, False for culled, degenerate, off-screen or non-finite triangles.
  """
  xs = [corners[:, k, :, 0] for k in range(3)]
  ys = [corners[:, k, :, 1] for k in range(3)]
  depth = [corners[:, k, :, 2] for k in range(3)]
  ws = depth if perspective else [jnp.ones_like(d) for d in depth]
  if perspective:
    front = (ws[0] >= near) & (ws[1] >= near) & (ws[2] >= near)
    culled = (ws[0] < near) & (ws[1] < near) & (ws[2] < near)
  else:
    front = jnp.ones(xs[0].shape, bool)
    culled = ~front
  safe = [jnp.where(front, w, 1.0) for w in ws]
  sx = [x / w for x, w in zip(xs, safe)]
  sy = [y / w for y, w in zip(ys, safe)]
  det = (xs[0] * (ys[1] * ws[2] - ws[1] * ys[2]) - ys[0] * (xs[1] * ws[2] - ws[1] * xs[2])
         + ws[0] * (xs[1] * ys[2] - ys[1] * xs[2]))
  # det = W0·W1·W2·area2: the same sign as the screen-space area for triangles in front of the camera.
  sign = jnp.sign(det)
  ends, signs, ties = [], [], []
  for k in range(3):
    a, b = (k + 1) % 3, (k + 2) % 3
    ascending = vids[..., a] < vids[..., b]
    first = [jnp.where(ascending, arr[a], arr[b]) for arr in (xs, ys, ws)]
    second = [jnp.where(ascending, arr[b], arr[a]) for arr in (xs, ys, ws)]
    (xu, yu, wu), (xv, yv, wv) = first, second
    g = jnp.where(ascending, sign, -sign)
    normal_x = g * (yu * wv - wu * yv)
    normal_y = g * (wu * xv - xu * wv)
    ends.append((xu, yu, wu, xv, yv, wv))
    signs.append(g)
    ties.append((normal_x > 0) | ((normal_x == 0) & (normal_y > 0)))
  edges = {"ends": ends, "sign": signs, "tie": ties, "depth": depth}

  # Pixel-centre bounding box; triangles crossing the camera plane get the whole image.
  lim = float(max(height, width) + 2)
  lo_x, hi_x = jnp.minimum(jnp.minimum(sx[0], sx[1]), sx[2]), jnp.maximum(jnp.maximum(sx[0], sx[1]), sx[2])
  lo_y, hi_y = jnp.minimum(jnp.minimum(sy[0], sy[1]), sy[2]), jnp.maximum(jnp.maximum(sy[0], sy[1]), sy[2])
  to_int = lambda v: v.astype(jnp.int32)  # noqa: E731
  c0 = jnp.where(front, to_int(jnp.ceil(jnp.clip(lo_x, -lim, lim) - 0.5)), 0)
  c1 = jnp.where(front, to_int(jnp.floor(jnp.clip(hi_x, -lim, lim) - 0.5)), width - 1)
  r0 = jnp.where(front, to_int(jnp.ceil(jnp.clip(lo_y, -lim, lim) - 0.5)), 0)
  r1 = jnp.where(front, to_int(jnp.floor(jnp.clip(hi_y, -lim, lim) - 0.5)), height - 1)
  # A box wholly outside the image, or with no pixel centre inside, has r1 < r0 or c1 < c0 once clipped.
  r0, c0 = jnp.clip(r0, 0, height), jnp.clip(c0, 0, width)
  r1, c1 = jnp.clip(r1, -1, height - 1), jnp.clip(c1, -1, width - 1)
  finite = jnp.isfinite(det)
  for d in depth:
    finite &= jnp.isfinite(d)
  valid = ~culled & (sign != 0) & finite & (r1 >= r0) & (c1 >= c0)
  return edges, (r0, c0, r1, c1), valid
