"""The built-in face's 53 expression channels (ICT-FaceKit / ARKit names), one displacement field each.

Each channel is the displacement at weight 1 of a linear blendshape, built from smooth weights around
anatomical anchors (Gaussians, smooth steps), never hard region cuts:
  * the jaw rotates about a hinge axis in front of the ears (jawOpen) or shifts (jawLeft/Right/Forward);
    its weight is 1 on the lower lip, chin and floor of the mouth, 0 on the upper lip, and blends across
    the cheeks from the mouth corners towards the ears;
  * eyelids and brows slide over the face's height field (`builtin_shape.front_z`), so a closing lid
    drapes over the eyeball; eyeBlink brings the upper lid margin exactly onto the lower one;
  * the eyeballs rotate about their centres for the eyeLook channels;
  * lips, cheeks and nose move by explicit vectors weighted around their anchors;
  * the cavity behind the lips follows the lip edges (less with depth), the lower teeth follow the jaw.
`_L` channels act on the subject's left (+x); each `_R` channel is the exact mirror image of its `_L`.
Displacements are in model units (10 cm): 0.05 is 5 mm.
"""

import numpy as np

from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.face.builtin import mesh as bm
from a2e_jax.face.builtin import shape

JAW_OPEN_DEGREES = 17.0
EYE_LOOK_DEGREES = 25.0
OPENING = shape.LID_UP + shape.LID_LO  # the lids' neutral opening at the pupil


def _sigmoid(t):
  return 0.5 * (1 + np.tanh(0.5 * t))


def rotation_displacement(points, centre, axis, degrees):
  """[N,3] displacement that rotates `points` about the axis through `centre` (right-hand rule)."""
  axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
  k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
  angle = np.radians(degrees)
  rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
  rel = points - centre
  return rel @ rot.T - rel


class _Fields:
  """Per-vertex weights shared by the channels, computed once from the neutral mesh."""

  def __init__(self, mesh: bm.Mesh):
    self.mesh = mesh
    v = mesh.vertices
    self.x, self.y, self.z = v[:, 0], v[:, 1], v[:, 2]
    self.skin = mesh.part == bm.SKIN
    self.face = self.skin * mesh.front
    ax = np.abs(self.x)
    dy = self.y - shape.MOUTH_Y
    # Above the mouth line: a step at the slit (whose copies are told apart by mouth_side), widening
    # beyond the corners so that the cheeks deform smoothly.
    width = 0.004 + 0.12 * shape.smoothstep(0.6 * shape.MOUTH_X, shape.MOUTH_X + 0.15, ax)
    # On the mouth line itself only the slit's side tells the lips apart.
    self.slit_side = np.where(np.abs(dy) < 1e-9, mesh.mouth_side, 0.0)
    above = _sigmoid((dy + 0.03 * self.slit_side) / width)
    cavity = mesh.part == bm.CAVITY
    above = np.where(cavity, 0.5 + 0.5 * mesh.mouth_side, above)
    self.above = above
    lateral = np.clip(1 - (ax / (shape.MOUTH_X + 0.07)) ** 2, 0, 1) ** 1.5
    self.upper_lip = self.face * above * np.exp(-((np.maximum(dy, 0) / 0.11) ** 2)) * lateral
    self.lower_lip = self.face * (1 - above) * np.exp(-((np.maximum(-dy, 0) / 0.13) ** 2)) * lateral
    h_up, h_lo = shape.lip_heights(self.x)
    self.upper_red = self.upper_lip * shape.smoothstep(h_up + 0.015, 0.0, dy)
    self.lower_red = self.lower_lip * shape.smoothstep(h_lo + 0.015, 0.0, -dy)
    r = np.hypot(self.x / (shape.MOUTH_X + 0.05), dy / 0.14)
    self.perioral = self.face * shape.smoothstep(1.7, 0.7, r)
    r_area = np.hypot(self.x / (shape.MOUTH_X + 0.05), dy / np.where(dy > 0, 0.1, 0.14))
    self.mouth_area = self.face * shape.smoothstep(2.3, 0.9, r_area)
    # Near the mouth line at the corners (the commissure): where the lips stay joined.
    self.commissure = (shape.smoothstep(0.72 * shape.MOUTH_X, 0.97 * shape.MOUTH_X, ax)
                       * np.exp(-((dy / 0.02) ** 2)) * (mesh.part != bm.TEETH_LOWER))
    self.jaw = self._jaw_weight(above)

  def _jaw_weight(self, above_mouth):
    """1 on what the mandible carries, 0 on the skull; the boundary runs from the mouth to the ears.

    Near the mouth corners the lower lip follows the jaw less and the upper lip a little, so the mouth
    opens into an oval rather than a box, with the corners moving about a third as far as the chin.
    """
    mesh = self.mesh
    ax = np.abs(self.x)
    _, hinge_z = shape.HINGE_YZ
    boundary = shape.MOUTH_Y + 0.6 * np.maximum(ax - shape.MOUTH_X, 0)
    width = 0.004 + 0.1 * shape.smoothstep(0.6 * shape.MOUTH_X, shape.MOUTH_X + 0.15, ax)
    above = _sigmoid((self.y - boundary + 0.03 * self.slit_side) / width)
    corner = shape.gauss(ax, self.y, shape.MOUTH_X, shape.MOUTH_Y, 0.11, 0.07)
    weight = (1 - above) * (1 - 0.55 * corner) + above * 0.3 * corner
    # Towards the corners the two lips on the slit take the same weight, so the opening narrows to nothing
    # inside the lips' red (a lens) instead of running out to the corner as a sharp dark wedge.
    shared = 0.5 * (1 - 0.55 * corner) + 0.5 * 0.3 * corner
    weight += self.commissure * (shared - weight)
    weight *= shape.smoothstep(hinge_z - 0.05, hinge_z + 0.25, self.z) * shape.smoothstep(-1.4, -1.1, self.y)
    weight *= shape.smoothstep(-0.15, -0.35, self.y)  # the cheeks above the nose's base stay
    weight = np.where(self.skin, weight, 0.0)
    weight = np.where(mesh.part == bm.CAVITY, 1 - above_mouth, weight)
    return np.where(mesh.part == bm.TEETH_LOWER, 1.0, weight)

  def gauss(self, cx, cy, sx, sy):
    """Gaussian weight on the front skin around (cx, cy)."""
    return self.face * shape.gauss(self.x, self.y, cx, cy, sx, sy)

  def slide(self, dx, dy):
    """[N,3] displacement moving front skin by (dx, dy) over the face's height field."""
    moving = (np.abs(dx) + np.abs(dy) > 0) & self.skin
    out = np.zeros((len(self.x), 3))
    x, y = self.x[moving], self.y[moving]
    out[moving, 0], out[moving, 1] = dx[moving], dy[moving]
    out[moving, 2] = shape.front_z(x + dx[moving], y + dy[moving]) - shape.front_z(x, y)
    return out * self.mesh.front[:, None]

  def lid_margins(self, eye):
    """Upper and lower lid margin heights [N] at every vertex's x (NaN beyond the eye's corners)."""
    v = self.mesh.vertices
    rims = []
    for ids in (self.mesh.eye_upper[eye], self.mesh.eye_lower[eye]):
      order = np.argsort(v[ids, 0])
      rims.append(np.interp(self.x, v[ids, 0][order], v[ids, 1][order], left=np.nan, right=np.nan))
    return rims

  def lids(self, eye, upper_to, lower_to, reach=0.07, bulge=0.0):
    """Slide the lids of `eye` (0 left, 1 right) over the eyeball.

    The margins move by upper_to(opening) and lower_to(opening) [N] (functions of the opening at each
    vertex's x), the skin above/below following with a Gaussian falloff of length `reach`. `bulge`
    lifts both margins off the eyeball: a linear blend between an open and a closed lid cuts a chord
    through the eyeball, and this keeps the half-closed lid in front of the cornea.
    """
    rim_up, rim_lo = self.lid_margins(eye)
    inside = np.isfinite(rim_up)
    rim_up, rim_lo = np.nan_to_num(rim_up), np.nan_to_num(rim_lo)
    opening = rim_up - rim_lo
    side = self.mesh.eye_side
    near = self.skin & inside & (np.abs(self.y - self.mesh.eye_centres[eye][1]) < 0.3)
    fall_up = np.where(near & (side > 0), np.exp(-((np.maximum(self.y - rim_up, 0) / reach) ** 2)), 0)
    fall_lo = np.where(near & (side < 0), np.exp(-((np.maximum(rim_lo - self.y, 0) / reach) ** 2)), 0)
    dy = upper_to(opening) * fall_up + lower_to(opening) * fall_lo
    disp = self.slide(np.zeros_like(dy), dy)
    disp[:, 2] += bulge * (opening / OPENING) * (fall_up + fall_lo) * self.mesh.front
    return disp


def _follow_lips(fields: _Fields, disp):
  """The cavity's rings follow the lip edge they hang from, fading with depth into their own motion."""
  mesh = fields.mesh
  cavity = np.flatnonzero((mesh.part == bm.CAVITY) & (mesh.cavity_anchor >= 0))
  fade = ((1 - mesh.cavity_depth[cavity]) ** 3)[:, None]
  disp[cavity] = fade * disp[mesh.cavity_anchor[cavity]] + (1 - fade) * disp[cavity]
  return disp


def _vec(weight, dx=0.0, dy=0.0, dz=0.0):
  return weight[:, None] * np.array([dx, dy, dz])


def _left_channels(f: _Fields):
  """Displacements of the channels that have an _L/_R pair, for the subject's left side (s = +1)."""
  s = 1.0
  eye = 0
  centre = f.mesh.eye_centres[eye]
  x, y = f.x, f.y
  half = f.face * shape.smoothstep(-0.05, 0.08, s * x)  # this side of the face, overlapping at the centre
  corner = (s * shape.MOUTH_X, shape.MOUTH_Y)
  eyeball = f.mesh.part == bm.EYE_LEFT
  out = {}

  def slide(dx, dy):
    return f.slide(np.broadcast_to(dx, x.shape).astype(float), np.broadcast_to(dy, x.shape).astype(float))

  brow_y = shape.BROW_Y
  brow = f.gauss(s * 0.28, brow_y, 0.22, 0.12)
  corrugator = f.gauss(s * 0.1, brow_y - 0.06, 0.06, 0.06)
  out["browDown"] = slide(-s * 0.02 * brow, -0.06 * brow) + _vec(corrugator, dz=0.01)
  inner = f.gauss(s * 0.1, brow_y, 0.13, 0.14) * shape.smoothstep(-0.08, 0.08, s * x)
  out["browInnerUp"] = slide(0.0, 0.06 * inner)
  out["browOuterUp"] = slide(0.0, 0.08 * f.gauss(s * 0.42, brow_y, 0.13, 0.14))

  cheek = f.gauss(s * 0.36, -0.3, 0.14, 0.15)
  out["cheekPuff"] = _vec(cheek, dx=s * 0.085, dz=0.085)
  out["cheekSquint"] = (_vec(f.gauss(s * 0.36, 0.06, 0.13, 0.1), dy=0.05, dz=0.02)
                        + f.lids(eye, lambda o: 0 * o, lambda o: 0.12 * o))

  out["eyeBlink"] = f.lids(eye, lambda o: -0.8 * o, lambda o: 0.2 * o, bulge=0.016)
  out["eyeSquint"] = f.lids(eye, lambda o: -0.08 * o, lambda o: 0.35 * o) + _vec(
    f.gauss(s * 0.34, 0.12, 0.12, 0.08), dy=0.015)
  out["eyeWide"] = f.lids(eye, lambda o: 0.028 * o / OPENING, lambda o: -0.008 * o / OPENING, reach=0.06)

  def look(axis, degrees, lid_up, lid_lo):
    disp = f.lids(eye, lambda o: lid_up * o / OPENING, lambda o: lid_lo * o / OPENING)
    disp[eyeball] = rotation_displacement(f.mesh.vertices[eyeball], centre, axis, degrees)
    return disp

  out["eyeLookUp"] = look([1, 0, 0], -EYE_LOOK_DEGREES, 0.018, 0.008)
  out["eyeLookDown"] = look([1, 0, 0], EYE_LOOK_DEGREES, -0.03, -0.01)
  out["eyeLookIn"] = look([0, 1, 0], -s * EYE_LOOK_DEGREES, 0.0, 0.0)  # towards the nose: -x for the left eye
  out["eyeLookOut"] = look([0, 1, 0], s * EYE_LOOK_DEGREES, 0.0, 0.0)

  at_corner = f.gauss(*corner, 0.08, 0.07)
  out["mouthDimple"] = _vec(at_corner, dx=s * 0.04, dy=-0.005, dz=-0.06)
  frown = f.gauss(corner[0], corner[1] - 0.01, 0.09, 0.1)
  out["mouthFrown"] = _vec(frown, dx=s * 0.01, dy=-0.055, dz=-0.01)
  stretch = f.gauss(corner[0], corner[1] - 0.03, 0.12, 0.14)
  out["mouthStretch"] = _vec(stretch, dx=s * 0.075, dy=-0.035, dz=-0.025)
  smile = f.gauss(*corner, 0.13, 0.12)
  out["mouthSmile"] = (_vec(smile, dx=s * 0.06, dy=0.085, dz=-0.05)
                       + _vec(f.gauss(s * 0.34, -0.15, 0.12, 0.12), dx=s * 0.01, dy=0.02, dz=0.025))
  lip_half = half * np.clip(1 - (np.abs(x) / (shape.MOUTH_X + 0.07)) ** 2, 0, 1) * (1 - f.commissure)
  out["mouthLowerDown"] = _vec(f.lower_lip * lip_half, dy=-0.055, dz=-0.005)
  out["mouthUpperUp"] = _vec(f.upper_lip * lip_half, dy=0.08, dz=0.015)
  dy_mouth = y - shape.MOUTH_Y
  out["mouthPress"] = (_vec((f.upper_red + f.lower_red) * half, dz=-0.025)
                       + _vec(-0.5 * dy_mouth * (f.upper_red + f.lower_red) * half, dy=1.0))
  out["noseSneer"] = (_vec(f.gauss(s * 0.1, -0.12, 0.09, 0.11), dy=0.06, dz=0.02)
                      + slide(0.0, -0.015 * f.gauss(s * 0.1, shape.BROW_Y - 0.04, 0.08, 0.08)))
  return out


def _central_channels(f: _Fields):
  """Displacements of the unpaired channels (jaw and whole-mouth movements)."""
  mesh = f.mesh
  hinge = np.array([0.0, *shape.HINGE_YZ])
  jaw = f.jaw
  jaw_open = jaw[:, None] * rotation_displacement(mesh.vertices, hinge, [1, 0, 0], JAW_OPEN_DEGREES)
  out = {
    "jawOpen": jaw_open,
    # The lips stay together as the jaw juts: the upper lip is pushed along, the lower one lags.
    "jawForward": _vec(jaw, dz=0.09) + _vec(f.upper_lip, dz=0.05) - _vec(f.lower_red, dz=0.03),
    "jawLeft": _vec(jaw, dx=0.08),
    "jawRight": _vec(jaw, dx=-0.08),
  }
  # mouthClose brings the lips together by the gap jawOpen opens between them, the lower lip doing most
  # of the work; the gap vanishes at the corners, so the field stays continuous around them.
  edge_x = mesh.vertices[mesh.mouth_lower, 0]
  opening = jaw_open[mesh.mouth_lower] - jaw_open[mesh.mouth_upper]
  gap = np.stack([np.interp(f.x, edge_x, opening[:, k], left=0, right=0) for k in range(3)], 1)
  dy = f.y - shape.MOUTH_Y
  upper = f.face * f.above * np.exp(-((np.maximum(dy, 0) / 0.1) ** 2))
  lower = f.face * (1 - f.above) * np.exp(-((np.maximum(-dy, 0) / 0.12) ** 2))
  out["mouthClose"] = gap * (0.3 * upper - 0.7 * lower)[:, None]
  x, lips = f.x, f.perioral
  out["mouthFunnel"] = (_vec(lips, dz=0.07) + _vec(-0.25 * x * lips, dx=1.0)
                        + _vec(f.upper_red * (1 - (x / shape.MOUTH_X) ** 2).clip(0), dy=0.02)
                        + _vec(f.lower_red * (1 - (x / shape.MOUTH_X) ** 2).clip(0), dy=-0.03))
  out["mouthPucker"] = (_vec(lips, dz=0.09) + _vec(-0.35 * x * lips, dx=1.0)
                        + _vec(f.upper_red, dy=-0.01) + _vec(f.lower_red, dy=0.01))
  # The mouth slides sideways around the dental arch: a turn about a vertical axis behind the teeth.
  arch_centre = np.array([0.0, shape.MOUTH_Y, 0.25])
  turn = rotation_displacement(mesh.vertices, arch_centre, [0, 1, 0], np.degrees(0.11 / 0.62))
  out["mouthLeft"] = f.mouth_area[:, None] * turn
  out["mouthRight"] = out["mouthLeft"][mesh.mirror] * [-1, 1, 1]
  out["mouthRollLower"] = _vec(f.lower_red, dy=0.035, dz=-0.08)
  out["mouthRollUpper"] = _vec(f.upper_red, dy=-0.03, dz=-0.075)
  mentalis = f.gauss(0, shape.CHIN_Y, 0.15, 0.1)
  out["mouthShrugLower"] = _vec(f.lower_lip, dy=0.06, dz=0.02) + _vec(mentalis, dy=0.03, dz=0.03)
  out["mouthShrugUpper"] = _vec(f.upper_lip, dy=0.045, dz=0.02)
  return out


def expression_basis(mesh: bm.Mesh) -> np.ndarray:
  """[N,3,53] displacement of every ICT channel at weight 1, in ICT_CHANNELS order."""
  fields = _Fields(mesh)
  channels = _central_channels(fields)
  reflect = np.array([-1.0, 1.0, 1.0])
  for name, disp in _left_channels(fields).items():
    channels[name + "_L"] = disp
    channels[name + "_R"] = disp[mesh.mirror] * reflect
  basis = np.zeros((len(mesh.vertices), 3, len(ICT_CHANNELS)))
  for k, name in enumerate(ICT_CHANNELS):
    disp = channels.pop(name)
    basis[:, :, k] = _follow_lips(fields, disp)
  if channels:
    raise AssertionError(f"channels without an ICT name: {sorted(channels)}")
  return basis
