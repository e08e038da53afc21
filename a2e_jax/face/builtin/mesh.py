"""The built-in face's mesh: skin grid with slits for the mouth and eyes, mouth cavity, teeth, eyes, ears.

The skin is a grid of rows (heights from `builtin_shape.profile_rows`) by columns (angles around the head,
even over the face, sparser behind the ears), closed by a fan at the crown and open at the neck. Along the
mouth line and the two eye lines the grid is cut: the vertices between the corners are doubled, the
originals belonging to the upper lip (lid) and the copies to the lower one, so the mouth can open and the
lids can close onto each other. Behind the lips hangs a dark cavity (a bag of rings attached to the slit's
loop) holding two rows of teeth; two spherical eyeballs sit behind the lids, and two ear shells on the
sides of the head. Triangles wind counter-clockwise seen from outside. The mesh is mirror-symmetric in x:
column i mirrors column (NUM_COLUMNS - i) % NUM_COLUMNS.
"""

import dataclasses

import numpy as np
from scipy.spatial import cKDTree

from a2e_jax.face.builtin import shape

NUM_COLUMNS = 128
NUM_ROWS = 128
COLUMN_WARP = (0.38, 0.2)  # linear and cubic weights of the column warp (the rest is quintic)
CAVITY_RINGS = 6
CAVITY_DEPTH = 0.42
CAVITY_HALF_HEIGHT = 0.13
TONGUE_HEIGHT = 0.06  # the tongue raises the floor of the mouth
TEETH_COLUMNS = 41
EYE_SEGMENTS = 24
EAR_SEGMENTS = 32
HEAD_CENTRE = np.array([0.0, 0.3, -0.2])  # hair stands off the scalp away from this point
# Polar angles of the eyeball's rings, from the front: dense at the pupil and the limbus for crisp edges.
EYE_RING_ANGLES = np.array([0.10, 0.19, 0.23, 0.33, 0.43, 0.49, 0.55, 0.68, 0.9, 1.2, 1.6, 2.1, 2.6])
PUPIL_ANGLE, IRIS_ANGLE = 0.21, 0.52
CORNEA_BULGE = 0.004

# Vertex parts.
SKIN, CAVITY, TEETH_UPPER, TEETH_LOWER, EYE_LEFT, EYE_RIGHT, EAR = range(7)


@dataclasses.dataclass
class Mesh:
  """Neutral mesh plus the per-vertex bookkeeping the expression and identity fields need.

  Attributes:
    vertices: [N,3] float64 neutral positions.
    triangles: [F,3] int32.
    part: [N] int8 (SKIN, CAVITY, ...).
    mouth_side: [N] +1 above the mouth line (upper lip, upper cavity half), -1 below, 0 on the corners.
    eye_side: [N] +1 above the eye line (upper lid), -1 below, 0 on it outside the slits.
    front: [N] 1 on the front of the head, fading to 0 at the sides (skin only).
    angle: [N] the skin vertex's angle around the head, 0 at the front, positive towards +x.
    row_height: [N] the height of the skin vertex's grid row (before any warp or hair).
    cavity_depth: [N] 0 at the lip edge to 1 at the back of the cavity (cavity only).
    cavity_anchor: [N] the lip-edge vertex a cavity vertex hangs from, -1 elsewhere.
    grid: [NUM_ROWS, NUM_COLUMNS] skin vertex ids (the upper copy on the slits).
    mouth_upper, mouth_lower: [M] slit vertex ids, corner to corner (corners shared).
    eye_upper, eye_lower: per eye (left, right), [E] lid-margin vertex ids, corner to corner.
    eye_centres: [2,3] eyeball centres (left, right).
    row_y: [NUM_ROWS] grid row heights; column_angle: [NUM_COLUMNS] grid column angles.
    mirror: [N] the vertex each vertex maps to under x -> -x.
  """

  vertices: np.ndarray
  triangles: np.ndarray
  part: np.ndarray
  mouth_side: np.ndarray
  eye_side: np.ndarray
  front: np.ndarray
  angle: np.ndarray
  row_height: np.ndarray
  cavity_depth: np.ndarray
  cavity_anchor: np.ndarray
  grid: np.ndarray
  mouth_upper: np.ndarray
  mouth_lower: np.ndarray
  eye_upper: tuple
  eye_lower: tuple
  eye_centres: np.ndarray
  row_y: np.ndarray
  column_angle: np.ndarray
  mirror: np.ndarray


def column_angles(num_columns: int = NUM_COLUMNS) -> np.ndarray:
  """[C] angles around the head, 0 at the front, increasing towards +x; column C/2 is the front.

  A polynomial warp of evenly spaced parameters: nearly even over the face (eyes and mouth alike), then
  sparser and sparser towards the back of the head.
  """
  u = -1 + 2 * np.arange(num_columns) / num_columns
  a, b = COLUMN_WARP
  return np.pi * (a * u + b * u**3 + (1 - a - b) * u**5)


def _quad_triangles(a, b, c, d, flip):
  """Two triangles per quad (a,b,c,d counter-clockwise); `flip` picks the b-d diagonal (mirror side)."""
  t1 = np.where(flip[:, None], np.stack([a, b, d], 1), np.stack([a, b, c], 1))
  t2 = np.where(flip[:, None], np.stack([b, c, d], 1), np.stack([a, c, d], 1))
  return np.concatenate([t1, t2])


class _Builder:
  """Collects vertices and per-vertex attributes part by part."""

  def __init__(self):
    self.chunks = []
    self.triangles = []
    self.count = 0

  def add(self, xyz, part, **attrs):
    n = len(xyz)
    ids = np.arange(self.count, self.count + n)
    self.chunks.append(dict(xyz=np.asarray(xyz, np.float64), part=np.full(n, part, np.int8), **attrs))
    self.count += n
    return ids

  def gather(self, key, default):
    return np.concatenate([
      np.broadcast_to(np.asarray(c.get(key, default), np.float64), len(c["xyz"])) for c in self.chunks])


def _skin(builder: _Builder):
  """Adds the skin grid, its slit copies and the crown.

  Returns:
    (grid ids [rows, columns], row heights, column angles, slit_ids(name) -> (upper ids, lower ids)).
  """
  angles = column_angles()
  rows = shape.profile_rows(NUM_ROWS)
  c_count = NUM_COLUMNS
  phi, y = np.meshgrid(angles, rows)
  _, z0, zb, a, _ = shape.section(y)
  s, c = np.sin(phi), np.cos(phi)
  x = a * s
  j_mouth = int(np.argmin(np.abs(rows - shape.MOUTH_Y)))
  j_eye = int(np.argmin(np.abs(rows - shape.EYE_Y)))
  front_col = c_count // 2

  def slit(j, x_lo, x_hi):
    """Columns strictly between the corners nearest x_lo and x_hi on row j, for the +x side."""
    cols = np.arange(front_col, front_col + c_count // 2)
    cols = cols[np.cos(angles[cols]) > 0]
    lo = cols[np.argmin(np.abs(x[j, cols] - x_lo))]
    hi = cols[np.argmin(np.abs(x[j, cols] - x_hi))]
    return lo, hi

  _, mouth_hi = slit(j_mouth, 0.0, shape.MOUTH_X)
  mouth_lo = c_count - mouth_hi
  eye_in, eye_out = slit(j_eye, shape.EYE_X - shape.EYE_HALF_WIDTH, shape.EYE_X + shape.EYE_HALF_WIDTH)
  # (corner_a, corner_b) column pairs, corner_a < corner_b: mouth, left eye (+x), right eye (-x).
  slits = {"mouth": (j_mouth, mouth_lo, mouth_hi), "eye_left": (j_eye, eye_in, eye_out),
           "eye_right": (j_eye, c_count - eye_out, c_count - eye_in)}

  eye_side = np.sign(y - shape.EYE_Y)
  mouth_side = np.sign(y - shape.MOUTH_Y)
  grid_xy = np.stack([x, y], -1)
  front = shape.smoothstep(np.cos(np.radians(100)), np.cos(np.radians(70)), c)

  copies = {}
  extra_xy, extra_eye, extra_mouth, extra_front = [], [], [], []
  for name, (j, lo, hi) in slits.items():
    cols = np.arange(lo + 1, hi)
    first = c_count * NUM_ROWS + sum(len(v) for v in extra_xy)
    copies[name] = (j, lo, hi, cols, first + np.arange(len(cols)))
    extra_xy.append(grid_xy[j, cols])
    extra_front.append(front[j, cols])
    if name == "mouth":
      mouth_side[j, lo:hi + 1] = 0
      mouth_side[j, cols] = 1
      extra_mouth.append(-np.ones(len(cols)))
      extra_eye.append(np.full(len(cols), -1.0))
    else:
      eye_side[j, cols] = 1
      extra_eye.append(-np.ones(len(cols)))
      extra_mouth.append(np.ones(len(cols)))

  xy = np.concatenate([grid_xy.reshape(-1, 2)] + extra_xy)
  eye_s = np.concatenate([eye_side.ravel()] + extra_eye)
  mouth_s = np.concatenate([mouth_side.ravel()] + extra_mouth)
  front_w = np.concatenate([front.ravel()] + extra_front)
  angle = np.concatenate([phi.ravel()] + [angles[v[3]] for v in copies.values()])
  is_front = np.concatenate([c.ravel() >= 0] + [np.ones(len(e), bool) for e in extra_xy])
  # Open the eyes: move rows near the eye lines apart, then lay every front vertex on the height field.
  xy[:, 1] += np.where(is_front, shape.eye_warp(xy[:, 0], xy[:, 1], eye_s), 0.0)
  z = np.where(is_front, shape.front_z(xy[:, 0], xy[:, 1]), 0.0)
  back = c.ravel() < 0  # back-half grid vertices (the slit copies all lie on the front)
  z0_b, zb_b = z0.ravel()[back], zb.ravel()[back]
  z[: c.size][back] = z0_b - (z0_b - zb_b) * np.abs(c.ravel()[back]) ** (2 / shape.BACK_EXPONENT)
  xyz = np.column_stack([xy, z])
  # Short hair stands off the scalp along the outward direction from the middle of the skull.
  row_height = np.concatenate([y.ravel()] + [rows[v[0]] * np.ones(len(v[3])) for v in copies.values()])
  outward = xyz - HEAD_CENTRE
  outward /= np.linalg.norm(outward, axis=1, keepdims=True)
  xyz += shape.HAIR_THICKNESS * shape.hair(angle, row_height)[:, None] * outward
  ids = builder.add(xyz, SKIN, mouth_side=mouth_s, eye_side=eye_s, front=front_w, angle=angle,
                    row_height=row_height)
  grid = ids[: c_count * NUM_ROWS].reshape(NUM_ROWS, c_count)
  up = (shape.CROWN - HEAD_CENTRE) / np.linalg.norm(shape.CROWN - HEAD_CENTRE)
  crown = builder.add([shape.CROWN + shape.HAIR_THICKNESS * up], SKIN, mouth_side=1.0, eye_side=1.0,
                      front=0.0, row_height=shape.CROWN[1])[0]

  # Quads; below a slit row the quads use the lower copies.
  lower = grid.copy()
  for j, _, _, cols, copy_ids in copies.values():
    lower[j, cols] = copy_ids
  jj, ii = np.meshgrid(np.arange(NUM_ROWS - 1), np.arange(c_count), indexing="ij")
  jj, ii = jj.ravel(), ii.ravel()
  i1 = (ii + 1) % c_count
  top = np.where(np.isin(jj + 1, [v[0] for v in copies.values()])[:, None], lower[jj + 1], grid[jj + 1])
  quad_a, quad_b = grid[jj, ii], grid[jj, i1]
  quad_c, quad_d = top[np.arange(len(jj)), i1], top[np.arange(len(jj)), ii]
  flip = ii < c_count // 2  # the -x half uses the mirrored diagonal
  tris = [_quad_triangles(quad_a, quad_b, quad_c, quad_d, flip)]
  ring = grid[-1]
  tris.append(np.stack([ring, np.roll(ring, -1), np.full(c_count, crown)], 1))
  builder.triangles.extend(tris)

  def slit_ids(name):
    j, lo, hi, cols, copy_ids = copies[name]
    upper = grid[j, lo:hi + 1]
    lower_ids = np.concatenate([[grid[j, lo]], copy_ids, [grid[j, hi]]])
    return upper, lower_ids

  return grid, rows, angles, slit_ids


def _cavity(builder: _Builder, mouth_upper, mouth_lower):
  """Adds the mouth cavity: rings hanging from the lip edges back into the head, closed at the back.

  Its first ring lies on the lip edges but has its own vertices, so the lips' vertex normals (and their
  shading) come from the lips alone; the expression channels keep that ring glued to the lip edges.
  """
  verts = np.concatenate([c["xyz"] for c in builder.chunks])
  loop = np.concatenate([mouth_upper, mouth_lower[-2:0:-1]])
  side = np.concatenate([np.ones(len(mouth_upper)), -np.ones(len(mouth_lower) - 2)])
  side[[0, len(mouth_upper) - 1]] = 0
  edge = verts[loop]
  q = np.clip(np.abs(edge[:, 0]) / np.abs(edge[:, 0]).max(), 0, 1)
  rings = []
  for k in range(CAVITY_RINGS):
    tau = k / CAVITY_RINGS
    height = CAVITY_HALF_HEIGHT * np.sin(np.pi * tau) ** 0.6 * (1 - q**2) ** 0.3
    tongue = (side < 0) * TONGUE_HEIGHT * np.sin(np.pi * np.clip((tau - 0.2) / 0.75, 0, 1)) * (1 - q**2)
    xyz = np.column_stack([
      edge[:, 0] * (1 - 0.3 * tau),
      shape.MOUTH_Y + side * height + tongue,
      edge[:, 2] - CAVITY_DEPTH * tau,
    ])
    rings.append(builder.add(xyz, CAVITY, mouth_side=side, cavity_depth=tau, cavity_anchor=loop))
  back_z = edge[:, 2].max() - CAVITY_DEPTH
  back = builder.add([[0.0, shape.MOUTH_Y, back_z]], CAVITY, mouth_side=0.0, cavity_depth=1.0,
                     cavity_anchor=-1.0)[0]
  # The loop runs +x along the upper lip and back along the lower one, i.e. clockwise seen from the front;
  # the bag's outside (its skin side) faces into the mouth.
  for r0, r1 in zip(rings[:-1], rings[1:]):
    a, b, c, d = r1, np.roll(r1, -1), np.roll(r0, -1), r0
    builder.triangles.append(_quad_triangles(a, b, c, d, np.zeros(len(a), bool)))
  last = rings[-1]
  builder.triangles.append(np.stack([np.roll(last, -1), last, np.full(len(last), back)], 1))


def _teeth(builder: _Builder, lip_edge_z):
  """Adds upper and lower teeth: a tube swept along a parabolic dental arch behind the lips.

  The upper incisors reach a little below the lip line (hidden by the lower lip at rest, showing when
  the mouth opens); the lower ones sit behind them (an overbite) and ride on the jaw.
  """
  alpha = np.linspace(-1, 1, TEETH_COLUMNS)
  arch_x, arch_back = 0.25 * alpha, 0.25 * alpha**2
  normal = np.stack([2 * 0.25 * alpha, np.full_like(alpha, 0.25)], 1)  # the arch's outward normal in (x, z)
  normal /= np.linalg.norm(normal, axis=1, keepdims=True)
  # Cross-section (height above the biting edge, depth into the mouth), front to back.
  profile = np.array([[0.1, 0.0], [0.05, 0.0], [0.012, 0.0], [0.0, 0.01], [0.006, 0.028], [0.1, 0.034]])
  for part, sign, edge_y, setback in ((TEETH_UPPER, 1, -0.02, 0.05), (TEETH_LOWER, -1, -0.004, 0.075)):
    front_z = lip_edge_z - setback - arch_back
    xyz = []
    for h, d in profile:
      y = np.full(TEETH_COLUMNS, shape.MOUTH_Y + edge_y + sign * h)
      xyz.append(np.column_stack([arch_x - d * normal[:, 0], y, front_z - d * normal[:, 1]]))
    ids = builder.add(np.concatenate(xyz), part).reshape(len(profile), TEETH_COLUMNS)
    for k in range(len(profile) - 1):
      a, b, c, d = ids[k, :-1], ids[k, 1:], ids[k + 1, 1:], ids[k + 1, :-1]
      if sign > 0:  # the upper profile runs downwards: reverse to keep the outside counter-clockwise
        a, b, c, d = d, c, b, a
      builder.triangles.append(_quad_triangles(a, b, c, d, np.zeros(len(a), bool)))


def _sphere_triangles(first_pole, last_pole, rings):
  """Triangles of a UV sphere: a fan, quads between rings [R,S], a fan; outward if rings run counter-
  clockwise about the axis from the last pole to the first."""
  segments = rings.shape[1]
  tris = [np.stack([np.full(segments, first_pole), rings[0], np.roll(rings[0], -1)], 1)]
  for r0, r1 in zip(rings[:-1], rings[1:]):
    tris.append(_quad_triangles(r0, r1, np.roll(r1, -1), np.roll(r0, -1), np.zeros(segments, bool)))
  tris.append(np.stack([np.full(segments, last_pole), np.roll(rings[-1], -1), rings[-1]], 1))
  return np.concatenate(tris)


def _eyeball(builder: _Builder, centre, part):
  """Adds a UV sphere whose front pole looks along +z, with a slight corneal bulge."""
  theta = EYE_RING_ANGLES
  psi = 2 * np.pi * np.arange(EYE_SEGMENTS) / EYE_SEGMENTS
  bulge = CORNEA_BULGE * np.clip(np.cos(0.5 * np.pi * theta / 0.6), 0, 1) ** 2 * (theta < 0.6)
  radius = shape.EYE_R + bulge
  tt, pp = np.meshgrid(theta, psi, indexing="ij")
  rr = radius[:, None]
  ring_xyz = np.stack([rr * np.sin(tt) * np.cos(pp), rr * np.sin(tt) * np.sin(pp), rr * np.cos(tt)], -1)
  poles = np.array([[0, 0, shape.EYE_R + CORNEA_BULGE], [0, 0, -shape.EYE_R]])
  ids = builder.add(np.concatenate([poles, ring_xyz.reshape(-1, 3)]) + centre, part)
  builder.triangles.append(_sphere_triangles(ids[0], ids[1], ids[2:].reshape(len(theta), EYE_SEGMENTS)))


def _ears(builder: _Builder):
  """Adds two ears: flattened shells on the sides of the head with a helix rim, antihelix and concha.

  Each ear is a UV sphere squashed into an ear-shaped disc whose outer face looks outwards and a little
  forwards; its back edge stands off the head and its inner face sinks into the head.
  """
  angle = np.radians(20)
  normal = np.array([np.cos(angle), 0.0, np.sin(angle)])  # the left ear's outer face
  up, forward = np.array([0.0, 1.0, 0.0]), np.array([-np.sin(angle), 0.0, np.cos(angle)])
  psi = np.concatenate([[0.0], np.linspace(0.15, 1.35, 8), np.linspace(1.5, 2.95, 5), [np.pi]])
  theta = 2 * np.pi * np.arange(EAR_SEGMENTS) / EAR_SEGMENTS  # 0 points up, pi/2 forwards
  pp, tt = np.meshgrid(psi, theta, indexing="ij")
  rho, cos_t, sin_t = np.sin(pp), np.cos(tt), np.sin(tt)
  v = 0.30 * (1 + 0.05 * cos_t) * rho * cos_t
  u = 0.155 * (1 - 0.3 * np.clip(-cos_t, 0, 1) ** 2) * rho * sin_t  # the lobe is narrower
  concha = np.exp(-((np.hypot(rho * cos_t + 0.15, rho * sin_t - 0.1) / 0.38) ** 2))
  relief = (0.024 * np.exp(-(((rho - 0.93) / 0.07) ** 2)) + 0.012 * np.exp(-(((rho - 0.62) / 0.1) ** 2))
            - 0.03 * concha) * (np.cos(pp) > 0)
  # Thickness, relief, and the tilt that lets the back edge stand off the head and the front sink in.
  out = 0.03 * np.cos(pp) + relief + 0.22 * np.clip(-u, 0, None) - 0.1 * np.clip(u, 0, None)
  points = v[..., None] * up + u[..., None] * forward + out[..., None] * normal
  poles, rings = points[[0, -1], 0], points[1:-1]  # psi = 0 and pi collapse to one vertex each
  y_c, z_c = 0.12, -0.2
  centre = np.array([shape.section(y_c)[3] + 0.005, y_c, z_c])
  left = np.concatenate([poles, rings.reshape(-1, 3)]) + centre
  for sign in (1, -1):
    ids = builder.add(left * [sign, 1, 1], EAR, front=0.0)
    tris = _sphere_triangles(ids[0], ids[1], ids[2:].reshape(len(rings), EAR_SEGMENTS))
    builder.triangles.append(tris if sign > 0 else tris[:, ::-1])  # mirroring flips the winding


def _mirror_map(vertices, tags) -> np.ndarray:
  """Index of each vertex's mirror image; `tags` [N,K] tell coincident vertices (slit copies) apart."""
  key = np.column_stack([vertices, 10 * tags])
  reflected = key.copy()
  reflected[:, 0] *= -1
  dist, mirror = cKDTree(key).query(reflected)
  if dist.max() > 1e-6:
    raise AssertionError(f"built-in mesh is not mirror-symmetric (off by {dist.max():.2g})")
  return mirror


def build_mesh() -> Mesh:
  """The neutral built-in face mesh with its bookkeeping (deterministic, numpy only)."""
  builder = _Builder()
  grid, rows, angles, slit_ids = _skin(builder)
  mouth_upper, mouth_lower = slit_ids("mouth")
  eyes = [slit_ids("eye_left"), slit_ids("eye_right")]
  _cavity(builder, mouth_upper, mouth_lower)
  verts = np.concatenate([c["xyz"] for c in builder.chunks])
  _teeth(builder, verts[mouth_upper[len(mouth_upper) // 2], 2])
  centres = shape.eye_centres()
  _eyeball(builder, centres[0], EYE_LEFT)
  _eyeball(builder, centres[1], EYE_RIGHT)
  _ears(builder)
  vertices = np.concatenate([c["xyz"] for c in builder.chunks])
  part = np.concatenate([c["part"] for c in builder.chunks])
  mouth_side, eye_side = builder.gather("mouth_side", 0.0), builder.gather("eye_side", 0.0)
  # Eyeballs swap parts under the mirror; tag them alike so that each finds the other.
  eye_part = np.where(part == EYE_RIGHT, EYE_LEFT, part)
  return Mesh(
    vertices=vertices,
    triangles=np.concatenate(builder.triangles).astype(np.int32),
    part=part,
    mouth_side=mouth_side,
    eye_side=eye_side,
    front=builder.gather("front", 0.0),
    angle=builder.gather("angle", 0.0),
    row_height=builder.gather("row_height", 0.0),
    cavity_depth=builder.gather("cavity_depth", 0.0),
    cavity_anchor=builder.gather("cavity_anchor", -1.0).astype(np.int64),
    grid=grid,
    mouth_upper=mouth_upper,
    mouth_lower=mouth_lower,
    eye_upper=(eyes[0][0], eyes[1][0]),
    eye_lower=(eyes[0][1], eyes[1][1]),
    eye_centres=centres,
    row_y=rows,
    column_angle=angles,
    mirror=_mirror_map(vertices, np.column_stack([eye_part, mouth_side, eye_side])),
  )
